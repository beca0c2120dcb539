package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestArchiverRefusesBadStoreFlags(t *testing.T) {
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	backendtest.RefusesBadFlags(t, "archiver", func(dir string, flags ...string) (int, string) {
		var stdout, stderr syncBuffer
		return run(t.Context(), append([]string{"-dir", dir}, flags...), env, &stdout, &stderr, nil), stderr.String()
	})
}

// -shared needs a store several processes can share: on the file store it is a usage error
// (exit 2), and nothing is written.
func TestArchiverSharedNeedsPostgres(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"-dir", dir, "-shared"}, env, &stdout, &stderr, nil)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "-shared needs -store postgres://")
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}
