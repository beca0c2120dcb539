package verify_test

import (
	"context"
	"testing"

	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestPinHidesWhatIsAppendedAfter: a pinned store keeps its size, hides the entries, stored
// hashes and checkpoints appended after it, and verifies as the ledger stood when pinned.
func TestPinHidesWhatIsAppendedAfter(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 4)
	for i := range 10 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, _, err := l.SignCheckpoint(ctx)
	require.NoError(t, err)
	pin, size, err := verify.Pin(ctx, st)
	require.NoError(t, err)
	require.EqualValues(t, 10, size)
	for i := 10; i < 20; i++ {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, _, err = l.SignCheckpoint(ctx)
	require.NoError(t, err)

	got, err := pin.Size(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, got)
	n := 0
	for _, err := range pin.Entries(ctx, 0, 20) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 10, n, "entries beyond the pinned size are hidden")
	cp, err := pin.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 10, cp.Size)
	rep, err := verify.Ledger(ctx, pin, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 10, rep.Entries)
	rep, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 20, rep.Entries)
}
