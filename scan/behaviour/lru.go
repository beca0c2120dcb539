package behaviour

// lru is a map with a capacity that evicts the least recently used entry. Use order depends
// only on the order of calls, so eviction is as deterministic as everything else.
type lru[V any] struct {
	cap     int
	m       map[string]*lruNode[V]
	head    lruNode[V] // sentinel: head.next is the most recent, head.prev the least
	evicted uint64
	onEvict func(key string, v *V)
}

type lruNode[V any] struct {
	key        string
	v          V
	prev, next *lruNode[V]
}

func newLRU[V any](capacity int) *lru[V] {
	l := &lru[V]{cap: capacity, m: make(map[string]*lruNode[V])}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}

// get returns the entry for key, creating it (and evicting the least recently used entry when
// full) if absent, and marks it most recently used. created reports a new entry.
func (l *lru[V]) get(key string) (v *V, created bool) {
	if n, ok := l.m[key]; ok {
		l.unlink(n)
		l.pushFront(n)
		return &n.v, false
	}
	return l.insert(key)
}

// getBytes is get with the key in a byte slice, which is copied only when a new entry is made.
func (l *lru[V]) getBytes(key []byte) (v *V, created bool) {
	if n, ok := l.m[string(key)]; ok { // the conversion does not allocate in a map index
		l.unlink(n)
		l.pushFront(n)
		return &n.v, false
	}
	return l.insert(string(key))
}

func (l *lru[V]) insert(key string) (v *V, created bool) {
	var n *lruNode[V]
	if len(l.m) >= l.cap {
		n = l.head.prev
		l.unlink(n)
		delete(l.m, n.key)
		l.evicted++
		if l.onEvict != nil {
			l.onEvict(n.key, &n.v)
		}
		var zero V
		n.v = zero // reuse the node
	} else {
		n = new(lruNode[V])
	}
	n.key = key
	l.m[key] = n
	l.pushFront(n)
	return &n.v, true
}

// peek returns the entry for key without creating it or changing the use order.
func (l *lru[V]) peek(key string) *V {
	if n, ok := l.m[key]; ok {
		return &n.v
	}
	return nil
}

func (l *lru[V]) len() int { return len(l.m) }

func (l *lru[V]) unlink(n *lruNode[V]) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (l *lru[V]) pushFront(n *lruNode[V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}
