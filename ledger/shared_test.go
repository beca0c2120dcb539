package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
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

// closeAndVerify closes the ledgers (the last signs the whole log) and verifies the log st holds.
func closeAndVerify(t *testing.T, st store.Store, keys *seal.SigningKey, ls ...*ledger.Ledger) {
	t.Helper()
	for _, l := range ls {
		require.NoError(t, l.Close())
	}
	_, err := verify.Ledger(context.Background(), st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

// openSharedEncrypted opens a shared ledger on st that encrypts with ring and keeps its data keys
// in vault, as the writers of one ledger share them.
func openSharedEncrypted(t testing.TB, st store.Store, keys *seal.SigningKey, ring seal.Keyring, vault store.KeyVault) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), st, ledger.Options{Signing: keys, Shared: true, CheckpointInterval: time.Hour,
		Encryption: &ledger.Encryption{Keyring: ring, Vault: vault}})
	require.NoError(t, err)
	return l
}

// twoEncryptedWriters opens two writers of one shared, encrypted ledger in memory, with vault as
// their key vault, as two processes on one PostgreSQL ledger.
func twoEncryptedWriters(t testing.TB, vault store.KeyVault) (a, b *ledger.Ledger) {
	t.Helper()
	st, ring, keys := memstore.New(), sealtest.NewKeyring(), testKeys(t)
	return openSharedEncrypted(t, st, keys, ring, vault), openSharedEncrypted(t, st, keys, ring, vault)
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
	rcs := &receipts{byID: map[string][]capture.Receipt{}}
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
					if err := rcs.append(ctx, l, m); err != nil {
						t.Error(err)
						return
					}
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
	seen := storedOnce(t, rcs.byID) // whichever ledger stored a message, its duplicates give its index
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
	closeAndVerify(t, st, keys, a, b)
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
	closeAndVerify(t, mem, keys, a, b)
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
	a, b := openSharedEncrypted(t, st, keys, ring, vault), openSharedEncrypted(t, st, keys, ring, vault)
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
	closeAndVerify(t, st, keys, a, b)
}

// Legal holds placed by two writers at once are all in force: each hold entry follows the one
// whose set it extends, and a writer that finds another's entry in between makes its change
// again on the newer set. (Before, each read the latest set and sealed its own: half the holds
// were lost.)
func TestSharedWritersPlaceHoldsAtOnce(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	a, b := openShared(t, st, keys), openShared(t, st, keys)
	const n = 20
	var wg sync.WaitGroup
	for k, l := range []*ledger.Ledger{a, b} {
		wg.Go(func() {
			for i := range n {
				if _, err := l.PlaceHold(ctx, ledger.Hold{ID: fmt.Sprintf("h%d-%d", k, i), Tenant: "corp1",
					Conversation: fmt.Sprintf("c%d-%d", k, i), Reason: "SFC inquiry", By: "legal"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, l := range []*ledger.Ledger{a, b} {
		hs, err := l.Holds(ctx)
		require.NoError(t, err)
		require.Len(t, hs, 2*n, "every hold placed and not released is active")
	}
	closeAndVerify(t, st, keys, a, b)
}

// A hold sealed by another writer between a retention run's check of the holds and its shred
// entry stops the shred: the shred entry must follow the hold entry whose holds it checked.
func TestSharedShredYieldsToAnotherWritersHold(t *testing.T) {
	ctx := context.Background()
	mem, ring := memstore.New(), sealtest.NewKeyring()
	hooked := &holdsReadHook{Store: mem}
	vault := &markHook{KeyVault: &memstore.KeyVault{}}
	keys := testKeys(t)
	a, b := openSharedEncrypted(t, hooked, keys, ring, vault), openSharedEncrypted(t, mem, keys, ring, vault)
	old := time.Date(2023, 5, 5, 0, 0, 0, 0, time.UTC)
	_, err := a.Append(ctx, secretMsg(1, "cid-h", old, "under investigation"))
	require.NoError(t, err)
	// Once a's retention has marked the key, the next time a reads the latest hold entry (to
	// check the holds before it seals the shred entry), writer b seals a hold right after.
	vault.onMark = func() {
		hooked.arm(func() {
			_, err := b.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Conversation: "cid-h", Reason: "inquiry", By: "counsel"})
			require.NoError(t, err)
		})
	}
	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.True(t, hooked.fired(), "b's hold came between a's check and a's shred entry")
	require.Empty(t, shreds, "the hold wins")
	e, err := a.Access("auditor", "test").Get(ctx, 0)
	require.NoError(t, err, "the held message is readable")
	require.Equal(t, "under investigation", e.Message.Text)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
}

// markHook is a shared vault that runs onMark once, right after a scope key's metadata is
// written with a shredding mark (with blob set, an attachment key's, shredMark.With), and whose
// DestroyKey of key fail fails once (a run that stops after sealing its shred entry).
type markHook struct {
	*memstore.KeyVault
	onMark func()
	blob   bool
	fail   string
}

func (v *markHook) UpdateMeta(ctx context.Context, id string, update func([]byte) ([]byte, error)) error {
	var marked bool
	err := v.KeyVault.UpdateMeta(ctx, id, func(old []byte) ([]byte, error) {
		m, err := update(old)
		marked = err == nil && strings.Contains(string(m), `"shredding"`) && strings.HasPrefix(id, "blob1.") == v.blob &&
			(!v.blob || strings.Contains(string(m), `"with"`))
		return m, err
	})
	if f := v.onMark; marked && f != nil {
		v.onMark = nil
		f()
	}
	return err
}

func (v *markHook) DestroyKey(ctx context.Context, id string) error {
	if id != "" && id == v.fail {
		v.fail = ""
		return errors.New("the run stops here")
	}
	return v.KeyVault.DestroyKey(ctx, id)
}

// holdsReadHook runs a function once, right after the first read of the hold chain's latest
// entry once armed.
type holdsReadHook struct {
	*memstore.Store
	mu   sync.Mutex
	hook func()
	done bool
}

var holdChain = seal.ConversationDigest("", "commseal", "legal-holds")

func (h *holdsReadHook) arm(f func()) { h.mu.Lock(); h.hook = f; h.mu.Unlock() }

func (h *holdsReadHook) fired() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.done }

func (h *holdsReadHook) LastInConversation(ctx context.Context, conv store.Hash) (uint64, bool, error) {
	i, ok, err := h.Store.LastInConversation(ctx, conv)
	h.mu.Lock()
	f := h.hook
	if conv != holdChain {
		f = nil
	}
	if f != nil {
		h.hook, h.done = nil, true
	}
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return i, ok, err
}

// A writer opens while another appends and signs (the checkpoint it reads may be beyond the size
// it read a moment before), and proves an entry up to a checkpoint that covers entries of the
// other writer it has not caught up with.
func TestSharedOpenAndProveBesideAnotherWriter(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	a := openShared(t, st, keys)
	_, err := a.Append(ctx, msg(100_000))
	require.NoError(t, err)
	// b opens: right after it reads the log's size, a appends and signs.
	hooked := &sizeHook{Store: st, after: func() {
		_, err := a.Append(ctx, msg(100_001))
		require.NoError(t, err)
		_, _, err = a.SignCheckpoint(ctx)
		require.NoError(t, err)
	}}
	b0, err := ledger.Open(ctx, hooked, ledger.Options{Signing: keys, Shared: true, CheckpointInterval: time.Hour})
	require.NoError(t, err, "a checkpoint beyond the size read a moment before is another writer's, not a fork")
	require.NoError(t, b0.Close())
	b := openShared(t, st, keys)
	rc, err := b.Append(ctx, msg(1))
	require.NoError(t, err)
	_, err = a.Append(ctx, msg(2)) // an entry b has not caught up with
	require.NoError(t, err)
	_, cp, err := a.SignCheckpoint(ctx)
	require.NoError(t, err)
	_, bcp, err := b.SignCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, cp.Size, bcp.Size)
	require.GreaterOrEqual(t, b.Size(), cp.Size, "the checkpoint's entries are durable, b's size says so")
	_, err = b.InclusionProof(ctx, rc.Index, bcp.Size)
	require.NoError(t, err, "b proves its entry in a checkpoint that covers a's newer one")
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
}

// sizeHook runs after once, right after the first Size call.
type sizeHook struct {
	*memstore.Store
	after func()
}

func (h *sizeHook) Size(ctx context.Context) (uint64, error) {
	n, err := h.Store.Size(ctx)
	if f := h.after; f != nil {
		h.after = nil
		f()
	}
	return n, err
}

// A writer that has been idle catches up with what the others appended before it takes the
// store's lock, so that the others do not wait while it reads: its build under the lock has
// nothing left to read.
func TestIdleSharedWriterCatchesUpOutsideTheLock(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	keys := testKeys(t)
	a := openShared(t, mem, keys)
	watched := &lockWatch{Store: mem}
	b := openShared(t, watched, keys)
	_, err := b.Append(ctx, msg(1))
	require.NoError(t, err)
	for i := range 300 {
		_, err := a.Append(ctx, msg(1000+i))
		require.NoError(t, err)
	}
	time.Sleep(1100 * time.Millisecond) // idle longer than a second
	rc, err := b.Append(ctx, msg(2))
	require.NoError(t, err)
	require.Equal(t, uint64(301), rc.Index)
	require.Zero(t, watched.behind.Load(), "the entries a appended were read before b took the lock")
	closeAndVerify(t, mem, keys, a, b)
}

// lockWatch records how far behind the log a writer was when it took the lock last.
type lockWatch struct {
	*memstore.Store
	behind atomic.Uint64
}

func (w *lockWatch) AppendLocked(ctx context.Context, from uint64, build func(uint64, []store.Entry) (*store.Batch, error)) error {
	return w.Store.AppendLocked(ctx, from, func(size uint64, appended []store.Entry) (*store.Batch, error) {
		w.behind.Store(size - from)
		return build(size, appended)
	})
}

// A shared ledger's reads go back to the vault for a past month's key once keyRecheck has
// passed since it last did: when another writer's retention has destroyed the key, the content
// is gone here too, although this writer still had the key cached.
func TestSharedReadAfterAnotherWritersShred(t *testing.T) {
	ctx := context.Background()
	a, b := twoEncryptedWriters(t, &memstore.KeyVault{})
	old := time.Date(2023, 5, 5, 0, 0, 0, 0, time.UTC)
	rc, err := a.Append(ctx, secretMsg(1, "cid-old", old, "an old order"))
	require.NoError(t, err)
	_, err = b.Append(ctx, secretMsg(2, "cid-old", old, "another, through b")) // b caches the key
	require.NoError(t, err)
	e, err := b.Access("officer", "before").Get(ctx, rc.Index)
	require.NoError(t, err)
	require.Equal(t, "an old order", e.Message.Text)
	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	time.Sleep(ledger.KeyRecheck + 100*time.Millisecond)
	_, err = b.Access("officer", "after").Get(ctx, rc.Index)
	require.ErrorIs(t, err, ledger.ErrShredded, "b read the shredded entry from its cached key")
}

// A writer's retention run leaves alone the shredding mark another writer's run has just made
// and not yet sealed: clearing it, as it clears the marks a crashed run left, let the first
// writer append a kind the policy keeps for 50 years under the key, which the other run then
// destroyed (a policy destroying more than it names).
func TestSharedRetentionLeavesAnotherWritersMark(t *testing.T) {
	ctx := context.Background()
	vault := &markHook{KeyVault: &memstore.KeyVault{}}
	a, b := twoEncryptedWriters(t, vault)
	old := time.Date(2023, 5, 5, 0, 0, 0, 0, time.UTC)
	m := secretMsg(1, "cid-x", old, "an old order")
	_, err := a.Append(ctx, m)
	require.NoError(t, err)
	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{
		{Name: "messages", Kinds: []string{"message"}, Keep: ledger.Period{Years: 1}},
		{Name: "notes", Kinds: []string{"annotation"}, Keep: ledger.Period{Years: 50}},
	}}
	var appendErr error
	other := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "another tenant", Tenant: "corp2", Keep: ledger.Period{Years: 1}}}}
	vault.onMark = func() { // a has marked the key; b runs retention (nothing due), then annotates the message
		_, err := b.ApplyRetention(ctx, other, ledger.ApplyOptions{Authority: "b's job"})
		require.NoError(t, err)
		about := m.Identity()
		_, appendErr = b.AppendRecord(ctx, &capture.Record{Kind: capture.RecordAnnotation, Platform: "dingtalk", Tenant: "corp1",
			ID: "note-1", Conversation: capture.Conversation{ID: "cid-x"}, About: &about, At: old, Body: []byte(`{"note":"kept 50 years"}`)})
	}
	shreds, err := a.ApplyRetention(ctx, policy, ledger.ApplyOptions{Authority: "a's job"})
	require.NoError(t, err)
	require.ErrorIs(t, appendErr, ledger.ErrShredded, "the key was being shredded: nothing new under it")
	require.Len(t, shreds, 1, "a's run shreds what its policy names")
}

// A mark older than staleMark without a sealed shred entry is a crashed run's: a shared writer's
// retention clears it, and the key serves appends again.
func TestSharedRetentionClearsAStaleMark(t *testing.T) {
	ctx := context.Background()
	mem, ring, vault := memstore.New(), sealtest.NewKeyring(), &memstore.KeyVault{}
	a := openSharedEncrypted(t, mem, testKeys(t), ring, vault)
	old := time.Date(2023, 5, 5, 0, 0, 0, 0, time.UTC)
	rc, err := a.Append(ctx, secretMsg(1, "cid-x", old, "an old order"))
	require.NoError(t, err)
	e, err := a.Access("t", "key id").Get(ctx, rc.Index)
	require.NoError(t, err)
	id := e.Leaf.KeyID
	require.NoError(t, vault.UpdateMeta(ctx, id, func(meta []byte) ([]byte, error) {
		var sc map[string]any
		require.NoError(t, json.Unmarshal(meta, &sc))
		sc["shredding"] = map[string]any{"blobs": []string{}, "at": time.Now().Add(-time.Hour)}
		return json.Marshal(sc)
	}))
	_, err = a.Append(ctx, secretMsg(2, "cid-x", old, "refused while marked"))
	require.ErrorIs(t, err, ledger.ErrShredded)
	_, err = a.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "n", Tenant: "corp2", Keep: ledger.Period{Years: 1}}}},
		ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	_, err = a.Append(ctx, secretMsg(3, "cid-x", old, "served again"))
	require.NoError(t, err)
}

// TestOpenRefusesAnotherLedgersStore: a ledger with another signing key is refused a store that
// a ledger has claimed, before it writes anything, even while no checkpoint is stored yet (the
// only guard there was before owners); two ledgers of different keys opening an empty shared
// store at once are decided by the store, one of them opening; and a store claimed by one key
// keeps working for that key's other writers.
func TestOpenRefusesAnotherLedgersStore(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keyA, keyB := testKeys(t), testKeys(t)
	a := openShared(t, st, keyA)
	for i := range 3 {
		_, err := a.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, err := st.LatestCheckpoint(ctx)
	require.ErrorIs(t, err, store.ErrNotFound, "the test needs a store with entries and no checkpoint")
	for _, shared := range []bool{true, false} {
		_, err = ledger.Open(ctx, st, ledger.Options{Signing: keyB, Shared: shared})
		require.ErrorIs(t, err, ledger.ErrOtherLedger, "shared %v", shared)
		require.ErrorContains(t, err, fmt.Sprintf("claimed by %s+%08x", keyA.Verifier.Name(), keyA.Verifier.KeyHash()))
	}
	n, err := st.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), n, "the refused ledger wrote")
	// The same key, however it was put together, is the same owner.
	a2 := openShared(t, st, &seal.SigningKey{Signer: keyA.Signer, Verifier: keyA.Verifier})
	_, err = a2.Append(ctx, msg(3))
	require.NoError(t, err)
	closeAndVerify(t, st, keyA, a, a2)

	// Two keys on one empty store at once: exactly one opens.
	for range 20 {
		st := memstore.New()
		var opened atomic.Int32
		var refused atomic.Int32
		var wg sync.WaitGroup
		for _, k := range []*seal.SigningKey{keyA, keyB} {
			wg.Go(func() {
				l, err := ledger.Open(ctx, st, ledger.Options{Signing: k, Shared: true})
				switch {
				case err == nil:
					opened.Add(1)
					_ = l.Close()
				case errors.Is(err, ledger.ErrOtherLedger):
					refused.Add(1)
				default:
					t.Errorf("Open: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), opened.Load(), "ledgers of two keys opened on one store")
		require.Equal(t, int32(1), refused.Load())
	}
}

// TestSharedNeedsAnOwner: a shared ledger needs a store that records its owner.
func TestSharedNeedsAnOwner(t *testing.T) {
	_, err := ledger.Open(context.Background(), ownerless{memstore.New()}, ledger.Options{Signing: testKeys(t), Shared: true})
	require.ErrorContains(t, err, "store.Owner")
}

// ownerless is a shared store that does not record its owner: memstore's Claim hidden.
type ownerless struct{ *memstore.Store }

func (ownerless) Claim() {}

// TestSharedShredTakesTheSealedEntry: two writers' runs shred one key at once, choosing
// different attachments to go with it (between the two choices the attachment was tied to a
// live conversation too). The run that seals second gets a duplicate receipt for the shred
// entry, and destroys what the sealed entry names, not what it chose itself: it used to destroy
// its own choice, an attachment of a live conversation that no shred entry names (a policy
// destroying more than it names).
func TestSharedShredTakesTheSealedEntry(t *testing.T) {
	ctx := context.Background()
	vault := &markHook{KeyVault: &memstore.KeyVault{}}
	a, b := twoEncryptedWriters(t, vault)
	content := "term sheet, shared by two desks"
	sum := attach(t, a, "cid-old", 1, time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), content)
	var bShreds []ledger.Shred
	vault.onMark = func() { // a has marked the old key, with the attachment (its only scope then)
		attach(t, b, "cid-live", 2, time.Now().UTC(), content)
		var err error
		bShreds, err = b.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "b's job"})
		require.NoError(t, err)
	}
	aShreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a's job"})
	require.NoError(t, err)
	require.Len(t, bShreds, 1)
	require.Empty(t, bShreds[0].Blobs, "b's run sealed first, keeping the attachment of the live conversation")
	require.Len(t, aShreds, 1)
	require.Equal(t, bShreds[0].Index, aShreds[0].Index, "a's run reports the entry b sealed")
	require.Empty(t, aShreds[0].Blobs)
	require.True(t, aShreds[0].Resumed)
	got, err := b.Access("officer", "live conversation").Blob(ctx, sum)
	require.NoError(t, err, "the attachment of the live conversation was destroyed")
	require.Equal(t, content, string(got))
}

// busyLog runs a function after each Size read while armed, before the size is returned.
type busyLog struct {
	*memstore.Store
	after func()
}

func (s *busyLog) Size(ctx context.Context) (uint64, error) {
	n, err := s.Store.Size(ctx)
	if s.after != nil {
		s.after()
	}
	return n, err
}

// TestSharedOpenOnABusyLog: while a writer opens, another appends and signs between every two
// reads of the log. Open used to read the size before the latest checkpoint, find the checkpoint
// ahead of it, and give up after three tries; it reads the checkpoint first now, which the size
// read after it always covers.
func TestSharedOpenOnABusyLog(t *testing.T) {
	ctx := context.Background()
	mem, keys := memstore.New(), testKeys(t)
	b := openShared(t, mem, keys)
	busy := &busyLog{Store: mem}
	n := 0
	busy.after = func() {
		n++
		_, err := b.Append(ctx, msg(n))
		require.NoError(t, err)
		_, _, err = b.SignCheckpoint(ctx)
		require.NoError(t, err)
	}
	a, err := ledger.Open(ctx, busy, ledger.Options{Signing: keys, Shared: true, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	busy.after = nil
	require.Positive(t, n, "the other writer appended while a opened")
	_, err = a.Append(ctx, msg(1000))
	require.NoError(t, err)
	closeAndVerify(t, mem, keys, a, b)
}

// TestSharedShredAndTieRace: writer a's retention run shreds an old conversation's key and
// chooses its attachment to go with it, while writer b ties the same attachment to a live
// conversation. Whichever of the tie and the attachment's mark comes first wins, and nothing
// live is destroyed:
//   - b ties first (between the scope's mark and the attachment's): the attachment stays out
//     of the shred, and the live conversation keeps it; a's run used to destroy it;
//   - a marks first: b's PutBlob of the content and its tie are refused with ErrShredded (its
//     record is not sealed, so nothing refers to an attachment about to go), and the attachment
//     goes with the shred its entry names.
func TestSharedShredAndTieRace(t *testing.T) {
	ctx := context.Background()
	old, content := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), "term sheet, shared by two desks"

	// b ties first.
	vault := &markHook{KeyVault: &memstore.KeyVault{}}
	a, b := twoEncryptedWriters(t, vault)
	sum := attach(t, a, "cid-old", 1, old, content)
	vault.onMark = func() { attach(t, b, "cid-live", 2, time.Now().UTC(), content) }
	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a's job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.Empty(t, shreds[0].Blobs, "the attachment tied to a live conversation stays out of the shred")
	got, err := b.Access("officer", "live conversation").Blob(ctx, sum)
	require.NoError(t, err, "the attachment of the live conversation was destroyed")
	require.Equal(t, content, string(got))

	// a marks first.
	bvault := &markHook{KeyVault: &memstore.KeyVault{}, blob: true}
	a, b = twoEncryptedWriters(t, bvault)
	sum = attach(t, a, "cid-old", 1, old, content)
	var tieErr, putErr error
	bvault.onMark = func() {
		_, putErr = b.PutBlob(ctx, []byte(content))
		m := secretMsg(2, "cid-live", time.Now().UTC(), "see the attachment")
		_, err := b.Append(ctx, m)
		require.NoError(t, err)
		about := m.Identity()
		body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": fmt.Sprintf("%x", sum)})
		_, tieErr = b.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1", ID: "media-live",
			Conversation: m.Conversation, About: &about, At: m.SentAt, Body: body})
	}
	shreds, err = a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a's job"})
	require.NoError(t, err)
	require.ErrorIs(t, putErr, ledger.ErrShredded, "the content of an attachment marked to go is refused, not stored and lost")
	require.ErrorIs(t, tieErr, ledger.ErrShredded, "a tie to an attachment marked to go is refused")
	require.Len(t, shreds, 1)
	require.Len(t, shreds[0].Blobs, 1, "the attachment goes with the shred")
	_, err = b.Access("officer", "after").Blob(ctx, sum)
	require.ErrorIs(t, err, ledger.ErrShredded)
}

// TestAttachmentMarksAreCleared: an attachment's mark to go with a shred is cleared with its
// scope's mark when a hold stops the shred, and by the next run when a crashed run left it with
// no sealed entry naming it; either way the attachment can be tied to a live conversation again.
func TestAttachmentMarksAreCleared(t *testing.T) {
	ctx := context.Background()
	old, content := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), "term sheet"
	mem, ring, keys := memstore.New(), sealtest.NewKeyring(), testKeys(t)
	vault := &markHook{KeyVault: &memstore.KeyVault{}, blob: true}
	a := openSharedEncrypted(t, mem, keys, ring, vault)
	sum := attach(t, a, "cid-old", 1, old, content)
	blob := blobKey(sum)
	markOf := func() string {
		wk, err := vault.Key(ctx, blob)
		require.NoError(t, err)
		var sc struct{ Shredding *struct{ With string } }
		require.NoError(t, json.Unmarshal(wk.Meta, &sc))
		if sc.Shredding == nil {
			return ""
		}
		return sc.Shredding.With
	}
	vault.onMark = func() {
		require.NotEmpty(t, markOf(), "the attachment is marked")
		_, err := a.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Conversation: "cid-old", Reason: "inquiry", By: "counsel"})
		require.NoError(t, err)
	}
	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Empty(t, shreds, "the hold stopped the shred")
	require.Empty(t, markOf(), "the attachment's mark went with its scope's")
	attach(t, a, "cid-live", 2, time.Now().UTC(), content) // tied again

	// A mark a crashed run left (its scope's mark cleared, no entry sealed), older than staleMark.
	require.NoError(t, vault.UpdateMeta(ctx, blob, func(meta []byte) ([]byte, error) {
		var sc map[string]any
		require.NoError(t, json.Unmarshal(meta, &sc))
		sc["shredding"] = map[string]any{"blobs": []string{}, "with": "dk1.2023-02.gone", "at": time.Now().Add(-time.Hour)}
		return json.Marshal(sc)
	}))
	_, err = a.ReleaseHold(ctx, "h", "counsel", "closed")
	require.NoError(t, err)
	_, err = a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	got, err := a.Access("officer", "live").Blob(ctx, sum)
	require.NoError(t, err, "the attachment of the live conversation stays")
	require.Equal(t, content, string(got))
	require.Empty(t, markOf(), "the stale mark was cleared")
}

// TestSharedShredEntryStandsAgainstALaterHold: writer a's run seals a key's shred entry and
// stops before destroying; then a hold covers the scope; writer b's run, which had marked the
// key too, finds the entry and finishes it, as the entry was sealed before the hold. It used to
// see the hold, call the shred off and clear the marks, leaving the attachment the entry names
// free to be tied to a live conversation, and destroyed with it later. Now the content is gone
// as named, and a live conversation that sends it again is told so (ErrShredded).
func TestSharedShredEntryStandsAgainstALaterHold(t *testing.T) {
	ctx := context.Background()
	old, content := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), "term sheet"
	vault := &markHook{KeyVault: &memstore.KeyVault{}}
	a, b := twoEncryptedWriters(t, vault)
	sum := attach(t, a, "cid-old", 1, old, content)
	vault.onMark = func() { // b has marked the key; a's run seals the entry and stops
		vault.fail = blobKey(sum)
		_, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a"})
		require.ErrorContains(t, err, "the run stops here")
		_, err = a.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Conversation: "cid-old", Reason: "inquiry", By: "counsel"})
		require.NoError(t, err)
	}
	shreds, err := b.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "b"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.True(t, shreds[0].Resumed, "b finished a's entry")
	require.Equal(t, []string{blobKey(sum)}, shreds[0].Blobs)
	_, err = b.Access("officer", "after").Blob(ctx, sum)
	require.ErrorIs(t, err, ledger.ErrShredded)
	_, err = b.PutBlob(ctx, []byte(content))
	require.ErrorIs(t, err, ledger.ErrShredded, "the same content sent again is refused, not stored and lost later")
}

// TestANamedAttachmentTiedToALiveScopeIsKept: the last check before an attachment goes with a
// scope's shred: one that a shred entry names but that a live scope references by then (its
// mark was lost under it) is kept, and the scope's key still goes.
func TestANamedAttachmentTiedToALiveScopeIsKept(t *testing.T) {
	ctx := context.Background()
	old, content := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), "term sheet"
	mem, ring, keys := memstore.New(), sealtest.NewKeyring(), testKeys(t)
	vault := &markHook{KeyVault: &memstore.KeyVault{}}
	a := openSharedEncrypted(t, mem, keys, ring, vault)
	sum := attach(t, a, "cid-old", 1, old, content)
	vault.fail = blobKey(sum)
	_, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a"})
	require.ErrorContains(t, err, "the run stops here")
	require.NoError(t, vault.UpdateMeta(ctx, blobKey(sum), func(meta []byte) ([]byte, error) { // the mark lost
		var sc map[string]any
		require.NoError(t, json.Unmarshal(meta, &sc))
		delete(sc, "shredding")
		return json.Marshal(sc)
	}))
	attach(t, a, "cid-live", 2, time.Now().UTC(), content)
	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a"})
	require.NoError(t, err)
	require.Len(t, shreds, 1, "the interrupted shred is finished")
	got, err := a.Access("officer", "live").Blob(ctx, sum)
	require.NoError(t, err, "the live conversation's attachment was destroyed")
	require.Equal(t, content, string(got))
	_, err = a.Access("officer", "old").Get(ctx, 0)
	require.ErrorIs(t, err, ledger.ErrShredded, "the old scope's key went")
}

// TestAnAdoptedMarkIsRenamedAndDatedAnew: a run that finds an attachment marked for its scope's
// shred by a run that stopped (here one nearly staleMark ago) adopts the mark under its own name
// and date, so another writer's run does not take it for stale and clear it while the shred is
// going on: the attachment stays untieable until it goes. Adopted as it was, the mark aged out
// during the shred, the other run cleared it, and a live conversation could tie the attachment.
func TestAnAdoptedMarkIsRenamedAndDatedAnew(t *testing.T) {
	ctx := context.Background()
	old, content := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), "term sheet"
	vault := &markHook{KeyVault: &memstore.KeyVault{}, blob: true}
	a, b := twoEncryptedWriters(t, vault)
	sum := attach(t, a, "cid-old", 1, old, content)
	blob := blobKey(sum)
	var scope string
	for wk, err := range vault.Keys(ctx) {
		require.NoError(t, err)
		if wk.ID != blob {
			scope = wk.ID
		}
	}
	setMark := func(id string, m map[string]any) {
		require.NoError(t, vault.KeyVault.UpdateMeta(ctx, id, func(meta []byte) ([]byte, error) {
			var sc map[string]any
			require.NoError(t, json.Unmarshal(meta, &sc))
			sc["shredding"] = m
			return json.Marshal(sc)
		}))
	}
	// Marks a stopped run left, a second short of stale.
	at := time.Now().Add(-ledger.StaleMark + time.Second).UTC()
	setMark(scope, map[string]any{"blobs": []string{blob}, "at": at, "run": "stopped"})
	setMark(blob, map[string]any{"blobs": []string{}, "with": scope, "at": at, "run": "stopped"})
	var tieErr error
	vault.onMark = func() { // a has adopted the attachment's mark; time passes, b's run resumes
		time.Sleep(1500 * time.Millisecond)
		_, err := b.ApplyRetention(ctx, ledger.RetentionPolicy{}, ledger.ApplyOptions{Authority: "b"})
		require.NoError(t, err)
		_, tieErr = b.PutBlob(ctx, []byte(content))
	}
	shreds, err := a.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "a"})
	require.NoError(t, err)
	require.ErrorIs(t, tieErr, ledger.ErrShredded, "the attachment stayed marked while a's shred went on")
	require.Len(t, shreds, 1)
	require.Equal(t, []string{blob}, shreds[0].Blobs)
}
