package leakcheck_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
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

func TestExposedNamesWhatOthersCouldRead(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "private"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sealed"), nil, 0o400))
	got, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "public"), nil, 0o644))
	require.NoError(t, os.Chmod(filepath.Join(dir, "public"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "open"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(dir, "open"), 0o755))
	got, err = leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Contains(t, got[0], "open")
	require.Contains(t, got[1], "public")
}
