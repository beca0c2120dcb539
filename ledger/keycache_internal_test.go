package ledger

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

func testKeyCache(t *testing.T, vault store.KeyVault) *keyCache {
	t.Helper()
	ring, err := seal.NewKEKKeyring("kek", bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	return newKeyCache(&Encryption{Keyring: ring, Vault: vault})
}

func testScope(i int) (string, keyScope) {
	return fmt.Sprintf("dk1.2026-07.%024d", i), keyScope{Tenant: "corp1", Conversation: fmt.Sprint("cid-", i), Month: "2026-07"}
}

// TestKeyCacheDropsOneKeyWhenFull: a full cache makes room by dropping one key, not all of them
// (it used to clear itself whole, so a pass over more scopes than it holds reloaded every key),
// and a dropped key comes back from the vault as it was.
func TestKeyCacheDropsOneKeyWhenFull(t *testing.T) {
	ctx := context.Background()
	c := testKeyCache(t, &memstore.KeyVault{})
	c.limit = 4
	deks := map[string][]byte{}
	for i := range 10 {
		id, sc := testScope(i)
		dek, err := c.get(ctx, id, sc, true, "message")
		require.NoError(t, err)
		deks[id] = bytes.Clone(dek)
		require.Len(t, c.keys, min(i+1, c.limit), "after adding key %d", i)
		require.Contains(t, c.keys, id, "the key just added is cached")
	}
	for id, want := range deks {
		dek, err := c.get(ctx, id, keyScope{}, false, "")
		require.NoError(t, err)
		require.Equal(t, want, dek, "key %s", id)
		dek, err = c.get(ctx, id, keyScope{}, false, "message")
		require.NoError(t, err)
		require.Equal(t, want, dek, "key %s for an append", id)
	}
	require.Len(t, c.keys, c.limit)
	require.Empty(t, c.slots)
}

// TestKeyBeingMarkedIsNotHandedToAnAppend: once retention starts marking a cached key for
// shredding, an append asking for it waits and then gets ErrShredded, never the key; a reader
// still gets it.
func TestKeyBeingMarkedIsNotHandedToAnAppend(t *testing.T) {
	ctx := context.Background()
	c := testKeyCache(t, &memstore.KeyVault{})
	id, sc := testScope(1)
	dek, err := c.get(ctx, id, sc, true, "message")
	require.NoError(t, err)
	dek = bytes.Clone(dek)

	entered, release := make(chan struct{}), make(chan struct{})
	marked := make(chan error, 1)
	go func() {
		m, err := c.mark(ctx, id, "run-1", func(sc *keyScope) ([]string, bool, error) {
			close(entered)
			<-release
			return nil, true, nil
		})
		if err == nil && m == nil {
			err = fmt.Errorf("mark returned no mark")
		}
		marked <- err
	}()
	<-entered
	appended := make(chan error, 1)
	go func() {
		_, err := c.get(ctx, id, sc, true, "message")
		appended <- err
	}()
	close(release)
	require.NoError(t, <-marked)
	require.ErrorIs(t, <-appended, ErrShredded, "an append that asked while the key was being marked")
	_, err = c.get(ctx, id, sc, true, "message")
	require.ErrorIs(t, err, ErrShredded, "an append after the mark")
	got, err := c.get(ctx, id, keyScope{}, false, "")
	require.NoError(t, err)
	require.Equal(t, dek, got, "a reader of a marked key")

	require.NoError(t, c.unmark(ctx, id, "run-2"))
	_, err = c.get(ctx, id, sc, true, "message")
	require.ErrorIs(t, err, ErrShredded, "another run left the mark alone")
	require.NoError(t, c.unmark(ctx, id, "run-1"))
	got, err = c.get(ctx, id, sc, true, "message")
	require.NoError(t, err, "an append after the mark was cleared")
	require.Equal(t, dek, got)
}

// slowReadVault holds up Key, after it read the vault, while hold is set.
type slowReadVault struct {
	store.KeyVault
	hold          atomic.Bool
	once          sync.Once
	read, release chan struct{}
}

func (v *slowReadVault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	wk, err := v.KeyVault.Key(ctx, id)
	if v.hold.Load() {
		v.once.Do(func() { close(v.read) })
		<-v.release
	}
	return wk, err
}

// TestKeyDestroyedWhileLoadingIsNotCached: a reader that loaded a key from the vault just before
// retention destroyed it gets it (its read came first), but the key is not cached: the next
// reader gets ErrShredded.
func TestKeyDestroyedWhileLoadingIsNotCached(t *testing.T) {
	ctx := context.Background()
	v := &slowReadVault{KeyVault: &memstore.KeyVault{}, read: make(chan struct{}), release: make(chan struct{})}
	c := testKeyCache(t, v)
	id, sc := testScope(1)
	dek, err := c.get(ctx, id, sc, true, "message")
	require.NoError(t, err)
	dek = bytes.Clone(dek)
	c.drop(id) // evicted

	v.hold.Store(true)
	loaded := make(chan []byte, 1)
	go func() {
		got, err := c.get(ctx, id, keyScope{}, false, "")
		if err != nil {
			t.Error(err)
		}
		loaded <- bytes.Clone(got)
	}()
	<-v.read
	v.hold.Store(false)
	require.NoError(t, v.DestroyKey(ctx, id))
	c.forget(id) // does not wait for the load
	close(v.release)
	require.Equal(t, dek, <-loaded)
	_, err = c.get(ctx, id, keyScope{}, false, "")
	require.ErrorIs(t, err, ErrShredded, "a reader after the key was destroyed and forgotten")
	_, err = c.get(ctx, id, sc, true, "message")
	require.ErrorIs(t, err, ErrShredded, "an append after the key was destroyed: it is never created again")
}
