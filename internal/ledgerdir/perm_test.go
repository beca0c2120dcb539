package ledgerdir_test

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// CheckOwnerOnly fails t unless every directory under root is 0700 and every file 0600 (or
// 0400: a closed, read-only segment).
func CheckOwnerOnly(t *testing.T, root string) {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		switch {
		case d.IsDir() && mode != 0o700:
			t.Errorf("directory %s has mode %v, want 0700", p, mode)
		case !d.IsDir() && mode != 0o600 && mode != 0o400:
			t.Errorf("file %s has mode %v, want 0600", p, mode)
		}
		n++
		return nil
	}))
	require.Greater(t, n, 5, "walked a real ledger")
}
