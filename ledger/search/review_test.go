package search_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

// TestFindingsAndDispositionsAreSearchable: after surveillance flags messages and a reviewer
// disposes of some alerts, rule:, category:, severity: and disposition: find exactly what the
// review queue says, in the running index and in one opened again from its file.
func TestFindingsAndDispositionsAreSearchable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer e.Close()
	fill(t, e.Ledger, rand.New(rand.NewPCG(4, 4)), 300, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	s, err := scan.Default()
	require.NoError(t, err)
	lv, err := scan.NewLive(s)
	require.NoError(t, err)
	m, err := surveil.New(e.Ledger, surveil.Options{Lexicon: lv})
	require.NoError(t, err)
	for {
		st, err := m.Step(ctx)
		require.NoError(t, err)
		if st.To <= st.From {
			break
		}
	}
	acc := e.Access("reviewer", "queue")
	q, err := surveil.Alerts(ctx, e.Ledger, acc)
	require.NoError(t, err)
	require.NotEmpty(t, q)
	// Dismiss every third alert, escalate the next.
	closed := map[uint64]bool{}
	for i, a := range q {
		switch i % 3 {
		case 0:
			_, err = surveil.Dispose(ctx, e.Ledger, "reviewer", "queue", a.Index, surveil.Dismissed, "")
			closed[a.Findings.Message.Index] = true
		case 1:
			_, err = surveil.Dispose(ctx, e.Ledger, "reviewer", "queue", a.Index, surveil.Noted, "looked")
		}
		require.NoError(t, err)
	}
	want := map[string][]uint64{}
	add := func(k string, i uint64) {
		if !slices.Contains(want[k], i) {
			want[k] = append(want[k], i)
		}
	}
	for i, a := range q {
		msg := a.Findings.Message.Index
		for _, f := range a.Findings.Findings {
			add("rule:"+f.Rule, msg)
			add("category:"+f.Category, msg)
			add("severity:"+f.Severity.String(), msg)
		}
		switch i % 3 {
		case 0:
			add("disposition:dismissed", msg)
		case 1:
			add("disposition:note", msg)
		}
		if !closed[msg] {
			add("disposition:open", msg)
		}
	}
	sortedBySent := func(idx []uint64) []uint64 {
		res, err := ix.Search(ctx, acc, search.Query{Limit: search.MaxLimit})
		require.NoError(t, err)
		var out []uint64
		for _, h := range res.Hits {
			if slices.Contains(idx, h.Index) {
				out = append(out, h.Index)
			}
		}
		return out
	}
	check := func(ix *search.Index) {
		for k, idx := range want {
			res, err := ix.Search(ctx, acc, search.Query{Text: k, Limit: search.MaxLimit})
			require.NoError(t, err)
			require.Equal(t, sortedBySent(idx), hitIndexes(res), k)
		}
	}
	check(ix)
	require.NoError(t, ix.Close())
	ix, err = search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	defer ix.Close()
	check(ix)
	require.Contains(t, want, "disposition:open")
	require.Contains(t, want, "rule:off-channel.move")
}
