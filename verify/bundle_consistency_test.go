package verify_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

func TestBundleConsistencyRoundTripAndChecks(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	l := openLedger(t, st, testKeys(t), 1<<40)
	defer l.Close()
	for i := range 13 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	hs, err := l.ConsistencyProof(ctx, 5, 13)
	require.NoError(t, err)
	require.NotEmpty(t, hs)
	p := verify.BundleConsistencyProof{OldSize: 5, NewSize: 13, Hashes: hs}
	b := p.Marshal()
	require.True(t, bytes.HasPrefix(b, []byte("5 13\n")), "%q", b)
	got, err := verify.ParseBundleConsistency(b)
	require.NoError(t, err)
	require.Equal(t, p, *got)

	hr := verify.Hashes(ctx, st)
	oldRoot, err := seal.TreeHash(5, hr)
	require.NoError(t, err)
	newRoot, err := seal.TreeHash(13, hr)
	require.NoError(t, err)
	require.NoError(t, seal.CheckConsistency(got.Hashes, 13, newRoot, 5, oldRoot))
	require.Error(t, seal.CheckConsistency(got.Hashes, 13, newRoot, 5, newRoot), "not a rubber stamp")

	same := (&verify.BundleConsistencyProof{OldSize: 7, NewSize: 7}).Marshal()
	require.Equal(t, "7 7\n", string(same))
	got, err = verify.ParseBundleConsistency(same)
	require.NoError(t, err)
	require.Empty(t, got.Hashes)
}

func TestParseBundleConsistencyRefusesMalformed(t *testing.T) {
	h := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	for name, text := range map[string]string{
		"empty":              "",
		"no final newline":   "1 2\n" + h,
		"one size":           "12\n",
		"leading zero":       "01 2\n" + h + "\n",
		"sign":               "+1 2\n" + h + "\n",
		"zero old":           "0 2\n" + h + "\n",
		"old beyond new":     "3 2\n" + h + "\n",
		"hash for same size": "2 2\n" + h + "\n",
		"short hash":         "1 2\nAAAA\n",
		"bad base64":         "1 2\n" + h[:40] + "!!!\n",
		"empty line":         "1 2\n\n",
		"two spaces":         "1  2\n" + h + "\n",
		"crlf":               "1 2\r\n" + h + "\r\n",
		"unpadded":           "1 2\n" + h[:43] + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := verify.ParseBundleConsistency([]byte(text))
			require.Error(t, err)
		})
	}
}

func FuzzParseBundleConsistency(f *testing.F) {
	f.Add([]byte("5 13\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("7 7\n"))
	f.Add([]byte("0 1\n"))
	f.Add([]byte("18446744073709551615 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := verify.ParseBundleConsistency(b)
		if err != nil {
			return
		}
		if p.OldSize == 0 || p.OldSize > p.NewSize || (p.OldSize == p.NewSize && len(p.Hashes) > 0) {
			t.Fatalf("accepted %+v", p)
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("not canonical: %q re-marshals to %q", b, p.Marshal())
		}
	})
}
