package ledger_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"iter"
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestALyingIndexCannotSwallowAMessage: someone sets the identity in one record of the file
// store's index to that of a message not received yet, with its checksum recomputed. When the
// message arrives, the ledger must not take it for a duplicate of the entry the record points
// at (which would acknowledge it and store nothing); and verification must report the record
// (issue #9 item 6).
func TestALyingIndexCannotSwallowAMessage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys := testKeys(t)
	st, err := filestore.Open(ctx, dir, nil)
	require.NoError(t, err)
	l := openLedger(t, st, keys, 10)
	for i := range 50 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	require.NoError(t, st.Close()) // snapshots the index file

	next := msg(1000) // not received yet
	lie := seal.IdentityDigest("message", next.Platform, next.Tenant, next.ID)
	const victim = 10
	p := filepath.Join(dir, "index")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	rec := b[victim*88 : (victim+1)*88]
	copy(rec[16:48], lie[:])
	binary.LittleEndian.PutUint32(rec[80:], crc32.Checksum(rec[:80], crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(p, b, 0o600))

	st, err = filestore.Open(ctx, dir, nil)
	require.NoError(t, err)
	defer st.Close()
	l = openLedger(t, st, keys, 10)
	rc, err := l.Append(ctx, next)
	require.ErrorIs(t, err, store.ErrCorrupt, "the index points the new message at entry %d", victim)
	require.False(t, rc.Duplicate, "never acknowledged as a duplicate of another message")
	require.NoError(t, l.Close())

	_, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	var ae *verify.AlteredError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, uint64(victim), ae.Index)
}

// noIndexStore hides memstore's indexes: the ledger keeps its own, built from the leaves.
type noIndexStore struct{ st *memstore.Store }

func (s noIndexStore) Size(ctx context.Context) (uint64, error) { return s.st.Size(ctx) }
func (s noIndexStore) Append(ctx context.Context, b *store.Batch) error {
	return s.st.Append(ctx, b)
}
func (s noIndexStore) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return s.st.Entries(ctx, start, end)
}
func (s noIndexStore) ReadHashes(ctx context.Context, idx []int64) ([]store.Hash, error) {
	return s.st.ReadHashes(ctx, idx)
}
func (s noIndexStore) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	return s.st.PutCheckpoint(ctx, c)
}
func (s noIndexStore) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	return s.st.LatestCheckpoint(ctx)
}
func (s noIndexStore) AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error] {
	return s.st.AllCheckpoints(ctx)
}
func (s noIndexStore) Close() error { return nil }

func TestAStoreWithoutIndexesGetsTheLedgersOwn(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(t)
	mem := memstore.New()
	st := noIndexStore{mem}
	l := openLedger(t, st, keys, 10)
	for i := range 30 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	rc, err := l.Append(ctx, msg(7))
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Equal(t, uint64(7), rc.Index)
	require.NoError(t, l.Close())
	// Reopened, the index is rebuilt from the leaves: dedup and conversation chains go on.
	l = openLedger(t, st, keys, 10)
	rc, err = l.Append(ctx, msg(3))
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Equal(t, uint64(3), rc.Index)
	rc, err = l.Append(ctx, msg(30))
	require.NoError(t, err)
	require.False(t, rc.Duplicate)
	e, err := l.Get(ctx, rc.Index)
	require.NoError(t, err)
	require.Equal(t, uint64(30/37+1), e.Leaf.ConvSeq)
	_, err = l.PutBlob(ctx, []byte("attachment"))
	require.ErrorIs(t, err, store.ErrNoBlobs, "a store without Blobs takes no attachments")
	require.NoError(t, l.Close())
	_, err = verify.Ledger(ctx, mem, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

func TestOpenRefusesAReadOnlyStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, nil)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	ro, err := filestore.Open(ctx, dir, &filestore.Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	_, err = ledger.Open(ctx, ro, ledger.Options{Signing: testKeys(t)})
	require.ErrorIs(t, err, store.ErrReadOnly)
}
