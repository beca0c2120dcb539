package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// lockingBlobs is a blob store in memory whose objects are locked the way S3 Object Lock in
// COMPLIANCE mode locks them: written with a retain-until date of now plus retention, which
// only grows (an earlier date is refused with errRefused), and a legal hold flag. Delete
// refuses a locked or held object. With down set, every call fails with errDown.
type lockingBlobs struct {
	mu        sync.Mutex
	retention time.Duration
	objects   map[store.Hash]*lockedObject
	down      bool
	calls     int // lock calls received (Retain, SetLegalHold)
}

type lockedObject struct {
	data  []byte
	until time.Time
	hold  bool
}

var (
	errRefused = errors.New("lockingBlobs: refused: the object is locked")
	errDown    = errors.New("lockingBlobs: the endpoint is down")
)

func newLockingBlobs(retention time.Duration) *lockingBlobs {
	return &lockingBlobs{retention: retention, objects: map[store.Hash]*lockedObject{}}
}

func (b *lockingBlobs) WriteBlob(_ context.Context, sum store.Hash, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errDown
	}
	if sha256.Sum256(data) != sum {
		return store.ErrHashMismatch
	}
	if _, ok := b.objects[sum]; !ok {
		b.objects[sum] = &lockedObject{data: bytes.Clone(data), until: time.Now().Add(b.retention)}
	}
	return nil
}

// object returns sum's object, b.mu held, failing as the endpoint would: errDown while it is
// down, store.ErrNotFound for an unknown object.
func (b *lockingBlobs) object(sum store.Hash) (*lockedObject, error) {
	if b.down {
		return nil, errDown
	}
	o, ok := b.objects[sum]
	if !ok {
		return nil, store.ErrNotFound
	}
	return o, nil
}

func (b *lockingBlobs) ReadBlob(_ context.Context, sum store.Hash) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, err := b.object(sum)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(o.data), nil
}

func (b *lockingBlobs) RetainUntil(_ context.Context, sum store.Hash) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, err := b.object(sum)
	if err != nil {
		return time.Time{}, err
	}
	return o.until, nil
}

func (b *lockingBlobs) Retain(_ context.Context, sum store.Hash, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	o, err := b.object(sum)
	switch {
	case err != nil:
		return err
	case !until.After(time.Now()):
		return store.ErrInvalid
	case until.Before(o.until):
		return errRefused
	}
	o.until = until
	return nil
}

func (b *lockingBlobs) SetLegalHold(_ context.Context, sum store.Hash, on bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	o, err := b.object(sum)
	if err != nil {
		return err
	}
	o.hold = on
	return nil
}

// Delete deletes an object unless its date or its hold keeps it.
func (b *lockingBlobs) Delete(sum store.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[sum]
	if !ok {
		return store.ErrNotFound
	}
	if o.hold || time.Now().Before(o.until) {
		return errRefused
	}
	delete(b.objects, sum)
	return nil
}

func (b *lockingBlobs) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

func (b *lockingBlobs) lockCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// lockOf returns the lock of the object that holds the ciphertext of attachment sum in the
// encrypted ledger whose vault is vault.
func (b *lockingBlobs) lockOf(t *testing.T, vault store.KeyVault, sum [32]byte) (until time.Time, hold bool) {
	t.Helper()
	addr := storedAddr(t, vault, sum)
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[addr]
	require.True(t, ok, "the attachment's object is stored")
	return o.until, o.hold
}

var _ ledger.ObjectLocker = (*lockingBlobs)(nil)

// storedAddr returns the address under which an encrypted ledger stored attachment sum: the
// SHA-256 of its ciphertext, which its key's metadata records.
func storedAddr(t testing.TB, vault store.KeyVault, sum [32]byte) store.Hash {
	t.Helper()
	wk, err := vault.Key(context.Background(), blobKey(sum))
	require.NoError(t, err)
	var meta struct{ Blob string }
	require.NoError(t, json.Unmarshal(wk.Meta, &meta))
	a, err := hex.DecodeString(meta.Blob)
	require.NoError(t, err)
	require.Len(t, a, 32)
	return store.Hash(a)
}

// lockLedger is an encrypted ledger in memory whose attachments go to a lockingBlobs.
type lockLedger struct {
	*ledger.Ledger
	st    *memstore.Store
	vault *memstore.KeyVault
	blobs *lockingBlobs
	opts  ledger.Options
}

func newLockLedger(t testing.TB, blobs *lockingBlobs) *lockLedger {
	t.Helper()
	e := &lockLedger{st: memstore.New(), vault: &memstore.KeyVault{}, blobs: blobs}
	e.opts = ledger.Options{Signing: testKeys(t), CheckpointInterval: time.Hour, Blobs: blobs,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: e.vault}}
	e.Ledger = e.reopen(t)
	return e
}

// reopen opens another ledger over the same log, vault and blobs (a restarted process).
func (e *lockLedger) reopen(t testing.TB) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), e.st, e.opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// attach seals message i of conversation conv, sent at sent, and a media record about it whose
// attachment holds content, and waits for the ledger to have locked the attachment in its
// storage; it returns the attachment's SHA-256.
func attach(t testing.TB, l *ledger.Ledger, conv string, i int, sent time.Time, content string) [32]byte {
	t.Helper()
	sum := tie(t, l, conv, i, sent, content)
	l.WaitBlobLocks() // AppendRecord has the blob locked off its own path
	return sum
}

// tie is attach without the wait for the lock.
func tie(t testing.TB, l *ledger.Ledger, conv string, i int, sent time.Time, content string) [32]byte {
	t.Helper()
	ctx := context.Background()
	m := secretMsg(i, conv, sent, "see the attachment")
	_, err := l.Append(ctx, m)
	require.NoError(t, err)
	sum, err := l.PutBlob(ctx, []byte(content))
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	about := m.Identity()
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1",
		ID: "media-" + m.ID, Conversation: capture.Conversation{ID: conv}, About: &about, At: sent.Add(time.Minute), Body: body})
	require.NoError(t, err)
	return sum
}

// thisMonth is a time in the current month (UTC), so that its scope's retention ends in the
// future, as the store requires of a date.
func thisMonth() time.Time {
	n := time.Now().UTC()
	return time.Date(n.Year(), n.Month(), 1, 9, 0, 0, 0, time.UTC)
}

func endOfMonthPlus(t time.Time, years int) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(years, 1, 0)
}

// TestHoldsSetAndClearTheStoragesLegalHold: a hold placed on a conversation sets the legal hold
// on its attachments, and only on them; a second hold over the same attachment keeps it held
// when the first is released; releasing the last clears it. A hold moved (placed again with the
// same id) to another conversation clears the one it left.
func TestHoldsSetAndClearTheStoragesLegalHold(t *testing.T) {
	ctx := context.Background()
	e := newLockLedger(t, newLockingBlobs(time.Hour))
	sent := thisMonth()
	a := attach(t, e.Ledger, "cid-a", 1, sent, "attachment of A")
	b := attach(t, e.Ledger, "cid-b", 1, sent, "attachment of B")
	held := func(sum [32]byte) bool { _, h := e.blobs.lockOf(t, e.vault, sum); return h }
	require.False(t, held(a))

	_, err := e.PlaceHold(ctx, ledger.Hold{ID: "h-conv", Tenant: "corp1", Conversation: "cid-a", Reason: "inquiry", By: "counsel"})
	require.NoError(t, err)
	require.True(t, held(a), "the held conversation's attachment is held by the storage")
	require.False(t, held(b), "another conversation's is not")

	_, err = e.PlaceHold(ctx, ledger.Hold{ID: "h-tenant", Tenant: "corp1", Reason: "litigation", By: "counsel"})
	require.NoError(t, err)
	require.True(t, held(a))
	require.True(t, held(b), "a tenant hold holds every conversation's attachments")

	_, err = e.ReleaseHold(ctx, "h-conv", "counsel", "inquiry closed")
	require.NoError(t, err)
	require.True(t, held(a), "the tenant hold still covers A")
	_, err = e.ReleaseHold(ctx, "h-tenant", "counsel", "settled")
	require.NoError(t, err)
	require.False(t, held(a), "releasing the last hold clears the storage's")
	require.False(t, held(b))

	_, err = e.PlaceHold(ctx, ledger.Hold{ID: "h-move", Tenant: "corp1", Conversation: "cid-a", Reason: "r", By: "counsel"})
	require.NoError(t, err)
	require.True(t, held(a))
	_, err = e.PlaceHold(ctx, ledger.Hold{ID: "h-move", Tenant: "corp1", Conversation: "cid-b", Reason: "r", By: "counsel"})
	require.NoError(t, err)
	require.False(t, held(a), "the hold moved away from A")
	require.True(t, held(b))
	require.ErrorIs(t, e.blobs.Delete(storedAddr(t, e.vault, b)), errRefused)

	calls := e.blobs.lockCalls()
	rep, err := e.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, calls, e.blobs.lockCalls(), "a pass with nothing to change calls the store for nothing: %+v", rep)
	require.Equal(t, 2, rep.Blobs)
}

// TestRetentionSetsRetainUntilAndOnlyExtendsIt: with a policy, an attachment is retained until
// the end of its scope's retention, the latest of its scopes' when several reference it; a
// longer policy extends the date; a shorter one does not shorten it, and the store's refusal is
// reported (ErrLocksPending, wrapping the store's error), not hidden. Until the ledger knows a
// policy, the store's default date stays.
func TestRetentionSetsRetainUntilAndOnlyExtendsIt(t *testing.T) {
	ctx := context.Background()
	e := newLockLedger(t, newLockingBlobs(time.Hour))
	sent := thisMonth()
	a := attach(t, e.Ledger, "cid-a", 1, sent, "attachment of A")
	shared := attach(t, e.Ledger, "cid-b", 1, sent, "shared attachment")
	// The same content attached in another conversation, a month later: two scopes.
	later := attach(t, e.Ledger, "cid-c", 1, sent.AddDate(0, 1, 0), "shared attachment")
	require.Equal(t, shared, later)

	before, _ := e.blobs.lockOf(t, e.vault, a)
	rep, err := e.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, rep.Retained, "no policy known: dates stay")
	until, _ := e.blobs.lockOf(t, e.vault, a)
	require.Equal(t, before, until)

	seven := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "7y", Keep: ledger.Period{Years: 7}}}}
	rep, err = e.ApplyLocks(ctx, &seven)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Retained)
	until, _ = e.blobs.lockOf(t, e.vault, a)
	require.Equal(t, endOfMonthPlus(sent, 7), until, "retained until the end of its scope's retention")
	until, _ = e.blobs.lockOf(t, e.vault, shared)
	require.Equal(t, endOfMonthPlus(sent.AddDate(0, 1, 0), 7), until, "a shared attachment until its last scope's end")

	// A rule for one conversation that keeps it longer extends only its attachments.
	longer := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "7y", Keep: ledger.Period{Years: 7}},
		{Name: "desk A", Conversations: []string{"cid-a"}, Keep: ledger.Period{Years: 10}}}}
	rep, err = e.ApplyLocks(ctx, &longer)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Retained)
	until, _ = e.blobs.lockOf(t, e.vault, a)
	require.Equal(t, endOfMonthPlus(sent, 10), until)

	// The ledger now knows the longer policy: a new attachment of A gets it as its media record
	// is sealed, and the next pass has nothing to do.
	a2 := attach(t, e.Ledger, "cid-a", 2, sent, "second attachment of A")
	until, _ = e.blobs.lockOf(t, e.vault, a2)
	require.Equal(t, endOfMonthPlus(sent, 10), until)
	rep, err = e.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, rep.Retained)

	// A policy that keeps less than the locks already do asks the store to shorten them; it
	// refuses, and the blobs are kept at least as long as the policy needs: nothing pending.
	shorter := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "5y", Keep: ledger.Period{Years: 5}}}}
	rep, err = e.ApplyLocks(ctx, &shorter)
	require.NoError(t, err)
	require.Zero(t, rep.Failed)
	require.Zero(t, rep.Retained)
	until, _ = e.blobs.lockOf(t, e.vault, a)
	require.Equal(t, endOfMonthPlus(sent, 10), until, "never shortened")
	got, err := e.Blob(ctx, a)
	require.NoError(t, err)
	require.Equal(t, "attachment of A", string(got))

	// A kind no rule matches keeps the scope: its attachments' dates stay.
	onlyMedia := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "media 20y", Kinds: []string{"media"}, Keep: ledger.Period{Years: 20}}}}
	rep, err = e.ApplyLocks(ctx, &onlyMedia)
	require.NoError(t, err)
	require.Zero(t, rep.Retained, "messages are kept by no rule: the scope is kept, no date is set")
}

// TestLocksConvergeAfterTheStoreWasDown: with the blob store down, PlaceHold seals the hold
// (its index is returned, Holds lists it, retention respects it) and reports ErrLocksPending;
// the blob is still there. Once the store is back, ApplyLocks sets the legal hold. A release
// with the store down is finished the same way, by a restarted process too, which clears only
// the legal holds that a ledger hold could have set: one set by someone else on an attachment
// no hold ever covered stays.
func TestLocksConvergeAfterTheStoreWasDown(t *testing.T) {
	ctx := context.Background()
	e := newLockLedger(t, newLockingBlobs(time.Hour))
	sent := thisMonth()
	a := attach(t, e.Ledger, "cid-a", 1, sent, "attachment of A")
	other := attach(t, e.Ledger, "cid-z", 1, sent, "attachment held by someone else")
	require.NoError(t, e.blobs.SetLegalHold(ctx, storedAddr(t, e.vault, other), true))
	held := func(sum [32]byte) bool { _, h := e.blobs.lockOf(t, e.vault, sum); return h }

	e.blobs.setDown(true)
	size := e.Size()
	i, err := e.PlaceHold(ctx, ledger.Hold{ID: "h1", Tenant: "corp1", Conversation: "cid-a", Reason: "inquiry", By: "counsel"})
	require.ErrorIs(t, err, ledger.ErrLocksPending)
	require.ErrorIs(t, err, errDown)
	require.Equal(t, size, i, "the hold entry is sealed and its index returned")
	hs, err := e.Holds(ctx)
	require.NoError(t, err)
	require.Len(t, hs, 1, "the hold is in force in the ledger")
	_, err = e.ApplyLocks(ctx, nil)
	require.ErrorIs(t, err, ledger.ErrLocksPending, "still down")
	e.blobs.setDown(false)
	require.False(t, held(a))

	rep, err := e.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Held)
	require.True(t, held(a), "the pass after the outage sets the legal hold")

	e.blobs.setDown(true)
	_, err = e.ReleaseHold(ctx, "h1", "counsel", "closed")
	require.ErrorIs(t, err, ledger.ErrLocksPending)
	e.blobs.setDown(false)
	require.True(t, held(a), "the store missed the release")
	hs, err = e.Holds(ctx)
	require.NoError(t, err)
	require.Empty(t, hs, "the release is sealed")

	// A restarted process knows nothing of what the last one set: the hold chain tells it.
	require.NoError(t, e.Close())
	l2 := e.reopen(t)
	rep, err = l2.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Cleared, "%+v", rep)
	require.False(t, held(a), "the restarted process clears what the released hold covered")
	require.True(t, held(other), "a legal hold no ledger hold could have set is left alone")
	got, err := l2.Blob(ctx, a)
	require.NoError(t, err)
	require.Equal(t, "attachment of A", string(got), "nothing was lost")
}

// TestApplyRetentionLocksAndShreddingIsUnchanged: ApplyRetention ends with a lock pass under its
// policy; shredding still destroys the keys only, the locked ciphertext stays in the store.
func TestApplyRetentionLocksAndShreddingIsUnchanged(t *testing.T) {
	ctx := context.Background()
	e := newLockLedger(t, newLockingBlobs(time.Hour))
	old := time.Date(2020, 3, 2, 9, 0, 0, 0, time.UTC)
	gone := attach(t, e.Ledger, "cid-old", 1, old, "an old attachment")
	kept := attach(t, e.Ledger, "cid-new", 1, thisMonth(), "a recent attachment")
	oldAddr := storedAddr(t, e.vault, gone)

	shreds, err := e.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "2y", Keep: ledger.Period{Years: 2}}}},
		ledger.ApplyOptions{Authority: "retention job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.Len(t, shreds[0].Blobs, 1)
	until, _ := e.blobs.lockOf(t, e.vault, kept)
	require.Equal(t, endOfMonthPlus(thisMonth(), 2), until, "the live scope's attachment is retained under the policy")
	_, err = e.Blob(ctx, gone)
	require.ErrorIs(t, err, ledger.ErrShredded)
	ct, err := e.blobs.ReadBlob(ctx, oldAddr)
	require.NoError(t, err, "the ciphertext stays in the store")
	require.False(t, bytes.Contains(ct, []byte("an old attachment")))
	require.ErrorIs(t, e.blobs.Delete(oldAddr), errRefused, "and stays locked")

	// The store down at the end of a run: the shreds are done and returned, the locks pending.
	e.blobs.setDown(true)
	_, err = e.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "3y", Keep: ledger.Period{Years: 3}}}},
		ledger.ApplyOptions{Authority: "retention job"})
	require.ErrorIs(t, err, ledger.ErrLocksPending)
	e.blobs.setDown(false)
	rep, err := e.ApplyLocks(ctx, nil)
	require.NoError(t, err, "the policy of the last run is known")
	require.Equal(t, 1, rep.Retained)
	until, _ = e.blobs.lockOf(t, e.vault, kept)
	require.Equal(t, endOfMonthPlus(thisMonth(), 3), until)
}

// TestApplyLocksNeedsALockingStoreAndScopes: a blob store that does not lock objects needs
// nothing (holds and ApplyLocks work as before); a plain ledger over a locking store cannot
// tell scopes apart and says so.
func TestApplyLocksNeedsALockingStoreAndScopes(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	defer e.Close()
	rep, err := e.ApplyLocks(ctx, &ledger.RetentionPolicy{})
	require.NoError(t, err)
	require.Zero(t, rep)
	_, err = e.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Reason: "r", By: "b"})
	require.NoError(t, err)

	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: testKeys(t), CheckpointInterval: time.Hour, Blobs: newLockingBlobs(time.Hour)})
	require.NoError(t, err)
	defer l.Close()
	_, err = l.ApplyLocks(ctx, nil)
	require.ErrorIs(t, err, ledger.ErrNoScopes)
	_, err = l.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Reason: "r", By: "b"})
	require.NoError(t, err, "the hold is sealed; the plain ledger logs that it sets no legal hold")
}

// TestLockPassCostsOneCallPerChange: a pass calls the store only where a lock must change: the
// first pass with a policy sends one date per attachment, the next none; a restarted process,
// which does not know what the last one set, sends every date once again (the store takes the
// same date as no change) and then none.
func TestLockPassCostsOneCallPerChange(t *testing.T) {
	ctx := context.Background()
	e := newLockLedger(t, newLockingBlobs(time.Hour))
	for i := range 5 {
		attach(t, e.Ledger, "cid-a", i, thisMonth(), "attachment "+string(rune('a'+i)))
	}
	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1y", Keep: ledger.Period{Years: 1}}}}
	calls := e.blobs.lockCalls()
	_, err := e.ApplyLocks(ctx, &policy)
	require.NoError(t, err)
	require.Equal(t, 5, e.blobs.lockCalls()-calls)
	calls = e.blobs.lockCalls()
	_, err = e.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 0, e.blobs.lockCalls()-calls)

	require.NoError(t, e.Close())
	l2 := e.reopen(t)
	rep, err := l2.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, rep.Retained, "a restarted process knows no policy until it is given one")
	calls = e.blobs.lockCalls()
	rep, err = l2.ApplyLocks(ctx, &policy)
	require.NoError(t, err)
	require.Equal(t, 5, rep.Retained)
	require.Equal(t, 5, e.blobs.lockCalls()-calls)
	calls = e.blobs.lockCalls()
	_, err = l2.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 0, e.blobs.lockCalls()-calls)
}

// TestLocksFollowHoldsChangedConcurrently: holds placed and released from several goroutines
// while passes run: once they are all done, each attachment is legally held exactly when an
// active hold covers its conversation (run with -race).
func TestLocksFollowHoldsChangedConcurrently(t *testing.T) {
	ctx := context.Background()
	e := newLockLedger(t, newLockingBlobs(time.Hour))
	convs := []string{"cid-0", "cid-1", "cid-2", "cid-3"}
	sums := map[string][32]byte{}
	for i, c := range convs {
		sums[c] = attach(t, e.Ledger, c, i, thisMonth(), "attachment of "+c)
	}
	var wg sync.WaitGroup
	for i, c := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				_, err := e.PlaceHold(ctx, ledger.Hold{ID: "h-" + c, Tenant: "corp1", Conversation: c, Reason: "r", By: "b"})
				require.NoError(t, err)
				if round < 4 || i%2 == 0 {
					_, err = e.ReleaseHold(ctx, "h-"+c, "b", "done")
					require.NoError(t, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 10 {
			_, err := e.ApplyLocks(ctx, nil)
			require.NoError(t, err)
		}
	}()
	wg.Wait()
	for i, c := range convs {
		_, held := e.blobs.lockOf(t, e.vault, sums[c])
		require.Equal(t, i%2 == 1, held, "conversation %s", c)
	}
}

// twoLockingWriters opens two writers of one shared, encrypted ledger in memory, with blobs as
// their blob store and vault as their key vault, as two processes on one PostgreSQL ledger.
func twoLockingWriters(t *testing.T, blobs store.Blobs, vault store.KeyVault) (a, b *ledger.Ledger) {
	t.Helper()
	st, ring, keys := memstore.New(), sealtest.NewKeyring(), testKeys(t)
	open := func() *ledger.Ledger {
		l, err := ledger.Open(context.Background(), st, ledger.Options{Signing: keys, Shared: true, CheckpointInterval: time.Hour,
			Blobs: blobs, Encryption: &ledger.Encryption{Keyring: ring, Vault: vault}})
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		return l
	}
	return open(), open()
}

// keysHook is a shared vault that runs a function once, at the first listing of its keys once
// armed: a lock pass lists them after it has read the holds.
type keysHook struct {
	*memstore.KeyVault
	mu   sync.Mutex
	hook func()
}

func (v *keysHook) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	v.mu.Lock()
	f := v.hook
	v.hook = nil
	v.mu.Unlock()
	if f != nil {
		f()
	}
	return v.KeyVault.Keys(ctx)
}

// TestSharedLockPassFollowsAnotherWritersHold: writer b places a hold while a's pass over the
// locks runs on holds read before it. The stale pass clears the attachment's legal hold that
// b's hold had just set (a had set it for an earlier hold, since released); seeing the hold
// chain moved, a passes again and sets it back, so the held attachment ends held.
func TestSharedLockPassFollowsAnotherWritersHold(t *testing.T) {
	ctx := context.Background()
	blobs, vault := newLockingBlobs(time.Hour), &keysHook{KeyVault: &memstore.KeyVault{}}
	a, b := twoLockingWriters(t, blobs, vault)
	sum := attach(t, a, "cid-a", 1, thisMonth(), "attachment of A")
	held := func() bool { _, h := blobs.lockOf(t, vault, sum); return h }
	_, err := a.PlaceHold(ctx, ledger.Hold{ID: "h0", Tenant: "corp1", Conversation: "cid-a", Reason: "inquiry", By: "counsel"})
	require.NoError(t, err)
	require.True(t, held())
	_, err = b.ReleaseHold(ctx, "h0", "counsel", "closed")
	require.NoError(t, err)
	require.False(t, held())

	vault.mu.Lock()
	vault.hook = func() {
		_, err := b.PlaceHold(ctx, ledger.Hold{ID: "h1", Tenant: "corp1", Conversation: "cid-a", Reason: "new inquiry", By: "counsel"})
		require.NoError(t, err)
		require.True(t, held(), "b's hold sets the legal hold")
	}
	vault.mu.Unlock()
	_, err = a.ApplyLocks(ctx, nil)
	require.NoError(t, err)
	require.True(t, held(), "a's pass, begun before b's hold, left the held attachment without its legal hold")
}

// gatedBlobs is a locking blob store whose Retain calls wait for the gate while it is armed: a
// storage endpoint that hangs.
type gatedBlobs struct {
	*lockingBlobs
	armed   atomic.Bool
	gate    chan struct{} // closed to let the calls through
	waiting chan struct{} // receives when a call starts waiting
}

func (g *gatedBlobs) Retain(ctx context.Context, sum store.Hash, until time.Time) error {
	if g.armed.Load() {
		select {
		case g.waiting <- struct{}{}:
		default:
		}
		select {
		case <-g.gate:
		case <-ctx.Done(): // a client's call gives up with its context
			return ctx.Err()
		}
	}
	return g.lockingBlobs.Retain(ctx, sum, until)
}

// TestMediaAppendDoesNotWaitForALockPass: while a pass over the object locks hangs on the
// storage, a media record that ties an attachment is sealed and acknowledged at once: it used to
// lock its attachment on the caller's path, behind the pass (a capture acknowledgement waiting on
// S3 long enough for the platform to redeliver). The attachment is locked once the pass is done.
func TestMediaAppendDoesNotWaitForALockPass(t *testing.T) {
	ctx := context.Background()
	blobs := &gatedBlobs{lockingBlobs: newLockingBlobs(time.Hour), gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
	st, vault := memstore.New(), &memstore.KeyVault{}
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: testKeys(t), CheckpointInterval: time.Hour, Blobs: blobs,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: vault}})
	require.NoError(t, err)
	defer l.Close()
	sent := thisMonth()
	attach(t, l, "cid-a", 1, sent, "attachment of A")

	blobs.armed.Store(true)
	passed := make(chan error, 1)
	go func() {
		_, err := l.ApplyLocks(ctx, &ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "7y", Keep: ledger.Period{Years: 7}}}})
		passed <- err
	}()
	<-blobs.waiting // the pass holds its lock, waiting for the storage
	appended := make(chan [32]byte, 1)
	go func() { appended <- tie(t, l, "cid-b", 2, sent, "attachment of B") }()
	var sum [32]byte
	select {
	case sum = <-appended:
		close(blobs.gate)
	case <-time.After(10 * time.Second):
		close(blobs.gate)
		t.Fatal("the media record waited for the pass over the locks")
	}
	require.NoError(t, <-passed)
	l.WaitBlobLocks()
	until, _ := blobs.lockOf(t, vault, sum)
	require.True(t, until.Equal(endOfMonthPlus(sent, 7)), "B's attachment is retained until %v; want the policy's %v", until, endOfMonthPlus(sent, 7))
}

// TestAHungLockCallHoldsUpNeitherHoldsNorClose: while the ledger's background locking of an
// attachment hangs on the blob store, a hold placed with a deadline gives up at its deadline
// (with nothing sealed) instead of waiting on the pass lock for ever, and Close returns at once,
// abandoning the call (the next ApplyLocks sets the lock).
func TestAHungLockCallHoldsUpNeitherHoldsNorClose(t *testing.T) {
	ctx := context.Background()
	blobs := &gatedBlobs{lockingBlobs: newLockingBlobs(time.Hour), gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
	defer close(blobs.gate)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: testKeys(t), CheckpointInterval: time.Hour, Blobs: blobs,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	require.NoError(t, err)
	_, err = l.ApplyLocks(ctx, &ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "7y", Keep: ledger.Period{Years: 7}}}})
	require.NoError(t, err)
	blobs.armed.Store(true)
	tie(t, l, "cid-b", 2, thisMonth(), "attachment of B") // acknowledged; the locking hangs
	<-blobs.waiting
	size := l.Size()
	hctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = l.PlaceHold(hctx, ledger.Hold{ID: "h", Tenant: "corp1", Conversation: "cid-x", Reason: "r", By: "c"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, size, l.Size(), "nothing sealed")
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the hung lock call")
	}
}

// clearHook is a locking blob store that runs a function once, when armed, as a legal hold is
// about to be cleared.
type clearHook struct {
	*lockingBlobs
	hook atomic.Pointer[func()]
}

func (c *clearHook) SetLegalHold(ctx context.Context, sum store.Hash, on bool) error {
	if f := c.hook.Load(); !on && f != nil && c.hook.CompareAndSwap(f, nil) {
		(*f)()
	}
	return c.lockingBlobs.SetLegalHold(ctx, sum, on)
}

// TestSharedBlobLockFollowsAnotherWritersHold: the locking of one attachment as a media record
// ties it (not only a pass over all of them) is made again when another writer changes the holds
// while it runs: a's locking, on holds read before b's new hold, cleared the legal hold b had
// just set on the attachment of a conversation b holds.
func TestSharedBlobLockFollowsAnotherWritersHold(t *testing.T) {
	ctx := context.Background()
	blobs, vault := &clearHook{lockingBlobs: newLockingBlobs(time.Hour)}, &memstore.KeyVault{}
	a, b := twoLockingWriters(t, blobs, vault)
	_, err := a.PlaceHold(ctx, ledger.Hold{ID: "h0", Tenant: "corp1", Conversation: "cid-a", Reason: "inquiry", By: "counsel"})
	require.NoError(t, err)
	sum := attach(t, a, "cid-a", 1, thisMonth(), "attachment of A")
	held := func() bool { _, h := blobs.lockOf(t, vault, sum); return h }
	require.True(t, held())
	_, err = b.ReleaseHold(ctx, "h0", "counsel", "closed")
	require.NoError(t, err)
	require.False(t, held())

	f := func() {
		_, err := b.PlaceHold(ctx, ledger.Hold{ID: "h1", Tenant: "corp1", Conversation: "cid-a", Reason: "new inquiry", By: "counsel"})
		require.NoError(t, err)
		require.True(t, held(), "b's hold sets the legal hold")
	}
	blobs.hook.Store(&f)
	attach(t, a, "cid-a", 2, thisMonth(), "attachment of A") // a media record ties it again: a locks it on stale holds
	require.Nil(t, blobs.hook.Load(), "the test's hook ran")
	require.True(t, held(), "a's locking, begun before b's hold, left the held attachment without its legal hold")
}
