package dingtalk_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/capturetest"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/stretchr/testify/require"
)

// BenchmarkPushToAck measures capture end to end through the real SDK: the gateway pushes a
// bot message, the SDK hands the frame to the source, the source parses it, appends it to an
// in-memory deduplicating sink and acknowledges it; the gateway records the ack. Up to window
// pushes are outstanding at a time (below the handler cap, so nothing is left unacked for
// redelivery). It reports messages/s and push-to-ack latency
// percentiles from the gateway's send and ack times.
//
//	go test -run XXX -bench PushToAck -benchtime 20000x ./capture/dingtalk/
func BenchmarkPushToAck(b *testing.B) {
	for _, window := range []int{1, 64, 128} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 30 * time.Second})
			b.Cleanup(g.Close)
			opts := fastOptions(b, g)
			opts.MaxInFlight = 256 // pushes pick a connection at random: keep any window below the cap
			src, err := dingtalk.NewSource(opts)
			require.NoError(b, err)
			running(b, src, capturetest.NewSink())
			require.NoError(b, g.WaitConns(ctxT(b, 10*time.Second), 2))
			payloads := make([][]byte, b.N)
			for i := range payloads {
				payloads[i] = dingtalktest.BotMessage{MsgID: fmt.Sprintf("bench-%d", i), Text: "buy 100 0700.HK at market"}.JSON()
			}
			sem := make(chan struct{}, window)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				sem <- struct{}{}
				p := g.PushBotMessage(payloads[i])
				go func() { <-p.Done(); <-sem }()
			}
			require.NoError(b, g.Wait(ctxT(b, 60*time.Second)))
			elapsed := time.Since(start)
			b.StopTimer()
			var lat []time.Duration
			for _, d := range g.Deliveries() {
				if d.Attempt == 1 && d.Acked {
					lat = append(lat, d.AckedAt.Sub(d.SentAt))
				}
			}
			slices.Sort(lat)
			require.Len(b, lat, b.N, "every push acked on its first delivery")
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
