package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/keydir"
)

// BenchmarkAppendNewScopes measures Append from 64 writers on the embedded file store with the
// data keys in a keydir vault (both in b.TempDir(), every Append returns once durable), when
// every append opens a new scope (scopes=new: a month rollover, when each conversation needs a
// new data key), when it does but PrepareMonth made the keys of the month beforehand from the
// month before's (scopes=prepared: the same rollover, prepared; the month before is written and
// prepared untimed, so run it with a fixed count, -benchtime 2000x), when every append goes to one of 64 scopes whose keys exist (scopes=cached),
// and when one append in 16 opens a new scope and the others go to the cached ones
// (scopes=mixed: those others should not wait for the new keys), in the same run. It reports
// entries/s, and the 99th percentile latency of the appends to cached scopes (cached-p99-ms).
func BenchmarkAppendNewScopes(b *testing.B) {
	for _, mode := range []string{"new", "prepared", "cached", "mixed"} {
		b.Run("scopes="+mode, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			st, err := filestore.Open(ctx, filepath.Join(dir, "ledger"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			vault, err := keydir.Open(filepath.Join(dir, "keys"))
			if err != nil {
				b.Fatal(err)
			}
			l, err := ledger.Open(ctx, st, ledger.Options{Signing: testKeys(b), CheckpointEvery: 1000,
				Encryption: &ledger.Encryption{Keyring: newKEK(b, "kek"), Vault: vault}})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			const writers = 64
			conv := func(i uint64) string { return fmt.Sprintf("new-%012d", i) }
			if mode == "prepared" {
				// Each conversation wrote in the month before, and its key of this month is made.
				now := time.Now().UTC()
				before := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Add(-time.Hour)
				var next atomic.Uint64
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for i := next.Add(1); i <= uint64(b.N); i = next.Add(1) {
							m := benchMsg(1<<41 + i)
							m.Conversation.ID, m.SentAt = conv(i), before
							if _, err := l.Append(ctx, m); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if made, err := l.PrepareMonth(ctx, now); err != nil || made != b.N {
					b.Fatalf("PrepareMonth made %d keys of %d: %v", made, b.N, err)
				}
			}
			if mode != "new" && mode != "prepared" {
				conv = func(i uint64) string {
					if mode == "mixed" && i%16 == 0 {
						return fmt.Sprintf("new-%012d", i)
					}
					return fmt.Sprintf("cached-%02d", i%writers)
				}
				for i := range uint64(writers) {
					m := benchMsg(1<<40 + i)
					m.Conversation.ID = conv(i)
					if _, err := l.Append(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
			}
			var next atomic.Uint64
			lat := make([][]time.Duration, writers) // of appends to cached scopes
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > uint64(b.N) {
							return
						}
						m := benchMsg(i)
						m.Conversation.ID = conv(i)
						t0 := time.Now()
						if _, err := l.Append(ctx, m); err != nil {
							b.Error(err)
							return
						}
						if !strings.HasPrefix(m.Conversation.ID, "new-") {
							lat[w] = append(lat[w], time.Since(t0))
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			if mode == "cached" || mode == "mixed" {
				b.ReportMetric(float64(percentile(slices.Concat(lat...), 0.99).Microseconds())/1000, "cached-p99-ms")
			}
		})
	}
}
