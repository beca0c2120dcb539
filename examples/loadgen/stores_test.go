package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
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

// runL runs loadgen for one message on -dir dir.
func runL(dir string, flags ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"-dir", dir, "-n", "1", "-warmup=false"}, flags...), &out, &errOut)
	return code, errOut.String()
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done, 1 for a run that failed.
func TestLoadgenExitStatus(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "new")
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"no flags", nil, 2},
		{"no -dir", []string{"-n", "1"}, 2},
		{"unknown flag", []string{"-dir", fresh, "-nosuchflag"}, 2},
		{"stray argument", []string{"-dir", fresh, "-n", "1", "stray"}, 2},
		{"-dir is a file: the run fails", []string{"-dir", notDir, "-n", "1", "-warmup=false"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, c.want, run(c.args, &out, &errOut), errOut.String())
			require.NotEmpty(t, errOut.String())
		})
	}
	_, err := os.Stat(fresh)
	require.ErrorIs(t, err, os.ErrNotExist, "a refused run writes nothing")
}

// Another ledger's directory or store (backend.ErrMismatch, ErrNotEmpty, ledgerdir.ErrInUse):
// exit 2, nothing written.
func TestLoadgenRefusesOtherLedgers(t *testing.T) {
	backendtest.RefusesOtherLedgers(t, "loadgen", runL)
}

// A new directory on a PostgreSQL schema another ledger has claimed (ledger.ErrOtherLedger):
// exit 2.
func TestLoadgenRefusesAnotherLedgersStore(t *testing.T) {
	backendtest.RefusesAnotherLedgersStore(t, "loadgen", runL)
}
