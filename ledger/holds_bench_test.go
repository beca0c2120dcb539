package ledger_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/filestore"
)

// BenchmarkHolds measures Holds on a ledger of COMMSEAL_BENCH_N entries (default 100,000) on
// the file store, with two holds placed (one near the start, one half way) and one released.
// Run it with -benchtime 3x at 10⁶:
//
//	COMMSEAL_BENCH_N=1000000 go test ./ledger -run XXX -bench 'Holds$' -benchtime 3x
func BenchmarkHolds(b *testing.B) {
	n := uint64(100_000)
	if s := os.Getenv("COMMSEAL_BENCH_N"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	ctx := context.Background()
	st, err := filestore.Open(ctx, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: testKeys(b), CheckpointEvery: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	hold := func(id string) {
		if _, err := l.PlaceHold(ctx, ledger.Hold{ID: id, Tenant: "corp", Conversation: "cid0001", Reason: "bench", By: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Uint64
	fill := func(to uint64) {
		var wg sync.WaitGroup
		for range 256 {
			wg.Go(func() {
				for i := next.Add(1); i <= to; i = next.Add(1) {
					if _, err := l.Append(ctx, benchMsg(i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		next.Store(to)
	}
	hold("h1")
	hold("h2")
	fill(n / 2)
	hold("h3")
	if _, err := l.ReleaseHold(ctx, "h2", "bench", "done"); err != nil {
		b.Fatal(err)
	}
	fill(n)
	b.ResetTimer()
	for b.Loop() {
		hs, err := l.Holds(ctx)
		if err != nil || len(hs) != 2 {
			b.Fatal(err, len(hs))
		}
	}
	b.ReportMetric(float64(l.Size()), "entries")
}
