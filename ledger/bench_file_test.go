package ledger_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/verify"
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

// BenchmarkVerifyFromDisk builds a ledger on the file store (COMMSEAL_BENCH_N entries, default
// 100,000), then compares Verify reading it back from disk with plain SHA-256 over the same
// stored bytes in memory, in the same run. Run it with -benchtime 3x.
func BenchmarkVerifyFromDisk(b *testing.B) {
	n := uint64(100_000)
	if s := os.Getenv("COMMSEAL_BENCH_N"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	ctx := context.Background()
	dir := b.TempDir()
	st, err := filestore.Open(ctx, dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	keys := testKeys(b)
	l, err := ledger.Open(ctx, st, ledger.Options{Keys: keys, CheckpointEvery: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= n; i = next.Add(1) {
				if _, err := l.Append(ctx, benchMsg(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	ro, err := filestore.Open(ctx, dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ro.Close()
	blobs, total := storedBytes(b, ro)
	b.Run("engine=verify", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			rep, err := verify.Ledger(ctx, ro, keys.Verifier, verify.Options{})
			if err != nil || rep.Entries != n {
				b.Fatal(err, rep.Entries)
			}
		}
		b.ReportMetric(float64(n), "entries")
	})
	b.Run("engine=sha256", func(b *testing.B) { sha256Baseline(b, blobs, total) })
}
