// Command loadgen appends synthetic chat messages to a commseal ledger on the embedded file store
// as fast as it can. It is a benchmark and the subject of crash tests.
//
//	go run ./examples/loadgen -dir DIR [-n N] [-duration D] [-concurrency C] [-size BYTES]
//
// Each of -concurrency goroutines appends one message at a time through ledger.Append, which
// returns once the message is durable. For every durable append loadgen prints one line to
// stdout, "<index> <source message id>", and flushes it as it goes (a line is never printed
// before its entry is durable, so after a kill -9 every printed line names an entry the ledger
// must still hold). At the end it prints to stderr the throughput, the commit latency
// percentiles (time from Append to its return) and the store's syncs per second.
//
// With -scan, surveillance (ledger/surveil with the default lexicon, as the archiver runs it)
// scans what is sealed while the appenders run, 1 message in 50 tripping it; loadgen then
// reports the annotations sealed, the lag from a message's send to its findings being sealed,
// and how long after the last append the scan caught up. Run it with and without -scan to see
// what scanning costs the appenders; -lexicon-terms 10000 adds that many generated terms to the
// lexicon.
//
// It stops after -n messages, after -duration, or on SIGINT/SIGTERM, whichever comes first. DIR
// is a ledger directory in the layout every example shares (internal/layout: signing key,
// verifier key, keyring, encrypted data keys, file store), created on the first run, so
// `go run ./examples/verify -dir DIR` checks what loadgen wrote; messages are encrypted at rest
// like the archiver's. -max-in-flight sets ledger.Options.MaxInFlight and -cpuprofile writes a
// CPU profile.
//
// -store postgres://... puts the log, checkpoints and data keys in PostgreSQL and -blobs
// s3://... the attachments in S3 (internal/backend); the file store's recovery and sync figures
// are then not printed. With -shared, several loadgens append to one PostgreSQL ledger at once,
// as several archivers do (ledger.Options.Shared): run the first once to make its directory,
// copy it (cp -a DIR DIR2) and start each on its own copy with the same -store.
//
// Exit status (README, "Exit status"): 0 done; 1 the run failed (an append, the store); 2 the
// invocation was refused before anything was written: bad or missing flags, a bad -store or
// -blobs, or a directory or store that is not this run's (another ledger's store, a directory
// open in another process, a missing key).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/store/filestore"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	shared      bool
	dir         string
	n           int
	duration    time.Duration
	concurrency int
	scan        bool
	terms       int // generated terms added to the default lexicon
	size        int
	cpuprofile  string
	trace       string
	inFlight    int
	warmup      bool
	stores      backend.Flags
	spec        backend.Spec
}

// run runs loadgen and returns its exit status (ledgerdir.ExitCode): 2 for bad flags or a
// ledger directory that is not this run's to use, before anything is written; 1 for a run that
// failed.
func run(args []string, stdout, stderr io.Writer) int {
	err := load(args, stdout, stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "loadgen:", err)
	}
	var u usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ledgerdir.ExitOK
	case errors.As(err, &u):
		return ledgerdir.ExitRefused
	}
	return ledgerdir.ExitCode(err)
}

// usageError is a flag that loadgen cannot use.
type usageError struct{ error }

func load(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var c config
	fl.StringVar(&c.dir, "dir", "", "ledger directory (created if missing)")
	fl.IntVar(&c.n, "n", 0, "messages to append (0: until -duration)")
	fl.DurationVar(&c.duration, "duration", 0, "how long to run, after the warm-up (0: until -n; 10s if neither is set)")
	fl.IntVar(&c.concurrency, "concurrency", 64, "concurrent appenders")
	fl.IntVar(&c.size, "size", 300, "bytes of message text")
	fl.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fl.StringVar(&c.trace, "trace", "", "write an execution trace of the run to this file (go tool trace)")
	fl.BoolVar(&c.warmup, "warmup", true, "before timing, append one message to each conversation, so that their data keys exist (as in a ledger running for a while)")
	fl.BoolVar(&c.scan, "scan", false, "scan what is sealed with the default lexicon while appending (ledger/surveil, off the ack path, as the archiver does); 1 message in 50 trips it")
	fl.IntVar(&c.terms, "lexicon-terms", 0, "with -scan: add this many generated terms (which never match) to the default lexicon, e.g. 10000 for a firm's full watch list")
	fl.BoolVar(&c.shared, "shared", false, "other loadgens append to the same PostgreSQL -store at once (ledger.Options.Shared; give each its own copy of -dir)")
	fl.IntVar(&c.inFlight, "max-in-flight", 0, "batches in flight to the store (ledger.Options.MaxInFlight; 0: the default)")
	c.stores.Register(fl)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if c.dir == "" || c.concurrency < 1 || c.size < 0 || c.n < 0 || c.duration < 0 || c.terms < 0 || c.terms > 0 && !c.scan || fl.NArg() > 0 {
		fl.Usage()
		return usageError{errors.New("-dir is required; -concurrency must be positive; -n, -size, -duration and -lexicon-terms non-negative; -lexicon-terms needs -scan; no arguments")}
	}
	var err error
	if c.spec, err = c.stores.Parse(c.dir); err != nil {
		return err
	}
	if c.shared && c.spec.Store.Kind != backend.Postgres {
		return fmt.Errorf("%w: -shared needs -store postgres://…: a store that several processes can append to at once", backend.ErrInvalid)
	}
	if c.n == 0 && c.duration == 0 {
		c.duration = 10 * time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return generate(ctx, c, stdout, stderr)
}

// conversations is how many conversations the messages are spread over.
const conversations = 997

func generate(ctx context.Context, c config, stdout, stderr io.Writer) error {
	opts := ledger.Options{MaxInFlight: c.inFlight, Shared: c.shared}
	var feed *surveil.Feed
	if c.scan {
		feed = surveil.NewFeed(0)
		opts.Appended = feed.Appended
	}
	led, err := ledgerdir.OpenOn(context.Background(), c.dir, "loadgen.commseal.example/"+filepath.Base(c.dir), c.spec, opts)
	if err != nil {
		return err
	}
	fst, _ := led.Store.(*filestore.Store) // nil on PostgreSQL: no recovery or sync figures
	if fst != nil {
		fmt.Fprintf(stderr, "loadgen: %s opened with %d entries (open %v); verifier key %s\n",
			c.dir, led.Size(), fst.Recovery().Duration.Round(time.Millisecond), led.VerifierKey())
	} else {
		fmt.Fprintf(stderr, "loadgen: %s opened on %s with %d entries; verifier key %s\n", c.dir, c.spec, led.Size(), led.VerifierKey())
	}

	// Lines go to a buffer that is flushed every few milliseconds: a line is written only after
	// its append returned, so whatever reached stdout before a kill -9 names a durable entry.
	out := &lineWriter{w: bufio.NewWriterSize(stdout, 64<<10)}
	outStop := out.flushEvery(5 * time.Millisecond)

	run := make([]byte, 6)
	rand.Read(run)
	runID := hex.EncodeToString(run)
	text := strings.Repeat("Q3 allocation for client 12: confirm the block trade at the agreed price. ", c.size/70+1)[:c.size]
	// The harness's own work is kept small: names made once, not per message.
	convIDs := make([]string, conversations)
	for k := range convIDs {
		convIDs[k] = "cid-" + strconv.Itoa(k)
	}
	senders := make([]capture.Party, c.concurrency)
	for w := range senders {
		senders[w] = capture.Party{ID: "staff-" + strconv.Itoa(w), StaffID: fmt.Sprintf("E%04d", w)}
	}
	flagged := text[:max(0, len(text)-24)] + " call me on WhatsApp"
	message := func(id string, conv int64, w int) *capture.Message {
		m := &capture.Message{
			Platform: capture.PlatformDingTalk, Tenant: "loadgen", ID: id,
			Conversation: capture.Conversation{ID: convIDs[conv], Type: capture.ConversationGroup},
			Sender:       senders[w], SentAt: time.Now().UTC(), Kind: capture.KindText, Text: text,
		}
		if c.scan && strings.HasSuffix(id, "00") || c.scan && strings.HasSuffix(id, "50") {
			m.Text = flagged // 1 in 50
		}
		m.Raw = []byte(`{"msgId":"` + m.ID + `"}`)
		return m
	}
	if c.warmup {
		// One message in each conversation first, untimed: the first message of a
		// conversation in a month creates its data key (a vault write and sync), which a ledger
		// that has run for a while has done long before.
		wstart := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		var werr atomic.Pointer[error]
		for w := range c.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := next.Add(1) - 1; k < conversations && ctx.Err() == nil; k = next.Add(1) - 1 {
					m := message("lg-"+runID+"-w"+strconv.FormatInt(k, 10), k, w)
					r, err := led.Append(context.WithoutCancel(ctx), m)
					if err == nil && c.scan {
						// An annotation too, so that each conversation's data key already
						// records that it protects annotations (a durable metadata write once
						// per scope and month, which a running ledger has long made).
						about := m.Identity()
						_, err = led.AppendRecord(context.WithoutCancel(ctx), &capture.Record{Kind: capture.RecordAnnotation,
							Platform: m.Platform, Tenant: m.Tenant, Conversation: m.Conversation, About: &about, At: time.Now().UTC(),
							Body: []byte(`{"schema":"loadgen.warmup/v1"}`)})
					}
					if err != nil {
						werr.CompareAndSwap(nil, &err)
						return
					}
					out.line(r.Index, m.ID)
				}
			}()
		}
		wg.Wait()
		if p := werr.Load(); p != nil {
			return errors.Join(*p, outStop(), led.Close())
		}
		fmt.Fprintf(stderr, "loadgen: warm-up: one message in each of %d conversations in %v (untimed)\n", conversations, time.Since(wstart).Round(time.Millisecond))
	}
	if c.duration > 0 { // the timed part: the warm-up does not count
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	if c.cpuprofile != "" { // the timed part only
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.trace != "" {
		f, err := os.Create(c.trace)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	var sc *scanning
	if c.scan {
		if sc, err = startScanning(ctx, led, feed, c.terms); err != nil {
			return errors.Join(err, outStop(), led.Close())
		}
	}
	var issued atomic.Int64
	lat := make([][]time.Duration, c.concurrency)
	errs := make(chan error, c.concurrency)
	var before, after filestore.Stats
	if fst != nil {
		before = fst.Stats()
	}
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := issued.Add(1)
				if c.n > 0 && k > int64(c.n) {
					return
				}
				m := message("lg-"+runID+"-"+strconv.FormatInt(k, 10), k%conversations, w)
				t0 := time.Now()
				r, err := led.Append(context.WithoutCancel(ctx), m)
				if err != nil {
					errs <- fmt.Errorf("append %s: %w", m.ID, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				out.line(r.Index, m.ID)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if fst != nil {
		after = fst.Stats()
	}
	var scanErr error
	if sc != nil {
		scanErr = sc.finish(led.Size(), stderr)
	}
	outErr := outStop()
	closeErr := led.Close()
	close(errs)
	var appendErr error
	for e := range errs {
		appendErr = errors.Join(appendErr, e)
	}

	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	var maxLat time.Duration
	if len(all) > 0 {
		maxLat = all[len(all)-1]
	}
	secs := elapsed.Seconds()
	fmt.Fprintf(stderr, "loadgen: %d durable appends in %.2fs: %.0f appends/s (concurrency %d, %d-byte text)\n",
		len(all), secs, float64(len(all))/secs, c.concurrency, c.size)
	fmt.Fprintf(stderr, "loadgen: commit latency p50 %v p90 %v p99 %v max %v\n",
		pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), maxLat.Round(time.Microsecond))
	fmt.Fprintf(stderr, "loadgen: CPU %.1f µs an append (user and system time of the process, all goroutines; %.0f%% of %d cores)\n",
		float64(cpu.Microseconds())/float64(max(1, len(all))), 100*cpu.Seconds()/secs/float64(runtime.NumCPU()), runtime.NumCPU())
	if fst == nil {
		return errors.Join(appendErr, scanErr, outErr, closeErr)
	}
	commits := max(1, after.Commits-before.Commits)
	fmt.Fprintf(stderr, "loadgen: store: %d syncs of the log (%.1f entries, %.1f batches each; %v a sync, busy %.0f%%), %d writes (%v each), %.0f syncs/s of every kind\n",
		after.Commits-before.Commits, float64(after.Entries-before.Entries)/float64(commits), float64(after.Batches-before.Batches)/float64(commits),
		((after.SyncTime - before.SyncTime) / time.Duration(commits)).Round(time.Microsecond), 100*(after.SyncTime-before.SyncTime).Seconds()/secs,
		after.Writes-before.Writes, ((after.WriteTime - before.WriteTime) / time.Duration(max(1, after.Writes-before.Writes))).Round(time.Microsecond),
		float64(after.Syncs-before.Syncs)/secs)
	return errors.Join(appendErr, scanErr, outErr, closeErr)
}

// lineWriter collects "<index> <id>" lines from many goroutines.
type lineWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
	buf []byte
}

func (o *lineWriter) line(i uint64, id string) {
	o.mu.Lock()
	o.buf = strconv.AppendUint(o.buf[:0], i, 10)
	o.buf = append(o.buf, ' ')
	o.buf = append(o.buf, id...)
	o.buf = append(o.buf, '\n')
	if o.err == nil {
		_, o.err = o.w.Write(o.buf)
	}
	o.mu.Unlock()
}

// flushEvery flushes the lines every d until the returned function is called, which flushes
// them a last time and returns the first write error.
func (o *lineWriter) flushEvery(d time.Duration) func() error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				o.mu.Lock()
				if o.err == nil {
					o.err = o.w.Flush()
				}
				o.mu.Unlock()
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.err == nil {
			o.err = o.w.Flush()
		}
		return o.err
	}
}
