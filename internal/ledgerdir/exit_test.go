package ledgerdir_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
)

// Every way a ledger directory or store is not this run's to use is ExitRefused, as the
// opening returns it; what fails once the work is under way is ExitFailed.
func TestExitCode(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir, other := t.TempDir(), filepath.Join(t.TempDir(), "log")
	l, err := ledgerdir.OpenOn(ctx, dir, "", parse(t, dir, other, ""), ledger.Options{})
	require.NoError(t, err)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)

	_, inUse := ledgerdir.OpenOn(ctx, dir, "", parse(t, dir, other, ""), ledger.Options{})
	require.NoError(t, l.Close())
	_, mismatch := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	fresh := filepath.Join(t.TempDir(), "new")
	_, notEmpty := ledgerdir.OpenOn(ctx, fresh, "", parse(t, fresh, other, ""), ledger.Options{})
	_, invalid := backend.Parse(dir, "mysql://h/db", "")
	noLedger := layout.Exists(t.TempDir())
	_, missingKey := ledgerdir.SigningKey(t.TempDir(), "", false)
	_, closed := l.Append(ctx, msg("m2"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, layout.StoreFile), []byte("{"), 0o600))
	_, corrupt := ledgerdir.Open(ctx, dir, "", ledger.Options{})

	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ledgerdir.ExitOK},
		{"in use", inUse, ledgerdir.ExitRefused},
		{"mismatch", mismatch, ledgerdir.ExitRefused},
		{"not empty", notEmpty, ledgerdir.ExitRefused},
		{"invalid -store", invalid, ledgerdir.ExitRefused},
		{"no ledger", noLedger, ledgerdir.ExitRefused},
		{"missing key", missingKey, ledgerdir.ExitRefused},
		{"other ledger, wrapped", fmt.Errorf("archiver: %w", ledger.ErrOtherLedger), ledgerdir.ExitRefused},
		{"wrong passphrase", fmt.Errorf("%w: ledger.keyring", ledgerdir.ErrWrongKEK), ledgerdir.ExitRefused},
		{"missing KEK", fmt.Errorf("%w: ledger.kek", ledgerdir.ErrMissingKEK), ledgerdir.ExitRefused},
		{"corrupt KEK: damage", fmt.Errorf("%w: ledger.kek", ledgerdir.ErrCorruptKEK), ledgerdir.ExitFailed},
		{"closed ledger", closed, ledgerdir.ExitFailed},
		{"corrupt ledger.store", corrupt, ledgerdir.ExitFailed},
		{"I/O", fmt.Errorf("reading: %w", os.ErrPermission), ledgerdir.ExitFailed},
		{"refused joined with failed", errors.Join(os.ErrClosed, mismatch), ledgerdir.ExitRefused},
	} {
		require.True(t, c.err != nil || c.want == ledgerdir.ExitOK, c.name)
		require.Equal(t, c.want, ledgerdir.ExitCode(c.err), "%s: %v", c.name, c.err)
	}
	require.ErrorIs(t, inUse, ledgerdir.ErrInUse)
	require.ErrorIs(t, mismatch, backend.ErrMismatch)
	require.ErrorIs(t, notEmpty, backend.ErrNotEmpty)
	require.ErrorIs(t, corrupt, backend.ErrCorruptRecord)
}

func ExampleExitCode() {
	fmt.Println(ledgerdir.ExitCode(nil))
	fmt.Println(ledgerdir.ExitCode(fmt.Errorf("appending: %w", os.ErrPermission)))
	fmt.Println(ledgerdir.ExitCode(fmt.Errorf("-dir: %w", layout.ErrNoLedger)))
	// Output:
	// 0
	// 1
	// 2
}
