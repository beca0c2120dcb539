// Command review is the compliance reviewer's tool: the open alert queue, dispositions, and
// re-scans of history with a new lexicon, on a ledger directory (as the quickstart or the
// archiver write them). Everything it reads is an audited access and every decision is sealed.
//
//	go run ./examples/review -dir DIR -who WHO -why REASON scan [-lexicon FILE]
//	go run ./examples/review -dir DIR -who WHO -why REASON alerts [-all]
//	go run ./examples/review -dir DIR -who WHO -why REASON dispose -alert N -disposition dismissed|escalated|note|assigned [-note TEXT]
//	go run ./examples/review -dir DIR -who WHO -why REASON rescan -lexicon FILE [-from RFC3339] [-to RFC3339] [-conversation ID]...
//
// scan brings surveillance up to date (what the archiver does as it captures): every message
// not yet scanned by the lexicon (the embedded default, or -lexicon) is scanned and its findings
// sealed as annotations, from the cursor in DIR/surveil.cursor. alerts prints the open alerts
// (with -all, every alert) as JSON lines, one per finding: {"index","about","msg_id",
// "conversation","sender","rule","category","severity","term","field","start","end",
// "lexicon_version","source","reason","open"}. index is the ledger index of the alert's
// annotation (what dispose takes); about the ledger index of the message it is about, absent
// for an alert about no message (a silence, a reconnect storm) and for a behaviour alert sealed
// before annotations recorded it. Behaviour alerts carry their kind as category, an empty term,
// their reason, and for capture-health alerts the capture source. field, lexicon_version,
// source and reason are absent when empty. dispose seals a disposition of the alert at ledger
// index N. rescan runs a lexicon over
// history and prints the report (per rule and term: hits, messages added and removed against
// the previous version, precision from dispositions) as JSON.
//
// Exit status (README, "Exit status"): 0 done; 1 the command was attempted and failed (an
// alert that is not there, a read or an append of the ledger, the cursor); 2 the invocation was
// refused before anything was done: bad or missing flags and arguments (a lexicon file that
// does not load, a malformed time), a bad -store or -blobs, or a directory that holds no
// ledger, keeps it elsewhere (backend.ErrMismatch), is open in another process or lacks its
// keys.
//
// -store and -blobs (before the command) name where the ledger's log and attachments are when
// not in DIR/store (postgres://..., s3://...; internal/backend).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
)

// The exit status: ledgerdir.ExitCode's convention.
const (
	exitOK      = ledgerdir.ExitOK
	exitFailed  = ledgerdir.ExitFailed
	exitRefused = ledgerdir.ExitRefused
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("review", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "", "ledger directory (required)")
	who := fl.String("who", "", "who reviews (required; sealed in the ledger)")
	why := fl.String("why", "", "why: the review or case (required; sealed in the ledger)")
	cpuprofile := fl.String("cpuprofile", "", "write a CPU profile of the command to this `file`")
	var stores backend.Flags
	stores.Register(fl)
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: review -dir DIR -who WHO -why REASON scan|alerts|dispose|rescan [flags]")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return exitOK
	} else if err != nil {
		return exitRefused
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "review: "+format+"\n", a...)
		return exitRefused
	}
	switch {
	case *dir == "":
		return usage("-dir is required")
	case *who == "" || *why == "":
		return usage("-who and -why are required: reviewing reads content, and the reading is sealed")
	case fl.NArg() == 0:
		return usage("a command is required: scan, alerts, dispose or rescan")
	}
	spec, err := stores.Parse(*dir)
	if err != nil {
		return usage("%v", err)
	}
	cmd, rest := fl.Arg(0), fl.Args()[1:]
	c := &command{dir: *dir, spec: spec, who: *who, why: *why, stdout: stdout, stderr: stderr}
	var do func(context.Context, []string) int
	switch cmd {
	case "scan":
		do = c.scan
	case "alerts":
		do = c.alerts
	case "dispose":
		do = c.dispose
	case "rescan":
		do = c.rescan
	default:
		return usage("unknown command %q: scan, alerts, dispose or rescan", cmd)
	}
	if err := layout.Exists(*dir); err != nil {
		return usage("%v", err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return usage("%v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usage("%v", err)
		}
		defer pprof.StopCPUProfile()
	}
	return do(ctx, rest)
}

type command struct {
	dir, who, why  string
	spec           backend.Spec
	stdout, stderr io.Writer
	l              *ledgerdir.Ledger
}

func (c *command) fail(code int, format string, a ...any) int {
	fmt.Fprintf(c.stderr, "review: "+format+"\n", a...)
	return code
}

// open opens the ledger directory for the command; the caller closes it. It reports a failure
// itself and returns its exit status (ledgerdir.ExitCode), or exitOK.
func (c *command) open(ctx context.Context) int {
	l, err := ledgerdir.OpenOn(ctx, c.dir, "", c.spec, ledger.Options{})
	if err != nil {
		return c.fail(ledgerdir.ExitCode(err), "%v", err)
	}
	c.l = l
	return exitOK
}

func (c *command) flags(name string) *flag.FlagSet {
	fl := flag.NewFlagSet("review "+name, flag.ContinueOnError)
	fl.SetOutput(c.stderr)
	return fl
}

func (c *command) scan(ctx context.Context, args []string) int {
	fl := c.flags("scan")
	lexPath := fl.String("lexicon", "", "lexicon file (default: the embedded lexicon)")
	if err := fl.Parse(args); err != nil {
		return exitRefused
	}
	s, err := scan.LoadFile(*lexPath)
	if err != nil {
		return c.fail(exitRefused, "lexicon: %v", err)
	}
	lv, err := scan.NewLive(s)
	if err != nil {
		return c.fail(exitRefused, "lexicon: %v", err)
	}
	if code := c.open(ctx); code != exitOK {
		return code
	}
	defer c.l.Close()
	m, err := surveil.New(c.l.Ledger, surveil.Options{Lexicon: lv, CursorFile: filepath.Join(c.dir, layout.CursorFile)})
	if err != nil {
		return c.fail(exitFailed, "%v", err)
	}
	total, err := m.CatchUp(ctx)
	if err != nil {
		return c.fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(c.stdout, "scanned %d messages with %s (%s): %d flagged, %d annotations sealed\n",
		total.Messages, s.Name(), s.Version(), total.Flagged, total.Sealed)
	return exitOK
}

// alertLine is one line of `review alerts`.
type alertLine struct {
	Index          uint64        `json:"index"`           // the alert's annotation
	About          *uint64       `json:"about,omitempty"` // the message it is about, if any
	MsgID          string        `json:"msg_id"`
	Conversation   string        `json:"conversation"`
	Sender         string        `json:"sender"`
	Rule           string        `json:"rule"`
	Category       string        `json:"category"`
	Severity       scan.Severity `json:"severity"`
	Term           string        `json:"term"`
	Field          string        `json:"field,omitempty"`
	Start          int           `json:"start"`
	End            int           `json:"end"`
	LexiconVersion string        `json:"lexicon_version,omitempty"`
	Source         string        `json:"source,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	Open           bool          `json:"open"`
}

func (c *command) alerts(ctx context.Context, args []string) int {
	fl := c.flags("alerts")
	all := fl.Bool("all", false, "every alert, not only the open ones")
	if err := fl.Parse(args); err != nil {
		return exitRefused
	}
	if code := c.open(ctx); code != exitOK {
		return code
	}
	defer c.l.Close()
	q, err := surveil.Alerts(ctx, c.l.Ledger, c.l.Access(c.who, c.why).For("review"))
	if err != nil {
		return c.fail(exitFailed, "%v", err)
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	for _, a := range q {
		if !*all && !a.Open() {
			continue
		}
		for _, line := range lines(a) {
			if err := enc.Encode(line); err != nil {
				return c.fail(exitFailed, "%v", err)
			}
		}
	}
	return exitOK
}

func lines(a *surveil.Alert) []alertLine {
	var out []alertLine
	if f := a.Findings; f != nil {
		for _, x := range f.Findings {
			out = append(out, alertLine{Index: a.Index, About: &f.Message.Index, MsgID: f.Message.ID, Conversation: f.Message.Conversation,
				Sender: f.Message.Sender, Rule: x.Rule, Category: x.Category, Severity: x.Severity, Term: x.Term, Field: x.Field,
				Start: x.Start, End: x.End, LexiconVersion: f.Lexicon.Version, Open: a.Open()})
		}
	}
	if b := a.Behaviour; b != nil {
		line := alertLine{Index: a.Index, MsgID: b.Finding.MsgID, Conversation: b.Finding.Conversation, Sender: b.Finding.Sender,
			Rule: b.Finding.Rule, Category: string(b.Finding.Kind), Severity: b.Finding.Severity, Source: b.Finding.Source,
			Reason: b.Finding.Reason, Open: a.Open()}
		if i, ok := a.MessageIndex(); ok {
			line.About = &i
		}
		out = append(out, line)
	}
	return out
}

func (c *command) dispose(ctx context.Context, args []string) int {
	fl := c.flags("dispose")
	at := fl.Int64("alert", -1, "the ledger `index` of the alert (from alerts)")
	d := fl.String("disposition", "", "dismissed, escalated, note or assigned")
	note := fl.String("note", "", "a note (required for note and assigned: whom)")
	if err := fl.Parse(args); err != nil {
		return exitRefused
	}
	if *at < 0 || *d == "" {
		return c.fail(exitRefused, "dispose needs -alert N and -disposition")
	}
	if code := c.open(ctx); code != exitOK {
		return code
	}
	defer c.l.Close()
	i, err := surveil.Dispose(ctx, c.l.Ledger, c.who, c.why, uint64(*at), surveil.Disposition(*d), *note)
	if err != nil {
		return c.fail(exitFailed, "%v", err) // the ledger holds no such alert, or the seal failed
	}
	fmt.Fprintf(c.stdout, "disposition %s of alert %d sealed at %d\n", *d, *at, i)
	return exitOK
}

func (c *command) rescan(ctx context.Context, args []string) int {
	fl := c.flags("rescan")
	lexPath := fl.String("lexicon", "", "lexicon file (required)")
	from := fl.String("from", "", "messages sent at or after this RFC 3339 `time`")
	to := fl.String("to", "", "messages sent before this RFC 3339 `time`")
	var convs multi
	fl.Var(&convs, "conversation", "only this conversation `id` (repeatable)")
	if err := fl.Parse(args); err != nil {
		return exitRefused
	}
	if *lexPath == "" {
		return c.fail(exitRefused, "rescan needs -lexicon FILE")
	}
	opts := surveil.RescanOptions{Conversations: convs}
	for _, t := range []struct {
		s  string
		at *time.Time
	}{{*from, &opts.From}, {*to, &opts.To}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.s)
		if err != nil {
			return c.fail(exitRefused, "%q: want an RFC 3339 time such as 2026-07-01T00:00:00Z", t.s)
		}
		*t.at = v
	}
	s, err := scan.LoadFile(*lexPath)
	if err != nil {
		return c.fail(exitRefused, "lexicon: %v", err)
	}
	if code := c.open(ctx); code != exitOK {
		return code
	}
	defer c.l.Close()
	rep, err := surveil.Rescan(ctx, c.l.Ledger, c.l.Access(c.who, c.why), s, opts)
	if err != nil {
		return c.fail(exitFailed, "%v", err)
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return c.fail(exitFailed, "%v", err)
	}
	return exitOK
}
