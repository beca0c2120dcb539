package surveil_test

import (
	"context"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

// TestRescanReportsAgainstThePreviousVersion: a new lexicon run over history seals its
// findings once, and reports per rule and term the hits, what it adds and removes against the
// version that ran before, and that version's precision from reviewers' dispositions.
func TestRescanReportsAgainstThePreviousVersion(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	appendMessages(t, l, 24, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	m, err := surveil.New(l, surveil.Options{Lexicon: live(t, scan.DefaultLexiconJSON())})
	require.NoError(t, err)
	catchUp(t, m)
	q, err := surveil.Alerts(ctx, l, l.Access("reviewer", "review"))
	require.NoError(t, err)
	// Of the off-channel alerts, dismiss two and escalate one.
	var offChannel []uint64
	for _, a := range q {
		if a.Findings.Findings[0].Rule == "off-channel.move" {
			offChannel = append(offChannel, a.Index)
		}
	}
	require.GreaterOrEqual(t, len(offChannel), 3)
	for i, d := range []surveil.Disposition{surveil.Dismissed, surveil.Dismissed, surveil.Escalated} {
		_, err := surveil.Dispose(ctx, l, "reviewer", "review", offChannel[i], d, "")
		require.NoError(t, err)
	}

	lex, err := scan.ParseLexicon([]byte(`{"name":"v2","rules":[
		{"id":"off-channel.move","category":"off_channel","severity":"medium","terms":["whatsapp"]},
		{"id":"pricing","category":"pricing","severity":"low","terms":["報價"]}]}`))
	require.NoError(t, err)
	s, err := scan.Compile(lex)
	require.NoError(t, err)
	rep, err := surveil.Rescan(ctx, l, l.Access("reviewer", "tuning"), s, surveil.RescanOptions{})
	require.NoError(t, err)
	require.Equal(t, 24, rep.Scanned)
	// whatsapp: 4 texts + 4 file names (8 messages); 報價: 4 messages.
	require.Equal(t, 12, rep.Flagged)
	require.Equal(t, 12, rep.Sealed)
	require.NotEmpty(t, rep.Previous)
	rules := map[string]*surveil.RuleReport{}
	for _, r := range rep.Rules {
		rules[r.Rule] = r
	}
	oc := rules["off-channel.move"]
	require.Equal(t, 8, oc.Messages)
	require.Equal(t, 8, oc.Terms["whatsapp"])
	require.Zero(t, oc.Added, "the default lexicon flagged the same whatsapp texts and file names")
	require.Equal(t, 4, oc.Removed, "微信 is no longer a term")
	require.Equal(t, 3, oc.Reviewed)
	require.Equal(t, 2, oc.Dismissed)
	require.InDelta(t, 1.0/3, oc.Precision, 1e-9)
	require.Equal(t, 4, rules["pricing"].Added)
	require.Equal(t, 4, rules["records.destruction-secrecy"].Removed)

	again, err := surveil.Rescan(ctx, l, l.Access("reviewer", "tuning"), s, surveil.RescanOptions{})
	require.NoError(t, err)
	require.Zero(t, again.Sealed, "nothing sealed twice")
	require.Equal(t, 12, again.Flagged)

	ranged, err := surveil.Rescan(ctx, l, l.Access("reviewer", "tuning"), s, surveil.RescanOptions{From: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 10, 1, 0, 6, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.Equal(t, 6, ranged.Scanned)
	size := l.Size()
	_, err = surveil.Rescan(ctx, l, l.Access("reviewer", "tuning"), s, surveil.RescanOptions{From: time.Unix(10, 0), To: time.Unix(5, 0)})
	require.ErrorContains(t, err, "not before")
	_, err = surveil.Rescan(ctx, l, l.Access("", ""), s, surveil.RescanOptions{})
	require.ErrorContains(t, err, "who and why")
	require.Equal(t, size, l.Size(), "refused before anything is recorded or read")
	again, err = surveil.Rescan(ctx, l, l.Access("reviewer", "tuning"), s, surveil.RescanOptions{})
	require.NoError(t, err)
	require.Equal(t, size+1, l.Size(), "a re-scan that seals nothing new is still one access entry")
	en, err := l.Get(ctx, size)
	require.NoError(t, err)
	require.Contains(t, string(en.Body), `"for":"rescan"`)
}
