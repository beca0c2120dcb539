package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend/backendtest"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestDrillRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "drill", func(dir string, flags ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		return run(context.Background(), append([]string{"-dir", dir}, flags...), &stdout, &stderr), stderr.String()
	})
}

// runSmall runs a small drill on -dir dir.
func runSmall(t *testing.T, dir string, flags ...string) (int, string) {
	args := []string{"-dir", dir, "-n", "20", "-staff", "4", "-clients", "8", "-months", "1", "-writers", "2",
		"-custodians", "2", "-queries", "1", "-out", filepath.Join(t.TempDir(), "bundle")}
	var stdout, stderr bytes.Buffer
	return run(context.Background(), append(args, flags...), &stdout, &stderr), stderr.String()
}

// Another ledger's directory or store (backend.ErrMismatch, ErrNotEmpty, ledgerdir.ErrInUse,
// and ledger.ErrOtherLedger on PostgreSQL): exit 2, nothing built.
func TestDrillRefusesOtherLedgers(t *testing.T) {
	run := func(dir string, flags ...string) (int, string) { return runSmall(t, dir, flags...) }
	backendtest.RefusesOtherLedgers(t, "drill", run)
	backendtest.RefusesAnotherLedgersStore(t, "drill", run)
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// built, 1 for a drill that failed.
func TestDrillExitStatus(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o600))
	for _, c := range []struct {
		name string
		dir  string
		args []string
		want int
	}{
		{"an unknown flag", t.TempDir(), []string{"-nosuchflag"}, 2},
		{"a stray argument", t.TempDir(), []string{"stray"}, 2},
		{"-out holds files: refused before the ledger is built", t.TempDir(), []string{"-out", full}, 2},
		{"-out is a file", t.TempDir(), []string{"-out", notDir}, 2},
		{"-dir is a file: the ledger cannot be built", notDir, nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, errs := runSmall(t, c.dir, c.args...)
			require.Equal(t, c.want, code, errs)
			require.Contains(t, errs, "drill")
		})
	}
}
