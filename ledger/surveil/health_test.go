package surveil_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/stretchr/testify/require"
)

// TestMonitorSealsCaptureHealth: the capture-health rules, which fire from the detector's
// Tick and Reconnect rather than from a message, reach the ledger and the alert queue through
// the monitor: a conversation and a source gone silent (ticked by a caught-up step, at most
// once per TickEvery, never twice for one silence), and a reconnect storm (Monitor.Reconnect).
func TestMonitorSealsCaptureHealth(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	rules, err := behaviour.ParseRules([]byte(`{"version": "health-1", "rules": [
	  {"id": "conv-quiet", "severity": "medium", "conversation_silence": {"window": "1h"}},
	  {"id": "source-down", "severity": "high", "source_silence": {"window": "30m"}},
	  {"id": "flapping", "severity": "high", "reconnect_storm": {"count": 3, "window": "1m"}}]}`))
	require.NoError(t, err)
	d, err := behaviour.New(rules, behaviour.Options{})
	require.NoError(t, err)
	var mu sync.Mutex
	now := time.Date(2026, 11, 2, 9, 10, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	var sealed []*surveil.Sealed
	m, err := surveil.New(l, surveil.Options{Lexicon: live(t, []byte(`{"name":"x","rules":[{"id":"r","category":"c","severity":"low","terms":["zzzz"]}]}`)),
		Behaviour: d, Now: clock, TickEvery: time.Minute,
		OnSealed: func(_ context.Context, s *surveil.Sealed) error { sealed = append(sealed, s); return nil }})
	require.NoError(t, err)

	appendMessages(t, l, 3, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)) // cid-0, cid-1, cid-2 at 9:00-9:02
	catchUp(t, m)
	require.Empty(t, sealed, "nothing is silent yet")

	advance(45 * time.Minute) // 9:55: the source has been quiet for 53 minutes, no conversation for an hour
	catchUp(t, m)
	require.Len(t, sealed, 1)
	require.Equal(t, "source-down", sealed[0].Behaviour.Rule)
	require.Equal(t, "dingtalk/corp1", sealed[0].Behaviour.Source)
	require.Nil(t, sealed[0].Message)

	ticks := d.Stats().Ticks
	advance(30 * time.Second) // within TickEvery: not ticked again
	catchUp(t, m)
	require.Len(t, sealed, 1)
	require.Equal(t, ticks, d.Stats().Ticks, "ticked again within TickEvery")

	advance(10 * time.Minute) // 10:05: every conversation quiet for over an hour
	catchUp(t, m)
	require.Len(t, sealed, 4, "one finding per conversation, and the source's silence not again")
	for _, s := range sealed[1:] {
		require.Equal(t, "conv-quiet", s.Behaviour.Rule)
		require.True(t, s.Fresh)
	}

	for i := range 3 {
		require.NoError(t, m.Reconnect(ctx, "dingtalk/corp1", clock().Add(time.Duration(i)*10*time.Second)))
	}
	require.Len(t, sealed, 5)
	require.Equal(t, "flapping", sealed[4].Behaviour.Rule)

	// In the ledger, and in the review queue, with where it happened.
	acc := l.Access("officer", "health review").For("review")
	q, err := surveil.Alerts(ctx, l, acc)
	require.NoError(t, err)
	var got []string
	for _, a := range q {
		if a.Behaviour != nil {
			got = append(got, a.Behaviour.Finding.Rule)
			require.True(t, a.Open())
		}
	}
	require.ElementsMatch(t, []string{"source-down", "conv-quiet", "conv-quiet", "conv-quiet", "flapping"}, got)
	for _, s := range sealed {
		for _, a := range s.Alerts() {
			require.Equal(t, "dingtalk", a.Platform, "%+v", a)
			require.Equal(t, "corp1", a.Tenant)
			require.Equal(t, s.Index, a.Index, "an alert about no message names its annotation")
			require.NotZero(t, a.Index)
		}
	}
}

// TestBehaviourFollowsTheLedgerAcrossALexiconReload: the behaviour rules see each message
// once, as the monitor reaches it at the end of the ledger, whichever lexicon version scans it.
// A reload, which runs the new version over history, neither stops them nor feeds them that
// history again.
func TestBehaviourFollowsTheLedgerAcrossALexiconReload(t *testing.T) {
	l := openLedger(t)
	rules, err := behaviour.ParseRules([]byte(`{"version": "hours-1", "rules": [
	  {"id": "after-hours", "severity": "medium", "off_hours": {"desks": [
	     {"name": "d", "time_zone": "UTC", "open": "09:00", "close": "18:00", "calendar": ""}], "default_desk": "d"}}]}`))
	require.NoError(t, err)
	d, err := behaviour.New(rules, behaviour.Options{})
	require.NoError(t, err)
	lv := live(t, []byte(`{"name":"v1","rules":[{"id":"r","category":"c","severity":"low","terms":["whatsapp"]}]}`))
	var afterHours []string
	m, err := surveil.New(l, surveil.Options{Lexicon: lv, Behaviour: d,
		OnSealed: func(_ context.Context, s *surveil.Sealed) error {
			if s.Fresh && s.Behaviour != nil {
				afterHours = append(afterHours, s.Behaviour.MsgID)
			}
			return nil
		}})
	require.NoError(t, err)
	evening := time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC)
	appendMessages(t, l, 2, evening)
	catchUp(t, m)
	require.Len(t, afterHours, 2)

	_, err = lv.Reload([]byte(`{"name":"v2","rules":[{"id":"r","category":"c","severity":"low","terms":["whatsapp","wechat"]}]}`))
	require.NoError(t, err)
	appendMessages(t, l, 3, evening.Add(time.Hour))
	st := catchUp(t, m)
	require.NotEqual(t, "", st.Version)
	require.Len(t, afterHours, 5, "the three new messages, once each: %v", afterHours)
	require.Equal(t, 5, int(d.Stats().Messages), "the detector saw each message once")
}
