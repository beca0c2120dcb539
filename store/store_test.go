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
	require.NoError(t, store.CheckBatch(good, 3, store.StoredHashCount(3)))
	require.ErrorIs(t, store.CheckBatch(&store.Batch{}, 0, 0), store.ErrInvalid)
	require.ErrorIs(t, store.CheckBatch(good, 2, store.StoredHashCount(2)), store.ErrOutOfOrder)
	require.ErrorIs(t, store.CheckBatch(good, 3, 0), store.ErrCorrupt)
	short := &store.Batch{Entries: good.Entries, Hashes: good.Hashes[:2]}
	require.ErrorIs(t, store.CheckBatch(short, 3, store.StoredHashCount(3)), store.ErrInvalid)
	id := store.Hash{1}
	dup := &store.Batch{Entries: []store.Entry{{Index: 0, Identity: id}, {Index: 1, Identity: id}}, Hashes: make([]store.Hash, 3)}
	require.ErrorIs(t, store.CheckBatch(dup, 0, 0), store.ErrDuplicate)
}
