package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// leaseTable grants named leases to one holder at a time, for the leaseStores of one test.
type leaseTable struct {
	mu     sync.Mutex
	holder map[string]int
}

// leaseStore is one writer's view of a shared memstore: a "process" with its own leases, which
// counts the checkpoints it stores.
type leaseStore struct {
	*memstore.Store
	id     int
	table  *leaseTable
	stored atomic.Int64
}

func (s *leaseStore) HoldLease(_ context.Context, name string) (bool, error) {
	s.table.mu.Lock()
	defer s.table.mu.Unlock()
	h, taken := s.table.holder[name]
	if !taken {
		s.table.holder[name] = s.id
		return true, nil
	}
	return h == s.id, nil
}

// die releases the leases s holds, as a process that died would.
func (s *leaseStore) die() {
	s.table.mu.Lock()
	defer s.table.mu.Unlock()
	for n, h := range s.table.holder {
		if h == s.id {
			delete(s.table.holder, n)
		}
	}
}

func (s *leaseStore) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	err := s.Store.PutCheckpoint(ctx, c)
	if err == nil {
		s.stored.Add(1)
	}
	return err
}

func openShared(t testing.TB, st store.Store, keys *seal.SigningKey) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), st, ledger.Options{Signing: keys, Shared: true, CheckpointEvery: 300, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	return l
}

// Several ledgers on one store, as several processes on one PostgreSQL log: every message is
// stored once whichever ledger took it (redeliveries go to any of them), indexes are dense, the
// conversations they share chain across writers, and the whole log verifies.
func TestSharedWritersBuildOneLedger(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	const ledgers, writers, perWriter = 4, 16, 120
	ls := make([]*ledger.Ledger, ledgers)
	for k := range ls {
		ls[k] = openShared(t, st, keys)
	}
	var mu sync.Mutex
	byID := map[string][]capture.Receipt{}
	var wg sync.WaitGroup
	for k, l := range ls {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perWriter {
					m := msg(((k*writers)+w)*perWriter + j)
					if j%3 == 0 {
						m = msg(1_000_000 + j) // redelivered to every writer of every ledger
					}
					rc, err := l.Append(ctx, m)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					byID[m.ID] = append(byID[m.ID], rc)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, l := range ls {
		require.NoError(t, l.Close())
	}
	size, err := st.Size(ctx)
	require.NoError(t, err)
	seen := map[uint64]string{}
	for id, rcs := range byID {
		orig := -1
		for _, rc := range rcs {
			if !rc.Duplicate {
				require.Equal(t, -1, orig, "%s stored twice", id)
				orig = int(rc.Index)
			}
		}
		require.NotEqual(t, -1, orig, "%s never stored", id)
		for _, rc := range rcs {
			require.Equal(t, uint64(orig), rc.Index, "a duplicate of %s must answer the original's index, whichever ledger stored it", id)
		}
		_, taken := seen[uint64(orig)]
		require.False(t, taken, "index %d given twice", orig)
		seen[uint64(orig)] = id
	}
	require.Equal(t, uint64(len(seen)), size, "indexes are dense")
	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err, "the shared log verifies: one tree, chains across writers")
	require.Equal(t, size, rep.Entries)
	require.Equal(t, 37, rep.Conversations)
	cp, err := st.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, size, cp.Size, "the last Close signed the whole log, the other writers' entries too")
}

// A ledger that was idle while another wrote carries on from the other's entries: its next
// entry in a shared conversation chains to the other's last one, and it answers a redelivery of
// a message the other stored as a duplicate.
func TestSharedWriterCatchesUp(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	a, b := openShared(t, st, keys), openShared(t, st, keys)
	for i := range 50 {
		_, err := a.Append(ctx, msg(i*37)) // one conversation, cid-00
		require.NoError(t, err)
	}
	rc, err := b.Append(ctx, msg(10*37))
	require.NoError(t, err)
	require.True(t, rc.Duplicate, "b deduplicates against a's entries")
	require.Equal(t, uint64(10), rc.Index)
	rc, err = b.Append(ctx, msg(50*37))
	require.NoError(t, err)
	require.Equal(t, uint64(50), rc.Index)
	require.Equal(t, uint64(51), b.Size(), "b's size counts a's entries")
	e, err := b.Get(ctx, 50)
	require.NoError(t, err)
	prev, err := b.Get(ctx, 49)
	require.NoError(t, err)
	require.Equal(t, prev.Leaf.ConvSeq+1, e.Leaf.ConvSeq, "b's entry continues the conversation a wrote")
	require.Equal(t, prev.LeafHash, e.Leaf.ConvPrev)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	_, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

// With leases, only the holder of the checkpoint lease signs; the others take its checkpoints
// from the store. When the holder dies, another writer takes the lease and signs on, each
// checkpoint extending the last.
func TestSharedCheckpointsAreSignedByTheLeaseHolder(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	table := &leaseTable{holder: map[string]int{}}
	keys := testKeys(t)
	sa := &leaseStore{Store: mem, id: 1, table: table}
	sb := &leaseStore{Store: mem, id: 2, table: table}
	a, b := openShared(t, sa, keys), openShared(t, sb, keys)
	_, _, err := a.SignCheckpoint(ctx) // a takes the lease (nothing to sign yet)
	require.ErrorIs(t, err, ledger.ErrNotFound)
	for i := range 40 {
		l := a
		if i%2 == 1 {
			l = b
		}
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, cpa, err := a.SignCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(40), cpa.Size, "the holder signs the whole log, b's entries too")
	_, cpb, err := b.SignCheckpoint(ctx)
	require.NoError(t, err, "a writer without the lease does not sign: it takes the holder's checkpoint")
	require.Equal(t, cpa, cpb)
	require.Zero(t, sb.stored.Load(), "b stored no checkpoint")

	sa.die() // a's process is gone: its lease is released
	for i := 40; i < 60; i++ {
		_, err := b.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, cpb, err = b.SignCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(60), cpb.Size, "b took the lease and signs")
	require.Equal(t, int64(1), sb.stored.Load())
	_, cpa, err = a.SignCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, cpb, cpa, "a, without the lease now, takes b's checkpoint")
	require.NoError(t, b.Close())
	_, err = verify.Ledger(ctx, mem, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

// Options.Shared on a store that cannot order several writers is refused at Open.
func TestSharedNeedsASharedLog(t *testing.T) {
	_, err := ledger.Open(context.Background(), notShared{memstore.New()}, ledger.Options{Signing: testKeys(t), Shared: true})
	require.Error(t, err)
	require.Contains(t, err.Error(), "store.SharedLog")
}

// notShared hides memstore's SharedLog.
type notShared struct{ store.Store }

// A build that fails (another writer's entries cannot be read) appends nothing; the callers get
// the error, and the ledger carries on once the store reads again.
func TestSharedCatchUpFailureLosesNothing(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	keys := testKeys(t)
	a := openShared(t, mem, keys)
	flaky := &flakyEntries{Store: mem}
	b := openShared(t, flaky, keys)
	_, err := a.Append(ctx, msg(1))
	require.NoError(t, err)
	flaky.fail.Store(true)
	_, err = b.Append(ctx, msg(2))
	require.ErrorIs(t, err, errInjected)
	size, err := mem.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), size, "nothing appended")
	flaky.fail.Store(false)
	rc, err := b.Append(ctx, msg(2))
	require.NoError(t, err)
	require.Equal(t, uint64(1), rc.Index)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	_, err = verify.Ledger(ctx, mem, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

var errInjected = errors.New("injected read failure")

type flakyEntries struct {
	*memstore.Store
	fail atomic.Bool
}

// AppendLocked gives build no entries, as a store that does not read them with its lock: the
// ledger reads them through Entries.
func (f *flakyEntries) AppendLocked(ctx context.Context, from uint64, build func(uint64, []store.Entry) (*store.Batch, error)) error {
	return f.Store.AppendLocked(ctx, from, func(size uint64, _ []store.Entry) (*store.Batch, error) { return build(size, nil) })
}

func (f *flakyEntries) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	if f.fail.Load() {
		return func(yield func(store.Entry, error) bool) {
			yield(store.Entry{}, fmt.Errorf("entries %d-%d: %w", start, end, errInjected))
		}
	}
	return f.Store.Entries(ctx, start, end)
}

// Encrypted shared ledgers share the data keys through their vault. When one writer's retention
// shreds an expired scope, another writer that had its key cached does not go on sealing new
// entries under it (they would be unreadable at once): it reads a key of a past month from the
// vault, finds it shredded, and refuses. Keys of the current month, which cannot have expired,
// are served from its cache.
func TestSharedWriterSeesAnotherWritersShred(t *testing.T) {
	ctx := context.Background()
	st, vault, ring := memstore.New(), &memstore.KeyVault{}, sealtest.NewKeyring()
	keys := testKeys(t)
	open := func() *ledger.Ledger {
		l, err := ledger.Open(ctx, st, ledger.Options{Signing: keys, Shared: true, CheckpointInterval: time.Hour,
			Encryption: &ledger.Encryption{Keyring: ring, Vault: vault}})
		require.NoError(t, err)
		return l
	}
	a, b := open(), open()
	old := time.Date(2023, 5, 5, 0, 0, 0, 0, time.UTC)
	_, err := a.Append(ctx, secretMsg(1, "cid-old", old, "an old order"))
	require.NoError(t, err)
	_, err = b.Append(ctx, secretMsg(2, "cid-old", old, "another, through b")) // b caches the key
	require.NoError(t, err)
	_, err = b.Append(ctx, secretMsg(3, "cid-now", time.Now(), "today"))
	require.NoError(t, err)

	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	size := b.Size()
	_, err = b.Append(ctx, secretMsg(4, "cid-old", old, "a late backfill of May 2023"))
	require.ErrorIs(t, err, ledger.ErrShredded, "b must not seal under a key a destroyed")
	require.Equal(t, size, b.Size())
	_, err = b.Append(ctx, secretMsg(5, "cid-now", time.Now(), "today again"))
	require.NoError(t, err, "the current month's key is unaffected")
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	_, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}
