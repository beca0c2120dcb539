package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

// BenchmarkArchiverScanLag measures surveillance as the archiver runs it, through the real SDK:
// messages pushed by a local gateway at 5,000 a second, 1 in 50 tripping the default lexicon;
// the lag is from the push to the finding being sealed (the monitor fed by the ledger, off the
// ack path). b.N is the number of messages:
//
//	go test ./examples/archiver -run '^$' -bench ArchiverScanLag -benchtime 20000x
func BenchmarkArchiverScanLag(b *testing.B) {
	const rate = 5000
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 30 * time.Second})
	defer g.Close()
	dir := b.TempDir()
	feed := surveil.NewFeed(0)
	l, err := ledgerdir.Open(context.Background(), dir, layout.DefaultOrigin, ledger.Options{Appended: feed.Appended})
	require.NoError(b, err)
	defer l.Close()
	src, err := dingtalk.NewSource(dingtalk.Options{
		ClientID: dingtalktest.DefaultClientID, ClientSecret: dingtalktest.DefaultClientSecret,
		OpenAPIHost: g.URL, Media: dingtalk.MediaOptions{Disabled: true}, MaxInFlight: 256,
	})
	require.NoError(b, err)
	s, err := scan.Default()
	require.NoError(b, err)
	lv, err := scan.NewLive(s)
	require.NoError(b, err)
	var mu sync.Mutex
	pushed := map[string]time.Time{}
	var lag []time.Duration
	m, err := surveil.New(l.Ledger, surveil.Options{Lexicon: lv, Feed: feed, CursorFile: filepath.Join(dir, layout.CursorFile),
		OnSealed: func(_ context.Context, s *surveil.Sealed) error {
			mu.Lock()
			defer mu.Unlock()
			if t, ok := pushed[s.Message.ID]; ok && s.Fresh {
				lag = append(lag, time.Since(t))
			}
			return nil
		}})
	require.NoError(b, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- src.Run(ctx, l) }()
	go func() { done <- m.Run(ctx, 50*time.Millisecond) }()
	defer func() { stop(); <-done; <-done }()
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(b, g.WaitConns(wctx, 2))

	payloads := make([][]byte, b.N)
	for i := range payloads {
		text := "buy 100 0700.HK at market"
		if i%50 == 0 {
			text = "call me on WhatsApp about 0700.HK"
		}
		payloads[i] = dingtalktest.BotMessage{MsgID: fmt.Sprintf("lag-%d", i), Text: text, ConversationID: "cid-" + strconv.Itoa(i%50)}.JSON()
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		if i%50 == 0 {
			mu.Lock()
			pushed[fmt.Sprintf("lag-%d", i)] = time.Now()
			mu.Unlock()
		}
		g.PushBotMessage(payloads[i])
	}
	require.NoError(b, g.Wait(context.Background()))
	elapsed := time.Since(start)
	want := (b.N + 49) / 50
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lag)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	require.Len(b, lag, want, "every flagged message sealed")
	slices.Sort(lag)
	pct := func(p float64) float64 { return float64(lag[int(p*float64(len(lag)-1))]) / 1e6 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "lag-p50-ms")
	b.ReportMetric(pct(0.99), "lag-p99-ms")
	b.ReportMetric(0, "ns/op")
}
