package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/verify"
)

// terms a compliance officer types: one to four characters of Chinese in either script,
// English words and phrases, and combinations.
var terms = []string{
	"微信", "報價", "报价", "港", "買入", "沽", "內幕", "内幕", "私下", "止蝕", "成交量", "唔該", "傾",
	"whatsapp", "signal", "offline", `"call me"`, "delete", "filled", "price", "0700.HK", "9988",
	"微信 OR whatsapp OR signal", "報價 NOT 客户", "(買入 OR buy) 0700", "file:報價單", "type:image",
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (d *drill) queries(ctx context.Context, ix *search.Index) error {
	acc := d.l.Access("drill", "drill: query latency").For("query")
	r := rand.New(rand.NewPCG(d.c.seed, 99))
	for _, kind := range []string{"conversation + month", "full text"} {
		var lat []time.Duration
		hits := 0
		bar := d.bar("queries", d.c.queries)
		for i := range d.c.queries {
			var q search.Query
			if kind == "full text" {
				q.Text = terms[r.IntN(len(terms))]
			} else {
				q.Conversations = []string{d.w.convs[r.IntN(len(d.w.convs))].c.ID}
				q.From = d.w.start.AddDate(0, r.IntN(d.c.months), 0)
				q.To = q.From.AddDate(0, 1, 0)
			}
			t0 := time.Now()
			res, err := ix.Search(ctx, acc, q)
			if err != nil {
				return fmt.Errorf("query %+v: %w", q, err)
			}
			lat = append(lat, time.Since(t0))
			hits += res.Total
			bar.set(i + 1)
		}
		bar.done()
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		d.phase("queries: "+kind, sum, "%d queries, p50 %s, p99 %s, max %s, %.0f hits each on average (each sealed as an access entry)",
			len(lat), ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(slices.Max(lat)), float64(hits)/float64(len(lat)))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// request finds the regulator's messages: every message the custodians sent, over the span.
func (d *drill) request(ctx context.Context, ix *search.Index) ([]uint64, string, error) {
	start := time.Now()
	r := rand.New(rand.NewPCG(d.c.seed, 7))
	q := search.Query{Text: d.c.keywords, Limit: search.MaxLimit, From: d.w.start, To: d.w.start.AddDate(0, d.c.months, 0)}
	for _, s := range r.Perm(len(d.w.staff))[:d.c.custodians] {
		q.Senders = append(q.Senders, d.w.staff[s].ID)
	}
	acc := d.l.Access("drill officer", "drill: SFC request 2026-DRILL").For("export-selection")
	var idx []uint64
	for {
		res, err := ix.Search(ctx, acc, q)
		if err != nil {
			return nil, "", err
		}
		idx = append(idx, res.Indexes()...)
		q.Offset += len(res.Hits)
		if len(res.Hits) == 0 || q.Offset >= res.Total {
			break
		}
	}
	desc := fmt.Sprintf("%d custodians, %s to %s", d.c.custodians, q.From.Format("2006-01-02"), q.To.Format("2006-01-02"))
	if d.c.keywords != "" {
		desc += ", " + d.c.keywords
	}
	d.phase("request", time.Since(start), "%d messages matched (%s)", len(idx), desc)
	if len(idx) == 0 {
		return nil, "", fmt.Errorf("the request matched nothing")
	}
	return idx, desc, nil
}

func (d *drill) export(ctx context.Context, idx []uint64, query string) error {
	start := time.Now()
	stop := d.ticker("export", func() string { return fmt.Sprintf("%d entries", len(idx)) })
	sum, err := export.Write(ctx, d.l.Ledger, d.c.out, export.Request{Who: "drill officer", Why: "drill: SFC request 2026-DRILL",
		Indexes: idx, Query: query, Signer: d.l.Signing.Signer})
	stop()
	if err != nil {
		return fmt.Errorf("exporting: %w", err)
	}
	var size int64
	var files int
	filepath.WalkDir(sum.Dir, func(_ string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				size += fi.Size()
				files++
			}
		}
		return nil
	})
	d.phase("export", time.Since(start), "%d entries (%d opened, %d shredded) against tree size %d: %d files, %d MB in %s",
		sum.Entries, sum.Opened, sum.Shredded, sum.TreeSize, files, size>>20, sum.Dir)
	return nil
}

func (d *drill) verify() int {
	start := time.Now()
	stop := d.ticker("verify", func() string { return "checking" })
	rep, err := verify.Bundle(d.c.out, d.l.Signing.VerifierKey)
	stop()
	if err != nil {
		d.phase("verify", time.Since(start), "FAILED: %v", err)
		return exitFailed
	}
	d.phase("verify", time.Since(start), "intact: %d entries, %d openings checked against tree size %d of %s",
		len(rep.Entries), rep.Opened, rep.TreeSize, rep.Origin)
	d.lines = append(d.lines, fmt.Sprintf("check it yourself: go run ./examples/verify -bundle %s -key %s", d.c.out, d.l.Signing.VerifierKey))
	return exitOK
}

func (d *drill) summary(w io.Writer) {
	fmt.Fprintf(w, "commseal retrieval drill: %s (%d entries)\n\n", d.c.dir, d.sizeOrZero())
	for _, p := range d.phases {
		fmt.Fprintf(w, "  %-28s %9s  %s\n", p.name, p.d.Round(time.Millisecond), p.detail)
	}
	if len(d.lines) > 0 {
		fmt.Fprintln(w)
	}
	for _, l := range d.lines {
		fmt.Fprintln(w, l)
	}
}

func (d *drill) sizeOrZero() uint64 {
	if d.l == nil {
		return 0
	}
	return d.l.Size()
}

// bar is a progress bar on stderr, drawn at most ten times a second; a no-op off a terminal.
type bar struct {
	d     *drill
	name  string
	total int
	start time.Time
	mu    sync.Mutex
	last  time.Time
}

func (d *drill) bar(name string, total int) *bar {
	return &bar{d: d, name: name, total: total, start: time.Now()}
}

func (b *bar) set(n int) {
	if !b.d.c.progress {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && n < b.total {
		return
	}
	b.last = time.Now()
	const width = 30
	f := float64(n) / float64(max(1, b.total))
	fill := int(f * width)
	fmt.Fprintf(b.d.stderr, "\r%-8s [%s%s] %3.0f%% %d/%d %s", b.name, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		100*f, n, b.total, time.Since(b.start).Round(100*time.Millisecond))
}

func (b *bar) done() {
	if b.d.c.progress {
		fmt.Fprintln(b.d.stderr)
	}
}

// ticker shows elapsed time for a phase without a count; the returned func stops it.
func (d *drill) ticker(name string, what func() string) func() {
	if !d.c.progress {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprintln(d.stderr)
				return
			case <-t.C:
				fmt.Fprintf(d.stderr, "\r%-8s %s %s", name, what(), time.Since(start).Round(100*time.Millisecond))
			}
		}
	}()
	return func() { close(stop); <-done }
}
