package surveil_test

import (
	"context"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/stretchr/testify/require"
)

// TestReviewQueue: the queue derived from the ledger holds every alert; a dismissal or an
// escalation closes one, a note or an assignment does not; dispositions of things that are not
// alerts, unknown ones and notes over the limit are refused without sealing anything; reading
// the queue is one access entry.
func TestReviewQueue(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	msgs := appendMessages(t, l, 12, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	m, err := surveil.New(l, surveil.Options{Lexicon: live(t, scan.DefaultLexiconJSON())})
	require.NoError(t, err)
	require.Equal(t, 8, catchUp(t, m).Sealed)

	size := l.Size()
	q, err := surveil.Alerts(ctx, l, l.Access("reviewer", "daily review"))
	require.NoError(t, err)
	require.Equal(t, size+1, l.Size(), "one access entry for reading the queue")
	require.Len(t, q, 8)
	for _, a := range q {
		require.True(t, a.Open())
		require.Equal(t, msgs[a.Findings.Message.Index].ID, a.About.ID)
	}

	_, err = surveil.Dispose(ctx, l, "reviewer", "daily review", q[0].Index, surveil.Dismissed, "")
	require.NoError(t, err)
	_, err = surveil.Dispose(ctx, l, "reviewer", "daily review", q[1].Index, surveil.Escalated, "case 2026-117")
	require.NoError(t, err)
	_, err = surveil.Dispose(ctx, l, "reviewer", "daily review", q[2].Index, surveil.Noted, "client asked about 微信 group; told no")
	require.NoError(t, err)
	_, err = surveil.Dispose(ctx, l, "reviewer", "daily review", q[3].Index, surveil.Assigned, "bob")
	require.NoError(t, err)

	size = l.Size()
	for _, c := range []struct {
		at   uint64
		d    surveil.Disposition
		note string
		want string
	}{
		{q[4].Index, "ignored", "", "unknown disposition"},
		{q[4].Index, surveil.Noted, "", "needs a note"},
		{q[4].Index, surveil.Noted, string(make([]byte, surveil.MaxNoteLen+1)), "at most"},
	} {
		_, err := surveil.Dispose(ctx, l, "reviewer", "daily review", c.at, c.d, c.note)
		require.ErrorContains(t, err, c.want)
	}
	require.Equal(t, size, l.Size(), "refused before anything is read or sealed")
	var msgAt uint64
	for i := range msgs {
		msgAt = i
		break
	}
	_, err = surveil.Dispose(ctx, l, "reviewer", "daily review", msgAt, surveil.Dismissed, "")
	require.ErrorIs(t, err, surveil.ErrNotAnAlert)
	_, err = surveil.Dispose(ctx, l, "", "", q[4].Index, surveil.Dismissed, "")
	require.ErrorContains(t, err, "who and why")

	q, err = surveil.Alerts(ctx, l, l.Access("reviewer", "daily review"))
	require.NoError(t, err)
	open := 0
	for _, a := range q {
		if a.Open() {
			open++
		}
	}
	require.Equal(t, 6, open)
	require.Equal(t, surveil.Dismissed, q[0].Dispositions[0].Disposition)
	require.Equal(t, "reviewer", q[0].Dispositions[0].Who)
	require.Equal(t, "bob", q[3].Dispositions[0].Note)
}

// TestBehaviourAlertsNameTheirMessage: a behaviour annotation about a message records the
// message's ledger index (and the queue reports it), one about no message records none (a
// capture-health finding names its source instead), and an annotation sealed by an earlier
// version, without the field, still reads, about no index.
func TestBehaviourAlertsNameTheirMessage(t *testing.T) {
	ctx := context.Background()
	l := openLedger(t)
	rules, err := behaviour.ParseRules([]byte(`{"version": "about-1", "rules": [
	  {"id": "after-hours", "severity": "medium", "off_hours": {"desks": [
	     {"name": "d", "time_zone": "UTC", "open": "09:00", "close": "18:00"}], "default_desk": "d"}},
	  {"id": "source-down", "severity": "high", "source_silence": {"window": "30m"}}]}`))
	require.NoError(t, err)
	d, err := behaviour.New(rules, behaviour.Options{})
	require.NoError(t, err)
	now := time.Date(2026, 11, 2, 21, 0, 0, 0, time.UTC)
	m, err := surveil.New(l, surveil.Options{Lexicon: live(t, []byte(`{"name":"x","rules":[{"id":"r","category":"c","severity":"low","terms":["zzzz"]}]}`)),
		Behaviour: d, Now: func() time.Time { return now }})
	require.NoError(t, err)
	msgs := appendMessages(t, l, 1, time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)) // the first entry: index 0
	for i, x := range appendMessages(t, l, 1, time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC)) {
		msgs[i] = x
	}
	at := map[string]uint64{}
	for i, x := range msgs {
		at[x.ID] = i
	}
	catchUp(t, m) // two after-hours findings; at 21:00 the source has been quiet for an hour

	// An annotation as the version before this one sealed it: no message field.
	old := `{"schema":"commseal.behaviour/v1","finding":{"rule":"after-hours","kind":"off_hours","severity":"medium","rules":"about-0",` +
		`"platform":"dingtalk","tenant":"corp1","msg_id":"old-1","conversation":"cid-0","at":"2026-11-01T20:00:00Z","reason":"sent late"}}`
	about := capture.Identity{Platform: "dingtalk", Tenant: "corp1", ID: "old-1"}
	rc, err := l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordAnnotation, Platform: "dingtalk", Tenant: "corp1", ID: "behaviour/old-1",
		Conversation: capture.Conversation{ID: "cid-0"}, About: &about, At: now, Body: []byte(old)})
	require.NoError(t, err)

	q, err := surveil.Alerts(ctx, l, l.Access("reviewer", "about"))
	require.NoError(t, err)
	got := map[string]*surveil.Alert{}
	for _, a := range q {
		require.NotNil(t, a.Behaviour)
		key := a.Behaviour.Finding.Rule + "/" + a.Behaviour.Finding.MsgID
		got[key] = a
	}
	require.Len(t, got, 4, "%v", got)
	for id, i := range at {
		a := got["after-hours/"+id]
		require.NotNil(t, a, id)
		n, ok := a.MessageIndex()
		require.True(t, ok, id)
		require.Equal(t, i, n, id)
		require.NotNil(t, a.Behaviour.Message)
		require.Equal(t, i, a.Behaviour.Message.Index)
		require.Equal(t, id, a.Behaviour.Message.ID)
		require.Equal(t, "cid-0", a.Behaviour.Message.Conversation)
	}
	down := got["source-down/"]
	require.NotNil(t, down)
	_, ok := down.MessageIndex()
	require.False(t, ok, "a silence is about no message")
	require.Nil(t, down.Behaviour.Message)
	require.Equal(t, "dingtalk/corp1", down.Behaviour.Finding.Source)

	prev := got["after-hours/old-1"]
	require.NotNil(t, prev)
	require.Equal(t, rc.Index, prev.Index)
	_, ok = prev.MessageIndex()
	require.False(t, ok, "an earlier version's annotation names no index")
	require.Nil(t, prev.Behaviour.Message)
}
