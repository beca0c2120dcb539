package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/stretchr/testify/require"
)

func ledgerWith(t *testing.T, texts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ledger")
	l, err := ledgerdir.Open(context.Background(), dir, "", ledger.Options{})
	require.NoError(t, err)
	for i, s := range texts {
		_, err := l.Append(context.Background(), &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprintf("m%d", i),
			Conversation: capture.Conversation{ID: "cid-1", Type: capture.ConversationGroup}, Sender: capture.Party{ID: "u1"},
			SentAt: time.Date(2026, 10, 1, 1, i, 0, 0, time.UTC), Kind: capture.KindText, Text: s, Raw: []byte("{}")})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	return dir
}

func review(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"-dir", dir, "-who", "alice", "-why", "daily review"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestReviewFlow: scan seals the findings, alerts lists them as JSON lines with the documented
// fields, a dismissal closes one, and rescan reports a new lexicon against the default.
func TestReviewFlow(t *testing.T) {
	dir := ledgerWith(t, "加我微信再講", "buy 500 0700.HK", "call me on WhatsApp", "報價幾多", "delete this chat")
	code, out, errs := review(t, dir, "scan")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, "scanned 5 messages")
	require.Contains(t, out, "3 flagged, 3 annotations sealed")
	code, out, _ = review(t, dir, "scan")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "0 annotations sealed", "the cursor kept its place")

	code, out, errs = review(t, dir, "alerts")
	require.Equal(t, exitOK, code, errs)
	var first map[string]any
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.GreaterOrEqual(t, len(lines), 3)
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	for _, k := range []string{"index", "about", "msg_id", "conversation", "sender", "rule", "category", "severity", "term", "field", "start", "end", "lexicon_version"} {
		require.Contains(t, first, k)
	}
	require.Equal(t, "m0", first["msg_id"])
	alert := int(first["index"].(float64))

	code, out, errs = review(t, dir, "dispose", "-alert", fmt.Sprint(alert), "-disposition", "dismissed")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, "sealed at")
	code, out, _ = review(t, dir, "alerts")
	require.Equal(t, exitOK, code)
	require.NotContains(t, out, `"msg_id":"m0"`)
	code, out, _ = review(t, dir, "alerts", "-all")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, `"msg_id":"m0"`)

	lex := filepath.Join(t.TempDir(), "lex.json")
	require.NoError(t, os.WriteFile(lex, []byte(`{"name":"v2","rules":[{"id":"off-channel.move","category":"off_channel","severity":"medium","terms":["whatsapp"]}]}`), 0o600))
	code, out, errs = review(t, dir, "rescan", "-lexicon", lex)
	require.Equal(t, exitOK, code, errs)
	var rep struct {
		Scanned, Flagged int
		Rules            []struct {
			Rule                                   string
			Removed, Dismissed, Reviewed, Messages int
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, 5, rep.Scanned)
	require.Equal(t, 1, rep.Flagged)
	for _, r := range rep.Rules {
		if r.Rule == "off-channel.move" {
			require.Equal(t, 1, r.Removed, "微信")
			require.Equal(t, 1, r.Dismissed)
		}
	}
}

// TestReviewRefusesBadInput: each mistake names itself, with exit 1 or 2.
func TestReviewRefusesBadInput(t *testing.T) {
	dir := ledgerWith(t, "call me on WhatsApp")
	badLex := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(badLex, []byte(`{"name":"x","rules":[]}`), 0o600))
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, exitRefused, "unknown command"},
		{[]string{}, exitRefused, "a command is required"},
		{[]string{"dispose", "-alert", "0", "-disposition", "dismissed"}, exitFailed, "not an alert"},
		{[]string{"dispose", "-alert", "0"}, exitRefused, "-disposition"},
		{[]string{"dispose", "-alert", "99", "-disposition", "dismissed"}, exitFailed, "not found"},
		{[]string{"rescan"}, exitRefused, "-lexicon"},
		{[]string{"rescan", "-lexicon", badLex}, exitRefused, "lexicon"},
		{[]string{"rescan", "-lexicon", badLex, "-from", "yesterday"}, exitRefused, "RFC 3339"},
		{[]string{"scan", "-lexicon", badLex}, exitRefused, "lexicon"},
	} {
		code, _, errs := review(t, dir, c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, errs)
		require.Contains(t, errs, c.want, c.args)
	}
	var out, errb bytes.Buffer
	require.Equal(t, exitRefused, run(context.Background(), []string{"-dir", dir, "alerts"}, &out, &errb))
	require.Contains(t, errb.String(), "-who and -why")
	require.Equal(t, exitRefused, run(context.Background(), []string{"-dir", t.TempDir(), "-who", "a", "-why", "b", "alerts"}, &out, &errb))
}
