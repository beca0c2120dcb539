package search

import (
	"slices"
	"strings"
)

// docID numbers the documents of a memIndex in the order they were added, which is ledger
// order, so every posting list is sorted by appending.
type docID = uint32

// postings maps a key to the sorted documents that have it.
type postings map[string][]docID

func (p postings) add(k string, d docID) {
	l := p[k]
	if n := len(l); n > 0 && l[n-1] == d {
		return
	}
	p[k] = append(l, d)
}

// matching returns the union of the lists whose key satisfies ok.
func (p postings) matching(ok func(k string) bool) []docID {
	var lists [][]docID
	for k, l := range p {
		if ok(k) {
			lists = append(lists, l)
		}
	}
	return unionAll(lists)
}

// memIndex is the inverted index, in memory: n-gram postings over the folded full text, exact
// postings for identifiers, and postings per distinct folded name, title and file name, which
// a query matches by substring. It is not safe for concurrent use; Index guards it.
type memIndex struct {
	// Per document, by docID.
	ledger   []uint64
	sent     []int64
	captured []int64
	text     []string // folded full text; "" once dead
	conv     []string
	sender   []string
	kind     []string
	dead     []bool
	nDead    int

	grams map[gram][]docID
	byKey postings // data key id -> documents (for shredding)

	convIDs   postings // conversation id
	titles    postings // folded conversation title
	senderIDs postings // sender id and staff id
	names     postings // folded sender name
	partIDs   postings // sender's and mentioned parties' ids and staff ids
	partNames postings // their folded names
	kinds     postings // message kind
	files     postings // folded attachment name
	types     postings // lower-case attachment media type

	intern map[string]string
	rev    reviews // alerts and dispositions (surveillance)
}

func newMemIndex() *memIndex {
	return &memIndex{
		grams: map[gram][]docID{}, byKey: postings{},
		convIDs: postings{}, titles: postings{}, senderIDs: postings{}, names: postings{},
		partIDs: postings{}, partNames: postings{}, kinds: postings{}, files: postings{}, types: postings{},
		intern: map[string]string{},
	}
}

func (m *memIndex) in(s string) string {
	if v, ok := m.intern[s]; ok {
		return v
	}
	m.intern[s] = s
	return s
}

// size returns the number of documents added, dead ones included.
func (m *memIndex) size() int { return len(m.ledger) }

// add indexes d under the next docID.
func (m *memIndex) add(d *document) {
	id := docID(len(m.ledger))
	text := fullText(d)
	m.ledger = append(m.ledger, d.index)
	m.sent = append(m.sent, d.sent)
	m.captured = append(m.captured, d.captured)
	m.text = append(m.text, text)
	m.conv = append(m.conv, m.in(d.conv))
	m.sender = append(m.sender, m.in(d.sender))
	m.kind = append(m.kind, m.in(d.kind))
	m.dead = append(m.dead, false)

	grams(text, func(g gram) {
		l := m.grams[g]
		if n := len(l); n > 0 && l[n-1] == id {
			return
		}
		m.grams[g] = append(l, id)
	})
	if d.keyID != "" {
		m.byKey.add(d.keyID, id)
	}
	m.convIDs.add(d.conv, id)
	m.titles.add(fold(d.title), id)
	for _, s := range []string{d.sender, d.staff} {
		if s != "" {
			m.senderIDs.add(s, id)
			m.partIDs.add(s, id)
		}
	}
	n := fold(d.name)
	m.names.add(n, id)
	m.partNames.add(n, id)
	for _, p := range d.mentions {
		for _, s := range []string{p.id, p.staff} {
			if s != "" {
				m.partIDs.add(s, id)
			}
		}
		m.partNames.add(fold(p.name), id)
	}
	m.kinds.add(d.kind, id)
	for _, f := range d.files {
		m.files.add(fold(f.name), id)
		m.types.add(strings.ToLower(f.mediaType), id)
	}
}

// forget marks every document under data key keyID dead and drops its text: its scope was
// shredded. It returns how many documents it removed.
func (m *memIndex) forget(keyID string) int {
	ids := m.byKey[keyID]
	delete(m.byKey, keyID)
	n := 0
	for _, id := range ids {
		if !m.dead[id] {
			m.dead[id], m.text[id] = true, ""
			m.nDead++
			n++
		}
	}
	return n
}

// live returns every document that is not dead.
func (m *memIndex) live() []docID {
	out := make([]docID, 0, m.size()-m.nDead)
	for id, dead := range m.dead {
		if !dead {
			out = append(out, docID(id))
		}
	}
	return out
}

// dropDead removes dead documents from a sorted list, in place.
func (m *memIndex) dropDead(l []docID) []docID {
	if m.nDead == 0 {
		return l
	}
	return slices.DeleteFunc(l, func(id docID) bool { return m.dead[id] })
}

// text search: candidates from the grams, confirmed by reading the folded text.

// enough is the number of candidates below which reading the text is cheaper than
// intersecting one more posting list.
const enough = 256

// containing returns the documents whose folded full text contains t (folded, non-empty).
func (m *memIndex) containing(t string) []docID {
	var keys []gram
	grams(t, func(g gram) { keys = append(keys, g) })
	if len(keys) == 0 { // a single ASCII character: read every text
		return m.confirm(m.live(), t)
	}
	if len(keys) > 1 { // two runes or more: their bigrams say it all, unigrams add nothing
		keys = slices.DeleteFunc(keys, func(g gram) bool { return uint32(g) == unigramMark })
	}
	lists := make([][]docID, 0, len(keys))
	for _, k := range keys {
		l, ok := m.grams[k]
		if !ok {
			return nil
		}
		lists = append(lists, l)
	}
	slices.SortFunc(lists, func(a, b []docID) int { return len(a) - len(b) })
	cand := lists[0]
	exact := len(keys) == 1 // one bigram or one unigram is its own proof
	for _, l := range lists[1:] {
		if len(cand) <= enough {
			break
		}
		cand = intersect(cand, l)
	}
	if exact {
		return m.dropDead(slices.Clone(cand))
	}
	return m.confirm(cand, t)
}

// confirm keeps the candidates whose text contains t.
func (m *memIndex) confirm(cand []docID, t string) []docID {
	var out []docID
	for _, id := range cand {
		if !m.dead[id] && strings.Contains(m.text[id], t) {
			out = append(out, id)
		}
	}
	return out
}

// sorted-list algebra

// intersect returns the documents in both a and b, galloping through the longer list.
func intersect(a, b []docID) []docID {
	if len(a) > len(b) {
		a, b = b, a
	}
	out := make([]docID, 0, len(a))
	j := 0
	for _, x := range a {
		j += gallop(b[j:], x)
		if j == len(b) {
			break
		}
		if b[j] == x {
			out = append(out, x)
			j++
		}
	}
	return out
}

// gallop returns the position of the first element of l not less than x.
func gallop(l []docID, x docID) int {
	hi := 1
	for hi < len(l) && l[hi] < x {
		hi *= 2
	}
	lo := hi / 2
	hi = min(hi+1, len(l))
	i, _ := slices.BinarySearch(l[lo:hi], x)
	return lo + i
}

// subtract returns the documents of a that are not in b.
func subtract(a, b []docID) []docID {
	out := make([]docID, 0, len(a))
	j := 0
	for _, x := range a {
		j += gallop(b[j:], x)
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// unionAll merges sorted lists into one sorted list without repeats.
func unionAll(lists [][]docID) []docID {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return slices.Clone(lists[0])
	}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]docID, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
