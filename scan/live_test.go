package scan

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHotReloadUnderConcurrentScans swaps lexicons while several goroutines scan: every scan
// must return exactly what one of the two scanners returns, whole, with that scanner's version
// on every finding (run with -race).
func TestHotReloadUnderConcurrentScans(t *testing.T) {
	lexA := &Lexicon{Name: "a", Rules: []Rule{{ID: "a", Category: "c", Severity: Low, Terms: []string{"whatsapp", "微信"}}}}
	lexB := DefaultLexicon()
	sa, sb := compileT(t, lexA), compileT(t, lexB)
	require.NotEqual(t, sa.Version(), sb.Version())
	msgs := genMessages(11, 500, append(allTerms(lexB), "whatsapp", "微信"), true)
	want := map[string][][]Finding{}
	for _, s := range []*Scanner{sa, sb} {
		for _, m := range msgs {
			want[s.Version()] = append(want[s.Version()], s.Scan(m))
		}
	}
	live, err := NewLive(sa)
	require.NoError(t, err)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seen [2]atomic.Int64
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; !stop.Load(); i = (i + 1) % len(msgs) {
				s := live.Scanner()
				got := s.Scan(msgs[i])
				if !slices.Equal(got, want[s.Version()][i]) {
					errs <- fmt.Errorf("message %d under %s: got %v", i, s.Version(), got)
					return
				}
				if s == sa {
					seen[0].Add(1)
				} else {
					seen[1].Add(1)
				}
				for _, f := range live.Scan(msgs[i]) {
					if f.Lexicon != sa.Version() && f.Lexicon != sb.Version() {
						errs <- fmt.Errorf("finding with unknown version %q", f.Lexicon)
						return
					}
				}
			}
		}()
	}
	for i := 0; i < 200 || seen[0].Load() == 0 || seen[1].Load() == 0; i++ {
		next := sb
		if i%2 == 1 {
			next = sa
		}
		_, err := live.Swap(next)
		require.NoError(t, err)
		if i%50 == 0 {
			_, err := live.Reload(DefaultLexiconJSON())
			require.NoError(t, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLiveRefusesBadReloads(t *testing.T) {
	s := compileT(t, DefaultLexicon())
	live, err := NewLive(s)
	require.NoError(t, err)
	_, err = live.Reload([]byte(`{"name":"x","rules":[{"id":"r","category":"c","severity":"urgent","terms":["a"]}]}`))
	var le *LexiconError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "r", le.Rule)
	assert.Same(t, s, live.Scanner(), "a bad lexicon leaves the old scanner in service")
	_, err = live.Swap(nil)
	assert.True(t, errors.Is(err, ErrNoScanner))
	assert.Same(t, s, live.Scanner())
	_, err = NewLive(nil)
	assert.ErrorIs(t, err, ErrNoScanner)
}
