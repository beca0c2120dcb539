package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// logOnly is a store without store.Blobs: only the methods of store.Store.
type logOnly struct{ store.Store }

// mapBlobs is a store.Blobs in a map, whose content the test inspects.
type mapBlobs struct {
	mu sync.Mutex
	m  map[store.Hash][]byte
}

func (b *mapBlobs) WriteBlob(_ context.Context, sum store.Hash, data []byte) error {
	if sha256.Sum256(data) != sum {
		return store.ErrHashMismatch
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[sum] = bytes.Clone(data)
	return nil
}

func (b *mapBlobs) ReadBlob(_ context.Context, sum store.Hash) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.m[sum]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(d), nil
}

// TestOptionsBlobsKeepsAttachmentsApart: with Options.Blobs, attachments go to that store, not
// to the log's (which may have none), in a plain and in an encrypted ledger; a reopened ledger
// given the same Blobs reads them; without it, a store without Blobs takes none.
func TestOptionsBlobsKeepsAttachmentsApart(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(t)
	for _, encrypted := range []bool{false, true} {
		log := memstore.New()
		blobs := &mapBlobs{m: map[store.Hash][]byte{}}
		opts := ledger.Options{Signing: keys, CheckpointInterval: time.Hour, Blobs: blobs}
		if encrypted {
			opts.Encryption = &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}
		}
		l, err := ledger.Open(ctx, logOnly{log}, opts)
		require.NoError(t, err)
		content := []byte("attachment kept apart from the log")
		sum, err := l.PutBlob(ctx, content)
		require.NoError(t, err)
		got, err := l.Blob(ctx, sum)
		require.NoError(t, err)
		require.Equal(t, content, got)
		require.NoError(t, l.Close())

		stored := 0
		for _, b := range blobs.m {
			stored++
			if !encrypted {
				require.Equal(t, content, b)
			} else {
				require.False(t, bytes.Contains(b, content), "an encrypted ledger stores ciphertext in Options.Blobs")
			}
		}
		require.Equal(t, 1, stored, "the attachment is in Options.Blobs (encrypted: %v)", encrypted)
		for addr := range blobs.m {
			_, err = log.ReadBlob(ctx, addr)
			require.ErrorIs(t, err, store.ErrNotFound, "nothing goes to the log's store")
		}

		l, err = ledger.Open(ctx, logOnly{log}, opts)
		require.NoError(t, err)
		got, err = l.Blob(ctx, sum)
		require.NoError(t, err, "reopened with the same Blobs")
		require.Equal(t, content, got)
		require.NoError(t, l.Close())
	}

	l, err := ledger.Open(ctx, logOnly{memstore.New()}, ledger.Options{Signing: keys, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	defer l.Close()
	_, err = l.PutBlob(ctx, []byte("x"))
	require.True(t, errors.Is(err, store.ErrNoBlobs), "without Options.Blobs a store without Blobs takes none: %v", err)
}
