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
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
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

// TestAlertsNameTheMessageOfABehaviourAlert: `alerts` prints, as "about", the ledger index of
// the message a behaviour alert is about (as for a lexicon alert), and no "about" at all for
// an alert about no message (a source gone silent, which names its source instead).
func TestAlertsNameTheMessageOfABehaviourAlert(t *testing.T) {
	ctx := context.Background()
	dir := ledgerWith(t, "noted", "see you") // m0 at 01:00 and m1 at 01:01 UTC: off hours
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	at := map[string]uint64{}
	for _, id := range []string{"m0", "m1"} {
		i, ok, err := l.Lookup(ctx, capture.Identity{Platform: "dingtalk", Tenant: "corp1", ID: id})
		require.NoError(t, err)
		require.True(t, ok)
		at[id] = i
	}
	require.NotEqual(t, at["m0"], at["m1"])
	rules, err := behaviour.ParseRules([]byte(`{"version": "review-1", "rules": [
	  {"id": "after-hours", "severity": "medium", "off_hours": {"desks": [
	     {"name": "d", "time_zone": "UTC", "open": "09:00", "close": "18:00"}], "default_desk": "d"}},
	  {"id": "source-down", "severity": "high", "source_silence": {"window": "30m"}}]}`))
	require.NoError(t, err)
	d, err := behaviour.New(rules, behaviour.Options{})
	require.NoError(t, err)
	s, err := scan.Default()
	require.NoError(t, err)
	lv, err := scan.NewLive(s)
	require.NoError(t, err)
	m, err := surveil.New(l.Ledger, surveil.Options{Lexicon: lv, Behaviour: d,
		Now: func() time.Time { return time.Date(2026, 10, 1, 3, 0, 0, 0, time.UTC) }})
	require.NoError(t, err)
	st, err := m.CatchUp(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, st.Behaviour, "two after hours, one source silence")
	require.NoError(t, l.Close())

	code, out, errs := review(t, dir, "alerts")
	require.Equal(t, exitOK, code, errs)
	seen := map[string]bool{}
	for line := range strings.Lines(strings.TrimSpace(out)) {
		var a map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &a), line)
		rule, _ := a["rule"].(string)
		switch rule {
		case "after-hours":
			id := a["msg_id"].(string)
			require.Contains(t, a, "about", line)
			require.Equal(t, float64(at[id]), a["about"], "about names the message, not 0: %s", line)
			seen[id] = true
		case "source-down":
			require.NotContains(t, a, "about", "a silence is about no message: %s", line)
			require.Equal(t, "dingtalk/corp1", a["source"], line)
			seen[rule] = true
		default:
			t.Fatalf("unexpected alert %s", line)
		}
	}
	require.Equal(t, map[string]bool{"m0": true, "m1": true, "source-down": true}, seen)
}
