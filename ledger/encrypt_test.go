package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

type encLedger struct {
	*ledger.Ledger
	st    *memstore.Store
	vault store.KeyVault
	ring  seal.Keyring
	keys  *seal.SigningKey
	now   *time.Time
}

func newKEK(t testing.TB, id string) *seal.KEKKeyring {
	k, err := seal.NewKEKKeyring(id, bytes.Repeat([]byte{byte(len(id))}, 32))
	require.NoError(t, err)
	return k
}

func openEnc(t testing.TB, st *memstore.Store, vault store.KeyVault, ring seal.Keyring, keys *seal.SigningKey, now *time.Time) *ledger.Ledger {
	t.Helper()
	opts := ledger.Options{Signing: keys, CheckpointEvery: 100, CheckpointInterval: time.Hour,
		Encryption: &ledger.Encryption{Keyring: ring, Vault: vault}}
	if now != nil {
		opts.Now = func() time.Time { return *now }
	}
	l, err := ledger.Open(context.Background(), st, opts)
	require.NoError(t, err)
	return l
}

func newEnc(t testing.TB) *encLedger { return newEncWith(t, &memstore.KeyVault{}) }

// newEncWith opens an encrypted ledger in memory with its keys in vault.
func newEncWith(t testing.TB, vault store.KeyVault) *encLedger {
	e := &encLedger{st: memstore.New(), vault: vault, ring: sealtest.NewKeyring(), keys: testKeys(t)}
	now := time.Date(2026, 7, 2, 9, 0, 0, 0, time.UTC)
	e.now = &now
	e.Ledger = openEnc(t, e.st, e.vault, e.ring, e.keys, e.now)
	return e
}

func secretMsg(i int, conv string, sent time.Time, text string) *capture.Message {
	return &capture.Message{
		Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprintf("m-%s-%d", conv, i),
		Conversation: capture.Conversation{ID: conv, Type: capture.ConversationGroup, Title: "Confidential Desk 機密交易組"},
		Sender:       capture.Party{ID: "u1", Name: "Wong Siu Ming 黃小明"},
		SentAt:       sent, Kind: capture.KindText, Text: text,
		Raw: []byte(`{"text":{"content":"` + text + `"},"senderNick":"Wong Siu Ming 黃小明"}`),
	}
}

func TestEncryptedLedgerStoresNoPlaintextAndAuditsAccess(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	secrets := []string{"BUY-9988-SECRET-ORDER", "Wong Siu Ming", "黃小明", "Confidential Desk", "機密交易組"}
	for i := 0; i < 20; i++ {
		_, err := e.Append(ctx, secretMsg(i, "cid-a", time.Date(2026, 6, 1+i, 0, 0, 0, 0, time.UTC), "BUY-9988-SECRET-ORDER now"))
		require.NoError(t, err)
	}
	sum, err := e.PutBlob(ctx, []byte("ATTACHMENT-PLAINTEXT-CONTENT"))
	require.NoError(t, err)
	secrets = append(secrets, "ATTACHMENT-PLAINTEXT-CONTENT")
	require.NoError(t, e.Close())

	// Nothing stored anywhere (entries, blobs, wrapped keys, checkpoints) holds a secret.
	var all [][]byte
	for en, err := range e.st.Entries(ctx, 0, math.MaxUint64) {
		require.NoError(t, err)
		all = append(all, en.Leaf, en.Payload)
	}
	for wk, err := range e.vault.Keys(ctx) {
		require.NoError(t, err)
		all = append(all, wk.Wrapped, wk.Meta, []byte(wk.ID))
		var meta struct{ Blob string }
		require.NoError(t, json.Unmarshal(wk.Meta, &meta))
		if meta.Blob != "" {
			addr, _ := hex.DecodeString(meta.Blob)
			b, err := e.st.ReadBlob(ctx, store.Hash(addr))
			require.NoError(t, err)
			all = append(all, b)
		}
	}
	s, enc, found := leakcheck.Find(bytes.Join(all, nil), secrets)
	require.False(t, found, "stored bytes contain %q (as %q)", s, enc)

	// Reading: plain Get does not decrypt; an accessor does, and leaves an access entry first.
	l := openEnc(t, e.st, e.vault, e.ring, e.keys, e.now)
	defer l.Close()
	_, err = l.Get(ctx, 3)
	require.ErrorIs(t, err, ledger.ErrEncrypted)
	before := l.Size()
	got, err := l.Access("alice@compliance", "SFC request 2026-117").Get(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, "BUY-9988-SECRET-ORDER now", got.Message.Text)
	require.Equal(t, before+1, l.Size())
	acc, err := l.Get(ctx, before)
	require.NoError(t, err)
	require.Equal(t, seal.KindAccess, acc.Leaf.Kind)
	require.Contains(t, string(acc.Body), `"who":"alice@compliance"`)
	require.Contains(t, string(acc.Body), `"from":3,"to":4`)
	b, err := l.Access("bob", "review").Blob(ctx, sum)
	require.NoError(t, err)
	require.Equal(t, "ATTACHMENT-PLAINTEXT-CONTENT", string(b))
	n := 0
	require.NoError(t, l.Access("carol", "drill").Scan(ctx, 0, 20, func(e *ledger.Entry, err error) error {
		require.NoError(t, err)
		n++
		return nil
	}))
	require.Equal(t, 20, n)
	_, err = l.Access("", "").Get(ctx, 1)
	require.Error(t, err, "an access needs who and why")
	require.NoError(t, l.Close())
	rep, err := verify.Ledger(ctx, e.st, e.keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(20), rep.Encrypted)
	require.Equal(t, uint64(3), rep.Kinds["access"])
}

// tamperStore returns entry `index` altered by mutate.
type tamperStore struct {
	store.Store
	index  uint64
	mutate func(*store.Entry)
}

func (s *tamperStore) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for e, err := range s.Store.Entries(ctx, start, end) {
			if err == nil && e.Index == s.index {
				s.mutate(&e)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func TestTamperedCiphertextIsDetected(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	for i := 0; i < 10; i++ {
		_, err := e.Append(ctx, secretMsg(i, "cid-a", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "order"))
		require.NoError(t, err)
	}
	require.NoError(t, e.Close())
	// Verify: the ciphertext no longer matches the hash in its leaf.
	s, err := storetest.TakeSnapshot(ctx, e.st)
	require.NoError(t, err)
	s.Log[6].Payload[40] ^= 1
	_, err = verify.Ledger(ctx, s, e.keys.Verifier, verify.Options{})
	var ve *verify.AlteredError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, uint64(6), ve.Index)

	// Decryption: someone rewrites the ciphertext and the payload hash in its leaf (which Verify
	// catches in the tree); a reader is stopped by the authentication tag and told which entry.
	ts := &tamperStore{Store: e.st, index: 6, mutate: func(en *store.Entry) {
		en.Payload[40] ^= 1
		leaf, err := seal.ParseLeaf(en.Leaf)
		require.NoError(t, err)
		leaf.PayloadHash = sha256.Sum256(en.Payload)
		en.Leaf, err = leaf.MarshalBinary()
		require.NoError(t, err)
	}}
	l2, err := ledger.Open(ctx, ts, ledger.Options{Signing: e.keys, Encryption: &ledger.Encryption{Keyring: e.ring, Vault: e.vault}})
	require.NoError(t, err)
	defer l2.Close()
	_, err = l2.Access("auditor", "test").Get(ctx, 6)
	require.ErrorIs(t, err, seal.ErrDecrypt)
	require.ErrorContains(t, err, "entry 6")
	_, err = l2.Access("auditor", "test").Get(ctx, 5)
	require.NoError(t, err)
}

func TestStateKeyIsStableWrappedAndNeverShredded(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	k1, err := e.StateKey(ctx, "media-journal")
	require.NoError(t, err)
	require.Len(t, k1, seal.DataKeySize)
	other, err := e.StateKey(ctx, "search-index")
	require.NoError(t, err)
	require.NotEqual(t, k1, other, "each state has its own key")
	for _, bad := range []string{"", "Media", "a/b", "x y", string(bytes.Repeat([]byte("a"), 65))} {
		_, err := e.StateKey(ctx, bad)
		require.ErrorIs(t, err, ledger.ErrBadStateName, "%q", bad)
	}
	// The key is kept wrapped, never in plain, and survives a reopen.
	wk, err := e.vault.Key(ctx, "state1.media-journal")
	require.NoError(t, err)
	require.NotContains(t, string(wk.Wrapped), string(k1))
	require.NoError(t, e.Close())
	e.Ledger = openEnc(t, e.st, e.vault, e.ring, e.keys, e.now)
	k2, err := e.StateKey(ctx, "media-journal")
	require.NoError(t, err)
	require.Equal(t, k1, k2)
	// Retention that keeps nothing leaves it alone.
	_, err = e.Append(ctx, secretMsg(1, "c1", e.now.AddDate(-5, 0, 0), "old"))
	require.NoError(t, err)
	shreds, err := e.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "none"}}},
		ledger.ApplyOptions{Authority: "test"})
	require.NoError(t, err)
	require.Len(t, shreds, 1, "the old message's scope goes")
	k3, err := e.StateKey(ctx, "media-journal")
	require.NoError(t, err)
	require.Equal(t, k1, k3)
	// Without encryption there is no state key.
	plain := openLedger(t, memstore.New(), testKeys(t), 100)
	_, err = plain.StateKey(ctx, "media-journal")
	require.Error(t, err)
}

// TestASmallKeyCacheStillReadsEverything: with room for two keys, a ledger of five scopes is
// written and read back whole (keys are dropped and reloaded from the vault as needed).
func TestASmallKeyCacheStillReadsEverything(t *testing.T) {
	ctx := context.Background()
	st, vault := memstore.New(), &memstore.KeyVault{}
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: testKeys(t), CheckpointEvery: 1000, CheckpointInterval: time.Hour,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: vault, CachedKeys: 2}})
	require.NoError(t, err)
	defer l.Close()
	for i := range 20 {
		_, err := l.Append(ctx, secretMsg(i, fmt.Sprint("cid-", i%5), time.Date(2026, 6, 1, i, 0, 0, 0, time.UTC), fmt.Sprint("order ", i)))
		require.NoError(t, err)
	}
	n := 0
	require.NoError(t, l.Access("t", "small cache").Scan(ctx, 0, l.Size(), func(e *ledger.Entry, err error) error {
		require.NoError(t, err)
		if e.Message != nil {
			require.Equal(t, fmt.Sprint("order ", e.Index), e.Message.Text)
			n++
		}
		return nil
	}))
	require.Equal(t, 20, n)
}
