package storetest

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/commseal/commseal/store"
)

// Snapshot is a store's entries, stored hashes and checkpoints copied into plain slices. It
// serves the read side of a store (Size, Entries, ReadHashes, LatestCheckpoint,
// AllCheckpoints), so a test can alter it the way someone with write access to the storage
// could (flip a byte, drop an entry, re-sign a checkpoint) and show that a verifier notices.
type Snapshot struct {
	Log    []store.Entry      // the entries, in order
	Hashes []store.Hash       // the stored hashes
	Heads  []store.Checkpoint // the checkpoints (signed tree heads), in order
}

// TakeSnapshot copies everything r holds.
func TakeSnapshot(ctx context.Context, r interface {
	Size(context.Context) (uint64, error)
	Entries(context.Context, uint64, uint64) iter.Seq2[store.Entry, error]
	ReadHashes(context.Context, []int64) ([]store.Hash, error)
	AllCheckpoints(context.Context) iter.Seq2[store.Checkpoint, error]
}) (*Snapshot, error) {
	s := &Snapshot{}
	size, err := r.Size(ctx)
	if err != nil {
		return nil, err
	}
	for e, err := range r.Entries(ctx, 0, size) {
		if err != nil {
			return nil, err
		}
		s.Log = append(s.Log, e)
	}
	idx := make([]int64, store.StoredHashCount(size))
	for k := range idx {
		idx[k] = int64(k)
	}
	if s.Hashes, err = r.ReadHashes(ctx, idx); err != nil {
		return nil, err
	}
	for c, err := range r.AllCheckpoints(ctx) {
		if err != nil {
			return nil, err
		}
		s.Heads = append(s.Heads, c)
	}
	return s, nil
}

// Clone returns a deep copy, to alter without touching s.
func (s *Snapshot) Clone() *Snapshot {
	c := &Snapshot{Hashes: slices.Clone(s.Hashes)}
	for _, e := range s.Log {
		e.Leaf, e.Payload = slices.Clone(e.Leaf), slices.Clone(e.Payload)
		c.Log = append(c.Log, e)
	}
	for _, cp := range s.Heads {
		cp.Note = slices.Clone(cp.Note)
		c.Heads = append(c.Heads, cp)
	}
	return c
}

// Size returns the number of entries.
func (s *Snapshot) Size(context.Context) (uint64, error) { return uint64(len(s.Log)), nil }

// Entries yields the entries in [start, end), as they are in the slice (whatever their Index).
func (s *Snapshot) Entries(_ context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for i := start; i < min(end, uint64(len(s.Log))); i++ {
			if !yield(s.Log[i], nil) {
				return
			}
		}
	}
}

// ReadHashes returns the stored hashes asked for, or store.ErrNotFound.
func (s *Snapshot) ReadHashes(_ context.Context, idx []int64) ([]store.Hash, error) {
	out := make([]store.Hash, len(idx))
	for k, x := range idx {
		if x < 0 || x >= int64(len(s.Hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d", store.ErrNotFound, x)
		}
		out[k] = s.Hashes[x]
	}
	return out, nil
}

// LatestCheckpoint returns the last checkpoint, or store.ErrNotFound.
func (s *Snapshot) LatestCheckpoint(context.Context) (store.Checkpoint, error) {
	if len(s.Heads) == 0 {
		return store.Checkpoint{}, store.ErrNotFound
	}
	return s.Heads[len(s.Heads)-1], nil
}

// AllCheckpoints yields the checkpoints in their order in the slice.
func (s *Snapshot) AllCheckpoints(context.Context) iter.Seq2[store.Checkpoint, error] {
	return func(yield func(store.Checkpoint, error) bool) {
		for _, c := range s.Heads {
			if !yield(c, nil) {
				return
			}
		}
	}
}
