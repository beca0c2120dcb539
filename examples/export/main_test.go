package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

func runE(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// secretText is the content of message i: unique words the leak check looks for.
func secretText(i int) string { return fmt.Sprintf("confidential order quokka-%d", i) }

// makeLedger writes 9 text messages (m0..m8) sent on July 1..9 2026, in conversations cid0..cid2
// (i%3) by senders u0..u1 (i%2), and returns the directory.
func makeLedger(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "ledger")
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	for i := 0; i < 9; i++ {
		_, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i),
			Conversation: capture.Conversation{ID: fmt.Sprint("cid", i%3), Type: capture.ConversationGroup},
			Sender:       capture.Party{ID: fmt.Sprint("u", i%2), Name: fmt.Sprint("Sender Wombat", i%2)},
			Kind:         capture.KindText, Text: secretText(i), Raw: []byte(`{}`),
			SentAt: time.Date(2026, 7, 1+i, 0, 0, 0, 0, time.UTC)})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	return dir
}

// bundleIndexes reads the indexes of messages.jsonl, and checks its source ids.
func bundleIndexes(t *testing.T, bundle string) []uint64 {
	f, err := os.Open(filepath.Join(bundle, "messages.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var idx []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m verify.BundleMessage
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		require.Equal(t, fmt.Sprint("m", m.Index), m.SourceID)
		require.Equal(t, secretText(int(m.Index)), m.Text)
		idx = append(idx, m.Index)
	}
	require.NoError(t, sc.Err())
	return idx
}

// ledgerFiles returns every file's bytes under dir.
func ledgerFiles(t *testing.T, dir string) map[string][]byte {
	files := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = b
		return err
	}))
	return files
}

func TestExportSelectsAndWritesAVerifiableBundle(t *testing.T) {
	dir := makeLedger(t)
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		args []string
		want []uint64
	}{
		{"conversation", []string{"-conversation", "cid1"}, []uint64{1, 4, 7}},
		{"two conversations", []string{"-conversation", "cid1", "-conversation", "cid2"}, []uint64{1, 2, 4, 5, 7, 8}},
		{"sender", []string{"-sender", "u1"}, []uint64{1, 3, 5, 7}},
		{"conversation and sender", []string{"-conversation", "cid1", "-sender", "u1"}, []uint64{1, 7}},
		{"time range", []string{"-from", "2026-07-03T00:00:00Z", "-to", "2026-07-06T00:00:00Z"}, []uint64{2, 3, 4}},
		{"time range in another zone", []string{"-from", "2026-07-03T08:00:00+08:00", "-to", "2026-07-04T08:00:01+08:00"}, []uint64{2, 3}},
		{"kind", []string{"-kind", "text", "-to", "2026-07-02T00:00:00Z"}, []uint64{0}},
		{"leaf kind", []string{"-kind", "message", "-sender", "u0", "-from", "2026-07-08T00:00:00Z"}, []uint64{8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle")
			args := append([]string{"-dir", dir, "-who", "carol", "-why", "SFC request 7", "-out", out}, tc.args...)
			code, stdout, errs := runE(args...)
			require.Equal(t, exitOK, code, errs)
			require.Contains(t, stdout, fmt.Sprintf("wrote %d entries (%d opened, 0 shredded)", len(tc.want), len(tc.want)))
			require.Contains(t, stdout, "bundle: "+out)
			require.Contains(t, stdout, "go run ./examples/verify -bundle "+out+" -key "+vkey)

			rep, err := verify.Bundle(out, vkey)
			require.NoError(t, err)
			require.Equal(t, tc.want, rep.Entries)
			require.ElementsMatch(t, tc.want, bundleIndexes(t, out))
			manifest, err := os.ReadFile(filepath.Join(out, "manifest.json"))
			require.NoError(t, err)
			require.Contains(t, string(manifest), "carol")
			// The bundle holds the content on purpose (and shows the leak check below can see it).
			msgs, err := os.ReadFile(filepath.Join(out, "messages.jsonl"))
			require.NoError(t, err)
			_, _, found := leakcheck.Find(msgs, []string{secretText(int(tc.want[0]))})
			require.True(t, found)
		})
	}

	// Both the selection and the export are sealed in the ledger as access entries.
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	purposes := map[string]int{}
	size := l.Size()
	require.NoError(t, l.Access("auditor", "test").Scan(ctx, 9, size, func(e *ledger.Entry, err error) error {
		require.NoError(t, err)
		require.Equal(t, "access", e.Leaf.Kind.String())
		require.Contains(t, string(e.Body), "carol")
		switch {
		case strings.Contains(string(e.Body), `"export-selection"`):
			purposes["export-selection"]++
		case strings.Contains(string(e.Body), `"export"`):
			purposes["export"]++
		}
		return nil
	}))
	require.NoError(t, l.Close())
	require.Equal(t, 8, purposes["export-selection"])
	require.GreaterOrEqual(t, purposes["export"], 8)

	// The ledger directory holds none of the content in plain text (the bundles do, on purpose).
	var secrets []string
	for i := 0; i < 9; i++ {
		secrets = append(secrets, secretText(i))
	}
	// (Access entries name who and why in plain, by the ledger's design: not checked here.)
	secrets = append(secrets, "Sender Wombat0", "Sender Wombat1")
	for p, b := range ledgerFiles(t, dir) {
		if s, enc, found := leakcheck.Find(b, secrets); found {
			t.Errorf("%s holds %q (as %q)", p, s, enc)
		}
	}
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed)
}

func TestExportRefusesBadInputAndWritesNothing(t *testing.T) {
	dir := makeLedger(t)
	full := filepath.Join(t.TempDir(), "full")
	require.NoError(t, os.MkdirAll(full, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), []byte("keep"), 0o600))
	before := ledgerFiles(t, dir)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-who", "carol", "-why", "case"}, exitRefused, "at least one of -conversation"},
		{[]string{"-why", "case", "-conversation", "cid1"}, exitRefused, "-who and -why are required"},
		{[]string{"-who", "carol", "-conversation", "cid1"}, exitRefused, "-who and -why are required"},
		{[]string{"-who", "carol", "-why", "case", "-from", "2026-07-01"}, exitRefused, `-from "2026-07-01": want an RFC 3339 time`},
		{[]string{"-who", "carol", "-why", "case", "-to", "yesterday"}, exitRefused, `-to "yesterday"`},
		{[]string{"-who", "carol", "-why", "case", "-from", "2026-07-05T00:00:00Z", "-to", "2026-07-05T00:00:00Z"}, exitRefused, "the range is empty"},
		{[]string{"-who", "carol", "-why", "case", "-conversation", "cid1", "-format", "rsmf,pdf"}, exitRefused, `unknown format "pdf"`},
		{[]string{"-who", "carol", "-why", "case", "-conversation", "cid1", "-format", ""}, exitRefused, `unknown format ""`},
		{[]string{"-who", "carol", "-why", "case", "-conversation", "cid1", "extra"}, exitRefused, `unexpected argument "extra"`},
		{[]string{"-who", "carol", "-why", "case", "-conversation", ""}, exitRefused, "empty value"},
		{[]string{"-who", "carol", "-why", "case", "-bogus"}, exitRefused, "flag provided but not defined"},
	} {
		out := filepath.Join(t.TempDir(), "bundle")
		code, stdout, errs := runE(append([]string{"-dir", dir, "-out", out}, tc.args...)...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errs)
		require.Contains(t, errs, tc.msg, tc.args)
		require.Empty(t, stdout)
		_, err := os.Stat(out)
		require.ErrorIs(t, err, fs.ErrNotExist, "%v wrote the bundle", tc.args)
	}
	sel := []string{"-who", "carol", "-why", "case", "-conversation", "cid1"}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{append([]string{"-dir", dir, "-out", full}, sel...), "is not empty"},
		{append([]string{"-dir", dir, "-out", filepath.Join(dir, "bundle")}, sel...), "inside the ledger directory"},
		{append([]string{"-dir", filepath.Join(dir, "missing"), "-out", filepath.Join(t.TempDir(), "b")}, sel...), "not a ledger directory"},
		{append([]string{"-dir", t.TempDir(), "-out", filepath.Join(t.TempDir(), "b")}, sel...), "not a ledger directory"},
		{append([]string{"-out", filepath.Join(t.TempDir(), "b")}, sel...), "-dir is required"},
		{append([]string{"-dir", dir}, sel...), "-out is required"},
	} {
		code, stdout, errs := runE(tc.args...)
		require.Equal(t, exitRefused, code, "%v: %s", tc.args, errs)
		require.Contains(t, errs, tc.msg)
		require.Empty(t, stdout)
	}
	b, err := os.ReadFile(filepath.Join(full, "x"))
	require.NoError(t, err)
	require.Equal(t, "keep", string(b))
	_, err = os.Stat(filepath.Join(dir, "bundle"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	// Refused before the ledger was opened: not a byte of it changed.
	require.Equal(t, before, ledgerFiles(t, dir))

	// Nothing matched: exit 1, no bundle (the selection itself is sealed as an access).
	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errs := runE("-dir", dir, "-out", out, "-who", "carol", "-why", "case", "-conversation", "cid1", "-sender", "nobody")
	require.Equal(t, exitFailed, code, errs)
	require.Contains(t, errs, "no entry of the 9 matches conversation=cid1 AND sender=nobody")
	require.Empty(t, stdout)
	_, err = os.Stat(out)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestFilterString(t *testing.T) {
	f := filter{conversations: []string{"a", "b"}, senders: []string{"u"}, kinds: []string{"text"},
		from: time.Date(2026, 7, 1, 8, 0, 0, 0, time.FixedZone("HKT", 8*3600))}
	require.Equal(t, "conversation=a|b AND sender=u AND from=2026-07-01T00:00:00Z AND kind=text", f.String())
	require.False(t, f.empty())
	require.True(t, (&filter{}).empty())
}

// TestExportShreddedEntries: shredded entries have no content to match on; a filter on their
// leaf kind alone exports them as shredded (leaf and proof, no content), and the bundle checks.
func TestExportShreddedEntries(t *testing.T) {
	dir := makeLedger(t)
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	for _, c := range []string{"cid1", "cid2"} {
		_, err := l.PlaceHold(ctx, ledger.Hold{ID: "keep-" + c, Tenant: "corp", Conversation: c, Reason: "test", By: "counsel"})
		require.NoError(t, err)
	}
	shreds, err := l.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1m", Keep: ledger.Period{Months: 1}}}},
		ledger.ApplyOptions{Now: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Authority: "CCO"})
	require.NoError(t, err)
	require.Len(t, shreds, 1, "only cid0 is not held")
	require.NoError(t, l.Close())
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)

	// cid0 held 0, 3, 6: their content is gone, so a content filter cannot select them.
	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errs := runE("-dir", dir, "-who", "carol", "-why", "case", "-conversation", "cid0", "-out", out)
	require.Equal(t, exitFailed, code, errs)
	require.Contains(t, errs, "3 shredded entries have no content to match")
	require.Empty(t, stdout)
	_, err = os.Stat(out)
	require.ErrorIs(t, err, fs.ErrNotExist)

	code, stdout, errs = runE("-dir", dir, "-who", "carol", "-why", "case", "-kind", "message", "-out", out)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, stdout, "wrote 10 entries (7 opened, 3 shredded)", "the 9 messages and the shred entry they cite")
	rep, err := verify.Bundle(out, vkey)
	require.NoError(t, err)
	require.Len(t, rep.Entries, 10)
	require.Equal(t, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8}, rep.Entries[:9])
	require.Equal(t, 3, rep.Shredded)
}

func TestExportHelp(t *testing.T) {
	code, stdout, errs := runE("-help")
	require.Equal(t, exitOK, code)
	require.Empty(t, stdout)
	require.Contains(t, errs, "usage: export -dir DIR -who X -why Y")
	require.Contains(t, errs, "-q query\n    \tselect messages with this search query")
}

// TestExportByQuery: -q selects through the search index (built in DIR/index), with the other
// filters applied; the query is in the manifest and the bundle verifies.
func TestExportByQuery(t *testing.T) {
	dir := makeLedger(t)
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errs := runE("-dir", dir, "-out", out, "-who", "carol", "-why", "case 9", "-q", `"quokka-3" OR quokka-6 OR QUOKKA-7`, "-sender", "u1")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, stdout, "matched 2 of")
	rep, err := verify.Bundle(out, vkey)
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 7}, rep.Entries, "m3 and m7 are u1's; m6 is u0's")
	require.Contains(t, rep.Request.Query, `q=("quokka-3" OR quokka-6 OR QUOKKA-7)`)

	// A bad query, a record kind with -q, and a query that finds nothing write no bundle.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-q", `"unclosed`}, exitRefused, "-q: search: bad query"},
		{[]string{"-q", "order", "-kind", "media"}, exitRefused, "the index holds messages"},
		{[]string{"-q", "nowhere-to-be-found"}, exitFailed, "no message"},
	} {
		out := filepath.Join(t.TempDir(), "bundle")
		code, stdout, errs := runE(append([]string{"-dir", dir, "-out", out, "-who", "carol", "-why", "case"}, tc.args...)...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errs)
		require.Contains(t, errs, tc.msg)
		require.Empty(t, stdout)
		require.NoDirExists(t, out)
	}
	_, err = os.Stat(filepath.Join(dir, layout.IndexDir, "docs.log"))
	require.NoError(t, err, "the index is kept in the ledger directory")
}

// TestExportRecords: records (here a media record) match on their conversation, time and kind,
// never on a sender filter; a media record about a selected message goes with it.
func TestExportRecords(t *testing.T) {
	dir := makeLedger(t)
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "m0/0",
		Conversation: capture.Conversation{ID: "cid0"}, About: &capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: "m0"},
		At: time.Date(2026, 7, 20, 0, 0, 0, 0, time.UTC), Body: []byte(`{"status":"failed"}`)})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)
	for _, tc := range []struct {
		args []string
		want []uint64
	}{
		{[]string{"-conversation", "cid0"}, []uint64{0, 3, 6, 9}},
		{[]string{"-conversation", "cid0", "-sender", "u0"}, []uint64{0, 6, 9}},
		{[]string{"-conversation", "cid0", "-sender", "u1"}, []uint64{3}},
		{[]string{"-q", "quokka-0"}, []uint64{0, 9}},
		{[]string{"-to", "2026-07-02T00:00:00Z"}, []uint64{0, 9}},
		{[]string{"-kind", "media"}, []uint64{9}},
		{[]string{"-kind", capture.RecordMedia, "-from", "2026-07-09T00:00:00Z"}, []uint64{9}},
		{[]string{"-from", "2026-07-09T00:00:00Z"}, []uint64{8, 9}},
	} {
		out := filepath.Join(t.TempDir(), "bundle")
		code, _, errs := runE(append([]string{"-dir", dir, "-who", "carol", "-why", "case", "-out", out}, tc.args...)...)
		require.Equal(t, exitOK, code, "%v: %s", tc.args, errs)
		rep, err := verify.Bundle(out, vkey)
		require.NoError(t, err)
		require.Equal(t, tc.want, rep.Entries, tc.args)
	}
}

// -format rsmf,eml,jsonl adds the renderings; each is listed in the manifest, so the bundle
// still verifies, and the ledger directory holds no plaintext afterwards.
func TestExportFormats(t *testing.T) {
	dir := makeLedger(t)
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errs := runE("-dir", dir, "-who", "carol", "-why", "SFC request 7", "-out", out,
		"-conversation", "cid1", "-format", "rsmf,eml,jsonl")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, stdout, "formats: jsonl,rsmf,eml")
	rep, err := verify.Bundle(out, vkey)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 4, 7}, rep.Entries)
	for _, sub := range []string{"rsmf", "eml"} {
		ents, err := os.ReadDir(filepath.Join(out, sub))
		require.NoError(t, err)
		require.Len(t, ents, 3, "%s: one file per conversation and day", sub)
	}
	// Only what was asked for, and no staging directory left beside the bundle.
	out2 := filepath.Join(t.TempDir(), "bundle")
	code, _, errs = runE("-dir", dir, "-who", "carol", "-why", "SFC request 7", "-out", out2, "-conversation", "cid1", "-format", "eml")
	require.Equal(t, exitOK, code, errs)
	_, err = os.Stat(filepath.Join(out2, "rsmf"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	ents, err := os.ReadDir(filepath.Dir(out2))
	require.NoError(t, err)
	require.Len(t, ents, 1, "the bundle alone")
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed)
}

// TestProgressBar: the bar shows each phase's count and ends each phase on its own line.
func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := progressBar(&b)
	for _, ph := range []string{"read", "prove", "write"} {
		p(ph, 0, 3)
		for i := 1; i <= 3; i++ {
			p(ph, i, 3)
		}
	}
	out := b.String()
	for _, want := range []string{"read   [" + strings.Repeat("=", 30) + "] 3/3\n", "prove  [", "write  [" + strings.Repeat("=", 30) + "] 3/3\n"} {
		require.Contains(t, out, want)
	}
	require.False(t, isTerminal(&b))
}
