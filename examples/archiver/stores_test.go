package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestArchiverRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	for _, args := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}} {
		var stdout, stderr syncBuffer
		code := run(t.Context(), append([]string{"-dir", dir}, args...), env, &stdout, &stderr, nil)
		require.Equal(t, 2, code)
		require.Contains(t, stderr.String(), "archiver: backend: invalid -store or -blobs")
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
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
