package tsa

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrBackdated is wrapped by every BackdatedError.
var ErrBackdated = errors.New("tsa: token time precedes an earlier anchored checkpoint's time")

// Anchor is one anchored token as CheckOrder sees it: the size of the checkpoint it stamps and
// the token's time and accuracy (Token.Time, Token.Accuracy).
type Anchor struct {
	Size     uint64
	Time     time.Time
	Accuracy time.Duration
	TSA      string // for the report only
}

// BackdatedError flags the anchor at Index of the list given to CheckOrder: its checkpoint is
// larger than Prev's, which was anchored before it, yet its time is before Prev's time even
// allowing for both tokens' accuracy.
type BackdatedError struct {
	Index  int
	Anchor Anchor
	Prev   Anchor
}

func (e *BackdatedError) Error() string {
	return fmt.Sprintf("%v: anchor %d (size %d, %s, %s) precedes size %d (%s, %s)", ErrBackdated,
		e.Index, e.Anchor.Size, e.Anchor.Time.Format(time.RFC3339Nano), e.Anchor.TSA,
		e.Prev.Size, e.Prev.Time.Format(time.RFC3339Nano), e.Prev.TSA)
}

// Is reports whether target is ErrBackdated.
func (e *BackdatedError) Is(target error) bool { return target == ErrBackdated }

// CheckOrder flags tokens whose time precedes the time of an anchored checkpoint they follow.
//
// anchors are in the order they were anchored (the ledger's entry order). A checkpoint of size
// n exists only after every smaller checkpoint of the same log, and a TSA is asked only after
// the earlier anchors were sealed, so for i < j with anchors[i].Size < anchors[j].Size the
// token of j cannot honestly be earlier than the token of i. CheckOrder returns one
// BackdatedError for each j whose latest possible time (Time + Accuracy) is before the
// earliest possible time (Time - Accuracy) of such an i, naming the i with the latest earliest
// time; nil if there is none. Tokens of the same size (several TSAs stamping one checkpoint)
// are not compared with each other, nor is a token compared with a later-anchored one or a
// larger checkpoint: late tokens for an old checkpoint (a TSA that was down) are legitimate.
// It runs in O(n log n).
func CheckOrder(anchors []Anchor) []BackdatedError {
	// Fenwick tree over the distinct sizes, holding for each prefix the anchor already seen
	// with the latest lower bound.
	sizes := make([]uint64, len(anchors))
	for i, a := range anchors {
		sizes[i] = a.Size
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	tree := make([]int, len(sizes)+1) // index into anchors, plus one; 0 for none
	lower := func(i int) time.Time { return anchors[i].Time.Add(-anchors[i].Accuracy) }
	better := func(cur, cand int) int {
		if cur == 0 || lower(cand-1).After(lower(cur-1)) {
			return cand
		}
		return cur
	}
	var out []BackdatedError
	for j, a := range anchors {
		pos, _ := slices.BinarySearch(sizes, a.Size) // sizes strictly below a.Size: [0, pos)
		best := 0
		for k := pos; k > 0; k -= k & -k {
			if tree[k] != 0 {
				best = better(best, tree[k])
			}
		}
		if best != 0 && a.Time.Add(a.Accuracy).Before(lower(best-1)) {
			out = append(out, BackdatedError{Index: j, Anchor: a, Prev: anchors[best-1]})
		}
		for k := pos + 1; k <= len(sizes); k += k & -k {
			tree[k] = better(tree[k], j+1)
		}
	}
	return out
}
