package verify

import (
	"context"
	"fmt"
	"iter"

	"github.com/commseal/commseal/store"
)

// Pin returns r as it stands now, fixed at its current size: entries, stored hashes and
// checkpoints beyond that size are hidden, so that Ledger checks a consistent prefix of a store
// that a writer goes on appending to (an API or a console verifying beside the archiver).
func Pin(ctx context.Context, r Reader) (Reader, uint64, error) {
	size, err := r.Size(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("verify: reading the store's size: %w", err)
	}
	return &pinned{r: r, size: size}, size, nil
}

// pinned is a Reader seen at a fixed size.
type pinned struct {
	r    Reader
	size uint64
}

func (p *pinned) Size(context.Context) (uint64, error) { return p.size, nil }

func (p *pinned) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return p.r.Entries(ctx, start, min(end, p.size))
}

func (p *pinned) ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error) {
	limit := store.StoredHashCount(p.size)
	for _, i := range indexes {
		if i >= limit {
			return nil, fmt.Errorf("%w: stored hash %d beyond tree size %d", store.ErrNotFound, i, p.size)
		}
	}
	return p.r.ReadHashes(ctx, indexes)
}

func (p *pinned) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	var last store.Checkpoint
	found := false
	for c, err := range p.AllCheckpoints(ctx) {
		if err != nil {
			return store.Checkpoint{}, err
		}
		last, found = c, true
	}
	if !found {
		return store.Checkpoint{}, store.ErrNotFound
	}
	return last, nil
}

func (p *pinned) AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error] {
	return func(yield func(store.Checkpoint, error) bool) {
		for c, err := range p.r.AllCheckpoints(ctx) {
			if err == nil && c.Size > p.size {
				return
			}
			if !yield(c, err) {
				return
			}
		}
	}
}
