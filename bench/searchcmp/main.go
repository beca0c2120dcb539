// Command searchcmp compares commseal's search index (ledger/search) with SQLite FTS5 trigram
// and bleve's cjk analyzer on the same messages and queries in one run: build time, memory,
// query times by term length, and hits against a brute-force pass. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	n := flag.Int("n", 1_000_000, "messages in the corpus")
	nq := flag.Int("queries", 200, "timed queries per engine, cycling through the query list")
	engines := flag.String("engines", "commseal,fts5,bleve", "engines to run, comma-separated (commseal, fts5, bleve)")
	plain := flag.Bool("plain", true, "with commseal: also build over an unencrypted ledger (commseal-plain)")
	raw := flag.Bool("raw", true, "with fts5: also index the raw, unfolded texts (fts5-raw)")
	seed := flag.Uint64("seed", 1, "corpus seed")
	timeout := flag.Duration("timeout", 10*time.Minute, "longest build of one engine before it is stopped")
	flag.Parse()
	if *n <= 0 || *nq <= 0 {
		fmt.Fprintln(os.Stderr, "searchcmp: -n and -queries must be positive")
		os.Exit(2)
	}
	es, err := selectEngines(*engines, *plain, *raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "searchcmp:", err)
		os.Exit(2)
	}
	cfg := config{n: *n, nq: *nq, seed: *seed, timeout: *timeout}
	if err := run(context.Background(), os.Stdout, os.Stderr, cfg, es); err != nil {
		fmt.Fprintln(os.Stderr, "searchcmp:", err)
		os.Exit(1)
	}
}

type config struct {
	n, nq   int
	seed    uint64
	timeout time.Duration
}

// selectEngines makes the engines named in list, in a fixed order.
func selectEngines(list string, plain, raw bool) ([]engine, error) {
	want := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "commseal", "fts5", "bleve":
			want[s] = true
		case "":
		default:
			return nil, fmt.Errorf("unknown engine %q (want commseal, fts5, bleve)", s)
		}
	}
	var es []engine
	if want["commseal"] {
		es = append(es, &commseal{})
		if plain {
			es = append(es, &commseal{plain: true})
		}
	}
	if want["fts5"] {
		es = append(es, &fts5{folded: true})
		if raw {
			es = append(es, &fts5{})
		}
	}
	if want["bleve"] {
		es = append(es, &bleveEngine{})
	}
	return es, nil
}

// run measures the brute-force baseline and every engine on one corpus and prints the tables.
func run(ctx context.Context, out, progress io.Writer, cfg config, es []engine) error {
	texts := corpus(cfg.seed, cfg.n)
	bf := newBruteForce(texts)
	expect := make([][]int, len(queries))
	for i, q := range queries {
		expect[i] = bf.match(q)
	}
	bf = nil
	var results []*result
	for _, e := range append([]engine{&scanEngine{}}, es...) {
		fmt.Fprintf(progress, "searchcmp: %s over %d messages...\n", e.name(), cfg.n)
		start := time.Now()
		r := measure(ctx, e, texts, queries, cfg.nq, expect, cfg.timeout)
		if err := e.close(); err != nil && r.err == nil {
			r.err = fmt.Errorf("close: %w", err)
		}
		fmt.Fprintf(progress, "searchcmp: %s done in %s\n", e.name(), time.Since(start).Round(time.Second))
		results = append(results, r)
		runtime.GC()
	}
	report(out, cfg, results, expect)
	return nil
}

// report prints the tables.
func report(out io.Writer, cfg config, rs []*result, expect [][]int) {
	fmt.Fprintf(out, "searchcmp: %d messages, %d timed queries per engine (cycling %d queries), GOMAXPROCS %d, %s\n\n",
		cfg.n, cfg.nq, len(queries), runtime.GOMAXPROCS(0), runtime.Version())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "engine\tbuild\tmsgs/s\theap MB\tRSS+ MB\tnotes")
	for _, r := range rs {
		if r.err != nil && r.heap == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tSTOPPED: %v\n", r.name, r.build.Round(time.Millisecond), r.err)
			continue
		}
		rate := float64(cfg.n) / r.build.Seconds()
		note := r.notes
		if r.err != nil {
			note = "STOPPED: " + r.err.Error()
		}
		rss := "-"
		if r.rss >= 0 {
			rss = fmt.Sprintf("%.1f", float64(r.rss)/1e6)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%s\t%s\n", r.name, r.build.Round(time.Millisecond), rate, float64(r.heap)/1e6, rss, note)
	}
	tw.Flush()

	fmt.Fprintf(out, "\nquery time p50 / p99 in ms (the count of hits and the first %d of them); ! = some answers of the class wrong (see the last table)\n", pageSize)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "engine\t"+strings.Join(classes, "\t"))
	for _, r := range rs {
		row := []string{r.name}
		for _, c := range classes {
			if len(r.lat[c]) == 0 {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.3f / %.3f%s", ms(percentile(r.lat[c], 50)), ms(percentile(r.lat[c], 99)), r.wrong(c)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	var base *result
	for _, r := range rs {
		if r.name == "commseal" && len(r.lat) > 0 {
			base = r
		}
	}
	if base != nil {
		fmt.Fprintln(out, "\nquery time p50 relative to commseal (same run; >1 is slower than commseal; ! = some answers wrong)")
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "engine\tbuild\t"+strings.Join(classes, "\t"))
		for _, r := range rs {
			if len(r.lat) == 0 {
				continue
			}
			row := []string{r.name, fmt.Sprintf("%.2fx", r.build.Seconds()/base.build.Seconds())}
			for _, c := range classes {
				b := percentile(base.lat[c], 50)
				if len(r.lat[c]) == 0 || b == 0 {
					row = append(row, "-")
					continue
				}
				row = append(row, fmt.Sprintf("%.2fx%s", float64(percentile(r.lat[c], 50))/float64(b), r.wrong(c)))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
	}

	fmt.Fprintln(out, "\nhits against brute force: \"ok\" = the same messages; else the count returned (-missed +not expected)")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	head := []string{"query", "class", "expected"}
	for _, r := range rs[1:] {
		head = append(head, r.name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, q := range queries {
		row := []string{q.String(), q.class, fmt.Sprint(len(expect[i]))}
		for _, r := range rs[1:] {
			switch {
			case i >= len(r.checks):
				row = append(row, "-")
			case r.checks[i].missed == 0 && r.checks[i].extra == 0:
				row = append(row, "ok")
			default:
				c := r.checks[i]
				row = append(row, fmt.Sprintf("%d (-%d +%d)", c.got, c.missed, c.extra))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// wrong returns "!" if r answered some query of class c differently from brute force.
func (r *result) wrong(c string) string {
	for i, k := range r.checks {
		if queries[i].class == c && (k.missed > 0 || k.extra > 0) {
			return "!"
		}
	}
	return ""
}
