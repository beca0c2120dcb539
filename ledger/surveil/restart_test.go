package surveil_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restartRules: a conversation silence, an off-channel move followed by silence, and first
// contact with an outsider (a party whose id starts with "ext-").
const restartRules = `{"version": "restart-1", "rules": [
  {"id": "conv-quiet", "severity": "medium", "conversation_silence": {"window": "1h"}},
  {"id": "gone-quiet", "severity": "high", "off_channel": {"categories": ["off_channel"], "silence": "30m"}},
  {"id": "new-external", "severity": "info", "first_contact": {}}]}`

func restartDetector(t testing.TB) *behaviour.Detector {
	t.Helper()
	rules, err := behaviour.ParseRules([]byte(restartRules))
	require.NoError(t, err)
	d, err := behaviour.New(rules, behaviour.Options{PartyCorp: func(_ *capture.Message, p *capture.Party) string {
		if strings.HasPrefix(p.ID, "ext-") {
			return "othercorp"
		}
		return "corp1"
	}})
	require.NoError(t, err)
	return d
}

func say(t testing.TB, l *ledger.Ledger, id, conv, sender, text string, at time.Time) uint64 {
	t.Helper()
	rc, err := l.Append(context.Background(), &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: id,
		Conversation: capture.Conversation{ID: conv, Type: capture.ConversationGroup}, Sender: capture.Party{ID: sender},
		SentAt: at, Kind: capture.KindText, Text: text, Raw: []byte(`{}`)})
	require.NoError(t, err)
	return rc.Index
}

// TestARestartedMonitorRebuildsItsBehaviour: a monitor stopped and started again (a new
// Monitor and a new, empty Detector on the same cursor file) rebuilds the behaviour rules'
// state from the ledger before its first step. A conversation silent across the restart is
// reported once, when its window ends; so is an off-channel move followed by silence across
// it; a silence reported before the restart is not reported again; and an outsider who met a
// staff member before the restart is no first contact after it. The replay is counted.
func TestARestartedMonitorRebuildsItsBehaviour(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	lv := live(t, []byte(`{"name":"x","rules":[{"id":"move","category":"off_channel","severity":"medium","terms":["whatsapp"]}]}`))
	cur := filepath.Join(t.TempDir(), "surveil.cursor")
	var mu sync.Mutex
	now := time.Date(2026, 11, 2, 9, 5, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
	type report struct {
		rule, conv, msg string
		fresh           bool
		at, since       time.Time
		index           uint64
		onMessage       bool
	}
	var reports []report
	start := func() *surveil.Monitor {
		m, err := surveil.New(l, surveil.Options{Lexicon: lv, Behaviour: restartDetector(t), CursorFile: cur, Now: clock, TickEvery: time.Minute,
			OnSealed: func(_ context.Context, s *surveil.Sealed) error {
				if b := s.Behaviour; b != nil {
					reports = append(reports, report{b.Rule, b.Conversation, b.MsgID, s.Fresh, b.At, b.Since, s.MessageAt, s.OnMessage()})
				}
				return nil
			}})
		require.NoError(t, err)
		return m
	}
	at := func(hm string) time.Time {
		t, err := time.Parse("2006-01-02 15:04", "2026-11-02 "+hm)
		if err != nil {
			panic(err)
		}
		return t
	}

	say(t, l, "old-1", "cid-old", "u1", "morning", at("07:55"))
	say(t, l, "a-1", "cid-a", "u1", "price?", at("09:00"))
	met := say(t, l, "a-2", "cid-a", "ext-client", "500 at 10", at("09:01")) // first contact: ext-client and u1
	moved := say(t, l, "d-1", "cid-d", "u2", "call me on whatsapp", at("09:02"))

	m := start()
	catchUp(t, m) // 09:05: cid-old has been quiet for over an hour
	require.Equal(t, []report{
		{"new-external", "cid-a", "a-2", true, at("09:01"), time.Time{}, met, true},
		{"conv-quiet", "cid-old", "", true, at("09:05"), at("07:55"), reports[1].index, false},
	}, reports)
	reports = nil

	// The monitor stops at 09:10; a new one starts at 09:20, with an empty detector.
	setClock(at("09:20"))
	m = start()
	catchUp(t, m)
	assert.Empty(t, reports, "nothing is silent yet, and cid-old's silence was reported before")
	reports = nil

	setClock(at("09:40")) // cid-d quiet for 38 minutes after a move to WhatsApp
	catchUp(t, m)
	assert.Equal(t, []report{{"gone-quiet", "cid-d", "d-1", true, at("09:40"), at("09:02"), moved, true}}, reports,
		"the move to WhatsApp before the restart, followed by silence across it")
	reports = nil

	setClock(at("10:05")) // cid-a quiet since 09:01, cid-d since 09:02: over an hour
	catchUp(t, m)
	assert.Equal(t, []report{
		{"conv-quiet", "cid-a", "", true, at("10:05"), at("09:01"), 0, false},
		{"conv-quiet", "cid-d", "", true, at("10:05"), at("09:02"), 0, false},
	}, reports, "each conversation silent across the restart, once, when its hour is up")
	reports = nil

	// The outsider and the staff member meet again, in a new conversation: no first contact.
	say(t, l, "e-1", "cid-e", "ext-client", "hello again", at("10:06"))
	say(t, l, "e-2", "cid-e", "u1", "hi", at("10:07"))
	setClock(at("10:08"))
	catchUp(t, m)
	assert.Empty(t, reports, "a contact seen before the restart is no first contact")

	// In the ledger: each finding once.
	acc := l.Access("officer", "restart check").For("review")
	q, err := surveil.Alerts(ctx, l, acc)
	require.NoError(t, err)
	count := map[string]int{}
	for _, a := range q {
		if b := a.Behaviour; b != nil {
			count[fmt.Sprint(b.Finding.Rule, " ", b.Finding.Conversation)]++
		}
	}
	assert.Equal(t, map[string]int{"new-external cid-a": 1, "conv-quiet cid-old": 1, "gone-quiet cid-d": 1,
		"conv-quiet cid-a": 1, "conv-quiet cid-d": 1}, count)
}

// TestRebuildIsBoundedAndCounted: the replay reaches back the rules' longest window from the
// last message before the cursor (Options.RebuildWindow overrides it), never more than
// Options.RebuildEntries entries (what that cap leaves out of the window is counted), and
// none with a negative cap; it seals nothing, its cost is in Stats and in the log, and a
// rebuild that failed (a cancelled context) is done once by the next step, feeding no message
// twice.
func TestRebuildIsBoundedAndCounted(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	lv := live(t, []byte(`{"name":"x","rules":[{"id":"r","category":"c","severity":"low","terms":["zzzz"]}]}`))
	cur := filepath.Join(t.TempDir(), "surveil.cursor")
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for i := range 30 { // one every 10 minutes, 08:00 to 12:50
		say(t, l, fmt.Sprint("b-", i), fmt.Sprint("cid-", i%4), "u1", "hello", t0.Add(time.Duration(i)*10*time.Minute))
	}
	first, err := surveil.New(l, surveil.Options{Lexicon: lv, CursorFile: cur}) // no behaviour rules: moves the cursor only
	require.NoError(t, err)
	catchUp(t, first)
	size := l.Size()

	quiet := func() *behaviour.Detector {
		rules, err := behaviour.ParseRules([]byte(`{"version": "q-1", "rules": [
		  {"id": "conv-quiet", "severity": "medium", "conversation_silence": {"window": "1h"}}]}`))
		require.NoError(t, err)
		d, err := behaviour.New(rules, behaviour.Options{})
		require.NoError(t, err)
		return d
	}
	clock := func() time.Time { return t0.Add(291 * time.Minute) } // just after the last message: nothing silent
	for _, c := range []struct {
		name              string
		window            time.Duration
		entries           int
		replayed, skipped int
	}{
		{"the rules' window: 11:50 to 12:50", 0, 0, 7, 0},
		{"a wider window", 2 * time.Hour, 0, 13, 0},
		{"capped", 0, 3, 3, 4},
		{"none", 0, -1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logged strings.Builder
			d := quiet()
			m, err := surveil.New(l, surveil.Options{Lexicon: lv, Behaviour: d, CursorFile: cur, Now: clock,
				RebuildWindow: c.window, RebuildEntries: c.entries, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			require.NoError(t, err)
			st := catchUp(t, m)
			require.Equal(t, c.replayed, st.Replayed)
			require.Equal(t, uint64(c.skipped), st.ReplaySkipped)
			require.Equal(t, uint64(c.replayed), d.Stats().Messages, "the detector saw what was replayed")
			require.Equal(t, size, l.Size(), "the rebuild seals nothing")
			if c.entries >= 0 {
				require.Positive(t, st.ReplayTook)
				require.Contains(t, logged.String(), fmt.Sprintf("behaviour rules rebuilt from the ledger\" messages=%d skipped_entries=%d", c.replayed, c.skipped))
			}
			again := catchUp(t, m)
			require.Zero(t, again.Replayed, "once")
		})
	}

	d := quiet()
	m, err := surveil.New(l, surveil.Options{Lexicon: lv, Behaviour: d, CursorFile: cur, Now: clock})
	require.NoError(t, err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Step(cancelled)
	require.ErrorIs(t, err, context.Canceled)
	st := catchUp(t, m)
	require.Equal(t, 7, st.Replayed)
	require.Equal(t, uint64(7), d.Stats().Messages, "no message fed twice")

	// The same detector, handed to a new monitor in the same process, is not fed again.
	m, err = surveil.New(l, surveil.Options{Lexicon: lv, Behaviour: d, CursorFile: cur, Now: clock})
	require.NoError(t, err)
	require.Zero(t, catchUp(t, m).Replayed)
	require.Equal(t, uint64(7), d.Stats().Messages)
}

// TestARestartWithANewLexiconDoesNotFeedHistoryAgain: a monitor restarted with a new lexicon
// version scans history with it, but its behaviour rules go on from where the previous
// monitor's stopped (rebuilt from the messages before), as after a reload: nothing they
// reported before is reported again.
func TestARestartWithANewLexiconDoesNotFeedHistoryAgain(t *testing.T) {
	l := openLedger(t)
	cur := filepath.Join(t.TempDir(), "surveil.cursor")
	hours := func() *behaviour.Detector {
		rules, err := behaviour.ParseRules([]byte(`{"version": "hours-1", "rules": [
		  {"id": "after-hours", "severity": "medium", "off_hours": {"desks": [
		     {"name": "d", "time_zone": "UTC", "open": "09:00", "close": "18:00"}], "default_desk": "d"}}]}`))
		require.NoError(t, err)
		d, err := behaviour.New(rules, behaviour.Options{})
		require.NoError(t, err)
		return d
	}
	var reported []string
	onSealed := func(_ context.Context, s *surveil.Sealed) error {
		if s.Behaviour != nil {
			reported = append(reported, s.Behaviour.MsgID)
		}
		return nil
	}
	appendMessages(t, l, 2, time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC))
	m, err := surveil.New(l, surveil.Options{Lexicon: live(t, []byte(`{"name":"v1","rules":[{"id":"r","category":"c","severity":"low","terms":["whatsapp"]}]}`)),
		Behaviour: hours(), CursorFile: cur, OnSealed: onSealed})
	require.NoError(t, err)
	catchUp(t, m)
	require.Len(t, reported, 2)

	reported = nil
	d := hours()
	m, err = surveil.New(l, surveil.Options{Lexicon: live(t, []byte(`{"name":"v2","rules":[{"id":"r","category":"c","severity":"low","terms":["wechat"]}]}`)),
		Behaviour: d, CursorFile: cur, OnSealed: onSealed})
	require.NoError(t, err)
	st := catchUp(t, m)
	require.Equal(t, 2, st.Messages, "the new version scanned history: %+v", st)
	require.Zero(t, st.Replayed, "off_hours remembers nothing")
	require.Empty(t, reported, "the behaviour rules were not fed history again")
	require.Zero(t, d.Stats().Messages)
}
