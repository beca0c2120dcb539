package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestDrillRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"-dir", dir}, args...), &stdout, &stderr)
		require.Equal(t, exitUsageErr, code)
		require.Contains(t, stderr.String(), "drill: backend: invalid -store or -blobs")
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
}
