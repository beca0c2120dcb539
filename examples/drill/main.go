// Command drill runs a regulatory retrieval drill end to end: from a regulator's request to an
// export bundle that checks offline, on a ledger the size of a mid-size broker's.
//
//	go run ./examples/drill [-dir DIR] [-n 1000000] [-custodians 30] [-out BUNDLE]
//
// It builds a realistic ledger in DIR (the ledger directory layout every example shares; a
// ledger already there with at least -n messages is reused): -n messages over -months months
// among -staff staff and -clients external clients, in Traditional and Simplified Chinese,
// Cantonese and English, with pictures, files, audio and rich text, and a few lines of the kind
// surveillance looks for. Then it runs the drill, timing each phase:
//
//  1. read: one pass decrypting every entry (the baseline the index build is compared with);
//  2. index: the search index (ledger/search) built from scratch in DIR/index;
//  3. queries: -queries conversation + month queries and -queries full-text queries, each
//     sealed as an access entry, with their latency percentiles;
//  4. request: every message of -custodians staff over the whole span (and -keywords, if
//     given), the regulator's request, found through the index;
//  5. export: those messages as an export bundle (ledger/export) in -out;
//  6. verify: the bundle checked as a regulator would (verify.Bundle, the verifier key only).
//
// -store and -blobs build (or reuse) the ledger with its log in PostgreSQL (or another
// directory) and its attachments in S3 (internal/backend).
//
// It ends with a one-page summary. Progress bars go to stderr when it is a terminal.
//
// Exit status (README, "Exit status"): 0 when the bundle verifies; 1 when a phase fails (I/O,
// the store, the export) or the bundle does not verify; 2 when the invocation is refused before
// anything is built: bad flags, a bad -store or -blobs, or a ledger directory or store that is
// not this run's (one that keeps its store elsewhere, backend.ErrMismatch; a new directory on a
// store holding a ledger, backend.ErrNotEmpty, or claimed by another ledger's key,
// ledger.ErrOtherLedger; a directory open in another process or missing its keys).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/ledger/search"
)

// The exit status: ledgerdir.ExitCode's convention.
const (
	exitOK      = ledgerdir.ExitOK
	exitFailed  = ledgerdir.ExitFailed // a phase failed, or the bundle does not verify
	exitRefused = ledgerdir.ExitRefused
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type config struct {
	dir, out, keywords           string
	n, staff, clients, months    int
	writers, custodians, queries int
	seed                         uint64
	cachedKeys                   int
	progress                     bool
	cpuprofile                   string
	stores                       backend.Flags
	spec                         backend.Spec
}

func parse(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fl := flag.NewFlagSet("drill", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.dir, "dir", "drill-data", "ledger directory (built if absent or smaller than -n)")
	fl.StringVar(&c.out, "out", "", "bundle directory (default DIR-bundle-<time>)")
	fl.IntVar(&c.n, "n", 1_000_000, "messages in the ledger")
	fl.IntVar(&c.staff, "staff", 2000, "staff members")
	fl.IntVar(&c.clients, "clients", 20000, "external clients (one direct chat each)")
	fl.IntVar(&c.months, "months", 18, "months the messages span")
	fl.IntVar(&c.writers, "writers", 64, "goroutines appending while building")
	fl.IntVar(&c.custodians, "custodians", 30, "staff whose messages the request asks for")
	fl.StringVar(&c.keywords, "keywords", "", `also require this query (e.g. "微信 OR whatsapp OR 私下")`)
	fl.IntVar(&c.queries, "queries", 200, "queries of each kind timed")
	fl.Uint64Var(&c.seed, "seed", 2026, "seed of the generated firm and messages")
	fl.IntVar(&c.cachedKeys, "cached-keys", 1<<19, "data keys kept unwrapped in memory (ledger.Encryption.CachedKeys): enough for every scope of the default firm")
	fl.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	c.stores.Register(fl)
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fl.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fl.Arg(0))
	case c.n < 1 || c.staff < 1 || c.clients < 1 || c.months < 1 || c.writers < 1 || c.queries < 1:
		return nil, errors.New("-n, -staff, -clients, -months, -writers and -queries must be positive")
	case c.custodians < 1 || c.custodians > c.staff:
		return nil, fmt.Errorf("-custodians must be between 1 and -staff (%d)", c.staff)
	}
	var err error
	if c.spec, err = c.stores.Parse(c.dir); err != nil {
		return nil, err
	}
	if c.out == "" {
		c.out = fmt.Sprintf("%s-bundle-%s", strings.TrimSuffix(c.dir, "/"), time.Now().UTC().Format("20060102T150405"))
	}
	// The bundle goes to a new or empty directory (ledger/export): found out now, not after
	// the ledger is built.
	if err := export.CheckDir(c.out); err != nil {
		return nil, fmt.Errorf("-out: %w", err)
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && stderr == os.Stderr {
		c.progress = true
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "drill:", err)
		return exitRefused
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "drill:", err)
			return exitRefused
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "drill:", err)
			return exitRefused
		}
		defer pprof.StopCPUProfile()
	}
	d := &drill{c: c, stderr: stderr, w: newWorld(c.seed, c.staff, c.clients, c.months, c.n, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))}
	code, err := d.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "drill:", err)
	}
	d.summary(stdout)
	return code
}

type phase struct {
	name   string
	d      time.Duration
	detail string
}

type drill struct {
	c      *config
	w      *world
	stderr io.Writer
	l      *ledgerdir.Ledger
	phases []phase
	lines  []string
}

func (d *drill) phase(name string, dur time.Duration, format string, args ...any) {
	d.phases = append(d.phases, phase{name, dur, fmt.Sprintf(format, args...)})
}

func (d *drill) run(ctx context.Context) (int, error) {
	start := time.Now()
	l, err := ledgerdir.OpenOn(ctx, d.c.dir, "commseal.example/drill", d.c.spec, ledger.Options{Encryption: &ledger.Encryption{CachedKeys: d.c.cachedKeys}})
	if err != nil {
		return ledgerdir.ExitCode(err), err // 2 for a directory or store that is not this run's
	}
	d.l = l
	defer l.Close()
	if err := d.build(ctx); err != nil {
		return exitFailed, err
	}
	if err := d.read(ctx); err != nil {
		return exitFailed, err
	}
	ix, err := d.index(ctx)
	if err != nil {
		return exitFailed, err
	}
	defer ix.Close()
	if err := d.queries(ctx, ix); err != nil {
		return exitFailed, err
	}
	reqStart := time.Now()
	idx, q, err := d.request(ctx, ix)
	if err != nil {
		return exitFailed, err
	}
	if err := d.export(ctx, idx, q); err != nil {
		return exitFailed, err
	}
	code := d.verify()
	d.phase("request → verified bundle", time.Since(reqStart), "request, export and verify together")
	d.phase("total", time.Since(start), "")
	return code, nil
}

// build appends messages until the ledger holds -n of them (a reused ledger is left as is).
func (d *drill) build(ctx context.Context) error {
	have := d.l.Size()
	if have >= uint64(d.c.n) {
		d.phase("build", 0, "reused %s: %d entries", d.c.dir, have)
		return nil
	}
	// Message i is the same whatever the run, so a build cut short resumes where it stopped:
	// messages already sealed come back as duplicates.
	start := time.Now()
	bar := d.bar("build", d.c.n)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range d.c.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= d.c.n || ctx.Err() != nil {
					return
				}
				if _, err := d.l.Append(ctx, d.w.message(d.c.seed, i)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				bar.set(int(done.Add(1)))
			}
		}()
	}
	wg.Wait()
	bar.done()
	if firstErr != nil {
		return fmt.Errorf("building: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	el := time.Since(start)
	d.phase("build", el, "%d messages from %d writers, %.0f appends/s, %d staff, %d clients, %d conversations, %d months",
		d.c.n, d.c.writers, float64(d.c.n)/el.Seconds(), d.c.staff, d.c.clients, len(d.w.convs), d.c.months)
	return nil
}

// read is the baseline: one pass decrypting and decoding every entry.
func (d *drill) read(ctx context.Context) error {
	start := time.Now()
	size := d.l.Size()
	bar := d.bar("read", int(size))
	var bytes int64
	err := d.l.Derive("drill").Scan(ctx, 0, size, func(e *ledger.Entry, err error) error {
		bytes += int64(len(e.Body))
		bar.set(int(e.Index + 1))
		return nil
	})
	bar.done()
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	el := time.Since(start)
	d.phase("read (baseline)", el, "%d entries decrypted and decoded, %.0f entries/s, %d MB of plaintext", size, float64(size)/el.Seconds(), bytes>>20)
	return nil
}

func (d *drill) index(ctx context.Context) (*search.Index, error) {
	dir := filepath.Join(d.c.dir, layout.IndexDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	stop := d.ticker("index", func() string { return "building" })
	ix, err := search.Open(ctx, d.l.Ledger, search.Options{Dir: dir})
	stop()
	if err != nil {
		return nil, fmt.Errorf("indexing: %w", err)
	}
	el := time.Since(start)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	st := ix.Stats()
	fi, _ := os.Stat(filepath.Join(dir, "docs.log"))
	var fileMB int64
	if fi != nil {
		fileMB = fi.Size() >> 20
	}
	base := d.phases[len(d.phases)-1].d
	d.phase("index", el, "%d messages, %.0f messages/s (%.2f× the read pass), %d n-grams, %d MB heap, %d MB file",
		st.Messages, float64(st.Messages)/el.Seconds(), el.Seconds()/base.Seconds(), st.Grams, (ms.HeapAlloc-min(ms.HeapAlloc, ms0.HeapAlloc))>>20, fileMB)
	start = time.Now()
	if err := ix.Close(); err != nil {
		return nil, err
	}
	ix, err = search.Open(ctx, d.l.Ledger, search.Options{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("reopening the index: %w", err)
	}
	d.phase("index reopen", time.Since(start), "loaded from its file (documents decrypted, postings rebuilt)")
	return ix, nil
}
