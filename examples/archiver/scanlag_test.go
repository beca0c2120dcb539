package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/internal/watchlist"
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
	warmUp(b, g, 50)

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

// BenchmarkArchiverCaptureScan measures what surveillance costs capture, as the archiver runs
// both: the real SDK against dingtalktest with 64 pushes outstanding, into a ledger on the file
// store, with scanning off (-no-scan), with the default lexicon, and with a 10,000-term watch
// list (watchlist.Lexicon), the monitor and its alerts wired by the archiver's own code. The
// messages are loadgen's: 300 bytes, 1 in 50 tripping the lexicon. msgs/s is capture
// throughput, from the first push to the last ack; cpu-us/msg the process's CPU time per
// message over that span (dingtalktest's share included, as it runs in the process);
// catchup-ms how long after the last ack the monitor had scanned everything. Run the three
// one after another, rounds interleaved, to compare them:
//
//	go test ./examples/archiver -run '^$' -bench 'ArchiverCaptureScan/scan=off' -benchtime 40000x
func BenchmarkArchiverCaptureScan(b *testing.B) {
	text := strings.Repeat("Q3 allocation for client 12: confirm the block trade at the agreed price. ", 5)[:300]
	flagged := text[:len(text)-24] + " call me on WhatsApp"
	for _, mode := range []string{"off", "default", "terms=10000"} {
		b.Run("scan="+mode, func(b *testing.B) {
			g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 30 * time.Second})
			defer g.Close()
			dir := b.TempDir()
			args := []string{"-dir", dir, "-openapi-host", g.URL}
			switch mode {
			case "off":
				args = append(args, "-no-scan")
			case "terms=10000":
				raw, err := watchlist.Lexicon(10000).Canonical()
				require.NoError(b, err)
				path := filepath.Join(b.TempDir(), "watchlist.json")
				require.NoError(b, os.WriteFile(path, raw, 0o600))
				args = append(args, "-lexicon", path)
			}
			c, err := parse(args, envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID,
				"DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret}), io.Discard)
			require.NoError(b, err)
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { stop(); wg.Wait() }()
			log := slog.New(slog.DiscardHandler)
			var opts ledger.Options
			var sv *surveillance
			if !c.noScan {
				sv, err = c.loadSurveillance()
				require.NoError(b, err)
				opts.Appended = sv.feed.Appended
			}
			l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, opts)
			require.NoError(b, err)
			defer l.Close()
			var m *surveil.Monitor
			var findings atomic.Int64 // messages whose findings were sealed
			if sv != nil {
				notify, err := c.alerts(ctx, &wg, log)
				require.NoError(b, err)
				m, err = sv.start(ctx, &wg, l.Ledger, dir, "dingtalk/"+dingtalktest.DefaultClientID, log, func(ctx context.Context, s *surveil.Sealed) error {
					if s.Fresh && len(s.Findings) > 0 {
						findings.Add(1)
					}
					return notify.onSealed(ctx, s)
				})
				require.NoError(b, err)
			}
			src, err := dingtalk.NewSource(dingtalk.Options{
				ClientID: dingtalktest.DefaultClientID, ClientSecret: dingtalktest.DefaultClientSecret,
				OpenAPIHost: g.URL, Media: dingtalk.MediaOptions{Disabled: true}, MaxInFlight: 256,
			})
			require.NoError(b, err)
			wg.Go(func() { _ = src.Run(ctx, l) })
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			require.NoError(b, g.WaitConns(wctx, 2))
			warmUp(b, g, 50)
			payloads := make([][]byte, b.N)
			for i := range payloads {
				t := text
				if i%50 == 0 {
					t = flagged
				}
				payloads[i] = dingtalktest.BotMessage{MsgID: fmt.Sprintf("cs-%d", i), Text: t, ConversationID: "cid-" + strconv.Itoa(i%50)}.JSON()
			}
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			start := time.Now()
			pushWindowed(b, g, payloads, 64)
			elapsed := time.Since(start)
			cpu1, _ := processCPU()
			acked := time.Now()
			if m != nil {
				v := sv.lv.Scanner().Version()
				for m.Position(v) < l.Size() && time.Since(acked) < time.Minute {
					time.Sleep(5 * time.Millisecond)
				}
				require.GreaterOrEqual(b, m.Position(v), l.Size(), "the monitor caught up within a minute")
				require.EqualValues(b, (b.N+49)/50, findings.Load(), "every flagged message's findings sealed")
			}
			caughtUp := time.Since(acked)
			b.StopTimer()
			for _, d := range g.Deliveries() {
				require.True(b, d.Acked, "delivery %d acked", d.Attempt)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			if cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
			}
			if m != nil {
				b.ReportMetric(float64(caughtUp.Milliseconds()), "catchup-ms")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// warmUp sends one message to each of the conversations cid-0 to cid-(n-1) and waits for their
// acks, untimed: as in an archiver that has run a while, each conversation's data key for the
// month then exists (the first message of a conversation in a month makes one and stores it
// durably, and at 5,000 a second the first messages of 50 conversations at once stalled capture
// past the SDK's handler cap in 4 of about 13 runs).
func warmUp(b *testing.B, g *dingtalktest.Gateway, n int) {
	for c := range n {
		g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprintf("warm-%d", c), Text: "good morning",
			ConversationID: "cid-" + strconv.Itoa(c)}.JSON())
	}
	require.NoError(b, g.Wait(context.Background()))
}
