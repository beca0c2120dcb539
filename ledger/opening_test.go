package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// commitment is the salted commitment written from its specification, with nothing of seal.
func commitment(salt, plaintext []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("commseal/commitment/v1\x00"))
	h.Write(salt)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(plaintext)))
	h.Write(n[:])
	h.Write(plaintext)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// checkOpening checks from the entry's exact leaf bytes alone that Salt and Body open the
// leaf's commitment: the leaf hashes to LeafHash (RFC 6962: SHA-256(0x00 || leaf)) and
// contains the commitment that the opening recomputes.
func checkOpening(t *testing.T, e *ledger.Entry) {
	t.Helper()
	require.NotNil(t, e.Body)
	require.NotEqual(t, [32]byte{}, e.Salt, "entry %d: no salt", e.Index)
	require.Equal(t, [32]byte(e.LeafHash), sha256.Sum256(append([]byte{0}, e.LeafData...)))
	c := commitment(e.Salt[:], e.Body)
	require.True(t, bytes.Contains(e.LeafData, c[:]), "entry %d: the opening does not match the leaf", e.Index)
	other := e.Salt
	other[0] ^= 1
	c = commitment(other[:], e.Body)
	require.False(t, bytes.Contains(e.LeafData, c[:]), "entry %d: another salt opens the leaf", e.Index)
}

// TestReadsReturnTheCommitmentOpening: what a plain read and an audited decrypting read
// return is enough for someone without commseal to check the content against the leaf: an
// export can hand the regulator the salts.
func TestReadsReturnTheCommitmentOpening(t *testing.T) {
	ctx := context.Background()

	plain := openLedger(t, memstore.New(), testKeys(t), 100)
	defer plain.Close()
	for i := range 5 {
		_, err := plain.Append(ctx, secretMsg(i, "cid-p", time.Date(2026, 6, 1, i, 0, 0, 0, time.UTC), "sell 500 0700.HK"))
		require.NoError(t, err)
	}
	for i := range uint64(5) {
		e, err := plain.Get(ctx, i)
		require.NoError(t, err)
		checkOpening(t, e)
	}

	enc := newEnc(t)
	defer enc.Close()
	for i := range 5 {
		_, err := enc.Append(ctx, secretMsg(i, "cid-e", time.Date(2026, 6, 1, i, 0, 0, 0, time.UTC), "買入 800 股 騰訊"))
		require.NoError(t, err)
	}
	a := enc.Access("alice@compliance", "SFC request 2026-117")
	e, err := a.Get(ctx, 2)
	require.NoError(t, err)
	checkOpening(t, e)
	n := 0
	require.NoError(t, a.Scan(ctx, 0, 5, func(e *ledger.Entry, err error) error {
		require.NoError(t, err)
		checkOpening(t, e)
		n++
		return nil
	}))
	require.Equal(t, 5, n)
}
