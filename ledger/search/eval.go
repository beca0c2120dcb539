package search

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// eval returns the live documents that match n, sorted.
func (m *memIndex) eval(n node) []docID {
	switch n := n.(type) {
	case *term:
		return m.dropDead(m.evalTerm(n))
	case or:
		lists := make([][]docID, len(n))
		for i, x := range n {
			lists[i] = m.eval(x)
		}
		return unionAll(lists)
	case not:
		return subtract(m.live(), m.eval(n.x))
	case and:
		var pos, neg [][]docID
		for _, x := range n {
			if nx, ok := x.(not); ok {
				neg = append(neg, m.eval(nx.x))
			} else {
				pos = append(pos, m.eval(x))
			}
		}
		var out []docID
		if len(pos) == 0 {
			out = m.live()
		} else {
			slices.SortFunc(pos, func(a, b []docID) int { return len(a) - len(b) })
			out = pos[0]
			for _, l := range pos[1:] {
				out = intersect(out, l)
			}
		}
		for _, l := range neg {
			out = subtract(out, l)
		}
		return out
	}
	return nil
}

// evalTerm returns the documents a term matches (dead ones possibly included).
func (m *memIndex) evalTerm(t *term) []docID {
	has := func(k string) bool { return strings.Contains(k, t.folded) }
	switch t.field {
	case "":
		return m.containing(t.folded)
	case FieldFile:
		return m.files.matching(has)
	case FieldType:
		v := strings.ToLower(t.value)
		return m.types.matching(func(k string) bool { return strings.HasPrefix(k, v) })
	case FieldKind:
		return slices.Clone(m.kinds[t.value])
	case FieldRule, FieldCategory, FieldSeverity, FieldDisposition:
		return m.reviewed(t.field, t.value)
	case FieldSender:
		return m.idOrName(m.senderIDs, m.names, t)
	case FieldParticipant:
		return m.idOrName(m.partIDs, m.partNames, t)
	case FieldConversation:
		return m.idOrName(m.convIDs, m.titles, t)
	}
	return nil
}

// idOrName matches a value as an exact id, or, folded, as a part of a name.
func (m *memIndex) idOrName(ids, names postings, t *term) []docID {
	lists := [][]docID{ids[t.value]}
	if t.folded != "" {
		lists = append(lists, names.matching(func(k string) bool { return strings.Contains(k, t.folded) }))
	}
	return unionAll(lists)
}

// anyOf returns the documents with any of the values in p.
func anyOf(p postings, values []string) []docID {
	lists := make([][]docID, 0, len(values))
	for _, v := range values {
		lists = append(lists, p[v])
	}
	return unionAll(lists)
}

// check validates q and parses its text.
func (q *Query) check() (node, error) {
	n, err := parse(q.Text)
	if err != nil {
		return nil, err
	}
	switch {
	case q.Offset < 0:
		return nil, fmt.Errorf("%w: negative offset", ErrQuery)
	case q.Limit < 0 || q.Limit > MaxLimit:
		return nil, fmt.Errorf("%w: limit %d not within 0..%d", ErrQuery, q.Limit, MaxLimit)
	case len(q.Conversations)+len(q.Senders)+len(q.Kinds) > MaxFilters:
		return nil, fmt.Errorf("%w: more than %d filter values", ErrQuery, MaxFilters)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return nil, fmt.Errorf("%w: from %s is not before to %s", ErrQuery, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	case !q.CapturedFrom.IsZero() && !q.CapturedTo.IsZero() && !q.CapturedFrom.Before(q.CapturedTo):
		return nil, fmt.Errorf("%w: captured from %s is not before captured to %s", ErrQuery,
			q.CapturedFrom.Format(time.RFC3339), q.CapturedTo.Format(time.RFC3339))
	}
	for _, l := range [][]string{q.Conversations, q.Senders, q.Kinds} {
		if slices.Contains(l, "") {
			return nil, fmt.Errorf("%w: an empty filter value", ErrQuery)
		}
	}
	return n, nil
}

// Recorder seals a query as an access before its results are returned; *ledger.Accessor is
// one (Accessor.Query).
type Recorder interface {
	Query(ctx context.Context, query string, size uint64) error
}

// Search brings the index up to the ledger's size, records the query through rec (who, why
// and the query, sealed in the ledger before anything is returned), and returns the page of
// hits asked for. A bad query fails with an error wrapping ErrQuery, before anything is
// recorded. If the index cannot be brought up to date, it answers over what it covers
// (Result.Size says how far) and logs why.
func (ix *Index) Search(ctx context.Context, rec Recorder, q Query) (*Result, error) {
	n, err := q.check()
	if err != nil {
		return nil, err
	}
	if _, err := ix.Update(ctx); err != nil {
		if ctx.Err() != nil || err == ErrClosed {
			return nil, err
		}
		ix.log.Warn("search: answering over a stale index", "err", err)
	}
	ix.mu.RLock()
	size := ix.covered
	ix.mu.RUnlock()
	what, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if err := rec.Query(ctx, string(what), size); err != nil {
		return nil, fmt.Errorf("search: recording the query: %w", err)
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.mem.run(n, &q, size), nil
}

// run evaluates a checked query.
func (m *memIndex) run(n node, q *Query, size uint64) *Result {
	var lists [][]docID
	if n != nil {
		lists = append(lists, m.eval(n))
	}
	for _, f := range []struct {
		p      postings
		values []string
	}{{m.convIDs, q.Conversations}, {m.senderIDs, q.Senders}, {m.kinds, q.Kinds}} {
		if len(f.values) > 0 {
			lists = append(lists, anyOf(f.p, f.values))
		}
	}
	var ids []docID
	if len(lists) == 0 {
		ids = m.live()
	} else {
		slices.SortFunc(lists, func(a, b []docID) int { return len(a) - len(b) })
		ids = lists[0]
		for _, l := range lists[1:] {
			ids = intersect(ids, l)
		}
		ids = m.dropDead(slices.Clip(ids))
	}
	ids = within(ids, m.sent, q.From, q.To)
	ids = within(ids, m.captured, q.CapturedFrom, q.CapturedTo)
	res := &Result{Total: len(ids), Size: size, Hits: []Hit{}}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	for _, id := range m.page(ids, q.Offset, limit) {
		res.Hits = append(res.Hits, Hit{Index: m.ledger[id], Sent: time.Unix(0, m.sent[id]).UTC(),
			Conversation: m.conv[id], Sender: m.sender[id], Kind: m.kind[id], Records: slices.Clone(m.rev.records[id])})
	}
	return res
}

// within keeps the documents whose time in col is in [from, to) (zero: unbounded).
func within(ids []docID, col []int64, from, to time.Time) []docID {
	if from.IsZero() && to.IsZero() {
		return ids
	}
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	return slices.DeleteFunc(slices.Clip(ids), func(id docID) bool { return col[id] < lo || col[id] >= hi })
}

// page returns ids[offset:offset+limit] in (sent, ledger index) order. When the page is a small
// part of the hits, it keeps only the first offset+limit in a heap instead of sorting them all.
func (m *memIndex) page(ids []docID, offset, limit int) []docID {
	if offset >= len(ids) {
		return nil
	}
	less := func(a, b docID) bool {
		return m.sent[a] < m.sent[b] || m.sent[a] == m.sent[b] && m.ledger[a] < m.ledger[b]
	}
	k := min(len(ids), offset+limit)
	var top []docID
	if k*8 >= len(ids) {
		top = slices.Clone(ids)
	} else {
		h := &maxHeap{less: less, ids: make([]docID, 0, k)}
		for _, id := range ids {
			h.offer(id, k)
		}
		top = h.ids
	}
	slices.SortFunc(top, func(a, b docID) int {
		if less(a, b) {
			return -1
		}
		if less(b, a) {
			return 1
		}
		return 0
	})
	return top[offset:k]
}

// maxHeap keeps the k least documents seen, the greatest of them at the root.
type maxHeap struct {
	less func(a, b docID) bool
	ids  []docID
}

func (h *maxHeap) offer(id docID, k int) {
	if len(h.ids) < k {
		h.ids = append(h.ids, id)
		for i := len(h.ids) - 1; i > 0; { // sift up
			p := (i - 1) / 2
			if !h.less(h.ids[p], h.ids[i]) {
				break
			}
			h.ids[p], h.ids[i] = h.ids[i], h.ids[p]
			i = p
		}
		return
	}
	if !h.less(id, h.ids[0]) {
		return
	}
	h.ids[0] = id
	for i := 0; ; { // sift down
		c := 2*i + 1
		if c >= len(h.ids) {
			return
		}
		if c+1 < len(h.ids) && h.less(h.ids[c], h.ids[c+1]) {
			c++
		}
		if !h.less(h.ids[i], h.ids[c]) {
			return
		}
		h.ids[i], h.ids[c] = h.ids[c], h.ids[i]
		i = c
	}
}
