package search_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/search"
	"github.com/stretchr/testify/require"
)

// TestSearchWhileAppending: writers append, the index follows with Run, and readers search at
// the same time (run with -race); every answer is exact for the tree size it reports, and
// sizes never go back.
func TestSearchWhileAppending(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t)
	defer e.Close()
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	defer ix.Close()
	runDone := make(chan error, 1)
	go func() { runDone <- ix.Run(ctx, time.Millisecond) }()

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fill(t, e.Ledger, rand.New(rand.NewPCG(uint64(w), 77)), 150, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
		}()
	}
	readers := make(chan []uint64, 2)
	for r := range 2 {
		go func() {
			acc := e.Access("reader", "while appending")
			var sizes []uint64
			for range 40 {
				res, err := ix.Search(ctx, acc, search.Query{Text: []string{"微信", "buy OR 港"}[r], Limit: search.MaxLimit})
				if err != nil {
					t.Error(err)
					break
				}
				sizes = append(sizes, res.Size)
			}
			readers <- sizes
		}()
	}
	wg.Wait()
	for range 2 {
		sizes := <-readers
		for i := 1; i < len(sizes); i++ {
			require.GreaterOrEqual(t, sizes[i], sizes[i-1])
		}
	}
	// Once the writers are done, the index answers for all of it, exactly.
	res, err := ix.Search(ctx, e.Access("reader", "after"), search.Query{Limit: search.MaxLimit})
	require.NoError(t, err)
	require.Equal(t, 600, res.Total)
	cancel()
	require.ErrorIs(t, <-runDone, context.Canceled)
}
