package scan

import (
	"cmp"
	"math"
	"slices"
	"unicode/utf8"
)

// State values. A transition holds the value of the target state: for a dense state with no
// output that is simply its row offset in trans (row number times stride), so the hot loop is
// one load and one add per byte. Values at or above specialMin carry flags: flagMatch (the state
// ends at least one key: record a hit) and flagSparse (the state has no dense row: the low bits
// index sparse instead). One comparison per byte tells the common case from the rare ones.
const (
	flagMatch  = 1 << 30
	flagSparse = 1 << 29
	specialMin = 1 << 29
	offMask    = 1<<29 - 1
)

// Byte classes. Class 0 is every byte that occurs in no key: from any state it leads back to
// the root. In normalizing automata class 1 is "removed by normalization": it leaves the state
// as it is, which is how spacing and punctuation inside a term are skipped without a second
// pass over the text.
const (
	classNone = 0
	classSkip = 1
)

// denseBudget caps the dense transition table, in entries (32 MiB). States are made dense in
// breadth-first order, so the shallow states where a scan spends nearly all its time get the
// one-load transition and the long tails of rare terms use sparse edges plus failure links.
const denseBudget = 1 << 23

// failToRoot is the failure link of a sparse state inside a symbol code whose failure state
// is the root: every transition left leads to the root.
const failToRoot = ^uint32(0)

// maxMergedEdges bounds the edges a sparse state copies from its failure chain.
const maxMergedEdges = 16

// automaton is an Aho-Corasick automaton over keys of bytes, compiled to a byte-class DFA. It is
// immutable once built and safe for concurrent use.
type automaton struct {
	cls     [256]uint8 // key byte -> class (raw mode: text byte -> class)
	acls    [128]uint8 // normalizing: ASCII text byte -> class of its folded form, or classSkip
	strideB uint32     // row length of a state at a symbol boundary (all states when raw)
	strideM uint32     // row length of a state inside a symbol code (normalizing only)
	nDense  uint32     // states 0..nDense-1 have dense rows
	trans   []uint32   // dense rows, premultiplied
	rowOff  []uint32   // per dense state: its row's offset in trans
	sparse  []sparseState
	edges   []sparseEdge
	keyAt   []int32 // per state: the key ending exactly here, or -1
	dict    []int32 // per state: the nearest proper suffix state with a key, or -1
	norm    bool
	runes   *runeTable
}

type sparseState struct {
	lo, hi uint32 // edges[lo:hi]
	fail   uint32 // state number of the failure link
	self   uint32 // this state's value without flagMatch
}

type sparseEdge struct {
	cls uint32
	val uint32
}

// hit is a raw match: the automaton reached state (by number) after consuming text[:end].
type hit struct {
	state uint32
	end   int
}

// buildAutomaton compiles keys (byte strings over the key alphabet; none empty, no duplicates).
// When norm is set the keys are symbol codes (see symbolCode) and acls maps ASCII text. Dense
// rows take at most budget entries of trans (0: no limit).
//
// The build runs in phases over a builder, each a method that reads what the earlier ones
// left: byte classes, the trie, failure and dictionary links, ranking the states, the row
// layout and state values, the dense rows, the sparse states.
func buildAutomaton(keys [][]byte, norm bool, budget int) *automaton {
	b := &builder{a: &automaton{norm: norm}, keys: keys, norm: norm, budget: budget}
	b.classes()
	b.trie()
	b.links()
	b.rank()
	b.layout()
	b.denseRows()
	b.sparseStates()
	return b.a
}

// builder is the working state of one buildAutomaton. The trie's nodes are numbered in the
// order they are made; the automaton's states are numbered by rank (see rank), and num and
// order translate between the two.
type builder struct {
	a      *automaton
	keys   [][]byte
	norm   bool
	budget int

	// The trie (see trie): children in singly linked lists of edges, the root's also in an
	// array.
	first    []int32 // per node: its first edge, or -1
	mid      []bool  // per node: inside a symbol code
	keyAt    []int32 // per node: the key ending exactly here, or -1
	elab     []uint8 // per edge: its class
	echild   []int32 // per edge: the node it leads to
	enext    []int32 // per edge: the next edge of the same node, or -1
	rootKids [256]int32

	// Links (see links), by node.
	fail []int32 // the failure link: the longest proper suffix that is a node
	dict []int32 // the nearest proper suffix with a key, or -1

	// Ranking and layout (see rank and layout).
	order  []int32  // state number -> node: breadth-first, then by rank
	num    []int32  // node -> state number
	nDense int      // states 0..nDense-1 have dense rows
	size   int      // entries of dense rows, with their state-number slots
	val    []uint32 // per state number: its value
}

// classes gives every byte that occurs in a key a class of its own; class 0 is all the
// others. Normalizing automata run on symbol codes, whose continuation bytes (0x80-0xBF)
// follow a lead byte and nothing else, while ASCII and lead bytes come only at a symbol
// boundary. So a state inside a code needs a row for continuation bytes only and a state at a
// boundary one for the others: two short rows instead of one long one, and the rows a scan
// touches take half the cache. Raw automata see arbitrary bytes and have one kind.
func (b *builder) classes() {
	a := b.a
	nextB, nextM := uint8(1), uint8(0)
	if b.norm {
		nextB = 2
	}
	var used [256]bool
	for _, k := range b.keys {
		for _, c := range k {
			used[c] = true
		}
	}
	for c := range used {
		switch {
		case !used[c]:
		case b.norm && c >= 0x80 && c < 0xC0:
			a.cls[c] = nextM
			nextM++
		default:
			a.cls[c] = nextB
			nextB++
		}
	}
	a.strideB, a.strideM = uint32(nextB), uint32(nextM)
	if b.norm {
		for c := range a.acls {
			if f := asciiFold[c]; f == foldSkip {
				a.acls[c] = classSkip
			} else {
				a.acls[c] = a.cls[f]
			}
		}
	}
}

// trie builds the trie of the keys over their byte classes, marking the nodes that lie inside
// a symbol code.
func (b *builder) trie() {
	total := 1
	for _, k := range b.keys {
		total += len(k)
	}
	b.first = make([]int32, 1, total)
	b.mid = make([]bool, 1, total)
	b.keyAt = make([]int32, 1, total)
	b.first[0], b.keyAt[0] = -1, -1
	b.elab = make([]uint8, 0, total)
	b.echild = make([]int32, 0, total)
	b.enext = make([]int32, 0, total)
	for i := range b.rootKids {
		b.rootKids[i] = -1
	}
	for ki, k := range b.keys {
		n := int32(0)
		need := 0 // bytes still to come in the current symbol code
		for _, c := range k {
			switch {
			case !b.norm || c < 0x80:
				need = 0
			case c >= 0xF0:
				need = 2
			case c >= 0xC0:
				need = 1
			default:
				need--
			}
			cl := b.a.cls[c]
			m := b.child(n, cl)
			if m < 0 {
				m = int32(len(b.first))
				b.first = append(b.first, -1)
				b.mid = append(b.mid, need > 0)
				b.keyAt = append(b.keyAt, -1)
				b.elab = append(b.elab, cl)
				b.echild = append(b.echild, m)
				b.enext = append(b.enext, b.first[n])
				b.first[n] = int32(len(b.elab) - 1)
				if n == 0 {
					b.rootKids[cl] = m
				}
			}
			n = m
		}
		b.keyAt[n] = int32(ki)
	}
}

// child returns the child of node n on class c, or -1.
func (b *builder) child(n int32, c uint8) int32 {
	if n == 0 {
		return b.rootKids[c]
	}
	for e := b.first[n]; e >= 0; e = b.enext[e] {
		if b.elab[e] == c {
			return b.echild[e]
		}
	}
	return -1
}

// links computes the failure and dictionary links of every node, visiting the nodes in
// breadth-first order, which it leaves in order.
func (b *builder) links() {
	nStates := len(b.first)
	b.order = make([]int32, 0, nStates)
	b.order = append(b.order, 0)
	b.fail = make([]int32, nStates)
	b.dict = make([]int32, nStates)
	b.dict[0] = -1
	fail, dict, keyAt, mid := b.fail, b.dict, b.keyAt, b.mid
	for qi := 0; qi < len(b.order); qi++ {
		u := b.order[qi]
		for e := b.first[u]; e >= 0; e = b.enext[e] {
			v, c := b.echild[e], b.elab[e]
			b.order = append(b.order, v)
			f := int32(0)
			if u != 0 {
				for f = fail[u]; ; f = fail[f] {
					if f == 0 && mid[u] {
						break // class numbers inside a code are not the root's
					}
					if w := b.child(f, c); w >= 0 {
						f = w
						break
					}
					if f == 0 {
						break
					}
				}
			}
			fail[v] = f
			if keyAt[f] >= 0 {
				dict[v] = f
			} else {
				dict[v] = dict[f]
			}
		}
	}
}

// rank numbers the states by how likely a scan is to be in them, estimated from how often
// each byte occurs in the keys: a state's weight is the product of its path's byte
// probabilities. The likeliest get dense rows. A failure link goes to a proper suffix, which
// is at least as likely and shallower, so it always comes first and is dense whenever its
// state is. (Breadth-first order would put a Chinese character's second byte level with an
// English word's fourth letter; this does not.)
func (b *builder) rank() {
	var freq [256]float64
	nb := 0.0
	for _, k := range b.keys {
		for _, c := range k {
			freq[b.a.cls[c]]++
			nb++
		}
	}
	var weight [256]float64
	for c := range weight {
		weight[c] = -math.Log((freq[c] + 1) / (nb + 256))
	}
	nStates := len(b.first)
	cost := make([]float64, nStates)
	depth := make([]int32, nStates)
	for _, u := range b.order {
		for e := b.first[u]; e >= 0; e = b.enext[e] {
			v := b.echild[e]
			cost[v] = cost[u] + weight[b.elab[e]]
			depth[v] = depth[u] + 1
		}
	}
	slices.SortStableFunc(b.order[1:], func(x, y int32) int {
		return cmp.Or(cmp.Compare(cost[x], cost[y]), cmp.Compare(depth[x], depth[y]))
	})
	b.num = make([]int32, nStates)
	for i, u := range b.order {
		b.num[u] = int32(i)
	}
}

// rowLen is the length of node u's dense row.
func (b *builder) rowLen(u int32) int {
	if b.mid[u] {
		return int(b.a.strideM)
	}
	return int(b.a.strideB)
}

// layout gives dense rows to states in rank order until the budget is spent, and computes
// every state's value (see the flags) and its key and dictionary link by state number.
func (b *builder) layout() {
	a := b.a
	// Each row but the root's (which is at 0, so that 0 is the root's value and a zeroed
	// entry leads to it) is preceded by its state's number, for stateNum.
	a.rowOff = append(a.rowOff, 0)
	nDense, size := 1, b.rowLen(0)
	for _, u := range b.order[1:] {
		if b.budget > 0 && size+1+b.rowLen(u) > b.budget {
			break
		}
		a.rowOff = append(a.rowOff, uint32(size+1))
		size += 1 + b.rowLen(u)
		nDense++
	}
	b.nDense, b.size = nDense, size
	a.nDense = uint32(nDense)
	nStates := len(b.order)
	b.val = make([]uint32, nStates)
	a.keyAt = make([]int32, nStates)
	a.dict = make([]int32, nStates)
	for i, u := range b.order {
		var v uint32
		if i < nDense {
			v = a.rowOff[i]
		} else {
			v = flagSparse | uint32(i-nDense)
		}
		if b.keyAt[u] >= 0 || b.dict[u] >= 0 {
			v |= flagMatch
		}
		b.val[i] = v
		a.keyAt[i] = b.keyAt[u]
		a.dict[i] = -1
		if b.dict[u] >= 0 {
			a.dict[i] = b.num[b.dict[u]]
		}
	}
}

// denseRows fills the dense rows, in state order: a row starts as a copy of its failure
// state's, which comes earlier, and its own edges are written over it.
func (b *builder) denseRows() {
	a := b.a
	a.trans = make([]uint32, b.size)
	adviseHugePages(a.trans)
	for i := 0; i < b.nDense; i++ {
		u := b.order[i]
		if i > 0 {
			a.trans[a.rowOff[i]-1] = uint32(i)
		}
		row := a.trans[a.rowOff[i]:][:b.rowLen(u)]
		if f := b.fail[u]; i > 0 && (f != 0 || !b.mid[u]) {
			// The failure state is a suffix ending at the same place: same kind, same row
			// length. Except the root, which is at a boundary: from inside a code, its
			// transitions all lead back to the root (no key starts with a continuation
			// byte), which the zeroed row already says.
			copy(row, a.trans[a.rowOff[b.num[f]]:][:b.rowLen(u)])
		}
		for e := b.first[u]; e >= 0; e = b.enext[e] {
			row[b.elab[e]] = b.val[b.num[b.echild[e]]]
		}
		if b.norm && !b.mid[u] {
			row[classSkip] = b.val[i] &^ flagMatch
		}
	}
}

// sparseStates gives the states without a dense row their edges and failure links. A sparse
// state also takes the edges of the sparse states on its failure chain (those its own edges do
// not shadow), up to maxMergedEdges, so that a miss usually falls straight through to a dense
// row instead of walking the chain.
func (b *builder) sparseStates() {
	a := b.a
	nStates, nDense := len(b.order), b.nDense
	a.sparse = make([]sparseState, nStates-nDense)
	var have [256]bool
	for i := nDense; i < nStates; i++ {
		u := b.order[i]
		sp := &a.sparse[i-nDense]
		sp.lo = uint32(len(a.edges))
		sp.self = b.val[i] &^ flagMatch
		f := u
		for {
			for e := b.first[f]; e >= 0; e = b.enext[e] {
				if !have[b.elab[e]] {
					have[b.elab[e]] = true
					a.edges = append(a.edges, sparseEdge{cls: uint32(b.elab[e]), val: b.val[b.num[b.echild[e]]]})
				}
			}
			f = b.fail[f]
			if int(b.num[f]) < nDense || len(a.edges)-int(sp.lo) >= maxMergedEdges {
				break
			}
		}
		sp.hi = uint32(len(a.edges))
		sp.fail = uint32(b.num[f])
		if f == 0 && b.mid[u] {
			sp.fail = failToRoot
		}
		for _, e := range a.edges[sp.lo:sp.hi] {
			have[e.cls] = false
		}
	}
}

// slowStep is the transition from a sparse state value v (without flagMatch) on class c,
// which is never classSkip (callers handle that: it leaves the state as it is).
func (a *automaton) slowStep(v, c uint32) uint32 {
	n := a.nDense + v&offMask
	for {
		if n < a.nDense {
			return a.trans[a.rowOff[n]+c]
		}
		if n == failToRoot {
			return 0
		}
		sp := &a.sparse[n-a.nDense]
		for _, e := range a.edges[sp.lo:sp.hi] {
			if e.cls == c {
				return e.val
			}
		}
		n = sp.fail
	}
}

// stateNum converts a state value back to its state number.
func (a *automaton) stateNum(v uint32) uint32 {
	if v&flagSparse != 0 {
		return a.nDense + v&offMask
	}
	if v&offMask == 0 {
		return 0
	}
	return a.trans[v&offMask-1]
}

// scanRaw runs the automaton over text byte by byte, appending a hit for every state with
// output. This is the path for lexicons whose rules are all exact.
func (a *automaton) scanRaw(text []byte, hits []hit) []hit {
	trans, cls := a.trans, &a.cls
	s := uint32(0)
	for i := 0; i < len(text); {
		s = trans[s+uint32(cls[text[i]])]
		i++
		if s < specialMin {
			continue
		}
		for {
			if s&flagMatch != 0 {
				hits = append(hits, hit{a.stateNum(s), i})
				s &^= flagMatch
			}
			if s < specialMin || i >= len(text) {
				break
			}
			s = a.slowStep(s, uint32(cls[text[i]]))
			i++
		}
	}
	return hits
}

// scanNorm runs a normalizing automaton over text. ASCII goes through acls, where case folding
// and skipping are already in the classes; other runes are decoded and looked up in the rune
// table, which gives their folded symbol's classes, or says to skip them, or (for a rune in no
// key) to go straight back to the root.
func (a *automaton) scanNorm(text []byte, hits []hit) []hit {
	trans, acls, rt := a.trans, &a.acls, a.runes
	s := uint32(0)
	for i := 0; i < len(text); {
		b := text[i]
		if b < utf8.RuneSelf {
			i++
			c := uint32(acls[b])
			if s < specialMin {
				s = trans[s+c]
				if s < specialMin {
					continue
				}
			} else if c != classSkip {
				s = a.slowStep(s, c)
			}
		} else {
			var r rune
			var size int
			if b >= 0xE0 && b < 0xF0 && i+2 < len(text) {
				r = rune(b&0x0F)<<12 | rune(text[i+1]&0x3F)<<6 | rune(text[i+2]&0x3F)
				size = 3
				if text[i+1]&0xC0 != 0x80 || text[i+2]&0xC0 != 0x80 || r < 0x800 || r >= 0xD800 && r < 0xE000 {
					r, size = utf8.DecodeRune(text[i:])
				}
			} else {
				r, size = utf8.DecodeRune(text[i:])
			}
			i += size
			act := rt.lookup(r)
			n := act & actLenMask
			if n == 0 {
				if act == actBreak {
					s = 0
				}
				continue
			}
			for k := uint32(0); k < n; k++ {
				c := act >> (8 + 8*k) & 0xff
				if s < specialMin {
					s = trans[s+c]
				} else {
					s = a.slowStep(s&^flagMatch, c)
				}
			}
		}
		if s&flagMatch != 0 {
			hits = append(hits, hit{a.stateNum(s), i})
			s &^= flagMatch
		}
	}
	return hits
}

// Rune actions of a normalizing automaton: the number of symbol-code bytes in the low bits and
// their classes in the bytes above, or one of the two specials.
const (
	actLenMask = 3
	actBreak   = 0 // the rune's folded form is in no key: back to the root
	actSkip    = 4 // normalization removes the rune: stay
)

// runeTable maps a text rune to its action, in pages of 256 runes for the planes foldPlanes
// covers; identical pages are shared, and the few rarer runes sit in a map.
type runeTable struct {
	top   [foldPlanes >> 8]uint16
	pages [][256]uint32
	high  map[rune]uint32 // runes >= foldPlanes whose folded form is a key symbol
}

func (t *runeTable) lookup(r rune) uint32 {
	if uint32(r) < foldPlanes {
		return t.pages[t.top[r>>8]][r&0xff]
	}
	if act, ok := t.high[r]; ok {
		return act
	}
	if foldRune(r) == foldSkip {
		return actSkip
	}
	return actBreak
}

// lane is one message in flight in a batch scan.
type lane struct {
	t    []byte
	i    int
	s    uint32
	msg  int
	hits []hit
}

// resolve handles a lane that has just entered a special state: records the match, and steps
// through sparse states one byte at a time until the lane is back in a dense state or out of
// text.
func (a *automaton) resolve(l *lane) {
	s, i, t := l.s, l.i, l.t
	for {
		if s&flagMatch != 0 {
			l.hits = append(l.hits, hit{a.stateNum(s), i})
			s &^= flagMatch
		}
		if s < specialMin || i >= len(t) {
			break
		}
		s = a.slowStep(s, uint32(a.cls[t[i]]))
		i++
	}
	l.s, l.i = s, i
}

// feeder hands the non-empty messages of a batch to a set of lanes, in order, and takes back
// the finished ones: the plumbing the lane loops share; they differ only in how a lane steps.
type feeder struct {
	msgs   [][]byte
	next   int
	done   func(msg int, hits []hit) // called with a message's hits once it is finished
	finish func(*lane)               // runs the rest of one lane's text alone
}

// refill gives lane l the next non-empty message, keeping its hit buffer; false when none is
// left.
func (f *feeder) refill(l *lane) bool {
	for f.next < len(f.msgs) {
		m := f.next
		f.next++
		if len(f.msgs[m]) == 0 {
			continue
		}
		*l = lane{t: f.msgs[m], msg: m, hits: l.hits[:0]}
		return true
	}
	l.t = nil
	return false
}

// start fills every lane. With fewer messages than lanes it scans them one by one and returns
// false.
func (f *feeder) start(ln []lane) bool {
	for k := range ln {
		if !f.refill(&ln[k]) {
			for j := 0; j < k; j++ {
				f.finish(&ln[j])
				f.done(ln[j].msg, ln[j].hits)
			}
			return false
		}
	}
	return true
}

// rotate hands back each lane whose text is used up and refills it. When no message is left
// it finishes the other lanes one by one and returns false.
func (f *feeder) rotate(ln []lane) bool {
	for j := range ln {
		l := &ln[j]
		if l.i < len(l.t) {
			continue
		}
		f.done(l.msg, l.hits)
		if !f.refill(l) {
			for o := range ln {
				if ln[o].t != nil {
					f.finish(&ln[o])
					f.done(ln[o].msg, ln[o].hits)
				}
			}
			return false
		}
	}
	return true
}

// attach gives each lane its kept hit buffer; detach keeps them for the next batch.
func attach(ln []lane, bufs [][]hit) {
	for k := range ln {
		ln[k].hits = bufs[k][:0]
	}
}

func detach(ln []lane, bufs [][]hit) {
	for k := range ln {
		bufs[k] = ln[k].hits
	}
}

// scanRawLanes scans msgs eight at a time. The eight state chains are independent, so the
// processor overlaps their table loads instead of waiting for each in turn; this is what makes
// a batch of short messages faster than the same messages one by one. done is called with
// each message's hits when the message is finished; bufs are the lanes' hit buffers, kept for
// reuse.
func (a *automaton) scanRawLanes(msgs [][]byte, bufs *[8][]hit, done func(msg int, hits []hit)) {
	var ln [8]lane
	attach(ln[:], bufs[:])
	defer detach(ln[:], bufs[:])
	f := feeder{msgs: msgs, done: done, finish: a.finishLane}
	if !f.start(ln[:]) {
		return
	}
	trans, cls := a.trans, &a.cls
	for {
		m := min(len(ln[0].t)-ln[0].i, len(ln[1].t)-ln[1].i, len(ln[2].t)-ln[2].i, len(ln[3].t)-ln[3].i, len(ln[4].t)-ln[4].i, len(ln[5].t)-ln[5].i, len(ln[6].t)-ln[6].i, len(ln[7].t)-ln[7].i)
		t0 := ln[0].t[ln[0].i : ln[0].i+m]
		t1 := ln[1].t[ln[1].i : ln[1].i+m]
		t2 := ln[2].t[ln[2].i : ln[2].i+m]
		t3 := ln[3].t[ln[3].i : ln[3].i+m]
		t4 := ln[4].t[ln[4].i : ln[4].i+m]
		t5 := ln[5].t[ln[5].i : ln[5].i+m]
		t6 := ln[6].t[ln[6].i : ln[6].i+m]
		t7 := ln[7].t[ln[7].i : ln[7].i+m]
		s0, s1, s2, s3, s4, s5, s6, s7 := ln[0].s, ln[1].s, ln[2].s, ln[3].s, ln[4].s, ln[5].s, ln[6].s, ln[7].s
		k := 0
		for k < len(t0) && k < len(t1) && k < len(t2) && k < len(t3) && k < len(t4) && k < len(t5) && k < len(t6) && k < len(t7) {
			s0 = trans[s0+uint32(cls[t0[k]])]
			s1 = trans[s1+uint32(cls[t1[k]])]
			s2 = trans[s2+uint32(cls[t2[k]])]
			s3 = trans[s3+uint32(cls[t3[k]])]
			s4 = trans[s4+uint32(cls[t4[k]])]
			s5 = trans[s5+uint32(cls[t5[k]])]
			s6 = trans[s6+uint32(cls[t6[k]])]
			s7 = trans[s7+uint32(cls[t7[k]])]
			k++
			if (s0|s1|s2|s3|s4|s5|s6|s7)&(flagMatch|flagSparse) != 0 {
				break
			}
		}
		ln[0].s, ln[1].s, ln[2].s, ln[3].s, ln[4].s, ln[5].s, ln[6].s, ln[7].s = s0, s1, s2, s3, s4, s5, s6, s7
		for j := range ln {
			l := &ln[j]
			l.i += k
			if l.s >= specialMin {
				a.resolve(l)
			}
		}
		if !f.rotate(ln[:]) {
			return
		}
	}
}

// finishLane runs the rest of a lane's text through the single-lane loop.
func (a *automaton) finishLane(l *lane) {
	for {
		if l.s >= specialMin {
			a.resolve(l)
		}
		if l.i >= len(l.t) {
			break
		}
		l.s = a.trans[l.s+uint32(a.cls[l.t[l.i]])]
		l.i++
	}
	l.t = nil
}
