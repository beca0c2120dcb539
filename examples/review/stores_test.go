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
func TestReviewRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "review", func(dir string, flags ...string) (int, string) {
		code, _, errs := review(t, dir, append(flags, "alerts")...)
		return code, errs
	})
}

// Another ledger's directory or store (backend.ErrMismatch, layout.ErrNoLedger,
// ledgerdir.ErrInUse): exit 2, nothing written.
func TestReviewRefusesOtherLedgers(t *testing.T) {
	backendtest.RefusesOtherLedgers(t, "review", func(dir string, flags ...string) (int, string) {
		code, _, errs := review(t, dir, append(flags, "alerts")...)
		return code, errs
	})
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done, 1 for a command that failed.
func TestReviewExitStatus(t *testing.T) {
	dir := ledgerWith(t, "call me on WhatsApp")
	badLex := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(badLex, []byte(`{"name":"x","rules":[]}`), 0o600))
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"no flags", nil, 2},
		{"no -dir", []string{"-who", "a", "-why", "b", "alerts"}, 2},
		{"no -who", []string{"-dir", dir, "-why", "b", "alerts"}, 2},
		{"a lexicon that does not load", []string{"-dir", dir, "-who", "a", "-why", "b", "scan", "-lexicon", badLex}, 2},
		{"a malformed -from", []string{"-dir", dir, "-who", "a", "-why", "b", "rescan", "-lexicon", badLex, "-from", "May"}, 2},
		{"an alert that is not there: dispose fails", []string{"-dir", dir, "-who", "a", "-why", "b", "dispose", "-alert", "99", "-disposition", "dismissed"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			require.Equal(t, c.want, run(context.Background(), c.args, &out, &errb), errb.String())
			require.Contains(t, errb.String(), "review")
		})
	}
}
