package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/stretchr/testify/require"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestArchiverRefusesBadStoreFlags(t *testing.T) {
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	backendtest.RefusesBadFlags(t, "archiver", func(dir string, flags ...string) (int, string) {
		var stdout, stderr syncBuffer
		return run(t.Context(), append([]string{"-dir", dir}, flags...), env, &stdout, &stderr, nil), stderr.String()
	})
}

// -shared needs a store several processes can share: on the file store it is a usage error
// (exit 2), and nothing is written.
func TestArchiverSharedNeedsPostgres(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"-dir", dir, "-shared"}, env, &stdout, &stderr, nil)
	require.Equal(t, 2, code)
	require.Contains(t, stderr.String(), "-shared needs -store postgres://")
	_, err := os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}

// runA runs the archiver with credentials in the environment.
func runA(t *testing.T, args ...string) (int, string) {
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"})
	var stdout, stderr syncBuffer
	return run(t.Context(), args, env, &stdout, &stderr, nil), stderr.String()
}

// Another ledger's directory or store (backend.ErrMismatch, ErrNotEmpty, ledgerdir.ErrInUse,
// and ledger.ErrOtherLedger on PostgreSQL): exit 2, nothing written.
func TestArchiverRefusesOtherLedgers(t *testing.T) {
	run := func(dir string, flags ...string) (int, string) {
		return runA(t, append([]string{"-dir", dir}, flags...)...)
	}
	backendtest.RefusesOtherLedgers(t, "archiver", run)
	backendtest.RefusesAnotherLedgersStore(t, "archiver", run)
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done, 1 for a run that fails.
func TestArchiverExitStatus(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	var stdout, stderr syncBuffer
	require.Equal(t, 2, run(t.Context(), nil, envOf(nil), &stdout, &stderr, nil), "no flags, no credentials")
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"no -dir", nil, 2},
		{"stray argument", []string{"-dir", t.TempDir(), "stray"}, 2},
		{"-dir is a file: the ledger cannot be opened", []string{"-dir", notDir}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, errs := runA(t, c.args...)
			require.Equal(t, c.want, code, errs)
			require.Contains(t, errs, "archiver")
		})
	}
}
