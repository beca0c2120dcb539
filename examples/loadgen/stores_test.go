package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
)

// A bad -store or -blobs is backend.ErrInvalid (exit 2), and nothing is written.
func TestLoadgenRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}, {"-shared"}} { // -shared on the file store
		var out, errOut bytes.Buffer
		err := run(append([]string{"-dir", dir, "-n", "1"}, args...), &out, &errOut)
		require.ErrorIs(t, err, backend.ErrInvalid)
		_, err = os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
}
