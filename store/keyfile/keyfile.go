package keyfile

import (
	"context"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/commseal/commseal/store"
)

// Vault is a store.KeyVault in one append-only file. It is safe for concurrent use within one
// process; one process at a time may open a file (Open locks it).
//
// Locks: Vault has one lock, mu, which guards keys (the in-memory index) against the one
// goroutine that changes it, the writer. Everything about the file (f, the end of the file,
// failed) belongs to the writer goroutine alone and needs no lock; callers reach it only
// through ops sent on reqs.
type Vault struct {
	path string

	mu   sync.RWMutex
	keys map[string]*entry // guarded by mu; changed only by the writer goroutine

	size   atomic.Int64 // the end of the file: where the next batch is written
	reqs   chan *op
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the writer goroutine has returned
	closed sync.Once

	// Owned by the writer goroutine (and by Open before it starts).
	f        *os.File
	failed   error // set when a write or sync failed: every later operation fails with it
	recovery Recovery

	// written, if set, is called with every byte string just before it is written to the
	// file (a batch of records, the zeros of an erasure, a compacted file); an error from it
	// stops the write there, as a crash would (tests use it).
	written func(b []byte) error
}

// entry is what the vault knows of one key. The writer replaces an entry's fields under mu
// and clears superseded wrapped bytes; readers copy what they return under mu's read lock.
type entry struct {
	kek       string
	wrapped   []byte // nil once destroyed
	meta      []byte
	destroyed bool
	// regions are the places in the file holding wrapped bytes of the key that are not
	// erased: the current wrapping's and, after a failed erasure, earlier ones.
	regions []region
}

// region is a wrapped region in the file: the wrapped key's check and its bytes.
type region struct {
	off int64
	n   int
}

func (e *entry) export(id string) store.WrappedKey {
	return store.WrappedKey{ID: id, KEK: e.kek, Wrapped: slices.Clone(e.wrapped), Meta: slices.Clone(e.meta), Destroyed: e.destroyed}
}

var _ store.KeyVault = (*Vault)(nil)

// Recovery says what Open repaired.
type Recovery struct {
	// TornBytes is how many bytes at the end of the file Open cut off (erased, then
	// truncated): records of a batch whose commit record is missing or torn, which was never
	// acknowledged.
	TornBytes int64
	// Erased is how many wrapped regions Open erased: copies that a Rewrap or DestroyKey
	// interrupted by a crash had not yet overwritten.
	Erased int
}

// Recovery reports what Open repaired in the file.
func (v *Vault) Recovery() Recovery { return v.recovery }

// Stats describes the file, for deciding when to Compact.
type Stats struct {
	FileBytes int64 // the size of the file
	LiveBytes int64 // the size Compact would leave it at
	Keys      int   // keys, live and destroyed
	Destroyed int   // destroyed keys
}

// Stats returns the size of the file and of its live part.
func (v *Vault) Stats() Stats {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s := Stats{FileBytes: v.size.Load(), LiveBytes: headerSize + headSize + commitBodyLen, Keys: len(v.keys)}
	for id, e := range v.keys {
		s.LiveBytes += int64(compactSize(id, e))
		if e.destroyed {
			s.Destroyed++
		}
	}
	return s
}

// compactSize is the size of the one record Compact writes for a key.
func compactSize(id string, e *entry) int {
	n := headSize + 1 + 2 + len(id) + 2 + len(e.kek) + 4 + len(e.meta) + 4
	if !e.destroyed {
		n += 4 + regionSize(e.wrapped)
	}
	return n
}

// Op kinds.
const (
	opPut = iota
	opImport
	opSetMeta
	opRewrap
	opDestroy
	opCompact
)

// Op states: a caller that gives up (its context done) withdraws a queued op; the writer claims
// it before acting on it, after which the caller waits for the outcome.
const (
	opQueued int32 = iota
	opClaimed
	opWithdrawn
)

type op struct {
	ctx   context.Context
	kind  int
	k     store.WrappedKey
	state atomic.Int32
	res   chan error // receives the outcome once
}

// maxBatch bounds how many operations share one append and sync.
const maxBatch = 1024

// submit hands o to the writer goroutine and waits for its outcome. A context done before the
// writer claims the op fails the call and changes nothing; once claimed, the op is decided
// within one batch, and the call returns its outcome.
func (v *Vault) submit(ctx context.Context, o *op) error {
	o.ctx, o.res = ctx, make(chan error, 1)
	select {
	case v.reqs <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-v.quit:
		return fmt.Errorf("keyfile: %w", store.ErrClosed)
	}
	select {
	case err := <-o.res:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opWithdrawn) {
			return ctx.Err()
		}
		return <-o.res
	}
}

func (v *Vault) checkOpen() error {
	select {
	case <-v.quit:
		return fmt.Errorf("keyfile: %w", store.ErrClosed)
	default:
		return nil
	}
}

func checkID(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: key id must be 1 to %d bytes", store.ErrInvalid, maxIDLen)
	}
	return store.CheckKeyID(id)
}

func checkWrapping(id, kek string, wrapped []byte) error {
	if err := store.CheckWrapping(id, kek, wrapped); err != nil {
		return err
	}
	switch {
	case len(kek) > maxKEKLen:
		return fmt.Errorf("%w: key %q: a KEK name has at most %d bytes", store.ErrInvalid, id, maxKEKLen)
	case len(wrapped) > maxWrapped:
		return fmt.Errorf("%w: key %q: wrapped bytes are at most %d bytes", store.ErrInvalid, id, maxWrapped)
	case crc(wrapped)^wrapXOR == 0 && allZero(wrapped):
		// Its region would read as erased. (No key wraps to this: it needs all-zero bytes
		// whose CRC-32C is exactly the constant.)
		return fmt.Errorf("%w: key %q: wrapped bytes that would read as erased", store.ErrInvalid, id)
	}
	return nil
}

func checkMeta(id string, meta []byte) error {
	if len(meta) > maxMeta {
		return fmt.Errorf("%w: key %q: metadata is at most %d bytes", store.ErrInvalid, id, maxMeta)
	}
	return store.CheckMeta(id, meta)
}

// PutKey implements store.KeyVault.
func (v *Vault) PutKey(ctx context.Context, k store.WrappedKey) error {
	// checkID, checkWrapping and checkMeta are store.CheckWrappedKey with this format's limits.
	if err := checkID(ctx, k.ID); err != nil {
		return err
	}
	if err := checkWrapping(k.ID, k.KEK, k.Wrapped); err != nil {
		return err
	}
	if err := checkMeta(k.ID, k.Meta); err != nil {
		return err
	}
	k.Wrapped, k.Meta, k.Destroyed = slices.Clone(k.Wrapped), slices.Clone(k.Meta), false
	return v.submit(ctx, &op{kind: opPut, k: k})
}

// Import stores k as another vault kept it, live or destroyed: a live key as PutKey stores it,
// a destroyed one (k.Destroyed set) as its tombstone alone (id, KEK, metadata; k.Wrapped must
// be empty). It fails with store.ErrDuplicate if the id exists. It is for moving a vault into
// this one (see the package documentation): a tombstone cannot be made with PutKey and
// DestroyKey without writing wrapped bytes the source no longer has.
func (v *Vault) Import(ctx context.Context, k store.WrappedKey) error {
	if !k.Destroyed {
		return v.PutKey(ctx, k)
	}
	if err := checkID(ctx, k.ID); err != nil {
		return err
	}
	switch {
	case len(k.Wrapped) > 0:
		return fmt.Errorf("%w: key %q: a destroyed key with wrapped bytes", store.ErrInvalid, k.ID)
	case len(k.KEK) > maxKEKLen:
		return fmt.Errorf("%w: key %q: a KEK name has at most %d bytes", store.ErrInvalid, k.ID, maxKEKLen)
	}
	if err := checkMeta(k.ID, k.Meta); err != nil {
		return err
	}
	k.Meta = slices.Clone(k.Meta)
	return v.submit(ctx, &op{kind: opImport, k: k})
}

// Key implements store.KeyVault. It reads memory only.
func (v *Vault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := checkID(ctx, id); err != nil {
		return store.WrappedKey{}, err
	}
	if err := v.checkOpen(); err != nil {
		return store.WrappedKey{}, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.keys[id]
	switch {
	case !ok:
		return store.WrappedKey{}, fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	case e.destroyed:
		return e.export(id), fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	}
	return e.export(id), nil
}

// SetMeta implements store.KeyVault: it appends a record of the id and the metadata.
func (v *Vault) SetMeta(ctx context.Context, id string, meta []byte) error {
	if err := checkID(ctx, id); err != nil {
		return err
	}
	if err := checkMeta(id, meta); err != nil {
		return err
	}
	return v.submit(ctx, &op{kind: opSetMeta, k: store.WrappedKey{ID: id, Meta: slices.Clone(meta)}})
}

// Rewrap implements store.KeyVault: it appends the new wrapping, syncs, then overwrites the
// previous one with zeros in place and syncs again.
func (v *Vault) Rewrap(ctx context.Context, id, kek string, wrapped []byte) error {
	if err := checkID(ctx, id); err != nil {
		return err
	}
	if err := checkWrapping(id, kek, wrapped); err != nil {
		return err
	}
	return v.submit(ctx, &op{kind: opRewrap, k: store.WrappedKey{ID: id, KEK: kek, Wrapped: slices.Clone(wrapped)}})
}

// DestroyKey implements store.KeyVault: it appends a tombstone, syncs, then overwrites every
// wrapped region of the key in place with zeros and syncs again.
func (v *Vault) DestroyKey(ctx context.Context, id string) error {
	if err := checkID(ctx, id); err != nil {
		return err
	}
	return v.submit(ctx, &op{kind: opDestroy, k: store.WrappedKey{ID: id}})
}

// Keys implements store.KeyVault. It yields the keys as they were when it began (a snapshot of
// memory, sorted by id).
func (v *Vault) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return func(yield func(store.WrappedKey, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(store.WrappedKey{}, err)
			return
		}
		if err := v.checkOpen(); err != nil {
			yield(store.WrappedKey{}, err)
			return
		}
		ks := v.snapshot()
		for _, k := range ks {
			if err := ctx.Err(); err != nil {
				yield(store.WrappedKey{}, err)
				return
			}
			if !yield(k, nil) {
				return
			}
		}
	}
}

// snapshot returns a copy of every key, sorted by id. The copies' bytes share one allocation,
// each slice capped at its own end, so that no copy can reach another's bytes.
func (v *Vault) snapshot() []store.WrappedKey {
	v.mu.RLock()
	n := 0
	for _, e := range v.keys {
		n += len(e.wrapped) + len(e.meta)
	}
	arena := make([]byte, 0, n)
	ks := make([]store.WrappedKey, 0, len(v.keys))
	take := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		at := len(arena)
		arena = append(arena, b...)
		return arena[at:len(arena):len(arena)]
	}
	for id, e := range v.keys {
		ks = append(ks, store.WrappedKey{ID: id, KEK: e.kek, Wrapped: take(e.wrapped), Meta: take(e.meta), Destroyed: e.destroyed})
	}
	v.mu.RUnlock()
	slices.SortFunc(ks, func(a, b store.WrappedKey) int { return strings.Compare(a.ID, b.ID) })
	return ks
}

// Compact rewrites the file to hold only the current state: one record per key (its current
// wrapping and metadata, or its tombstone). The new file replaces the old one atomically
// (durable.WriteFile); the old one is kept under a second name until it has been overwritten
// with zeros in place, synced and removed, so no block it held is released with a key in it.
// Operations wait while it runs; reads do not. See the package documentation for when to run
// it.
func (v *Vault) Compact(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return v.submit(ctx, &op{kind: opCompact})
}

// Close stops the writer and closes the file. Operations after Close fail with
// store.ErrClosed. It waits for the batch being written.
func (v *Vault) Close() error {
	var err error
	v.closed.Do(func() {
		close(v.quit)
		<-v.done
		err = v.f.Close()
	})
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	return nil
}

// Path returns the vault file's path.
func (v *Vault) Path() string { return v.path }

// errFailed wraps the sticky error of a vault whose write or sync failed.
func (v *Vault) errFailed() error {
	return fmt.Errorf("keyfile: an earlier write failed, reopen the vault: %w", v.failed)
}
