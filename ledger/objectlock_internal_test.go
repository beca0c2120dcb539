package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// memLocker is a blob store in memory with a retain-until date (only ever extended) and a
// legal hold per object.
type memLocker struct {
	mu    sync.Mutex
	data  map[store.Hash][]byte
	until map[store.Hash]time.Time
	held  map[store.Hash]bool
}

func newMemLocker() *memLocker {
	return &memLocker{data: map[store.Hash][]byte{}, until: map[store.Hash]time.Time{}, held: map[store.Hash]bool{}}
}

func (m *memLocker) WriteBlob(_ context.Context, sum store.Hash, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sha256.Sum256(data) != sum {
		return store.ErrHashMismatch
	}
	if _, ok := m.data[sum]; !ok {
		m.data[sum], m.until[sum] = bytes.Clone(data), time.Now().Add(time.Hour)
	}
	return nil
}

func (m *memLocker) ReadBlob(_ context.Context, sum store.Hash) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.data[sum]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(d), nil
}

func (m *memLocker) RetainUntil(_ context.Context, sum store.Hash) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.until[sum], nil
}

func (m *memLocker) Retain(_ context.Context, sum store.Hash, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[sum]; !ok {
		return store.ErrNotFound
	}
	if until.Before(m.until[sum]) {
		return errors.New("memLocker: refused: earlier than the current date")
	}
	m.until[sum] = until
	return nil
}

func (m *memLocker) SetLegalHold(_ context.Context, sum store.Hash, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[sum]; !ok {
		return store.ErrNotFound
	}
	m.held[sum] = on
	return nil
}

func (m *memLocker) lock(sum store.Hash) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.until[sum], m.held[sum]
}

// TestLockBlobLocksAnAttachmentOnceTied: lockBlob, which AppendRecord has called (off its path) to lock an attachment
// as soon as a media record ties it to a scope, gives it the date of the policy the ledger knows and the legal
// hold of the hold that covers its scope, without waiting for a pass; and a pass forgets the
// attachments whose scopes were shredded.
func TestLockBlobLocksAnAttachmentOnceTied(t *testing.T) {
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey("commseal.test/objectlock")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	blobs := newMemLocker()
	vault := &memstore.KeyVault{}
	l, err := Open(ctx, memstore.New(), Options{Signing: keys, CheckpointInterval: time.Hour, Blobs: blobs,
		Encryption: &Encryption{Keyring: sealtest.NewKeyring(), Vault: vault}})
	require.NoError(t, err)
	defer l.Close()

	policy := RetentionPolicy{Rules: []RetentionRule{{Name: "1y", Keep: Period{Years: 1}}}}
	_, err = l.ApplyLocks(ctx, &policy)
	require.NoError(t, err)
	_, err = l.PlaceHold(ctx, Hold{ID: "h", Tenant: "corp1", Conversation: "cid-a", Reason: "r", By: "b"})
	require.NoError(t, err)

	n := time.Now().UTC()
	sent := time.Date(n.Year(), n.Month(), 1, 9, 0, 0, 0, time.UTC)
	tie := func(conv, content string) (sum [32]byte, addr store.Hash) {
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: "m-" + conv, Conversation: capture.Conversation{ID: conv},
			SentAt: sent, Kind: capture.KindFile, Text: "file", Raw: []byte(`{}`)}
		_, err := l.Append(ctx, m)
		require.NoError(t, err)
		sum, err = l.PutBlob(ctx, []byte(content))
		require.NoError(t, err)
		body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
		about := m.Identity()
		_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1", ID: "media-" + conv,
			Conversation: capture.Conversation{ID: conv}, About: &about, At: sent.Add(time.Minute), Body: body})
		require.NoError(t, err)
		l.blobLocks.wait()
		sc, err := l.dk.readScope(ctx, blobKeyID(sum))
		require.NoError(t, err)
		a, err := hex.DecodeString(sc.Blob)
		require.NoError(t, err)
		return sum, store.Hash(a)
	}
	// AppendRecord of each media record locks its attachment at once (lockBlob).
	a, addrA := tie("cid-a", "attachment of A")
	b, addrB := tie("cid-b", "attachment of B")
	end := time.Date(sent.Year(), sent.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(1, 1, 0)
	until, held := blobs.lock(addrA)
	require.True(t, until.Equal(end), "until %v; want %v", until, end)
	require.True(t, held, "the hold on its conversation holds it")
	until, held = blobs.lock(addrB)
	require.True(t, until.Equal(end))
	require.False(t, held)
	require.Len(t, l.holds.locks.set, 2)
	require.NoError(t, l.lockBlob(ctx, a), "again: nothing changes")
	require.Len(t, l.holds.locks.set, 2)

	// Shred B's scope (judged two years on); the pass at the end of the run forgets B.
	shreds, err := l.ApplyRetention(ctx, policy, ApplyOptions{Now: n.AddDate(2, 0, 0), Authority: "test"})
	require.NoError(t, err)
	require.Len(t, shreds, 1, "A's scope is held")
	require.Len(t, l.holds.locks.set, 1)
	_, ok := l.holds.locks.set[addrA]
	require.True(t, ok)
	require.NoError(t, l.lockBlob(ctx, b), "a shredded attachment: nothing to lock")
}

// wait waits until every attachment queued so far has been through lockBlob.
func (b *blobLocker) wait() {
	for b.pending.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
}
