package alert

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/commseal/commseal/internal/durable"
)

// OutboxOptions configures an Outbox. The zero value gives the defaults.
type OutboxOptions struct {
	// MaxRecords bounds the records the outbox holds, pending and dead letters together; at
	// the bound Alert fails with ErrOutboxFull. Default 10,000.
	MaxRecords int
	// Logger receives deliveries that fail, dead letters and quarantined files. Default: none.
	Logger *slog.Logger
	// IncludeExcerpt keeps Alert.Excerpt in the outbox, so that a sender configured to send it
	// can. Default false: the excerpt is dropped before the alert touches the disk. With it set,
	// the excerpt is on disk in plaintext until the alert is delivered (the file is then
	// overwritten with zeros before it is removed): the operator's choice, against invariant 8.
	IncludeExcerpt bool
	// MinBackoff and MaxBackoff bound the wait after a failed attempt: MinBackoff doubled per
	// failure of the same alert, at most MaxBackoff, less up to half of it at random (jitter).
	// Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// MinInterval spaces consecutive sends (DingTalkInterval for a DingTalk robot). Default 0.
	MinInterval time.Duration
	// SendTimeout bounds one attempt. Default 30 s.
	SendTimeout time.Duration
}

// Outbox is a durable, bounded queue in front of a Sender: an Alerter whose Alert returns once
// the alert is on disk, and whose Run delivers what is queued, retrying until the receiver
// takes it. See the package documentation for the directory's format and what a crash does.
//
// Alert, Run, Stats, DeadLetters and Redrive are safe for concurrent use. Lock order: mu only;
// no lock is held while a Sender runs or while Alert writes (Redrive writes under mu).
type Outbox struct {
	dir    string
	sender Sender
	opts   OutboxOptions
	log    *slog.Logger
	lockF  *os.File

	mu          sync.Mutex
	closed      bool
	running     bool
	cancelRun   context.CancelFunc
	pending     map[string]*item // by alert ID
	dead        map[string]bool  // alert IDs of the dead letters
	nextSeq     uint64
	delivered   int
	quarantined int
	wake        chan struct{} // capacity 1: something was queued
	runDone     sync.WaitGroup
	writes      sync.WaitGroup // Alert calls writing their record
}

// item is a pending alert in memory.
type item struct {
	rec      Record
	attempts int
	next     time.Time // not before
	// writing is closed when the record's write has ended (nil once it has): until then the
	// alert is reserved but not durable, and Run leaves it alone. werr is the write's error,
	// set before writing is closed.
	writing chan struct{}
	werr    error
}

// Subdirectories of an outbox directory.
const (
	queueDir      = "queue"
	deadDir       = "dead"
	quarantineDir = "quarantine"
	recordExt     = ".alert"
)

// OpenOutbox opens (creating it if needed) the outbox in dir, delivering through s. It takes
// an exclusive lock on the directory (ErrOutboxInUse if another Outbox holds it) and loads the
// records a previous run left: pending ones are delivered again by Run. A file that is not a
// valid record is moved to the quarantine subdirectory and logged; Open fails only when it
// cannot read the directory or move such a file.
func OpenOutbox(dir string, s Sender, opts OutboxOptions) (*Outbox, error) {
	if s == nil {
		return nil, errors.New("alert: OpenOutbox needs a Sender")
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 10000
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 30 * time.Second
	}
	o := &Outbox{dir: dir, sender: s, opts: opts, log: opts.Logger,
		pending: map[string]*item{}, dead: map[string]bool{}, nextSeq: 1,
		wake: make(chan struct{}, 1)}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{dir, o.sub(queueDir), o.sub(deadDir), o.sub(quarantineDir)} {
		if err := durable.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("alert: opening outbox: %w", err)
		}
	}
	lf, err := durable.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("alert: opening outbox: %w", err)
	}
	if err := durable.Lock(lf); err != nil {
		lf.Close()
		if errors.Is(err, durable.ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrOutboxInUse, dir)
		}
		return nil, fmt.Errorf("alert: opening outbox: %w", err)
	}
	o.lockF = lf
	if err := o.load(); err != nil {
		lf.Close()
		return nil, err
	}
	return o, nil
}

func (o *Outbox) sub(name string) string { return filepath.Join(o.dir, name) }

// fileName is the name of an alert's record file: one file per alert ID, so that queuing an
// alert twice writes one file.
func fileName(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:16]) + recordExt
}

// load reads the queue and dead-letter directories into memory.
func (o *Outbox) load() error {
	dead, err := o.readDir(deadDir)
	if err != nil {
		return err
	}
	for _, r := range dead {
		o.dead[r.Alert.ID] = true
		o.nextSeq = max(o.nextSeq, r.Seq+1)
	}
	queued, err := o.readDir(queueDir)
	if err != nil {
		return err
	}
	for _, r := range queued {
		if o.dead[r.Alert.ID] {
			// A crash came between writing the dead letter and removing the pending file.
			if err := o.removeRecord(queueDir, r); err != nil {
				return err
			}
			continue
		}
		o.pending[r.Alert.ID] = &item{rec: *r}
		o.nextSeq = max(o.nextSeq, r.Seq+1)
	}
	return nil
}

// readDir decodes every record file of a subdirectory, quarantining what does not decode,
// and removes the temporary files of writes that a crash interrupted.
func (o *Outbox) readDir(sub string) ([]*Record, error) {
	d := o.sub(sub)
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("alert: reading outbox: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(d, name)
		if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp") && e.Type().IsRegular() {
			// durable.WriteFile's temporary file: the write never completed, nothing was
			// acknowledged for it.
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("alert: removing %s: %w", path, err)
			}
			continue
		}
		r, err := o.readRecord(path, e)
		if err == nil && fileName(r.Alert.ID) != name {
			err = fmt.Errorf("%w: file name does not match alert id %q", ErrCorruptRecord, r.Alert.ID)
		}
		if err != nil {
			if qerr := o.quarantine(sub, name, err); qerr != nil {
				return nil, qerr
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func (o *Outbox) readRecord(path string, e fs.DirEntry) (*Record, error) {
	if !e.Type().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrCorruptRecord)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("alert: reading outbox: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(recordHeader+MaxRecordBody+recordTrailer+1)))
	if err != nil {
		return nil, fmt.Errorf("alert: reading %s: %w", path, err)
	}
	return DecodeRecord(data)
}

// quarantine moves a file that is not a valid record out of the way, keeping it for
// inspection.
func (o *Outbox) quarantine(sub, name string, why error) error {
	from := filepath.Join(o.sub(sub), name)
	to := filepath.Join(o.sub(quarantineDir), sub+"-"+name+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("alert: quarantining %s (%v): %w", from, why, err)
	}
	if err := durable.SyncDir(o.sub(quarantineDir)); err != nil {
		return fmt.Errorf("alert: quarantining %s: %w", from, err)
	}
	if err := durable.SyncDir(o.sub(sub)); err != nil {
		return fmt.Errorf("alert: quarantining %s: %w", from, err)
	}
	o.quarantined++
	o.log.Error("alert outbox: quarantined a file that is not a valid record",
		slog.String("file", from), slog.String("moved_to", to), slog.String("error", why.Error()))
	return nil
}

// Alert queues a for delivery and returns once it is durable. It fills an empty ID with
// NewID, drops the excerpt unless OutboxOptions.IncludeExcerpt, and validates (ErrInvalidAlert).
// An alert whose ID is already pending or a dead letter is not queued again and is not an
// error. A full outbox fails with ErrOutboxFull, a closed one with ErrClosed; then nothing was
// queued.
func (o *Outbox) Alert(ctx context.Context, a Alert) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := prepare(a, o.opts.IncludeExcerpt)
	if err != nil {
		return err
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	if it := o.pending[a.ID]; it != nil {
		// Taken already, or being written by another call: its outcome is ours.
		w := it.writing
		o.mu.Unlock()
		if w == nil {
			return nil
		}
		select {
		case <-w:
			return it.werr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if o.dead[a.ID] {
		o.mu.Unlock()
		return nil
	}
	if n := len(o.pending) + len(o.dead); n >= o.opts.MaxRecords {
		o.mu.Unlock()
		return fmt.Errorf("%w: %d records (%d dead letters)", ErrOutboxFull, n, len(o.dead))
	}
	rec := Record{Seq: o.nextSeq, Queued: time.Now().UTC(), Alert: a}
	data, err := EncodeRecord(&rec)
	if err != nil {
		o.mu.Unlock()
		return err
	}
	// Reserve the slot and the sequence number, then write without the lock, so that
	// concurrent callers sync in parallel (the file system groups their journal commits).
	it := &item{rec: rec, writing: make(chan struct{})}
	o.pending[a.ID] = it
	o.nextSeq++
	o.writes.Add(1)
	o.mu.Unlock()

	err = durable.WriteFile(filepath.Join(o.sub(queueDir), fileName(a.ID)), data)
	if err != nil {
		err = fmt.Errorf("alert: queuing %s: %w", a.ID, err)
	}
	o.mu.Lock()
	w := it.writing
	it.werr, it.writing = err, nil
	if err != nil {
		delete(o.pending, a.ID)
	}
	o.mu.Unlock()
	close(w)
	o.writes.Done()
	if err != nil {
		return err
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers the queued alerts until ctx is done (it returns ctx's error) or the outbox is
// closed (it returns nil). It sends one alert at a time: the one queued first among those whose
// backoff has ended. A delivered alert's file is removed; a permanent failure makes it a dead
// letter (see DeadLetters); any other failure is retried after a backoff: per alert when the
// receiver answered, for the whole queue when it could not be reached, answered 429 or asked to
// wait (Retry-After). Only one Run may be active (ErrRunning).
func (o *Outbox) Run(ctx context.Context) error {
	o.mu.Lock()
	switch {
	case o.closed:
		o.mu.Unlock()
		return ErrClosed
	case o.running:
		o.mu.Unlock()
		return ErrRunning
	}
	rctx, cancel := context.WithCancel(ctx)
	o.running, o.cancelRun = true, cancel
	o.runDone.Add(1)
	o.mu.Unlock()
	defer func() {
		cancel()
		o.mu.Lock()
		o.running, o.cancelRun = false, nil
		o.mu.Unlock()
		o.runDone.Done()
	}()

	var pause time.Time    // nothing is sent before it
	var lastSend time.Time // for MinInterval
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if rctx.Err() != nil {
			return o.runEnd(ctx)
		}
		now := time.Now()
		it, wait := o.pick(now, pause, lastSend)
		if it == nil {
			timer.Reset(wait)
			select {
			case <-rctx.Done():
				return o.runEnd(ctx)
			case <-o.wake:
			case <-timer.C:
			}
			continue
		}
		sctx, scancel := context.WithTimeout(rctx, o.opts.SendTimeout)
		err := o.sender.Send(sctx, it.rec.Alert)
		scancel()
		lastSend = time.Now()
		if err != nil && rctx.Err() != nil {
			// Interrupted by Close or ctx: the attempt does not count; the alert stays queued.
			// (A delivery that completed is settled, then the loop stops.)
			return o.runEnd(ctx)
		}
		if p := o.settle(it, err); p.After(pause) {
			pause = p
		}
	}
}

// runEnd is what Run returns when it stops: nil after Close, else ctx's error.
func (o *Outbox) runEnd(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// noWork is how long Run sleeps when nothing is pending (a queued alert wakes it sooner).
const noWork = time.Hour

// pick returns the due pending alert queued first, or nil and how long to wait.
func (o *Outbox) pick(now, pause, lastSend time.Time) (*item, time.Duration) {
	notBefore := pause
	if o.opts.MinInterval > 0 && !lastSend.IsZero() {
		notBefore = later(notBefore, lastSend.Add(o.opts.MinInterval))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var best *item
	var earliest time.Time
	for _, it := range o.pending {
		if it.writing != nil {
			continue // not durable yet; its Alert wakes Run when it is
		}
		if !it.next.After(now) {
			if best == nil || it.rec.Seq < best.rec.Seq {
				best = it
			}
		} else if earliest.IsZero() || it.next.Before(earliest) {
			earliest = it.next
		}
	}
	if best != nil {
		if notBefore.After(now) {
			return nil, notBefore.Sub(now)
		}
		return best, 0
	}
	if earliest.IsZero() {
		return nil, noWork
	}
	return nil, later(earliest, notBefore).Sub(now)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// settle records the outcome of one attempt and returns when the whole queue may send again
// (the zero time when the failure concerns this alert only).
func (o *Outbox) settle(it *item, err error) time.Time {
	id := it.rec.Alert.ID
	switch {
	case err == nil:
		rerr := o.removeRecord(queueDir, &it.rec)
		o.mu.Lock()
		delete(o.pending, id)
		o.delivered++
		o.mu.Unlock()
		if rerr != nil {
			// Delivered but still on disk: the next Open sends it again, with the same
			// Idempotency-Key, which the receiver deduplicates.
			o.log.Error("alert outbox: delivered alert not removed", slog.String("id", id), slog.String("error", rerr.Error()))
		}
		return time.Time{}
	case errors.Is(err, ErrPermanent) || errors.Is(err, ErrInvalidAlert):
		if derr := o.bury(it, err); derr != nil {
			o.log.Error("alert outbox: cannot keep a dead letter; will retry", slog.String("id", id), slog.String("error", derr.Error()))
			return o.backoff(it, err, false)
		}
		o.log.Error("alert outbox: delivery failed for good; kept as a dead letter",
			slog.String("id", id), slog.String("error", err.Error()))
		return time.Time{}
	default:
		var de *DeliveryError
		answered := errors.As(err, &de)
		return o.backoff(it, err, !answered)
	}
}

// backoff schedules the next attempt of it. global makes the wait apply to the whole queue;
// so do a Retry-After and a 429.
func (o *Outbox) backoff(it *item, err error, global bool) time.Time {
	o.mu.Lock()
	it.attempts++
	d := o.opts.MinBackoff
	for i := 1; i < it.attempts && d < o.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.opts.MaxBackoff)
	d -= time.Duration(rand.Int64N(int64(d/2) + 1))
	var de *DeliveryError
	if errors.As(err, &de) {
		// Retry-After and 429 are about the client, not this alert: the whole queue waits.
		if de.RetryAfter > 0 || de.StatusCode == http.StatusTooManyRequests {
			d, global = max(d, de.RetryAfter), true
		}
	}
	it.next = time.Now().Add(d)
	next, attempts := it.next, it.attempts
	o.mu.Unlock()
	o.log.Warn("alert outbox: delivery failed; will retry", slog.String("id", it.rec.Alert.ID),
		slog.Int("attempts", attempts), slog.Duration("wait", d), slog.String("error", err.Error()))
	if global {
		return next
	}
	return time.Time{}
}

// bury makes it a dead letter: written to dead/, then removed from queue/.
func (o *Outbox) bury(it *item, why error) error {
	rec := it.rec
	rec.Failed = time.Now().UTC()
	rec.Reason = shorten(why.Error(), 1000)
	data, err := EncodeRecord(&rec)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(o.sub(deadDir), fileName(rec.Alert.ID)), data); err != nil {
		return err
	}
	o.mu.Lock()
	delete(o.pending, rec.Alert.ID)
	o.dead[rec.Alert.ID] = true
	o.mu.Unlock()
	if err := o.removeRecord(queueDir, &it.rec); err != nil {
		// Open finds both and drops the pending copy.
		o.log.Error("alert outbox: dead letter still pending on disk", slog.String("id", rec.Alert.ID), slog.String("error", err.Error()))
	}
	return nil
}

// removeRecord removes a record's file durably; one that holds an excerpt is overwritten with
// zeros first.
func (o *Outbox) removeRecord(sub string, r *Record) error {
	path := filepath.Join(o.sub(sub), fileName(r.Alert.ID))
	var err error
	if r.Alert.Excerpt != "" {
		err = durable.Scrub(path, nil)
	} else if err = os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("alert: removing %s: %w", path, err)
	}
	if err := durable.SyncDir(o.sub(sub)); err != nil {
		return fmt.Errorf("alert: removing %s: %w", path, err)
	}
	return nil
}

// Stats counts what an Outbox holds and has done since it was opened.
type Stats struct {
	Pending     int // alerts waiting for delivery
	Dead        int // dead letters
	Delivered   int // alerts delivered since Open
	Quarantined int // files moved to quarantine by Open
}

// Stats returns the outbox's counts.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return Stats{Pending: len(o.pending), Dead: len(o.dead), Delivered: o.delivered, Quarantined: o.quarantined}
}

// DeadLetters returns the alerts whose delivery failed for good, with Failed and Reason set,
// in queuing order. They count against MaxRecords until Redrive queues them again.
func (o *Outbox) DeadLetters() ([]Record, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, ErrClosed
	}
	return o.deadLocked()
}

func (o *Outbox) deadLocked() ([]Record, error) {
	var out []Record
	for id := range o.dead {
		path := filepath.Join(o.sub(deadDir), fileName(id))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("alert: reading dead letter: %w", err)
		}
		r, err := DecodeRecord(data)
		if err != nil {
			return nil, fmt.Errorf("alert: reading dead letter %s: %w", path, err)
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Redrive queues every dead letter again (after the cause was mended: a secret, a receiver's
// configuration) and returns how many. Each is pending before its dead-letter file is removed,
// so a crash part way leaves it in both places, and Open keeps the dead letter.
func (o *Outbox) Redrive(ctx context.Context) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, ErrClosed
	}
	recs, err := o.deadLocked()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		r.Failed, r.Reason = time.Time{}, ""
		data, err := EncodeRecord(&r)
		if err != nil {
			return n, err
		}
		if err := durable.WriteFile(filepath.Join(o.sub(queueDir), fileName(r.Alert.ID)), data); err != nil {
			return n, fmt.Errorf("alert: redriving %s: %w", r.Alert.ID, err)
		}
		if err := o.removeRecord(deadDir, &r); err != nil {
			return n, err
		}
		delete(o.dead, r.Alert.ID)
		o.pending[r.Alert.ID] = &item{rec: r}
		n++
	}
	if n > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// Close stops Run (an attempt in progress is cancelled and stays queued), waits for it and
// for Alert calls that are writing to return, and releases the directory. Everything queued stays on disk for the next Open.
// Calls after the first return nil.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	if o.cancelRun != nil {
		o.cancelRun()
	}
	o.mu.Unlock()
	o.runDone.Wait()
	o.writes.Wait()
	if err := o.lockF.Close(); err != nil {
		return fmt.Errorf("alert: closing outbox: %w", err)
	}
	return nil
}
