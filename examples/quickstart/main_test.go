package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/stretchr/testify/require"
)

func runQS(t *testing.T, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestQuickstartBuildsAndVerifiesALedger(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errs := runQS(t, "-dir", dir, "-n", "120")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "verified")
	require.Contains(t, out, "redeliveries dropped")
	// Every kind the issue names, and both conversation types, are among the samples.
	for _, k := range []string{"text", "rich_text", "picture", "audio", "file"} {
		require.Contains(t, out, k+" ")
	}
	require.Contains(t, out, "1 one-to-one")
	fi, err := os.Stat(filepath.Join(dir, ledgerdir.KeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Raw payloads are kept byte for byte and the samples mix scripts.
	st, err := ledgerdir.OpenStore(context.Background(), dir, true, nil)
	require.NoError(t, err)
	defer st.Close()
	payloads := samplePayloads(120, 1)
	seenRaw := map[string]bool{}
	var text strings.Builder
	for e, err := range st.Entries(context.Background(), 0) {
		require.NoError(t, err)
		d, err := ledger.Decode(e)
		require.NoError(t, err)
		seenRaw[string(d.Message.Raw)] = true
		text.WriteString(d.Message.Text)
	}
	for _, p := range payloads {
		require.True(t, seenRaw[string(p)], "raw payload not kept verbatim: %s", p)
	}
	require.Contains(t, text.String(), "騰訊") // Traditional
	require.Contains(t, text.String(), "腾讯") // Simplified
	require.Contains(t, text.String(), "0700.HK")

	// A second run delivers the same messages again: nothing new is stored.
	code, out, _ = runQS(t, "-dir", dir, "-n", "120")
	require.Equal(t, 0, code)
	require.Contains(t, out, "captured      0 new entries, 120 redeliveries dropped")
}

func TestQuickstartMessagesFileReportsBadLinesAndKeepsTheRest(t *testing.T) {
	tmp := t.TempDir()
	good := samplePayloads(5, 7)
	lines := []string{string(good[0]), `{"msgId": broken`, string(good[1]), `[]`, string(good[2]), ""}
	f := filepath.Join(tmp, "in.jsonl")
	require.NoError(t, os.WriteFile(f, []byte(strings.Join(lines, "\n")), 0o644))
	dir := filepath.Join(tmp, "data")
	code, out, errs := runQS(t, "-dir", dir, "-messages", f)
	require.Equal(t, 1, code, "a malformed line makes the exit status 1")
	require.Contains(t, errs, "line 2 skipped")
	require.Contains(t, errs, "line 4 skipped")
	require.Contains(t, out, "3 new entries")
	require.Contains(t, out, "2 malformed lines skipped")

	code, _, errs = runQS(t, "-dir", dir, "-messages", filepath.Join(tmp, "missing.jsonl"))
	require.Equal(t, 2, code)
	require.Contains(t, errs, "no such file")
	code, _, _ = runQS(t, "-dir", dir, "extra-arg")
	require.Equal(t, 2, code)
	code, _, _ = runQS(t, "-bogus")
	require.Equal(t, 2, code)
}
