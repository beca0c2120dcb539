//go:build unix

package ledgerdir_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/stretchr/testify/require"
)

func TestEverythingIsOwnerOnly(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "ledger")
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	_, err = l.PutBlob(ctx, []byte("an attachment"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed, "with umask 0, everything is still for its owner alone")
}

// TestRotatedKeyringIsOwnerOnly: the files of later generations are 0600 in a 0700 directory,
// whatever the umask.
func TestRotatedKeyringIsOwnerOnly(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "ledger")
	r := openRing(t, dir, true)
	for range 2 {
		_, err := r.Rotate(ctx)
		require.NoError(t, err)
	}
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed)
}
