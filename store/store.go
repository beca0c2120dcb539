// Package store defines the storage that a commseal ledger runs on, as small interfaces that
// adapters implement: an append-only Log of entries with the Merkle tree's stored hashes, and
// signed Checkpoints. Everything else is optional: an adapter implements what its engine does
// well, and the ledger does the rest itself.
//
// A store knows entries, not the ledger: it never interprets leaf or payload bytes. It keeps
// them exactly, makes a batch durable atomically (all of it or none of it), and answers lookups
// by the digests the ledger hands it. Everything that makes the record trustworthy (hashing,
// signing, verification) happens above it, so a store that lies or is tampered with is caught by
// the ledger's verifier rather than trusted.
//
// # Writing an adapter
//
// Required: Store, which is Log (Size, Append, Entries, ReadHashes), Checkpoints (PutCheckpoint,
// LatestCheckpoint, AllCheckpoints) and Close: eight methods. Every rule a method must keep is
// stated on the method; CheckBatch and CheckCheckpoint do the argument checks for you.
//
// Optional, each an interface the ledger looks for with a type assertion:
//
//   - IdentityIndex (Lookup): find an entry by its source identity. Without it the ledger builds
//     the index in memory when it opens, by reading every entry (about 24 bytes of memory per
//     entry, and the time of one full read at every Open).
//   - IdentityBatch (LookupAll): many identities in one call, one round trip to a server; a
//     shared ledger looks a whole batch up at once.
//   - ConversationIndex (LastInConversation): the latest entry of a conversation. Without it
//     the ledger keeps conversation heads in memory, built by the same read.
//   - Blobs (WriteBlob, ReadBlob): attachment content. Without it a ledger takes no attachments
//     (PutBlob fails with ErrNoBlobs).
//   - Pipeline (Submit): take batch k+1 before batch k is durable. Without it the ledger calls
//     Append for one batch at a time; with it, it writes the next batch while earlier ones sync.
//   - ReadOnlyReporter (ReadOnly): a store opened for reading only; the ledger refuses to open
//     for writing on one.
//   - SharedLog (AppendLocked) and Leases (HoldLease): a log that several writers, in several
//     processes, append to at once (store/pgstore). The store orders their batches under a
//     lock; the ledger builds each batch under it (ledger.Options.Shared), and signs
//     checkpoints only while it holds a lease.
//   - EntryReader (ReadEntries): read a run of entries into memory the caller provides and
//     reuses. Without it a reader that goes through the whole log (a verifier) uses Entries.
//   - Owner (Claim): record which ledger the store holds, so that a ledger with another
//     signing key is refused before it writes. Required of a SharedLog, whose writers in other
//     processes could otherwise start a second ledger in the same log.
//
// KeyVault (the wrapped data keys of an encrypted ledger) is a separate interface: keys may be
// kept apart from entries (store/keydir), or beside them.
//
// An adapter proves itself with the conformance suite in store/storetest: storetest.Run (and
// RunPersistent for one whose data outlives the process) checks every rule below, and for each
// optional interface the adapter implements, that interface's rules. A failure names the rule it
// broke, once.
//
// Adapters: store/memstore (in memory, for tests and examples), store/filestore (the embedded
// default), store/keydir (a KeyVault in a directory).
//
// # Durability
//
// When Append returns nil, the batch survives a crash of the process and of the machine. A
// batch is atomic: after a crash it is either entirely present or entirely absent. Reads return
// copies the caller may keep and modify.
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
//
// Every method fails with ErrClosed after Close, and with the context's error (wrapped or not)
// when ctx is done before it starts; a write that fails that way writes nothing.
type Log interface {
	// Size returns the number of durable entries. It only grows, and only by whole batches:
	// a reader never sees part of a batch.
	Size(ctx context.Context) (uint64, error)

	// Append makes b durable atomically: it returns nil only once every entry and stored hash of
	// b survives a crash, and after a crash either all of b is there or none of it. Its rules:
	//   - b must pass CheckBatch against the log's size: its entries start
	//     at Size and are consecutive (ErrOutOfOrder otherwise), it is not empty and carries
	//     exactly the stored hashes its entries add (ErrInvalid otherwise);
	//   - an adapter that implements IdentityIndex fails with ErrDuplicate when a non-zero
	//     Identity of b is already stored or repeats within b;
	//   - an adapter may refuse an entry too large for it with ErrInvalid;
	//   - a batch that fails writes nothing: Size, Entries and ReadHashes are as before.
	// The store keeps a copy: the caller may reuse b once Append returns. Concurrent calls are
	// allowed; they are applied in some order, each checked against the log the others leave.
	Append(ctx context.Context, b *Batch) error

	// Entries yields the entries with indexes in [start, end), in order, stopping at the log's
	// size at the time of the call (so end may be beyond it; start at or beyond it yields
	// nothing). Each entry comes exactly as it was appended. It stops at the first error, which
	// it yields once, and when the caller stops; it checks ctx between entries and yields its
	// error when ctx ends. Use ReadEntry for one entry.
	Entries(ctx context.Context, start, end uint64) iter.Seq2[Entry, error]

	// ReadHashes returns the stored hashes at the given stored-hash indexes, in the order asked,
	// as appended (the contract of tlog.HashReader). It fails with ErrNotFound if any index is
	// negative or at or beyond StoredHashCount(Size).
	ReadHashes(ctx context.Context, indexes []int64) ([]Hash, error)
}

// Checkpoints keeps signed checkpoints in increasing order of size. The store does not check
// signatures: the ledger and its verifiers do.
type Checkpoints interface {
	// PutCheckpoint durably stores c. c must pass CheckCheckpoint: a size of at least 1 and a
	// non-empty note (ErrInvalid otherwise), not beyond the log's Size (ErrInvalid), and larger
	// than the latest checkpoint's size (ErrOutOfOrder otherwise). Nothing is stored on error.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// LatestCheckpoint returns the checkpoint with the largest size, or ErrNotFound if there is
	// none.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// AllCheckpoints yields every stored checkpoint in increasing order of size, stopping at the
	// first error, which it yields once.
	AllCheckpoints(ctx context.Context) iter.Seq2[Checkpoint, error]
}

// Store is everything a ledger needs. Close releases it; every call after Close fails with
// ErrClosed, and closing twice is harmless.
type Store interface {
	Log
	Checkpoints
	// Close waits for what is in flight, releases files, connections and locks, and makes every
	// later call fail with ErrClosed; a second Close returns nil.
	Close() error
}

// IdentityBatch is implemented by identity indexes that look many identities up in one call,
// one round trip to a database server: a ledger appending to a shared log (ledger.Options.Shared)
// looks up each batch's identities at once rather than each message's on its own.
type IdentityBatch interface {
	// LookupAll returns the index of the durable entry of each of ids that one has as its
	// Identity, keyed by identity; identities not stored, and the zero identity, are absent.
	// Each answer follows the rules of IdentityIndex.Lookup.
	LookupAll(ctx context.Context, ids []Hash) (map[Hash]uint64, error)
}

// IdentityIndex is implemented by stores that find entries by source identity themselves (an
// index in PostgreSQL, a map in memory). Its adapter must also refuse duplicates in Append.
type IdentityIndex interface {
	// Lookup returns the index of the durable entry whose Identity is id, with ok set; ok is
	// false for an identity not stored and for the zero identity. It never sees entries of a
	// batch whose Append has not returned nil.
	Lookup(ctx context.Context, id Hash) (index uint64, ok bool, err error)
}

// ConversationIndex is implemented by stores that track the latest entry of each conversation.
type ConversationIndex interface {
	// LastInConversation returns the index of the latest durable entry whose Conversation is
	// conv, with ok set; ok is false for a conversation with no entry and for the zero digest.
	LastInConversation(ctx context.Context, conv Hash) (index uint64, ok bool, err error)
}

// Blobs keeps attachment content addressed by its SHA-256. The ledger stores only ciphertext
// here when it encrypts.
type Blobs interface {
	// WriteBlob durably stores data under sum. It fails with ErrHashMismatch, storing nothing,
	// if sum is not the SHA-256 of data. Storing the same content again is harmless.
	WriteBlob(ctx context.Context, sum Hash, data []byte) error
	// ReadBlob returns a copy of the content stored under sum, or ErrNotFound.
	ReadBlob(ctx context.Context, sum Hash) ([]byte, error)
}

// SharedLog is implemented by logs that several writers append to at once, each perhaps in a
// process of its own: the log's order is decided by a lock that the store holds for one writer
// at a time, and a writer builds its batch while it holds it, from the log as it is then.
type SharedLog interface {
	// AppendLocked takes the log's write lock, which excludes every other AppendLocked and
	// Append on the log, from any process; calls build with the number of entries the log then
	// holds and the entries [from, size) that are in it (their Index, Identity, Conversation and
	// Leaf; Payload may be left out); and appends the batch build returns at that size,
	// atomically and durably, before it releases the lock. It returns nil once the batch is
	// durable. Its rules:
	//   - build is called at most once per call, with the lock held. Every entry below size is
	//     durable and readable (Entries, ReadHashes, the indexes) while build runs; build must
	//     not write to the store;
	//   - appended is nil, not empty, when the store did not read them (from beyond size, or
	//     more entries than it reads at once): build reads what it needs itself;
	//   - an error from build is returned as it is, and nothing is appended;
	//   - a nil batch, or one without entries, appends nothing and returns nil;
	//   - the batch is checked as Append checks it (CheckBatch at size; ErrDuplicate for an
	//     identity stored); a batch that fails appends nothing;
	//   - when it fails after build ran for another reason (the connection, the server), the
	//     batch may or may not be in the log: the caller reads the log to find out.
	AppendLocked(ctx context.Context, from uint64, build func(size uint64, appended []Entry) (*Batch, error)) error
}

// Leases is implemented by stores that several processes share and that can grant a named
// lease to one of them at a time: the ledger signs checkpoints only while it holds the
// "checkpoint" lease, so that one writer signs and the others do not race it.
type Leases interface {
	// HoldLease takes the lease called name if no other holder has it, and reports whether
	// this store holds it now. A lease once taken is held until Close, or until the store loses
	// it (its connection to the server is lost, the process dies); the next call reports that
	// (false, or true again if it could be taken back). Calling it while holding the lease is
	// cheap and confirms it.
	HoldLease(ctx context.Context, name string) (bool, error)
}

// Pipeline is implemented by logs that can take a batch before the previous one is durable, so
// that the ledger writes batch k+1 while batch k is being synced: with a device that overlaps
// flushes, several batches are in flight at once.
type Pipeline interface {
	// Submit checks b against the log as the batches submitted before it leave it (they count
	// as appended, durable or not), queues or writes it after them, and returns at once. The
	// channel receives exactly one value: nil once b is durable (which implies that every batch
	// submitted before it is durable), or the error that kept it out of the log. Results are
	// delivered in submission order. Its rules:
	//   - a batch that fails the checks of Append (ErrOutOfOrder, ErrInvalid, ErrDuplicate) is
	//     not written and does not affect later batches, which are checked as if it had not
	//     been submitted;
	//   - a batch that fails for any other reason (an I/O error, a failed sync) fails every
	//     batch submitted after it that has not yet received nil; the log then ends where the
	//     last batch that received nil ended, and Size says so;
	//   - Append(ctx, b) behaves as receiving from Submit(ctx, b);
	//   - b must not be modified until its result arrives.
	// Calls that must be ordered are made one after the other (from one goroutine, say).
	Submit(ctx context.Context, b *Batch) <-chan error
}

// EntryReader is implemented by logs that can read a run of entries into memory the caller
// provides, so that a reader going through the whole log (a verifier, a full scan) reuses the
// same few buffers instead of allocating afresh for every run.
type EntryReader interface {
	// ReadEntries reads the entries with indexes in [start, end), in order, stopping at the
	// log's size at the time of the call, exactly as Entries would yield them. It returns them
	// in dst's storage (dst[:0], grown when too small) and their leaf and payload bytes in buf's
	// (buf[:0], grown likewise): every returned entry's Leaf and Payload is a slice of the
	// returned buffer. The store keeps no reference to either after the call: the entries are
	// the caller's, valid until the caller itself reuses the buffers, which it may do for its
	// next call. It fails as Entries does (ErrClosed, the context's
	// error, ErrCorrupt for damage it detects), returning with the error the entries read
	// before it, whole and checked.
	//
	// A type that embeds a store and changes what Entries yields (a test that tampers with
	// entries, a filter) must change ReadEntries alike or hide it, since readers prefer it.
	ReadEntries(ctx context.Context, start, end uint64, dst []Entry, buf []byte) ([]Entry, []byte, error)
}

// Owner is implemented by stores that record which ledger they hold: the ledger claims the
// store with its verifier key when it opens, and refuses a store claimed by another. Without
// it, a ledger with a new signing key could append to a log whose entries it cannot account
// for (a shared log, before its first checkpoint), under data keys the first cannot open.
type Owner interface {
	// Claim records owner as the store's owner if it records none, durably before it returns,
	// and returns the owner the store records: owner itself, or the one claimed before. Claims
	// from several processes at once record exactly one of them, and every call returns that
	// one. The store compares nothing: the caller does. Its rules:
	//   - an empty owner, or one longer than MaxOwner bytes, fails with ErrInvalid and
	//     records nothing;
	//   - the owner recorded never changes, and survives as the entries do;
	//   - a store opened read-only fails with ErrReadOnly.
	Claim(ctx context.Context, owner string) (string, error)
}

// MaxOwner is the longest owner that Owner.Claim takes, in bytes: room for a sumdb/note
// verifier key with a long name.
const MaxOwner = 1024

// CheckOwner checks the argument of Owner.Claim: ErrInvalid for an empty owner or one longer
// than MaxOwner.
func CheckOwner(owner string) error {
	if owner == "" || len(owner) > MaxOwner {
		return fmt.Errorf("%w: an owner of %d bytes (1 to %d)", ErrInvalid, len(owner), MaxOwner)
	}
	return nil
}

// ReadOnlyReporter is implemented by stores that can be opened for reading only. The ledger
// refuses to open for writing on a store whose ReadOnly returns true.
type ReadOnlyReporter interface {
	// ReadOnly reports whether every write fails with ErrReadOnly.
	ReadOnly() bool
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
	// ErrNoBlobs is returned by callers that need a Blobs the store does not implement.
	ErrNoBlobs = errors.New("store: the store keeps no blobs")
)

// ReadEntry returns entry i of l, or an error wrapping ErrNotFound if i is at or beyond its size.
func ReadEntry(ctx context.Context, l Log, i uint64) (Entry, error) {
	for e, err := range l.Entries(ctx, i, i+1) {
		return e, err
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	return Entry{}, fmt.Errorf("%w: entry %d", ErrNotFound, i)
}

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

// CheckBatch reports whether b can be appended to a log of the given size: not empty,
// consecutive indices from size (ErrOutOfOrder), exactly the stored hashes its entries add
// (ErrInvalid), no non-zero identity repeated within the batch (ErrDuplicate; entries whose
// Identity is the zero Hash are never duplicates). Adapters call it before
// writing; it does not look for identities already stored.
func CheckBatch(b *Batch, size uint64) error {
	if b == nil || len(b.Entries) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	want := int64(0)
	var seen map[Hash]struct{}
	for k := range b.Entries {
		e := &b.Entries[k]
		if e.Index != size+uint64(k) {
			return fmt.Errorf("%w: batch entry %d has index %d, want %d", ErrOutOfOrder, k, e.Index, size+uint64(k))
		}
		want += StoredHashesFor(e.Index)
		if e.Identity != (Hash{}) && len(b.Entries) > 1 {
			if seen == nil {
				seen = make(map[Hash]struct{}, len(b.Entries))
			}
			if _, dup := seen[e.Identity]; dup {
				return fmt.Errorf("%w: identity repeated within batch at index %d", ErrDuplicate, e.Index)
			}
			seen[e.Identity] = struct{}{}
		}
	}
	if int64(len(b.Hashes)) != want {
		return fmt.Errorf("%w: batch carries %d stored hashes, want %d", ErrInvalid, len(b.Hashes), want)
	}
	return nil
}

// CheckCheckpoint reports whether c can be stored in a store whose log holds size entries and
// whose latest checkpoint has size latest (0 for none): a size of at least 1 and not beyond the
// log (ErrInvalid), larger than latest (ErrOutOfOrder), and a non-empty note (ErrInvalid).
// Adapters call it in PutCheckpoint before writing.
func CheckCheckpoint(c Checkpoint, size, latest uint64) error {
	switch {
	case c.Size == 0:
		return fmt.Errorf("%w: a checkpoint of an empty tree", ErrInvalid)
	case len(c.Note) == 0:
		return fmt.Errorf("%w: a checkpoint without a note", ErrInvalid)
	case c.Size > size:
		return fmt.Errorf("%w: a checkpoint of %d entries, beyond the log's %d", ErrInvalid, c.Size, size)
	case c.Size <= latest:
		return fmt.Errorf("%w: a checkpoint of %d entries after one of %d", ErrOutOfOrder, c.Size, latest)
	}
	return nil
}
