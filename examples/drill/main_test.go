package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestDrillEndToEnd: a small drill builds its ledger, answers the request through the index,
// and writes a bundle that verifies; run again, it reuses the ledger and still verifies.
func TestDrillEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	args := []string{"-dir", dir, "-n", "1500", "-staff", "40", "-clients", "120", "-months", "3", "-writers", "8",
		"-custodians", "10", "-queries", "10"}
	for round, want := range []string{"1500 messages from 8 writers", "reused"} {
		out := filepath.Join(t.TempDir(), "bundle")
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(args, "-out", out), &stdout, &stderr)
		require.Equal(t, exitOK, code, "round %d: %s\n%s", round, stdout.String(), stderr.String())
		for _, s := range []string{want, "read (baseline)", "index ", "queries: full text", "request", "export", "verify", "intact", "request → verified bundle"} {
			require.Contains(t, stdout.String(), s)
		}
		vkey, err := layout.VerifierKey(dir)
		require.NoError(t, err)
		rep, err := verify.Bundle(out, vkey)
		require.NoError(t, err)
		require.NotEmpty(t, rep.Entries)
		require.Equal(t, len(rep.Entries), rep.Opened)
	}
}

// TestDrillRefusesBadFlags: usage errors exit 2 and build nothing.
func TestDrillRefusesBadFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	for _, args := range [][]string{{"-n", "0"}, {"-custodians", "5", "-staff", "2"}, {"extra"}, {"-queries", "-1"}} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitRefused, run(context.Background(), append([]string{"-dir", dir}, args...), &stdout, &stderr), "%v", args)
		require.NotEmpty(t, stderr.String())
		require.NoDirExists(t, dir)
	}
}
