package store_test

import (
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestStoredHashCountMatchesTlog(t *testing.T) {
	for n := uint64(0); n < 5000; n++ {
		require.Equal(t, tlog.StoredHashCount(int64(n)), store.StoredHashCount(n), "n=%d", n)
		require.Equal(t, tlog.StoredHashCount(int64(n+1))-tlog.StoredHashCount(int64(n)), store.StoredHashesFor(n), "i=%d", n)
	}
}

func TestCheckBatch(t *testing.T) {
	good := &store.Batch{Entries: []store.Entry{{Index: 3}, {Index: 4}}, Hashes: make([]store.Hash, 3+1)}
	// entry 3 adds 3 hashes (leaf + 2 completed subtrees), entry 4 adds 1
	require.NoError(t, store.CheckBatch(good, 3))
	require.ErrorIs(t, store.CheckBatch(&store.Batch{}, 0), store.ErrInvalid)
	require.ErrorIs(t, store.CheckBatch(nil, 0), store.ErrInvalid)
	require.ErrorIs(t, store.CheckBatch(good, 2), store.ErrOutOfOrder)
	short := &store.Batch{Entries: good.Entries, Hashes: good.Hashes[:2]}
	require.ErrorIs(t, store.CheckBatch(short, 3), store.ErrInvalid)
	id := store.Hash{1}
	dup := &store.Batch{Entries: []store.Entry{{Index: 0, Identity: id}, {Index: 1, Identity: id}}, Hashes: make([]store.Hash, 3)}
	require.ErrorIs(t, store.CheckBatch(dup, 0), store.ErrDuplicate)
}

func TestCheckCheckpoint(t *testing.T) {
	note := []byte("origin\n5\nroot\n")
	require.NoError(t, store.CheckCheckpoint(store.Checkpoint{Size: 5, Note: note}, 5, 4))
	require.NoError(t, store.CheckCheckpoint(store.Checkpoint{Size: 1, Note: note}, 9, 0))
	require.ErrorIs(t, store.CheckCheckpoint(store.Checkpoint{Size: 0, Note: note}, 9, 0), store.ErrInvalid)
	require.ErrorIs(t, store.CheckCheckpoint(store.Checkpoint{Size: 5}, 9, 0), store.ErrInvalid)
	require.ErrorIs(t, store.CheckCheckpoint(store.Checkpoint{Size: 10, Note: note}, 9, 0), store.ErrInvalid)
	require.ErrorIs(t, store.CheckCheckpoint(store.Checkpoint{Size: 5, Note: note}, 9, 5), store.ErrOutOfOrder)
	require.ErrorIs(t, store.CheckCheckpoint(store.Checkpoint{Size: 4, Note: note}, 9, 5), store.ErrOutOfOrder)
}
