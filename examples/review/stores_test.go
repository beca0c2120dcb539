package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestReviewRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"-store", "mysql://h/db", "alerts"}, {"-blobs", "file:///x", "alerts"}} {
		code, _, errs := review(t, dir, args...)
		require.Equal(t, exitUsage, code)
		require.Contains(t, errs, "review: backend: invalid -store or -blobs")
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
}
