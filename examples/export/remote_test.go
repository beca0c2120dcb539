package main

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// serveLedger opens dir as its owner would and serves the read side; the token "officer-token"
// is an officer named carol.
func serveLedger(t *testing.T, dir string) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	ix, err := search.Open(ctx, l.Ledger, search.Options{Dir: filepath.Join(dir, layout.IndexDir)})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	tokens, err := api.ParseTokens(strings.NewReader(api.HashToken("officer-token")+" carol officer\n"), "tokens")
	require.NoError(t, err)
	srv := httptest.NewServer(api.New(api.Options{Ledger: l.Ledger, Index: ix, Auth: tokens, Signer: l.Signing.Signer, Store: l.Store}))
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("officer-token\n"), 0o600))
	return srv, tok
}

// TestExportThroughTheAPI: with -api the bundle comes from the ledger's owner, selected by its
// index, sealed under the token's name, and verifies; a wrong token, a bad query and a record
// kind are refused with no bundle.
func TestExportThroughTheAPI(t *testing.T) {
	dir := makeLedger(t)
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)
	srv, tok := serveLedger(t, dir)
	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errs := runE("-api", srv.URL, "-token-file", tok, "-why", "case 12", "-q", "quokka-2 OR quokka-5", "-format", "rsmf,jsonl", "-out", out)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, stdout, "exported 2 entries")
	rep, err := verify.Bundle(out, vkey)
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 5}, rep.Entries)
	require.Equal(t, "carol", rep.Request.Who, "the server names who")
	require.Equal(t, "case 12", rep.Request.Why)
	require.Contains(t, rep.Request.Formats, "rsmf")

	bad := filepath.Join(t.TempDir(), "bad-token")
	require.NoError(t, os.WriteFile(bad, []byte("guess"), 0o600))
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-token-file", bad, "-q", "quokka"}, exitRefused, "401"},
		{[]string{"-token-file", tok, "-q", `"open`}, exitRefused, "400"},
		{[]string{"-token-file", tok, "-q", "quokka", "-kind", "media"}, exitRefused, "the server exports messages"},
		{[]string{"-token-file", tok, "-q", "nothing-like-it"}, exitFailed, "404"},
	} {
		out := filepath.Join(t.TempDir(), "bundle")
		code, _, errs := runE(append([]string{"-api", srv.URL, "-why", "case", "-out", out}, tc.args...)...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errs)
		require.Contains(t, errs, tc.msg)
		require.NoDirExists(t, out)
	}
	code, _, errs = runE("-api", srv.URL, "-dir", dir, "-token-file", tok, "-why", "x", "-q", "a", "-out", out+"2")
	require.Equal(t, exitRefused, code)
	require.Contains(t, errs, "not both")
}

// TestUnpackRefusesEscapingNames: a zip whose file would land outside the bundle is refused and
// leaves nothing.
func TestUnpackRefusesEscapingNames(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("../escape.txt")
	require.NoError(t, err)
	_, _ = w.Write([]byte("x"))
	require.NoError(t, zw.Close())
	out := filepath.Join(t.TempDir(), "bundle")
	_, err = unpack(out, b.Bytes())
	require.ErrorContains(t, err, "not a file inside the bundle")
	require.NoDirExists(t, out)
	ents, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	require.Empty(t, ents, "no staging left")
}

// TestUnpackChecksTheWholeZipBeforeWriting: a zip with a good file and then an escaping name
// is refused before anything is written: the refusal comes even where no staging directory
// could be made (the parent is a file), and names the bad entry.
func TestUnpackChecksTheWholeZipBeforeWriting(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("messages.jsonl")
	require.NoError(t, err)
	_, _ = w.Write([]byte(`{"text":"secret"}`))
	w, err = zw.Create("../escape.txt")
	require.NoError(t, err)
	_, _ = w.Write([]byte("x"))
	require.NoError(t, zw.Close())
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	_, err = unpack(filepath.Join(notDir, "bundle"), b.Bytes())
	require.ErrorContains(t, err, "not a file inside the bundle")
}

// TestUnpackRefusesADuplicateName: a zip naming one file twice is refused and leaves nothing.
func TestUnpackRefusesADuplicateName(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, text := range []string{"one", "two"} {
		w, err := zw.Create("messages.jsonl")
		require.NoError(t, err)
		_, _ = w.Write([]byte(text))
	}
	require.NoError(t, zw.Close())
	out := filepath.Join(t.TempDir(), "bundle")
	_, err := unpack(out, b.Bytes())
	require.Error(t, err)
	require.NoDirExists(t, out)
	ents, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	require.Empty(t, ents, "no staging left")
}
