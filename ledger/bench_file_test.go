package ledger_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/store/filestore"
)

// BenchmarkDurableAppend measures Append on the embedded file store with 64 concurrent
// writers (each Append returns once its entry is fsynced), plain and encrypted, in the same run.
// It reports entries/s, mean entries per commit and p99 latency of Append.
func BenchmarkDurableAppend(b *testing.B) {
	for _, mode := range []string{"plain", "encrypted"} {
		b.Run("mode="+mode, func(b *testing.B) {
			ctx := context.Background()
			st, err := filestore.Open(ctx, b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			l := benchLedger(b, st, mode)
			const writers = 64
			var next atomic.Uint64
			lat := make([][]time.Duration, writers)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > uint64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := l.Append(ctx, benchMsg(i)); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(b.N)/float64(max(1, st.Stats().Commits)), "entries/commit")
			b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
			_ = l.Close()
		})
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
