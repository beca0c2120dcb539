// Package store defines the storage that a commseal ledger runs on, as small interfaces that
// adapters implement: an append-only Log of entries with the Merkle tree's stored hashes,
// signed Checkpoints, and content-addressed Blobs.
//
// A store knows entries, not the ledger: it never interprets leaf or payload bytes. It keeps
// them exactly, makes a batch durable atomically (all of it or none of it), and answers lookups
// by the digests the ledger hands it. Everything that makes the record trustworthy (hashing,
// signing, verification) happens above it, so a store that lies or is tampered with is caught by
// the ledger's verifier rather than trusted.
//
// Adapters: store/memstore (in memory, for tests and examples), store/filestore (the embedded
// default). An adapter proves itself with the conformance suite in store/storetest.
//
// Durability contract: when Append returns nil, the batch survives a crash of the process and
// of the machine. A batch is atomic: after a crash it is either entirely present or entirely
// absent. Reads return copies the caller may keep and modify.
package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// Hash is a SHA-256 digest.
type Hash = [32]byte

// Entry is one ledger entry as stored.
type Entry struct {
	Index        uint64 // the entry's position in the log, from 0
	Identity     Hash   // source identity digest for deduplication; zero for none
	Conversation Hash   // conversation digest for per-conversation chaining; zero for none
	Leaf         []byte // the exact bytes hashed into the Merkle tree
	Payload      []byte // the sealed payload the leaf commits to (ciphertext or plaintext envelope)
}

// Batch is a set of consecutive entries with the Merkle stored hashes they add, made durable
// together.
type Batch struct {
	// Entries have consecutive indices starting at the log's current size.
	Entries []Entry
	// Hashes are the stored hashes that the entries add, in order, in the layout of
	// golang.org/x/mod/sumdb/tlog: the first is at stored-hash index StoredHashCount(Entries[0].Index).
	Hashes []Hash
}

// Checkpoint is a signed tree head as stored: the tree size it covers and the signed note.
type Checkpoint struct {
	Size uint64
	Note []byte
}

// Log is the append-only log of entries and the Merkle tree's stored hashes.
type Log interface {
	// Size returns the number of durable entries.
	Size(ctx context.Context) (uint64, error)
	// HashCount returns the number of durable stored hashes.
	HashCount(ctx context.Context) (int64, error)
	// Append makes b durable atomically. It fails with ErrOutOfOrder if b does not start at the
	// current size or its indices are not consecutive, and with ErrDuplicate if an entry's
	// non-zero Identity is already stored (or repeats within b); nothing is written then.
	Append(ctx context.Context, b *Batch) error
	// Entry returns the entry at index i, or ErrNotFound.
	Entry(ctx context.Context, i uint64) (Entry, error)
	// Entries yields the entries from index start up to the size at the time of the call, in
	// order. It stops at the first error, which it yields.
	Entries(ctx context.Context, start uint64) iter.Seq2[Entry, error]
	// ReadHashes returns the stored hashes at the given stored-hash indexes, in the same order
	// (the contract of tlog.HashReader), or ErrNotFound if any is beyond HashCount.
	ReadHashes(ctx context.Context, indexes []int64) ([]Hash, error)
	// Lookup returns the index of the entry with the given non-zero identity.
	Lookup(ctx context.Context, identity Hash) (index uint64, ok bool, err error)
	// LastInConversation returns the index of the latest entry with the given non-zero
	// conversation digest.
	LastInConversation(ctx context.Context, conversation Hash) (index uint64, ok bool, err error)
}

// Checkpoints keeps signed checkpoints in increasing order of size.
type Checkpoints interface {
	// PutCheckpoint durably stores a checkpoint. Its size must exceed that of the latest
	// checkpoint (ErrOutOfOrder otherwise); the store does not check the signature.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// LatestCheckpoint returns the checkpoint with the largest size, or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// AllCheckpoints yields every stored checkpoint in increasing order of size.
	AllCheckpoints(ctx context.Context) iter.Seq2[Checkpoint, error]
}

// Blobs keeps attachment content addressed by its SHA-256.
type Blobs interface {
	// PutBlob durably stores data under sum. It fails with ErrHashMismatch, storing nothing, if
	// sum is not the SHA-256 of data. Storing the same content again is harmless.
	PutBlob(ctx context.Context, sum Hash, data []byte) error
	// Blob returns the content stored under sum, or ErrNotFound.
	Blob(ctx context.Context, sum Hash) ([]byte, error)
}

// Store is everything a ledger needs. Close releases it; every call after Close fails with
// ErrClosed.
type Store interface {
	Log
	Checkpoints
	Blobs
	Close() error
}

// Errors that adapters return (wrapped) and callers branch on with errors.Is.
var (
	ErrNotFound     = errors.New("store: not found")
	ErrOutOfOrder   = errors.New("store: out of order")
	ErrDuplicate    = errors.New("store: duplicate identity")
	ErrHashMismatch = errors.New("store: content does not match its hash")
	ErrClosed       = errors.New("store: closed")
	ErrReadOnly     = errors.New("store: opened read-only")
	ErrCorrupt      = errors.New("store: corrupt")
	ErrInvalid      = errors.New("store: invalid argument")
)

// StoredHashCount returns the number of stored hashes of a tree of n entries, in the layout of
// golang.org/x/mod/sumdb/tlog (tlog.StoredHashCount), so adapters can check a batch's hashes
// without importing the seal package.
func StoredHashCount(n uint64) int64 {
	if n == 0 {
		return 0
	}
	// Each entry i adds 1 + trailing ones of i stored hashes; the total for n entries is
	// 2n - popcount(n).
	c := int64(0)
	for x := n; x > 0; x &= x - 1 {
		c++
	}
	return int64(2*n) - c
}

// StoredHashesFor returns how many stored hashes entry i adds: one for its leaf and one for
// each subtree it completes.
func StoredHashesFor(i uint64) int64 {
	c := int64(1)
	for x := i; x&1 == 1; x >>= 1 {
		c++
	}
	return c
}

// CheckBatch reports whether b is well formed for a log of the given size and stored-hash
// count: consecutive indices from size, the right number of hashes, no repeated identity within
// the batch. Adapters call it before writing.
func CheckBatch(b *Batch, size uint64, hashCount int64) error {
	if b == nil || len(b.Entries) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	want := int64(0)
	seen := make(map[Hash]struct{}, len(b.Entries))
	for k := range b.Entries {
		e := &b.Entries[k]
		if e.Index != size+uint64(k) {
			return fmt.Errorf("%w: batch entry %d has index %d, want %d", ErrOutOfOrder, k, e.Index, size+uint64(k))
		}
		want += StoredHashesFor(e.Index)
		if e.Identity != (Hash{}) {
			if _, dup := seen[e.Identity]; dup {
				return fmt.Errorf("%w: identity repeated within batch at index %d", ErrDuplicate, e.Index)
			}
			seen[e.Identity] = struct{}{}
		}
	}
	if hashCount != StoredHashCount(size) {
		return fmt.Errorf("%w: %d stored hashes for %d entries, want %d", ErrCorrupt, hashCount, size, StoredHashCount(size))
	}
	if int64(len(b.Hashes)) != want {
		return fmt.Errorf("%w: batch carries %d stored hashes, want %d", ErrInvalid, len(b.Hashes), want)
	}
	return nil
}
