package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/internal/testio"
	"github.com/commseal/commseal/ledger"
	"github.com/stretchr/testify/require"
)

func TestArchiverMakesNextMonthsKeysInTheLastHour(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC) // two hours before December
	l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, ledger.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer l.Close()
	for _, conv := range []string{"cid-1", "cid-2"} {
		_, err := l.Append(ctx, &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: "m-" + conv,
			Conversation: capture.Conversation{ID: conv}, SentAt: now, Kind: capture.KindText, Text: "hi"})
		require.NoError(t, err)
	}
	var logs testio.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var mu sync.Mutex
	clock := now
	tick := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }

	// run runs prepareMonths at the time at until its log holds want, or for 200 ms without.
	run := func(at time.Time, want string) {
		mu.Lock()
		clock = at
		mu.Unlock()
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { prepareMonths(rctx, l.Ledger, log, tick, time.Hour); close(done) }()
		if want == "" {
			time.Sleep(200 * time.Millisecond)
		} else {
			require.Eventually(t, func() bool { return strings.Contains(logs.String(), want) }, 10*time.Second, 10*time.Millisecond)
		}
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("prepareMonths did not return when its context ended")
		}
	}
	run(now, "") // 22:00: not yet
	require.NotContains(t, logs.String(), "data keys made")
	run(now.Add(90*time.Minute), "month=2026-12 keys=2") // 23:30: in the last hour
	made, err := l.PrepareMonth(ctx, now.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.Zero(t, made, "December's keys were made")
	require.Equal(t, 1, strings.Count(logs.String(), "data keys made"))
}
