package surveil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/commseal/commseal/seal"
)

// BehaviourSchema names the version of the behaviour annotation body:
//
//	{"schema":"commseal.behaviour/v1","finding":{…behaviour.Finding…},
//	 "message":{"index":12,"platform":"dingtalk","tenant":"corp","id":"msg…",
//	            "conversation":"cid…","sender":"user…","sent":"2026-11-02T20:04:05Z"}}
//
// "message" (a MessageRef, as in a findings annotation) names the message the finding is about,
// with its ledger index: present for off_hours, burst, off_channel, first_contact and
// sequence_gap findings, absent for findings about no message (source_silence,
// conversation_silence, reconnect_storm: the finding's "source" names the capture source,
// its "conversation" the conversation). It is optional: annotations sealed before it was
// added have none, and read as about no known index (the finding's platform, tenant and
// msg_id still name the message). Readers ignore fields they do not know.
const BehaviourSchema = "commseal.behaviour/v1"

// BehaviourAnnotation is the body of an annotation entry that seals one behaviour finding.
type BehaviourAnnotation struct {
	Schema  string            `json:"schema"`
	Finding behaviour.Finding `json:"finding"`
	// Message names the message the finding is about and where it is in the ledger; nil for
	// a finding about no message, and in annotations sealed before the field existed.
	Message *MessageRef `json:"message,omitempty"`
}

// DefaultTickEvery is Options.TickEvery's default: a silence is reported at most this late.
const DefaultTickEvery = 10 * time.Second

// Sealed is a finding the monitor sealed, for whoever raises alerts.
type Sealed struct {
	// Fresh is set when this step sealed it; otherwise an earlier run did, and may or may not
	// have reported it before it stopped (alert ids are stable, so receivers deduplicate).
	Fresh     bool
	Index     uint64           // the annotation entry's ledger index
	Message   *capture.Message // the message it is about (nil for a behaviour finding without one)
	MessageAt uint64           // the message's ledger index (see OnMessage)
	Lexicon   Lexicon          // for lexicon findings
	Findings  []Finding        // lexicon findings, or none
	Behaviour *behaviour.Finding
	// looked is set for a behaviour finding from Tick about a message read long ago (an
	// off-channel move), whose index MessageAt was looked up.
	looked bool
}

// OnMessage reports whether the finding is about a message whose ledger index is MessageAt:
// every lexicon finding; a behaviour finding about a message (not a silence or a reconnect
// storm, and not an off-channel move whose message could not be looked up).
func (s *Sealed) OnMessage() bool { return s.Message != nil || s.looked }

// Options configures a Monitor.
type Options struct {
	// Lexicon is the active lexicon; swapping a new one in (scan.Live.Reload) makes the next
	// Step scan with it, from where that version last stopped (from the start for a version
	// never run: a new lexicon is run over history).
	Lexicon *scan.Live
	// Behaviour, if set, also runs behaviour rules over each message, once, when a step
	// reaches it at the end of the ledger (a detector's state follows one pass in ledger
	// order; a new lexicon version's pass over history does not feed it again). Before its
	// first step, the monitor rebuilds a new detector's state by replaying what the ledger
	// holds before its cursor (see RebuildWindow), so that a restart loses no silence,
	// baseline or contact; a detector that has seen messages already (one monitor's, handed
	// to the next in the same process) is taken as it is.
	Behaviour *behaviour.Detector
	// RebuildWindow and RebuildEntries bound that replay: the messages sent within
	// RebuildWindow before the last message the cursor passed, and at most the
	// RebuildEntries ledger entries before the cursor. RebuildWindow defaults to the
	// detector's Memory (its longest silence window, or a burst baseline's span), and to at
	// least DefaultRebuildMemory when a rule remembers without a time bound (first_contact,
	// sequence_gap); RebuildEntries defaults to DefaultRebuildEntries, and a negative value
	// replays nothing. Entries inside the window that the cap leaves out are counted in
	// Stats.ReplaySkipped: their first contacts may be reported again, a silence that began
	// in them may be missed. The replay reads the ledger as the steps do, and seals nothing:
	// what the replayed messages caused was sealed before the restart. Reconnects are not in
	// the ledger: reconnect_storm counts afresh.
	RebuildWindow  time.Duration
	RebuildEntries int
	// CursorFile keeps how far each lexicon version has scanned, so that a restart resumes
	// there. "" keeps it in memory: a restart scans from the start again and seals nothing
	// twice (annotations are deduplicated on message and lexicon version), only slower.
	CursorFile string
	// OnSealed is called, in ledger order of the messages, for every finding of a step once it
	// is sealed, including findings an earlier run sealed but whose step it did not finish
	// (Sealed.Fresh tells them apart): the cursor moves only after every call succeeded, so an
	// error stops the step and the next one reports from the same message again. An alert
	// outbox that is full stops scanning rather than losing an alert. A monitor without a
	// CursorFile reports everything again after a restart.
	OnSealed func(ctx context.Context, s *Sealed) error
	// Feed, if set, hands the monitor what the ledger has just sealed (see Feed), so that it
	// reads back and decrypts only what the feed missed.
	Feed *Feed
	// CursorEvery is how often a monitor that keeps up with the ledger saves its cursor (default
	// 1 s; negative: after every step); one that has caught up saves it at once. A crash
	// loses at most that much of the cursor: those messages are read again, their findings
	// reported again with the same ids and sealed nothing twice. (Saving after every step of
	// a few entries put an fsync storm beside the log's own syncs.)
	CursorEvery time.Duration
	// Batch is how many ledger entries one step reads (default 4096); Concurrency how many
	// annotations it seals at once (default 32).
	Batch, Concurrency int
	// Now is the clock for annotations and for the behaviour rules' silences; default time.Now.
	Now func() time.Time
	// TickEvery is how often a monitor that has caught up asks the behaviour rules for
	// silences still going on (behaviour.Detector.Tick: source and conversation silence, an
	// off-channel move not yet followed by a message); default DefaultTickEvery.
	TickEvery time.Duration
	// Logger receives what the monitor does on its own; default discards.
	Logger *slog.Logger
}

// DefaultRebuildEntries is Options.RebuildEntries' default: how many ledger entries before
// its cursor a new monitor replays at most into its behaviour rules.
const DefaultRebuildEntries = 1 << 20

// DefaultRebuildMemory is how far back in message time a new monitor replays at least when a
// behaviour rule remembers without a time bound (first_contact, sequence_gap): 31 days, the
// longest window a rule may name.
const DefaultRebuildMemory = 744 * time.Hour

// Stats counts what a Step did.
type Stats struct {
	Version   string // the lexicon version scanned
	From, To  uint64 // the entries read: [From, To)
	Messages  int    // messages scanned
	Fed       int    // of which taken from the feed rather than read back from the ledger
	Flagged   int    // messages with lexicon findings
	Sealed    int    // annotation entries sealed now (not sealed before)
	Behaviour int    // behaviour findings
	// The rebuild of the behaviour rules, counted by the step that did it (the first one):
	// messages replayed, entries inside the rebuild window left out by
	// Options.RebuildEntries, and how long it took (reading included).
	Replayed      int
	ReplaySkipped uint64
	ReplayTook    time.Duration
}

// Monitor scans what the ledger captured, off the ack path: it follows the ledger from a
// durable cursor, scans every message with the active lexicon and seals the findings as
// annotation entries, each message once per lexicon version however often it is read.
// It is safe for concurrent use; steps run one at a time.
type Monitor struct {
	l    *ledger.Ledger
	d    *ledger.Deriver
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // one step at a time; guards cursor, dirty and saved
	cursor cursor
	dirty  bool      // the cursor moved since it was saved
	saved  time.Time // when it was last saved
	batch  stepBatch // a step's messages, scanned together; guarded by mu
	// The behaviour rules see each message once, when a step reaches it at the end of the
	// ledger, whichever lexicon version the step scans with (a new version goes over history
	// first). observed is the next ledger index they have not seen; held, what they reported
	// that is not yet sealed and reported (a step that failed after they saw its messages:
	// they will not report it again); ticked, when they were last ticked. All guarded by mu.
	observed uint64
	held     []*Sealed
	ticked   time.Time
	// rebuild is the replay that rebuilds the behaviour rules before the first step; guarded
	// by mu.
	rebuild rebuild
}

// rebuild is how far the replay into the behaviour rules has gone: it replays [next,
// Monitor.observed) once planned; a replay that fails part way goes on from next.
type rebuild struct {
	planned, done bool
	next          uint64
	skipped       uint64
	replayed      int
	took          time.Duration
}

// cursor is the cursor file: the next ledger index per lexicon version.
type cursor struct {
	Format   string            `json:"format"`
	Versions map[string]uint64 `json:"versions"`
}

const cursorFormat = "commseal.surveil.cursor/v1"

// ErrBadCursor is wrapped when the cursor file cannot be read; nothing is scanned until it is
// mended or removed (removing it only costs a rescan: nothing is sealed twice).
var ErrBadCursor = errors.New("surveil: bad cursor file")

// New makes a monitor of l.
func New(l *ledger.Ledger, opts Options) (*Monitor, error) {
	if opts.Lexicon == nil {
		return nil, errors.New("surveil: Options.Lexicon is required")
	}
	if opts.Batch <= 0 {
		opts.Batch = 4096
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	if opts.CursorEvery == 0 {
		opts.CursorEvery = time.Second
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = DefaultTickEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{l: l, d: l.Derive("surveil"), opts: opts, log: log, cursor: cursor{Format: cursorFormat, Versions: map[string]uint64{}}}
	if opts.CursorFile != "" {
		b, err := os.ReadFile(opts.CursorFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrBadCursor, err)
		default:
			var c cursor
			if err := json.Unmarshal(b, &c); err != nil || c.Format != cursorFormat || c.Versions == nil {
				return nil, fmt.Errorf("%w: %s: not a %s file", ErrBadCursor, opts.CursorFile, cursorFormat)
			}
			m.cursor = c
		}
	}
	// The behaviour rules saw every message up to the furthest any lexicon version scanned
	// (they observe a message when the first step reaches it, whichever version scans it):
	// they are rebuilt from what is before, and go on from there.
	for _, at := range m.cursor.Versions {
		m.observed = max(m.observed, at)
	}
	// A detector that has seen messages already (handed from a monitor to its successor in
	// one process) has its state: replaying into it would feed it messages twice.
	m.rebuild.done = opts.Behaviour == nil || m.observed == 0 || opts.RebuildEntries < 0 || opts.Behaviour.Stats().Messages > 0
	return m, nil
}

// Position returns how far lexicon version v has scanned: the next ledger index it reads.
func (m *Monitor) Position(v string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursor.Versions[v]
}

// Step scans the next batch of entries with the active lexicon, seals their findings, and
// moves the cursor past them once everything is durable.
func (m *Monitor) Step(ctx context.Context) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc := m.opts.Lexicon.Scanner()
	lex := Lexicon{Name: sc.Name(), Version: sc.Version()}
	st := Stats{Version: lex.Version, From: m.cursor.Versions[lex.Version]}
	if err := m.rebuildBehaviour(ctx, sc, &st); err != nil {
		st.To = st.From
		return st, err
	}
	st.To = min(m.l.Size(), st.From+uint64(m.opts.Batch))
	work := slices.Clone(m.held)
	if st.From < st.To {
		if err := m.read(ctx, st.From, st.To, m.batch.add, &st.Fed); err != nil {
			m.batch.reset()
			return st, err
		}
		// The step's messages are scanned together, then visited in ledger order: the
		// behaviour rules observe them in that order, with their findings.
		m.batch.scan(sc, func(at uint64, msg *capture.Message, fs []Finding) {
			st.Messages++
			if len(fs) > 0 {
				st.Flagged++
				work = append(work, &Sealed{Message: msg, MessageAt: at, Lexicon: lex, Findings: fs})
			}
			if m.opts.Behaviour != nil && at >= m.observed {
				for _, bf := range m.opts.Behaviour.Observe(msg, categories(fs)) {
					work = m.hold(work, &Sealed{Message: msg, MessageAt: at, Behaviour: &bf}, &st)
				}
			}
		})
		m.observed = max(m.observed, st.To)
	}
	if st.To >= m.l.Size() {
		work = m.tick(ctx, work, &st)
	}
	if err := m.seal(ctx, work, &st); err != nil {
		return st, err
	}
	if st.From >= st.To {
		return st, m.flush() // caught up: what the last steps did is saved now
	}
	m.cursor.Versions[lex.Version] = st.To
	m.dirty = true
	if time.Since(m.saved) < m.opts.CursorEvery {
		return st, nil
	}
	return st, m.flush()
}

// CatchUp steps until a step finds nothing new to read, and returns the steps' counts added
// up: From is where the first step started, To where the last one ended, Version the lexicon
// version of the first step. For a program that scans what is there and exits; a monitor that
// follows the ledger uses Run.
func (m *Monitor) CatchUp(ctx context.Context) (Stats, error) {
	var total Stats
	for i := 0; ; i++ {
		st, err := m.Step(ctx)
		if i == 0 {
			total.Version, total.From = st.Version, st.From
		}
		total.To = max(total.To, st.To, st.From)
		total.Replayed += st.Replayed
		total.ReplaySkipped += st.ReplaySkipped
		total.ReplayTook += st.ReplayTook
		if err != nil {
			return total, err
		}
		if st.To <= st.From {
			return total, nil
		}
		total.Messages += st.Messages
		total.Fed += st.Fed
		total.Flagged += st.Flagged
		total.Sealed += st.Sealed
		total.Behaviour += st.Behaviour
	}
}

// flush saves the cursor if it moved since it was last saved.
func (m *Monitor) flush() error {
	if !m.dirty {
		return nil
	}
	if err := m.save(); err != nil {
		return err
	}
	m.dirty, m.saved = false, time.Now()
	return nil
}

// read calls visit with every message in [from, to), in ledger order: from the feed where it
// holds the message, else read back from the ledger (decrypted); shredded messages are skipped.
func (m *Monitor) read(ctx context.Context, from, to uint64, visit func(uint64, *capture.Message), fedCount *int) error {
	if m.opts.Feed == nil {
		return m.scan(ctx, from, to, visit)
	}
	// In ledger order: each entry the feed holds (a message to visit, or another kind to pass
	// over), and each run of entries it does not hold, read back in one scan.
	missed := uint64(0) // the start of the current run the feed missed, if missing
	missing := false
	for i := from; i < to; i++ {
		msg, ok := m.opts.Feed.take(i)
		if !ok {
			if !missing {
				missed, missing = i, true
			}
			continue
		}
		if missing {
			if err := m.scan(ctx, missed, i, visit); err != nil {
				return err
			}
			missing = false
		}
		if msg != nil {
			visit(i, msg)
			*fedCount++
		}
	}
	if missing {
		return m.scan(ctx, missed, to, visit)
	}
	return nil
}

// scan reads [from, to) back from the ledger and visits its messages.
func (m *Monitor) scan(ctx context.Context, from, to uint64, visit func(uint64, *capture.Message)) error {
	return m.d.Scan(ctx, from, to, func(e *ledger.Entry, err error) error {
		if errors.Is(err, ledger.ErrShredded) || e.Leaf.Kind != seal.KindMessage {
			return nil
		}
		if err != nil {
			return fmt.Errorf("surveil: entry %d: %w", e.Index, err)
		}
		visit(e.Index, e.Message)
		return nil
	})
}

func categories(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Category
	}
	return out
}

// sealWork appends the annotations of a step, concurrency at a time (the ledger commits them
// together), and marks which were sealed now.
func sealWork(ctx context.Context, l *ledger.Ledger, work []*Sealed, concurrency int, now time.Time, st *Stats) error {
	fresh := make([]bool, len(work))
	errs := make([]error, len(work))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, w := range work {
		rec, err := record(w, now)
		if err != nil {
			return err
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rc, err := l.AppendRecord(ctx, rec)
			if err != nil {
				errs[i] = fmt.Errorf("surveil: sealing findings of entry %d: %w", w.MessageAt, err)
				return
			}
			w.Index, fresh[i] = rc.Index, !rc.Duplicate
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, w := range work {
		if w.Fresh = fresh[i]; w.Fresh {
			st.Sealed++
		}
	}
	return nil
}

// report hands each piece of work, in order, to OnSealed.
func (m *Monitor) report(ctx context.Context, work []*Sealed) error {
	if m.opts.OnSealed == nil {
		return nil
	}
	for _, w := range work {
		if err := m.opts.OnSealed(ctx, w); err != nil {
			return fmt.Errorf("surveil: reporting the findings of entry %d: %w", w.MessageAt, err)
		}
	}
	return nil
}

// record makes the annotation record of one piece of work, made at now.
func record(w *Sealed, now time.Time) (*capture.Record, error) {
	if w.Behaviour == nil {
		return NewRecord(w.Message, w.MessageAt, w.Lexicon, w.Findings, now)
	}
	ba := BehaviourAnnotation{Schema: BehaviourSchema, Finding: *w.Behaviour}
	if w.OnMessage() {
		ba.Message = behaviourRef(w)
	}
	body, err := json.Marshal(ba)
	if err != nil {
		return nil, fmt.Errorf("surveil: %w", err)
	}
	id := w.Behaviour.Identity()
	rec := &capture.Record{Kind: capture.RecordAnnotation, ID: boundedID("behaviour/", w.Behaviour.Key()), At: now.UTC(), Body: body}
	if m := w.Message; m != nil {
		rec.Platform, rec.Tenant, rec.Conversation = m.Platform, m.Tenant, m.Conversation
	} else {
		// A silence or a reconnect storm: about a conversation, or a source (named
		// "platform/tenant" unless behaviour.Options.SourceOf says otherwise).
		rec.Platform, rec.Tenant, rec.Conversation.ID = findingScope(w.Behaviour)
	}
	if id.ID != "" {
		rec.About = &id
	}
	return rec, nil
}

// behaviourRef names the message a behaviour finding is about: from the message when the step
// read it, else (an off-channel move reported by Tick) from what the finding says of it.
func behaviourRef(w *Sealed) *MessageRef {
	if m := w.Message; m != nil {
		return &MessageRef{Index: w.MessageAt, Platform: m.Platform, Tenant: m.Tenant, ID: m.ID, Conversation: m.Conversation.ID,
			Sender: m.Sender.ID, Sent: m.SentAt.UTC()}
	}
	f := w.Behaviour
	return &MessageRef{Index: w.MessageAt, Platform: f.Platform, Tenant: f.Tenant, ID: f.MsgID, Conversation: f.Conversation,
		Sender: f.Sender, Sent: f.Since.UTC()}
}

// tick adds to work what the behaviour rules' Tick reports (silences still going on), at most
// once per Options.TickEvery. It is called only when the monitor has read everything sealed:
// one behind would see silences in conversations whose next messages it has not read yet.
func (m *Monitor) tick(ctx context.Context, work []*Sealed, st *Stats) []*Sealed {
	if m.opts.Behaviour == nil {
		return work
	}
	now := m.opts.Now()
	if !m.ticked.IsZero() && now.Sub(m.ticked) < m.opts.TickEvery {
		return work
	}
	m.ticked = now
	for _, bf := range m.opts.Behaviour.Tick(now) {
		w := &Sealed{Behaviour: &bf}
		if id := bf.Identity(); id.ID != "" { // an off-channel move: about a message read long ago
			if i, ok, err := m.l.Lookup(ctx, id); err == nil && ok {
				w.MessageAt, w.looked = i, true
			}
		}
		work = m.hold(work, w, st)
	}
	return work
}

// hold adds a behaviour finding to work, and keeps it until a step has sealed and reported it.
func (m *Monitor) hold(work []*Sealed, w *Sealed, st *Stats) []*Sealed {
	st.Behaviour++
	m.held = append(m.held, w)
	return append(work, w)
}

// findingScope is where a behaviour finding that is about no message is recorded: its
// conversation's platform and tenant, else its source's ("platform/tenant"), else platform
// "commseal".
func findingScope(f *behaviour.Finding) (platform, tenant, conversation string) {
	platform, tenant = f.Platform, f.Tenant
	if platform == "" {
		platform, tenant, _ = strings.Cut(f.Source, "/")
	}
	if platform == "" {
		platform = "commseal"
	}
	return platform, tenant, f.Conversation
}

// Reconnect tells the behaviour rules that a capture source reconnected at t (source named as
// behaviour.Options.SourceOf names the sources of messages: "platform/tenant" by default), and
// seals and reports the reconnect_storm findings it causes, as Step does. It does nothing
// without Options.Behaviour.
func (m *Monitor) Reconnect(ctx context.Context, source string, t time.Time) error {
	if m.opts.Behaviour == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var st Stats // Reconnect reports no counts
	if err := m.rebuildBehaviour(ctx, m.opts.Lexicon.Scanner(), &st); err != nil {
		return err
	}
	work := slices.Clone(m.held)
	for _, bf := range m.opts.Behaviour.Reconnect(source, t) {
		work = m.hold(work, &Sealed{Behaviour: &bf}, &st)
	}
	return m.seal(ctx, work, &st)
}

// seal seals work and reports it, in order; once both are done, nothing is held.
func (m *Monitor) seal(ctx context.Context, work []*Sealed, st *Stats) error {
	if len(work) == 0 {
		return nil
	}
	if err := sealWork(ctx, m.l, work, m.opts.Concurrency, m.opts.Now(), st); err != nil {
		return err
	}
	if err := m.report(ctx, work); err != nil {
		return err
	}
	m.held = nil
	return nil
}

// save writes the cursor file, if there is one.
func (m *Monitor) save() error {
	if m.opts.CursorFile == "" {
		return nil
	}
	b, err := json.Marshal(m.cursor)
	if err != nil {
		return fmt.Errorf("surveil: %w", err)
	}
	if err := durable.WriteFile(m.opts.CursorFile, b); err != nil {
		return fmt.Errorf("surveil: saving the cursor: %w", err)
	}
	return nil
}

// Run steps until ctx is done, waiting interval (default 200 ms) whenever it has caught up; a
// failed step is logged and retried. It returns ctx's error.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	for {
		st, err := m.Step(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("surveil: step failed", "err", err)
		}
		if err == nil && st.To-st.From >= uint64(m.opts.Batch) {
			continue // a full batch: more is waiting
		}
		// Caught up, or following close behind: wait, and take what came meanwhile in one
		// step (a monitor stepping after every few entries competes with the writer).
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
