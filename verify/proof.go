package verify

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrNotCovered is returned for a proof of an entry that no checkpoint covers yet: it exists,
// but nobody has signed a tree that includes it.
var ErrNotCovered = errors.New("verify: the entry is not covered by a signed checkpoint yet")

// HashReader is what the proof functions need of a store: its stored hashes.
type HashReader interface {
	// ReadHashes returns the stored hashes at the given tlog storage indexes, as
	// store.Log.ReadHashes does.
	ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error)
}

// Hashes adapts a store's stored hashes to tlog.HashReader, for the seal package's tree
// functions.
func Hashes(ctx context.Context, r HashReader) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs, err := r.ReadHashes(ctx, idx)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for k := range hs {
			out[k] = hs[k]
		}
		return out, nil
	})
}

// InclusionProof returns the RFC 6962 proof that entry i is in the tree of the given size,
// from r's stored hashes.
func InclusionProof(ctx context.Context, r HashReader, i, size uint64) ([]seal.Hash, error) {
	if i >= size {
		return nil, fmt.Errorf("%w: entry %d is not in a tree of %d entries", store.ErrNotFound, i, size)
	}
	return seal.InclusionProof(size, i, Hashes(ctx, r))
}

// ConsistencyProof returns the RFC 6962 proof that the tree of size old is a prefix of the tree
// of the given size, from r's stored hashes.
func ConsistencyProof(ctx context.Context, r HashReader, old, size uint64) ([]seal.Hash, error) {
	if old > size {
		return nil, fmt.Errorf("%w: a tree of %d entries is not a prefix of one of %d", store.ErrInvalid, old, size)
	}
	return seal.ConsistencyProof(size, old, Hashes(ctx, r))
}

// ProofReader is what Proof needs of a store.
type ProofReader interface {
	HashReader
	// Size is the number of durable entries, as store.Log.Size.
	Size(ctx context.Context) (uint64, error)
	// Entries yields entries start to end-1, as store.Log.Entries.
	Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error]
	// LatestCheckpoint is the newest stored checkpoint, as store.Checkpoints.LatestCheckpoint.
	LatestCheckpoint(ctx context.Context) (store.Checkpoint, error)
}

// Proof returns a C2SP tlog-proof@v1 for entry i of a stored ledger against its latest
// checkpoint, whose signature it checks with v; the proof's extra data is the entry's exact leaf
// bytes. An entry beyond the latest checkpoint gets ErrNotCovered; one beyond the log,
// store.ErrNotFound; a checkpoint that does not verify, an *AlteredError.
func Proof(ctx context.Context, r ProofReader, i uint64, v note.Verifier) (*seal.Proof, error) {
	sc, err := r.LatestCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the ledger has no checkpoint", ErrNotCovered)
	}
	if err != nil {
		return nil, fmt.Errorf("verify: latest checkpoint: %w", err)
	}
	cp, err := seal.OpenCheckpoint(sc.Note, v)
	if err != nil {
		return nil, &AlteredError{Index: sc.Size, Reason: fmt.Sprintf("the latest checkpoint: %v", err), Err: err}
	}
	return ProofAt(ctx, r, i, sc.Note, cp)
}

// ProofAt is Proof against a given checkpoint: signed is its signed note, cp its parsed and
// verified form (as seal.OpenCheckpoint returns it).
func ProofAt(ctx context.Context, r ProofReader, i uint64, signed []byte, cp seal.Checkpoint) (*seal.Proof, error) {
	if i >= cp.Size {
		size, err := r.Size(ctx)
		if err == nil && i >= size {
			return nil, fmt.Errorf("%w: entry %d (the log holds %d)", store.ErrNotFound, i, size)
		}
		return nil, fmt.Errorf("%w: entry %d is beyond the latest checkpoint (size %d)", ErrNotCovered, i, cp.Size)
	}
	var e store.Entry
	var found bool
	for got, err := range r.Entries(ctx, i, i+1) {
		if err != nil {
			return nil, fmt.Errorf("verify: reading entry %d: %w", i, err)
		}
		e, found = got, true
	}
	if !found {
		return nil, fmt.Errorf("%w: entry %d, which checkpoint %d covers, is missing", ErrAltered, i, cp.Size)
	}
	hs, err := InclusionProof(ctx, r, i, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("verify: proving entry %d: %w", i, err)
	}
	return &seal.Proof{Extra: e.Leaf, Index: i, Hashes: hs, Checkpoint: signed}, nil
}
