package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestConsoleRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}} {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"-dir", dir, "-accounts", "a", "-insecure-http"}, args...), nil, io.Discard, &errb, nil)
		require.Equal(t, 2, code)
		require.Contains(t, errb.String(), "console: backend: invalid -store or -blobs")
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
}
