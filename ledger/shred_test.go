package ledger_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

var keepOneYear = ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}}

// withAttachment seals an old message in conv with an attachment, and returns the message's
// index and the attachment's hash.
func withAttachment(t *testing.T, e *encLedger, conv, text string) (uint64, [32]byte) {
	t.Helper()
	ctx := context.Background()
	sent := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC)
	m := secretMsg(1, conv, sent, text)
	rc, err := e.Append(ctx, m)
	require.NoError(t, err)
	sum, err := e.PutBlob(ctx, []byte("attachment of "+conv))
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	about := m.Identity()
	_, err = e.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1", ID: "media-" + conv,
		Conversation: capture.Conversation{ID: conv}, About: &about, At: sent.Add(time.Minute), Body: body})
	require.NoError(t, err)
	return rc.Index, sum
}

func blobKey(sum [32]byte) string { return "blob1." + hex.EncodeToString(sum[:16]) }

func shredEntries(t *testing.T, e *encLedger) []ledger.Shred {
	t.Helper()
	var out []ledger.Shred
	for i := range e.Size() {
		en, err := e.Get(context.Background(), i)
		if err != nil || en.Leaf.Kind != seal.KindShred {
			continue
		}
		var s ledger.Shred
		require.NoError(t, json.Unmarshal(en.Body, &s))
		out = append(out, s)
	}
	return out
}

// TestInterruptedShredIsFinished: when destroying an attachment's key fails after the shred
// entry was sealed, the next run destroys everything the entry names (issue #9 item 4: the
// next run did nothing, and the attachment stayed readable while the shred entry said it went).
func TestInterruptedShredIsFinished(t *testing.T) {
	ctx := context.Background()
	vault := &hookVault{KeyVault: &memstore.KeyVault{}, failOnce: map[string]bool{}}
	e := newEncWith(t, vault)
	msgAt, sum := withAttachment(t, e, "cid-a", "expired order")
	vault.failOnce[blobKey(sum)] = true

	_, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.ErrorContains(t, err, "the disk said no")
	entries := shredEntries(t, e)
	require.Len(t, entries, 1, "the shred entry was sealed before the failure")
	require.Equal(t, []string{blobKey(sum)}, entries[0].Blobs)
	// Until the run is finished, nothing new is sealed under the key the entry names.
	_, err = e.Append(ctx, secretMsg(2, "cid-a", time.Date(2023, 2, 9, 0, 0, 0, 0, time.UTC), "late backfill"))
	require.ErrorIs(t, err, ledger.ErrShredded)

	shreds, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.True(t, shreds[0].Resumed)
	require.Equal(t, entries[0].KeyID, shreds[0].KeyID)
	require.Len(t, shredEntries(t, e), 1, "finishing seals no second entry")
	acc := e.Access("auditor", "check")
	_, err = acc.Blob(ctx, sum)
	require.ErrorIs(t, err, ledger.ErrShredded, "the attachment the entry names is gone")
	_, err = acc.Get(ctx, msgAt)
	require.ErrorIs(t, err, ledger.ErrShredded)
	again, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Empty(t, again)
}

// TestInterruptedBeforeTheScopeKeyIsFinished: the same when the scope's own key could not be
// destroyed.
func TestInterruptedBeforeTheScopeKeyIsFinished(t *testing.T) {
	ctx := context.Background()
	vault := &hookVault{KeyVault: &memstore.KeyVault{}, failOnce: map[string]bool{}}
	e := newEncWith(t, vault)
	msgAt, sum := withAttachment(t, e, "cid-a", "expired order")
	en, err := e.Get(ctx, msgAt)
	require.ErrorIs(t, err, ledger.ErrEncrypted)
	vault.failOnce[en.Leaf.KeyID] = true
	_, err = e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.Error(t, err)
	shreds, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.True(t, shreds[0].Resumed)
	_, err = e.vault.Key(ctx, en.Leaf.KeyID)
	require.ErrorIs(t, err, store.ErrDestroyed)
	_, err = e.vault.Key(ctx, blobKey(sum))
	require.ErrorIs(t, err, store.ErrDestroyed)
}

// setMetaHook calls onMark when the key given is marked for shredding.
type setMetaHook struct {
	*memstore.KeyVault
	mu     sync.Mutex
	key    string
	onMark func()
}

// UpdateMeta runs the hook as SetMeta does: the ledger changes metadata through it when the
// vault has it.
func (v *setMetaHook) UpdateMeta(ctx context.Context, id string, update func([]byte) ([]byte, error)) error {
	var meta []byte
	err := v.KeyVault.UpdateMeta(ctx, id, func(old []byte) ([]byte, error) {
		m, err := update(old)
		meta = m
		return m, err
	})
	v.after(id, meta, err)
	return err
}

func (v *setMetaHook) SetMeta(ctx context.Context, id string, meta []byte) error {
	err := v.KeyVault.SetMeta(ctx, id, meta)
	v.after(id, meta, err)
	return err
}

// after runs the hook once key id's metadata is written with a shredding mark.
func (v *setMetaHook) after(id string, meta []byte, err error) {
	v.mu.Lock()
	hook := v.onMark
	if id != v.key || firstKeyOf(meta, "shredding") == "" {
		hook = nil
	}
	if hook != nil {
		v.onMark = nil
	}
	v.mu.Unlock()
	if hook != nil && err == nil {
		hook()
	}
}

func firstKeyOf(meta []byte, k string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(meta, &m) == nil && m[k] != nil && string(m[k]) != "null" {
		return k
	}
	return ""
}

// TestHoldAfterTheMarkWinsAndClearsIt: a hold sealed after a key was marked for shredding but
// before its shred entry stops the shred and clears the mark; the scope takes new entries.
func TestHoldAfterTheMarkWinsAndClearsIt(t *testing.T) {
	ctx := context.Background()
	vault := &setMetaHook{KeyVault: &memstore.KeyVault{}}
	e := newEncWith(t, vault)
	sent := time.Date(2023, 5, 5, 0, 0, 0, 0, time.UTC)
	rc, err := e.Append(ctx, secretMsg(1, "cid-h", sent, "under investigation"))
	require.NoError(t, err)
	en, _ := e.Get(ctx, rc.Index)
	vault.key = en.Leaf.KeyID
	vault.onMark = func() {
		_, err := e.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Conversation: "cid-h", Reason: "inquiry", By: "counsel"})
		require.NoError(t, err)
	}
	shreds, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Empty(t, shreds)
	require.Nil(t, vault.onMark, "the key was marked")
	wk, err := e.vault.Key(ctx, en.Leaf.KeyID)
	require.NoError(t, err)
	require.Empty(t, firstKeyOf(wk.Meta, "shredding"), "the mark is cleared")
	_, err = e.Append(ctx, secretMsg(2, "cid-h", sent.Add(time.Hour), "more"))
	require.NoError(t, err, "the held scope takes new entries")
	got, err := e.Access("a", "b").Get(ctx, rc.Index)
	require.NoError(t, err)
	require.Equal(t, "under investigation", got.Message.Text)
}

// TestShreddingRetiresTheKEK: a run that destroys keys ends by rotating the KEK, rewrapping the
// surviving keys and retiring the old KEK, so a copy of the vault taken before (a backup, a
// block the disk kept) no longer unwraps the destroyed key, nor any other (issue #9 item 1).
func TestShreddingRetiresTheKEK(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	ring := e.ring.(*sealtest.Keyring)
	gone, _ := withAttachment(t, e, "cid-old", "expired")
	keep, err := e.Append(ctx, secretMsg(1, "cid-new", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "recent"))
	require.NoError(t, err)
	backup := map[string]store.WrappedKey{}
	for wk, err := range e.vault.Keys(ctx) {
		require.NoError(t, err)
		backup[wk.ID] = wk
	}
	old := ring.ID()
	shreds, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.NotEqual(t, old, ring.ID(), "the KEK rotated")
	keks, err := ring.KEKs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{ring.ID()}, keks, "the old KEK is retired")
	for id, wk := range backup {
		_, err := ring.Unwrap(ctx, wk.KEK, id, wk.Wrapped)
		require.ErrorIs(t, err, seal.ErrUnknownKEK, "the backup of %s no longer unwraps", id)
	}
	for wk, err := range e.vault.Keys(ctx) {
		require.NoError(t, err)
		if !wk.Destroyed {
			require.Equal(t, ring.ID(), wk.KEK, "%s is rewrapped under the new KEK", wk.ID)
		}
	}
	acc := e.Access("a", "b")
	_, err = acc.Get(ctx, gone)
	require.ErrorIs(t, err, ledger.ErrShredded)
	got, err := acc.Get(ctx, keep.Index)
	require.NoError(t, err)
	require.Equal(t, "recent", got.Message.Text)
	// A run that destroys nothing retires nothing.
	cur := ring.ID()
	again, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	require.Empty(t, again)
	require.Equal(t, cur, ring.ID())
	// RetireKEKs does it on demand.
	require.NoError(t, e.RetireKEKs(ctx))
	require.NotEqual(t, cur, ring.ID())
	got, err = acc.Get(ctx, keep.Index)
	require.NoError(t, err)
	require.Equal(t, "recent", got.Message.Text)
}

// TestRetentionRefusesAKeyringThatCannotRetire: with a keyring that cannot retire KEKs, a run
// refuses to shred (destroyed keys would live on in every copy of the vault); a dry run works.
func TestRetentionRefusesAKeyringThatCannotRetire(t *testing.T) {
	ctx := context.Background()
	e := &encLedger{st: memstore.New(), vault: &memstore.KeyVault{}, ring: newKEK(t, "static"), keys: testKeys(t)}
	e.Ledger = openEnc(t, e.st, e.vault, e.ring, e.keys, nil)
	defer e.Close()
	i, _ := withAttachment(t, e, "cid", "old")
	dry, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, dry, 1)
	size := e.Size()
	_, err = e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.ErrorIs(t, err, ledger.ErrCannotRetireKEK)
	require.Equal(t, size, e.Size(), "nothing sealed")
	got, err := e.Access("a", "b").Get(ctx, i)
	require.NoError(t, err, "nothing destroyed")
	require.Equal(t, "old", got.Message.Text)
	require.ErrorIs(t, e.RetireKEKs(ctx), ledger.ErrCannotRetireKEK)
}

// faultyRing fails the named step once.
type faultyRing struct {
	*sealtest.Keyring
	mu   sync.Mutex
	fail map[string]int // step -> calls to let through before failing once
}

func (r *faultyRing) step(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.fail[name]
	if !ok {
		return nil
	}
	if n > 0 {
		r.fail[name] = n - 1
		return nil
	}
	delete(r.fail, name)
	return fmt.Errorf("faultyRing: %s failed", name)
}

func (r *faultyRing) Rotate(ctx context.Context) (string, error) {
	if err := r.step("rotate"); err != nil {
		return "", err
	}
	return r.Keyring.Rotate(ctx)
}

func (r *faultyRing) Wrap(ctx context.Context, id string, dek []byte) (string, []byte, error) {
	if err := r.step("wrap"); err != nil {
		return "", nil, err
	}
	return r.Keyring.Wrap(ctx, id, dek)
}

func (r *faultyRing) Retire(ctx context.Context, kek string) error {
	if err := r.step("retire"); err != nil {
		return err
	}
	return r.Keyring.Retire(ctx, kek)
}

// TestKEKRetirementIsFinishedAfterAFailureAtAnyStep: retiring fails at the rotation, at the
// rewrapping of one key, or at the retirement; the next run (with nothing new to shred)
// finishes it, and every surviving key stays readable throughout.
func TestKEKRetirementIsFinishedAfterAFailureAtAnyStep(t *testing.T) {
	ctx := context.Background()
	for _, step := range []struct {
		name  string
		after int
	}{{"rotate", 0}, {"wrap", 0}, {"wrap", 3}, {"retire", 0}} {
		t.Run(fmt.Sprintf("%s-%d", step.name, step.after), func(t *testing.T) {
			ring := &faultyRing{Keyring: sealtest.NewKeyring(), fail: map[string]int{}}
			e := &encLedger{st: memstore.New(), vault: &memstore.KeyVault{}, ring: ring, keys: testKeys(t)}
			e.Ledger = openEnc(t, e.st, e.vault, ring, e.keys, nil)
			defer e.Close()
			withAttachment(t, e, "cid-old", "expired")
			var keep []uint64
			for i := range 6 {
				rc, err := e.Append(ctx, secretMsg(i, fmt.Sprint("cid-", i), time.Date(2026, time.Month(1+i), 1, 0, 0, 0, 0, time.UTC), fmt.Sprint("keep ", i)))
				require.NoError(t, err)
				keep = append(keep, rc.Index)
			}
			old := ring.ID()
			ring.fail[step.name] = step.after
			_, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
			require.ErrorContains(t, err, "faultyRing")
			readAll := func() {
				for k, i := range keep {
					got, err := e.Access("a", "b").Get(ctx, i)
					require.NoError(t, err)
					require.Equal(t, fmt.Sprint("keep ", k), got.Message.Text)
				}
			}
			readAll()
			again, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
			require.NoError(t, err)
			require.Empty(t, again)
			keks, err := ring.KEKs(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{ring.ID()}, keks)
			require.NotEqual(t, old, ring.ID())
			for wk, err := range e.vault.Keys(ctx) {
				require.NoError(t, err)
				require.True(t, wk.Destroyed || wk.KEK == ring.ID(), "%s under %s", wk.ID, wk.KEK)
			}
			readAll()
		})
	}
}

// TestAppendsDuringKEKRetirementAreNeverLost: keys created while a run rotates, rewraps and
// retires are never left under a retired KEK (run with -race).
func TestAppendsDuringKEKRetirementAreNeverLost(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	for i := range 20 {
		_, err := e.Append(ctx, secretMsg(i, fmt.Sprint("old-", i), time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), "old"))
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	var written []uint64
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A new scope each time: a new data key wrapped under whichever KEK is current.
				rc, err := e.Append(ctx, secretMsg(i, fmt.Sprintf("new-%d-%d", w, i), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "new"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				written = append(written, rc.Index)
				mu.Unlock()
			}
		})
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(written)
	}
	for run := range 3 {
		// Each run begins after the writers have made progress, so that appends overlap it.
		for n := count(); count() < n+4*(run+1); {
			time.Sleep(time.Millisecond)
		}
		_, err := e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
		require.NoError(t, err)
		require.NoError(t, e.RetireKEKs(ctx))
	}
	close(stop)
	wg.Wait()
	require.NotEmpty(t, written)
	acc := e.Access("a", "b")
	for _, i := range written {
		got, err := acc.Get(ctx, i)
		require.NoError(t, err, "entry %d", i)
		require.Equal(t, "new", got.Message.Text)
	}
}

// TestRedeliveryAfterShredIsADuplicate: a message sealed before its key was shredded, delivered
// again (a platform's redelivery, a backfill run twice), is answered as the duplicate it is,
// whether the store looks identities up one at a time (the file store), in batches (memstore,
// as PostgreSQL), or the ledger is shared; it used to fail with ErrShredded where the lookup
// waits for the batch, since sealing it again needs the destroyed key.
func TestRedeliveryAfterShredIsADuplicate(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)
	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "2y", Keep: ledger.Period{Years: 2}}}}
	for _, shared := range []bool{false, true} {
		mem := memstore.New()
		l, err := ledger.Open(ctx, mem, ledger.Options{Signing: testKeys(t), Shared: shared, CheckpointInterval: time.Hour,
			Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
		require.NoError(t, err)
		m := secretMsg(1, "cid-desk", start.AddDate(0, 0, 3), "an old order")
		rc, err := l.Append(ctx, m)
		require.NoError(t, err)
		shreds, err := l.ApplyRetention(ctx, policy, ledger.ApplyOptions{Now: start.AddDate(3, 0, 0), Authority: "job"})
		require.NoError(t, err)
		require.Len(t, shreds, 1)
		size := l.Size()
		again, err := l.Append(ctx, m)
		require.NoError(t, err, "shared %v", shared)
		require.True(t, again.Duplicate)
		require.Equal(t, rc.Index, again.Index)
		require.Equal(t, size, l.Size(), "nothing appended")
		_, err = l.Append(ctx, secretMsg(2, "cid-desk", start.AddDate(0, 0, 4), "new to the ledger, in the shredded month"))
		require.ErrorIs(t, err, ledger.ErrShredded, "a message the ledger never had is still refused")
		require.NoError(t, l.Close())
	}
}
