// Package memstore is an in-memory store.Store with every optional interface but Pipeline and
// Leases (IdentityIndex, ConversationIndex, Blobs, Owner, SharedLog: several ledgers may share one
// Store, as several processes share a PostgreSQL log): complete and safe for concurrent use, but nothing
// survives the process. It serves tests, examples and short-lived tools.
package memstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"iter"
	"sync"

	"github.com/commseal/commseal/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
//
// Lock order: writeMu before mu.
type Store struct {
	writeMu  sync.Mutex // held by each Append and AppendLocked, build included
	mu       sync.RWMutex
	closed   bool
	entries  []store.Entry
	hashes   []store.Hash
	identity map[store.Hash]uint64
	lastConv map[store.Hash]uint64
	cps      []store.Checkpoint
	blobs    map[store.Hash][]byte
	owner    string
}

var (
	_ store.Store             = (*Store)(nil)
	_ store.IdentityIndex     = (*Store)(nil)
	_ store.ConversationIndex = (*Store)(nil)
	_ store.Blobs             = (*Store)(nil)
	_ store.SharedLog         = (*Store)(nil)
	_ store.IdentityBatch     = (*Store)(nil)
	_ store.Owner             = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		identity: map[store.Hash]uint64{},
		lastConv: map[store.Hash]uint64{},
		blobs:    map[store.Hash][]byte{},
	}
}

func (s *Store) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

// Size implements store.Log.
func (s *Store) Size(ctx context.Context) (uint64, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return uint64(len(s.entries)), nil
}

// Append implements store.Log, refusing duplicate identities (store.IdentityIndex).
func (s *Store) Append(ctx context.Context, b *store.Batch) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.append(ctx, b)
}

// AppendLocked implements store.SharedLog: build runs while no other Append or AppendLocked
// can, and may read the store.
func (s *Store) AppendLocked(ctx context.Context, from uint64, build func(size uint64, appended []store.Entry) (*store.Batch, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.rlock(ctx); err != nil {
		return err
	}
	size := uint64(len(s.entries))
	var appended []store.Entry
	if from <= size {
		appended = make([]store.Entry, 0, size-from)
		for _, e := range s.entries[from:] {
			e.Leaf, e.Payload = append([]byte(nil), e.Leaf...), nil // the payload is not needed
			appended = append(appended, e)
		}
	}
	s.mu.RUnlock()
	b, err := build(size, appended)
	if err != nil || b == nil || len(b.Entries) == 0 {
		return err
	}
	return s.append(ctx, b)
}

// append is Append, with writeMu held.
func (s *Store) append(ctx context.Context, b *store.Batch) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := store.CheckBatch(b, uint64(len(s.entries))); err != nil {
		return err
	}
	for _, e := range b.Entries {
		if e.Identity == (store.Hash{}) {
			continue
		}
		if i, ok := s.identity[e.Identity]; ok {
			return fmt.Errorf("%w: entry %d repeats the identity of entry %d", store.ErrDuplicate, e.Index, i)
		}
	}
	for _, e := range b.Entries {
		s.entries = append(s.entries, clone(e))
		if e.Identity != (store.Hash{}) {
			s.identity[e.Identity] = e.Index
		}
		if e.Conversation != (store.Hash{}) {
			s.lastConv[e.Conversation] = e.Index
		}
	}
	s.hashes = append(s.hashes, b.Hashes...)
	return nil
}

func clone(e store.Entry) store.Entry {
	e.Leaf = append([]byte(nil), e.Leaf...)
	e.Payload = append([]byte(nil), e.Payload...)
	return e
}

// Entries implements store.Log.
func (s *Store) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		size, err := s.Size(ctx)
		if err != nil {
			yield(store.Entry{}, err)
			return
		}
		for i := start; i < min(end, size); i++ {
			if err := s.rlock(ctx); err != nil {
				yield(store.Entry{}, err)
				return
			}
			e := clone(s.entries[i])
			s.mu.RUnlock()
			if !yield(e, nil) {
				return
			}
		}
	}
}

// ReadHashes implements store.Log.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]store.Hash, len(indexes))
	for k, x := range indexes {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d (count %d)", store.ErrNotFound, x, len(s.hashes))
		}
		out[k] = s.hashes[x]
	}
	return out, nil
}

// Lookup implements store.IdentityIndex.
func (s *Store) Lookup(ctx context.Context, identity store.Hash) (uint64, bool, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	i, ok := s.identity[identity]
	return i, ok, nil
}

// LookupAll implements store.IdentityBatch.
func (s *Store) LookupAll(ctx context.Context, ids []store.Hash) (map[store.Hash]uint64, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	found := map[store.Hash]uint64{}
	for _, id := range ids {
		if i, ok := s.identity[id]; ok && id != (store.Hash{}) {
			found[id] = i
		}
	}
	return found, nil
}

// LastInConversation implements store.ConversationIndex.
func (s *Store) LastInConversation(ctx context.Context, conv store.Hash) (uint64, bool, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	i, ok := s.lastConv[conv]
	return i, ok, nil
}

// PutCheckpoint implements store.Checkpoints.
func (s *Store) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	latest := uint64(0)
	if n := len(s.cps); n > 0 {
		latest = s.cps[n-1].Size
	}
	if err := store.CheckCheckpoint(c, uint64(len(s.entries)), latest); err != nil {
		return err
	}
	s.cps = append(s.cps, store.Checkpoint{Size: c.Size, Note: append([]byte(nil), c.Note...)})
	return nil
}

// LatestCheckpoint implements store.Checkpoints.
func (s *Store) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	if err := s.rlock(ctx); err != nil {
		return store.Checkpoint{}, err
	}
	defer s.mu.RUnlock()
	if len(s.cps) == 0 {
		return store.Checkpoint{}, fmt.Errorf("%w: no checkpoint", store.ErrNotFound)
	}
	c := s.cps[len(s.cps)-1]
	return store.Checkpoint{Size: c.Size, Note: append([]byte(nil), c.Note...)}, nil
}

// AllCheckpoints implements store.Checkpoints.
func (s *Store) AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error] {
	return func(yield func(store.Checkpoint, error) bool) {
		if err := s.rlock(ctx); err != nil {
			yield(store.Checkpoint{}, err)
			return
		}
		cps := make([]store.Checkpoint, len(s.cps))
		for k, c := range s.cps {
			cps[k] = store.Checkpoint{Size: c.Size, Note: append([]byte(nil), c.Note...)}
		}
		s.mu.RUnlock()
		for _, c := range cps {
			if !yield(c, nil) {
				return
			}
		}
	}
}

// WriteBlob implements store.Blobs.
func (s *Store) WriteBlob(ctx context.Context, sum store.Hash, data []byte) error {
	if sha256.Sum256(data) != sum {
		return fmt.Errorf("%w: blob %x", store.ErrHashMismatch, sum[:8])
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.blobs[sum]; !ok {
		s.blobs[sum] = append([]byte(nil), data...)
	}
	return nil
}

// ReadBlob implements store.Blobs.
func (s *Store) ReadBlob(ctx context.Context, sum store.Hash) ([]byte, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	b, ok := s.blobs[sum]
	if !ok {
		return nil, fmt.Errorf("%w: blob %x", store.ErrNotFound, sum[:8])
	}
	return append([]byte(nil), b...), nil
}

// Claim implements store.Owner.
func (s *Store) Claim(ctx context.Context, owner string) (string, error) {
	if err := store.CheckOwner(owner); err != nil {
		return "", err
	}
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	if s.owner == "" {
		s.owner = owner
	}
	return s.owner, nil
}

// Close implements store.Store. Closing twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
