package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is what one engine measured.
type result struct {
	name   string
	build  time.Duration
	heap   int64                      // bytes the built index holds on the heap (after GC, delta)
	rss    int64                      // growth of the process's resident memory over the build, -1 if unknown
	lat    map[string][]time.Duration // query times by class
	checks []check                    // per query of the list, against brute force
	notes  string
	err    error // why the engine stopped early, if it did
}

// check compares an engine's hits for one query with brute force's.
type check struct {
	got, missed, extra int
}

// heapNow returns the live heap after a full collection, having returned free memory to the
// operating system (so that rssNow, read next, counts what is live).
func heapNow() int64 {
	var ms runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// rssNow returns the process's resident memory (Linux: VmRSS in /proc/self/status), or -1.
// It counts what the Go heap does not: SQLite's memory, which is not Go-allocated.
func rssNow() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// measure prepares and builds e over texts (within buildTimeout), times nq queries cycling
// through qs, and checks every query's hits against expect (brute force's, by query).
func measure(ctx context.Context, e engine, texts []string, qs []query, nq int, expect [][]int, buildTimeout time.Duration) *result {
	res := &result{name: e.name(), lat: map[string][]time.Duration{}}
	if p, ok := e.(preparer); ok {
		if err := p.prepare(ctx, texts); err != nil {
			res.err = fmt.Errorf("prepare: %w", err)
			return res
		}
	}
	before, rssBefore := heapNow(), rssNow()
	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	start := time.Now()
	err := e.build(bctx, texts)
	res.build = time.Since(start)
	cancel()
	if err != nil {
		res.err = fmt.Errorf("build stopped after %s: %w", res.build.Round(time.Second), err)
		return res
	}
	res.heap = heapNow() - before
	res.rss = -1
	if rss := rssNow(); rss >= 0 && rssBefore >= 0 {
		res.rss = rss - rssBefore
	}
	runtime.KeepAlive(texts)
	for i := range nq {
		q := qs[i%len(qs)]
		start := time.Now()
		if _, err := e.top(ctx, q); err != nil {
			res.err = fmt.Errorf("query %s: %w", q, err)
			return res
		}
		res.lat[q.class] = append(res.lat[q.class], time.Since(start))
	}
	for i, q := range qs {
		got, err := e.all(ctx, q)
		if err != nil {
			res.err = fmt.Errorf("query %s: %w", q, err)
			return res
		}
		res.checks = append(res.checks, compare(got, expect[i]))
	}
	if c, ok := e.(*commseal); ok {
		if err := c.accessor(ctx, qs, min(nq, 50)); err != nil {
			res.err = fmt.Errorf("queries through the Accessor: %w", err)
			return res
		}
	}
	res.notes = e.notes()
	return res
}

// compare counts the hits in got, and those missing from or not in want.
func compare(got, want []int) check {
	in := make(map[int]bool, len(want))
	for _, w := range want {
		in[w] = true
	}
	c := check{got: len(got)}
	seen := make(map[int]bool, len(got))
	for _, g := range got {
		if seen[g] {
			c.extra++ // a hit returned twice
			continue
		}
		seen[g] = true
		if !in[g] {
			c.extra++
		}
	}
	for _, w := range want {
		if !seen[w] {
			c.missed++
		}
	}
	return c
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

// fmtDur formats a query time in milliseconds.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/1e6)
}

// scanEngine is the brute-force baseline: fold every text once (build), then read every
// folded text for each query.
type scanEngine struct{ b *bruteForce }

func (s *scanEngine) name() string { return "scan" }
func (s *scanEngine) build(_ context.Context, texts []string) error {
	s.b = newBruteForce(texts)
	return nil
}
func (s *scanEngine) top(_ context.Context, q query) (int, error) { return len(s.b.match(q)), nil }
func (s *scanEngine) all(_ context.Context, q query) ([]int, error) {
	return s.b.match(q), nil
}
func (s *scanEngine) notes() string {
	return "baseline: strings.Contains over scan.Normalize of every text (the reference for hit counts)"
}
func (s *scanEngine) close() error { s.b = nil; return nil }
