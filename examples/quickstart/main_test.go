package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/leakcheck"
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
	require.Contains(t, out, "official Stream SDK")
	// A push whose ack is slow (a loaded machine) is pushed again and acknowledged again:
	// every push is acknowledged with 200, at least once.
	require.GreaterOrEqual(t, count(t, out, `120 pushes acknowledged (\d+) times with 200`), 120)
	require.Regexp(t, `\d+ attachments fetched through the download API`, out)
	require.Contains(t, out, "(0 failed, 0 pending)")
	// Every kind the issue names, and both conversation types, are among the samples.
	for _, k := range []string{"text", "rich_text", "picture", "audio", "file"} {
		require.Contains(t, out, k+" ")
	}
	require.Contains(t, out, "1 one-to-one")
	require.Regexp(t, `surveillance  \d+ messages scanned with the \S+ lexicon off the ack path: [1-9]\d* flagged`, out)
	require.Contains(t, out, "off-channel.move")
	for _, rule := range []string{"after-hours", "first-contact"} { // the samples trip both behaviour rules
		require.Regexp(t, `behaviour     rules quickstart-1 [^\n]*\n\s+[^\n]*\b`+rule+` [1-9]`, out)
	}
	// The queue shows its first behaviour alert (which one depends on the order the SDK
	// delivered the messages in).
	require.Regexp(t, `alert \d+: (after-hours \(medium\), behaviour, message \S+: sent 2026-07-0[12] \d\d:\d\d|first-contact \(low\), behaviour, message \S+: first conversation)`, out)
	require.Regexp(t, `alert queue   [1-9]\d* open alerts`, out)
	require.Regexp(t, `alert \d+: \S+ \(\w+\) on ".+" in the \S+ of message `, out)
	require.Regexp(t, `"微信 OR whatsapp" finds [1-9]`, out)
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed, "every directory 0700, every file 0600")

	// Raw payloads are kept byte for byte and the samples mix scripts: read back through an
	// audited accessor (the payloads are encrypted).
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	payloads := samplePayloads(120, 1)
	seenRaw := map[string]bool{}
	var text strings.Builder
	require.NoError(t, l.Access("test", "quickstart check").Scan(ctx, 0, l.Size(), func(e *ledger.Entry, err error) error {
		require.NoError(t, err)
		if e.Message != nil {
			seenRaw[string(e.Message.Raw)] = true
			text.WriteString(e.Message.Text)
		}
		return nil
	}))
	require.NoError(t, l.Close())
	for _, p := range payloads {
		require.True(t, seenRaw[string(p)], "raw payload not kept verbatim: %s", p)
	}
	require.Contains(t, text.String(), "騰訊") // Traditional
	require.Contains(t, text.String(), "腾讯") // Simplified
	require.Contains(t, text.String(), "0700.HK")

	// A second run delivers the same messages again: nothing new is stored.
	code, out, _ = runQS(t, "-dir", dir, "-n", "120")
	require.Equal(t, 0, code)
	require.GreaterOrEqual(t, count(t, out, `captured      0 new messages, (\d+) redeliveries dropped`), 120)
}

// count returns the number the pattern's group matches in out.
func count(t *testing.T, out, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	require.NotNil(t, m, "%q not in\n%s", pattern, out)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// secretsOf lists what a captured sample reveals: message texts, sender names, conversation
// titles (and the ASR text of audio), in every sample language.
func secretsOf(t *testing.T, payloads [][]byte) []string {
	seen := map[string]bool{}
	for _, p := range payloads {
		var b struct {
			SenderNick, ConversationTitle string
			Text                          *struct{ Content string }
		}
		require.NoError(t, json.Unmarshal(p, &b))
		seen[b.SenderNick] = true
		if b.ConversationTitle != "" {
			seen[b.ConversationTitle] = true
		}
		if b.Text != nil {
			seen[b.Text.Content] = true
		}
	}
	for _, texts := range sampleTexts {
		for _, s := range texts {
			seen[s] = true
		}
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	return out
}

func TestQuickstartLeavesNoPlaintextOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, _, errs := runQS(t, "-dir", dir, "-n", "200")
	require.Equal(t, 0, code, errs)
	secrets := secretsOf(t, samplePayloads(200, 1))
	require.Greater(t, len(secrets), 20)
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		files++
		if s, enc, found := leakcheck.Find(b, secrets); found {
			t.Errorf("%s holds %q (as %q)", p, s, enc)
		}
		return nil
	}))
	require.Greater(t, files, 5)
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
	require.Contains(t, out, "3 new messages")
	require.Contains(t, out, "2 malformed lines skipped")

	code, _, errs = runQS(t, "-dir", dir, "-messages", filepath.Join(tmp, "missing.jsonl"))
	require.Equal(t, 2, code)
	require.Contains(t, errs, "no such file")
	code, _, _ = runQS(t, "-dir", dir, "extra-arg")
	require.Equal(t, 2, code)
	code, _, _ = runQS(t, "-bogus")
	require.Equal(t, 2, code)
}

// TestQuickstartLedgerDirHoldsNoPlaintextWhileFetchesFail wires capture as the quickstart does
// (ledger directory, media journal under the ledger's "media-journal" state key, the real SDK
// against a local gateway) but with a download API that keeps failing, and greps every file of
// the ledger directory over and over while the fetches are pending and failing, round after
// round, then again after the source and the ledger have stopped with the fetches still
// pending: no text, name, title or file name may be on disk in plain text at any moment.
func TestQuickstartLedgerDirHoldsNoPlaintextWhileFetchesFail(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, ledger.Options{})
	require.NoError(t, err)
	payloads := samplePayloads(60, 3)
	secrets := secretsOf(t, payloads)
	gw := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 5 * time.Second, RobotCode: sampleRobot})
	t.Cleanup(gw.Close)
	refs := map[string]bool{} // some payloads are delivered twice
	for _, raw := range payloads {
		m, err := dingtalk.ParseBotMessage(raw)
		require.NoError(t, err)
		for _, a := range m.Attachments {
			gw.AddFile(a.Ref, a.MediaType, sampleAttachment(m.Kind, a.Ref))
			gw.FailDownloads(a.Ref, -1)
			refs[a.Ref] = true
			if a.Name != "" {
				secrets = append(secrets, a.Name)
			}
		}
	}
	attachments := len(refs)
	require.Positive(t, attachments)
	jkey, err := l.StateKey(ctx, "media-journal")
	require.NoError(t, err)
	journal, err := dingtalk.NewDirJournal(filepath.Join(l.Dir, "media-journal"), jkey)
	require.NoError(t, err)
	src, err := dingtalk.NewSource(dingtalk.Options{
		ClientID: dingtalktest.DefaultClientID, ClientSecret: dingtalktest.DefaultClientSecret,
		OpenAPIHost: gw.URL, Records: l, CheckInterval: 20 * time.Millisecond,
		Media: dingtalk.MediaOptions{Journal: journal, Blobs: l, QPS: 500, MaxAttempts: 1,
			RetryMin: 5 * time.Millisecond, RetryRoundAfter: 20 * time.Millisecond, MaxRounds: 1000},
	})
	require.NoError(t, err)
	runCtx, cancelRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, l) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancelRun(); runErr = errors.Join(<-done, l.Close()) })
		return runErr
	}
	t.Cleanup(func() { _ = stop() }) // before TempDir's removal, also when the test fails
	require.NoError(t, gw.WaitConns(ctx, 1))
	for _, raw := range payloads {
		gw.PushBotMessage(raw)
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, gw.Wait(wait))

	grep := func() (journalFiles int) {
		require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // replaced while walking
			}
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			require.NoError(t, err)
			if s, enc, found := leakcheck.Find(b, secrets); found {
				t.Fatalf("%s holds %q (as %q) while fetches fail", p, s, enc)
			}
			if filepath.Base(filepath.Dir(p)) == "media-journal" {
				journalFiles++
			}
			return nil
		}))
		return journalFiles
	}
	looks := 0
	for src.Health().MediaFailed < int64(3*attachments) {
		if grep() > 0 {
			looks++
		}
		select {
		case <-wait.Done():
			t.Fatalf("only %d failure rounds sealed", src.Health().MediaFailed)
		case <-time.After(5 * time.Millisecond):
		}
	}
	require.Positive(t, looks, "the journal was looked at while it held pending jobs")
	require.Equal(t, attachments, src.Health().PendingMedia)
	require.NoError(t, stop())
	require.Equal(t, attachments, grep(), "every pending fetch waits in the journal, encrypted")
}
