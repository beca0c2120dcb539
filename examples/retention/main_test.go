package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

func runR(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// makeLedger writes messages in three conversations in July 2026, one with an attachment whose
// media record is sealed months later.
func makeLedger(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "ledger")
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	for i := 0; i < 9; i++ {
		_, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i),
			Conversation: capture.Conversation{ID: fmt.Sprint("cid", i%3)}, Kind: capture.KindText, Text: "order",
			SentAt: time.Date(2026, 7, 1+i, 0, 0, 0, 0, time.UTC)})
		require.NoError(t, err)
	}
	sum, err := l.PutBlob(ctx, []byte("ticket scan"))
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]string{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "m0/0",
		Conversation: capture.Conversation{ID: "cid0"}, About: &capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: "m0"},
		At: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Body: body})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	return dir
}

func TestRetentionCommand(t *testing.T) {
	dir := makeLedger(t)
	code, out, errs := runR("-dir", dir, "-keep", "1m", "-now", "2026-10-01", "-dry-run")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "3 scopes would shred")
	// A rule for messages only keeps cid0, whose scope also holds the attachment's media record.
	code, out, errs = runR("-dir", dir, "-keep", "1m", "-kinds", "message", "-now", "2026-10-01", "-dry-run")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "2 scopes would shred")
	require.NotContains(t, out, "conversation cid0,")

	code, out, errs = runR("-dir", dir, "-hold", "case-1", "-tenant", "corp", "-conversation", "cid1", "-reason", "SFC inquiry", "-by", "counsel")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "hold case-1 placed")
	code, out, _ = runR("-dir", dir, "-holds")
	require.Equal(t, 0, code)
	require.Contains(t, out, "case-1\tcorp/cid1")

	code, out, errs = runR("-dir", dir, "-keep", "1m", "-now", "2026-10-01", "-authority", "CCO")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "2 scopes shredded")
	require.Contains(t, out, "conversation cid0, month 2026-07, expired 2026-09-01, 1 attachments")
	require.NotContains(t, out, "cid1")
	// The KEK that wrapped the shredded keys is retired: its file is gone, a new one replaces it.
	require.Regexp(t, `KEK kek-[0-9a-f]+ retired: the remaining data keys are now wrapped under kek-[0-9a-f]+`, out)
	_, statErr := os.Stat(filepath.Join(dir, layout.KEKFile))
	require.True(t, os.IsNotExist(statErr), "ledger.kek is scrubbed")
	gens, err := filepath.Glob(filepath.Join(dir, layout.KEKDir, "*.kek"))
	require.NoError(t, err)
	require.Len(t, gens, 1)

	// The held conversation reads; the shredded ones do not; the ledger verifies.
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	shredded := 0
	require.NoError(t, l.Access("auditor", "test").Scan(ctx, 0, 9, func(e *ledger.Entry, err error) error {
		if errors.Is(err, ledger.ErrShredded) {
			shredded++
			return nil
		}
		require.NoError(t, err)
		require.Equal(t, "cid1", e.Message.Conversation.ID)
		return nil
	}))
	require.Equal(t, 6, shredded)
	require.NoError(t, l.Close())
	st, err := layout.OpenStore(ctx, dir, true, nil)
	require.NoError(t, err)
	_, err = verify.Ledger(ctx, st, l.Signing.Verifier, verify.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	code, out, errs = runR("-dir", dir, "-release", "case-1", "-reason", "closed", "-by", "counsel")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "released")
	code, out, _ = runR("-dir", dir, "-holds")
	require.Equal(t, 0, code)
	require.Contains(t, out, "no active legal holds")
	code, _, errs = runR("-dir", dir, "-release", "case-1", "-reason", "again", "-by", "counsel")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "no active hold")

	// -list decrypts what is left, after sealing the access; the shredded scopes show as such.
	code, out, errs = runR("-dir", dir, "-list", "-who", "auditor", "-why", "hold review")
	require.Equal(t, 0, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "1\tmessage\tcorp\tcid1\tm1", lines[1])
	require.Regexp(t, `^0\tmessage\t-\t-\tshredded:dk1\.2026-07\.`, lines[0])
	require.Regexp(t, `recorded as entry \d+`, errs)
	// On the file store, -apply-locks says there is nothing to lock, rather than "0 attachments".
	code, out, errs = runR("-dir", dir, "-apply-locks")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "does not lock objects")
	code, out, _ = runR("-dir", dir, "-list", "-who", "auditor", "-why", "again")
	require.Equal(t, 0, code)
	require.Contains(t, out, "\taccess\t-\t-\t-\n", "the first access is itself in the ledger")
}

func TestRetentionCommandUsage(t *testing.T) {
	dir := makeLedger(t)
	for _, args := range [][]string{
		{},
		{"-dir", dir},
		{"-dir", dir, "-holds", "-keep", "1y"},
		{"-dir", dir, "-keep", "1y"},             // no authority
		{"-dir", dir, "-keep", "1x", "-dry-run"}, // bad period
		{"-dir", dir, "-keep", "0y", "-dry-run"}, // zero period
		{"-dir", dir, "-keep", "1y", "-dry-run", "-now", "01/02/2026"},
		{"-dir", dir, "-hold", "h", "-tenant", "corp"}, // no reason
		{"-dir", dir, "-release", "h"},
		{"-dir", filepath.Join(dir, "missing"), "-holds"},
		{"-dir", dir, "-holds", "extra"},
		{"-dir", dir, "-list"},                    // no who and why
		{"-dir", dir, "-list", "-who", "x"},       // no why
		{"-dir", dir, "-list", "-holds"},          // two actions
		{"-dir", dir, "-apply-locks", "-dry-run"}, // locks change for real: no dry run
		{"-dir", dir, "-apply-locks", "-keep", "7y", "-authority", "a"},
		{"-dir", dir, "-apply-locks", "-keep", "7y", "-now", "2030-01-01"},
	} {
		code, _, errs := runR(args...)
		require.Equal(t, 2, code, "%v: %s", args, errs)
		require.True(t, strings.HasPrefix(errs, "retention: ") || strings.Contains(errs, "flag"), errs)
	}
}

func TestParsePeriod(t *testing.T) {
	for s, want := range map[string]ledger.Period{"7y": {Years: 7}, "24m": {Months: 24}, "2y6m": {Years: 2, Months: 6}, "90d": {Days: 90}} {
		p, err := parsePeriod(s)
		require.NoError(t, err)
		require.Equal(t, want, p)
	}
	for _, s := range []string{"", "y", "1m2y", "-1y", "1 y"} {
		_, err := parsePeriod(s)
		require.Error(t, err, s)
	}
}

// TestADirectoryWithoutALedgerIsRefusedAndLeftEmpty: a mistyped -dir is a usage error, not a
// new, empty ledger that answers "no active legal holds".
func TestADirectoryWithoutALedgerIsRefusedAndLeftEmpty(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runR("-dir", dir, "-holds")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "not a ledger directory")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "nothing may be written")
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done, 1 for an action that failed.
func TestRetentionExitStatus(t *testing.T) {
	dir := makeLedger(t)
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"no flags", nil, 2},
		{"no -dir", []string{"-holds"}, 2},
		{"no action", []string{"-dir", dir}, 2},
		{"no ledger (layout.ErrNoLedger)", []string{"-dir", t.TempDir(), "-holds"}, 2},
		{"a release of no hold fails", []string{"-dir", dir, "-release", "nosuch", "-reason", "r", "-by", "b"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runR(c.args...)
			require.Equal(t, c.want, code, "%s%s", out, errs)
			require.NotEmpty(t, errs)
		})
	}
}
