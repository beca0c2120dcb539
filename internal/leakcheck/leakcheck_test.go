package leakcheck_test

import (
	"encoding/base64"
	"testing"

	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/stretchr/testify/require"
)

func TestFindsEveryEncodingAndNothingElse(t *testing.T) {
	secret := "買入騰訊 0700.HK"
	for _, enc := range leakcheck.Encodings(secret) {
		data := append(append([]byte("xx"), enc...), "yy"...)
		s, _, ok := leakcheck.Find(data, []string{"other", secret})
		require.True(t, ok, "%q", enc)
		require.Equal(t, secret, s)
	}
	// base64 of the secret embedded at an odd offset in a larger plaintext is still found.
	b64 := base64.StdEncoding.EncodeToString([]byte("prefix:" + secret + ":suffix"))
	_, _, ok := leakcheck.Find([]byte(b64), []string{secret})
	require.True(t, ok)
	_, _, ok = leakcheck.Find([]byte("nothing to see"), []string{secret, "ok"})
	require.False(t, ok, "short encodings and absent secrets do not match")
}
