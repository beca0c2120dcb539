package surveil_test

import (
	"context"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
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
