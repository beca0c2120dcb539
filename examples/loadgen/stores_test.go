package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
)

// A bad -store or -blobs is backend.ErrInvalid (exit 2), and nothing is written.
func TestLoadgenRefusesBadStoreFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}, {"-shared"}} { // -shared on the file store
		var out, errOut bytes.Buffer
		code := run(append([]string{"-dir", dir, "-n", "1"}, args...), &out, &errOut)
		require.Equal(t, 2, code, errOut.String())
		require.Contains(t, errOut.String(), backend.ErrInvalid.Error())
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done (flags, a directory or store that holds another ledger, one open in another process),
// 1 for a run that failed.
func TestLoadgenExitStatus(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir, other := t.TempDir(), filepath.Join(t.TempDir(), "log") // a ledger whose store is in other
	l, err := ledgerdir.OpenOn(ctx, dir, "", mustParse(t, dir, other), ledger.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	fresh := filepath.Join(t.TempDir(), "new")
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"no flags", nil, 2},
		{"no -dir", []string{"-n", "1"}, 2},
		{"unknown flag", []string{"-dir", fresh, "-nosuchflag"}, 2},
		{"stray argument", []string{"-dir", fresh, "-n", "1", "stray"}, 2},
		{"store elsewhere (backend.ErrMismatch)", []string{"-dir", dir, "-n", "1"}, 2},
		{"store holds a ledger (backend.ErrNotEmpty)", []string{"-dir", fresh, "-store", other, "-n", "1"}, 2},
		{"-dir is a file: the run fails", []string{"-dir", notDir, "-n", "1", "-warmup=false"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, c.want, run(c.args, &out, &errOut), errOut.String())
			require.NotEmpty(t, errOut.String())
		})
	}
	_, err = os.Stat(fresh)
	require.ErrorIs(t, err, os.ErrNotExist, "a refused run writes nothing")

	// A directory open in another process (ledgerdir.ErrInUse).
	l, err = ledgerdir.OpenOn(ctx, dir, "", mustParse(t, dir, other), ledger.Options{})
	require.NoError(t, err)
	defer l.Close()
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"-dir", dir, "-store", other, "-n", "1"}, &out, &errOut), errOut.String())
	require.Contains(t, errOut.String(), ledgerdir.ErrInUse.Error())
}

// A second new directory on a PostgreSQL schema another ledger has claimed
// (ledger.ErrOtherLedger): exit 2.
func TestLoadgenOtherLedgerIsRefused(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	pgURL := backendtest.Postgres(t)
	a := filepath.Join(t.TempDir(), "a")
	l, err := ledgerdir.OpenOn(ctx, a, "", mustParse(t, a, pgURL), ledger.Options{Shared: true})
	require.NoError(t, err)
	defer l.Close()
	var out, errOut bytes.Buffer
	b := filepath.Join(t.TempDir(), "b")
	require.Equal(t, 2, run([]string{"-dir", b, "-store", pgURL, "-shared", "-n", "1"}, &out, &errOut), errOut.String())
	require.Contains(t, errOut.String(), ledger.ErrOtherLedger.Error())
}

func mustParse(t *testing.T, dir, st string) backend.Spec {
	t.Helper()
	spec, err := backend.Parse(dir, st, "")
	require.NoError(t, err)
	return spec
}
