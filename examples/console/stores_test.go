package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestConsoleRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "console", func(dir string, flags ...string) (int, string) {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"-dir", dir, "-accounts", "a", "-insecure-http"}, flags...), nil, io.Discard, &errb, nil)
		return code, errb.String()
	})
}

// Another ledger's directory or store (backend.ErrMismatch, layout.ErrNoLedger,
// ledgerdir.ErrInUse): exit 2, nothing written.
func TestConsoleRefusesOtherLedgers(t *testing.T) {
	acc := filepath.Join(t.TempDir(), "accounts")
	require.NoError(t, writeFile(acc, "alice officer -\n"))
	backendtest.RefusesOtherLedgers(t, "console", func(dir string, flags ...string) (int, string) {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"-dir", dir, "-accounts", acc, "-insecure-http", "-addr", "127.0.0.1:0"}, flags...), nil, io.Discard, &errb, nil)
		return code, errb.String()
	})
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done, 1 for a ledger that cannot be served.
func TestConsoleExitStatus(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, ledger.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	acc := filepath.Join(t.TempDir(), "accounts")
	require.NoError(t, writeFile(acc, "alice officer -\n"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"no flags", nil, 2},
		{"no -dir", []string{"-accounts", acc, "-insecure-http"}, 2},
		{"no ledger (layout.ErrNoLedger)", []string{"-dir", t.TempDir(), "-accounts", acc, "-insecure-http"}, 2},
		{"the address is taken: serving fails", []string{"-dir", dir, "-accounts", acc, "-insecure-http", "-addr", busy.Addr().String()}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var errb bytes.Buffer
			require.Equal(t, c.want, run(ctx, c.args, nil, io.Discard, &errb, nil), errb.String())
			require.NotEmpty(t, errb.String())
		})
	}
}
