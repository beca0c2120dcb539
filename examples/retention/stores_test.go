package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestRetentionRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}} {
		code, _, errs := runR(append([]string{"-dir", dir, "-holds"}, args...)...)
		require.Equal(t, 2, code)
		require.Contains(t, errs, "retention: backend: invalid -store or -blobs")
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
}
