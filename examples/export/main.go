// Command export selects entries of a ledger directory (as the quickstart or the archiver write
// them) and writes them as an export bundle that anyone can check with the ledger's verifier key.
//
//	go run ./examples/export -dir DIR -who X -why Y [-q QUERY] [-conversation ID]... [-sender ID]...
//	    [-from RFC3339] [-to RFC3339] [-kind K]... [-format rsmf,eml,jsonl] -out PATH
//	go run ./examples/export -api URL -token-file F -why Y [the same selection] -out PATH
//
// With -api the export is asked of the process that owns the ledger (an archiver with
// -api-addr, package ledger/api) with the bearer token in F: the server selects through its
// search index, seals the access under the token's name, and sends the bundle, which is
// unpacked into PATH.
//
// An entry is selected when it matches every filter given; a filter given more than once
// matches any of its values. -conversation matches a message's or record's conversation id,
// -sender a message's sender id, -from and -to the half-open range [from, to) of a message's
// sent time (a record's time), -kind a message kind (text, picture, ...), a record kind or the
// entry's leaf kind (message, media, ...). At least one filter is required: nothing is exported
// by accident. Shredded entries have no content left to match, so only a -kind filter on their
// leaf kind (with no other filter) selects them.
//
// Selecting reads every entry through an audited accessor (sealed in the ledger as an access
// "for export-selection"); writing the bundle reads the selected entries again as an access
// "for export". The bundle holds the selected content in plain text on purpose: -out may not lie
// inside the ledger directory.
//
// -format lists the renderings to add, comma-separated: rsmf (RSMF 2.0 files for review
// platforms, under rsmf/), eml (one RFC 5322 message per conversation and day, under eml/),
// jsonl (messages.jsonl with its evidence, which every bundle holds anyway). The default is
// jsonl alone.
//
// -q selects messages through the search index (ledger/search, kept in DIR/index and brought up
// to date first): a full-text query such as `微信 OR "call me" sender:u123`, with the other
// filters applied to messages (-kind then names message kinds only). The query is sealed as an
// access entry, encrypted, before anything is selected.
//
// -store and -blobs name where the ledger's log and attachments are when not in DIR/store
// (postgres://..., s3://...; internal/backend): the ones the ledger was made with.
//
// Exit status (README, "Exit status"): 0 done; 1 the export was attempted and failed (nothing
// matched, a read of the ledger or the index, writing the bundle, the server of -api or its
// answer that nothing matched); 2 the invocation was refused before anything was exported: bad
// or missing flags (a malformed time or query, an unknown format, an -out that is not empty or
// lies inside the ledger directory), a bad -store or -blobs, a directory that holds no ledger,
// keeps it elsewhere (backend.ErrMismatch), is open in another process or lacks its keys (a
// wrong passphrase), and with -api a token, role or request the server refuses (HTTP 400, 401,
// 403).
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
	"slices"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
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
	exitFailed  = ledgerdir.ExitFailed
	exitRefused = ledgerdir.ExitRefused
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// multi is a flag that may be given more than once.
type multi []string

func (m *multi) String() string { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*m = append(*m, s)
	return nil
}

// filter is what selects entries: every non-empty field must match, any of its values.
type filter struct {
	conversations, senders, kinds []string
	from, to                      time.Time
	query                         string // -q: selected through the search index
}

func (f *filter) empty() bool {
	return len(f.conversations) == 0 && len(f.senders) == 0 && len(f.kinds) == 0 && f.from.IsZero() && f.to.IsZero()
}

// String renders the filter as the query recorded in the bundle's manifest.
func (f *filter) String() string {
	var parts []string
	add := func(name string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, name+"="+strings.Join(vs, "|"))
		}
	}
	add("conversation", f.conversations)
	add("sender", f.senders)
	if !f.from.IsZero() {
		parts = append(parts, "from="+f.from.UTC().Format(time.RFC3339Nano))
	}
	if !f.to.IsZero() {
		parts = append(parts, "to="+f.to.UTC().Format(time.RFC3339Nano))
	}
	add("kind", f.kinds)
	if f.query != "" {
		parts = append(parts, "q=("+f.query+")")
	}
	return strings.Join(parts, " AND ")
}

// match reports whether e (err is its read error, ledger.ErrShredded for a shredded entry)
// passes the filter.
func (f *filter) match(e *ledger.Entry, err error) bool {
	leafKind := e.Leaf.Kind.String()
	if err != nil || (e.Message == nil && e.Record == nil) {
		// No content to match on: only a filter on the leaf kind alone can select it.
		return len(f.conversations) == 0 && len(f.senders) == 0 && f.from.IsZero() && f.to.IsZero() &&
			slices.Contains(f.kinds, leafKind)
	}
	var conv, sender, kind string
	var at time.Time
	if m := e.Message; m != nil {
		conv, sender, kind, at = m.Conversation.ID, m.Sender.ID, m.Kind, m.SentAt
	} else {
		r := e.Record
		conv, kind, at = r.Conversation.ID, r.Kind, r.At
	}
	switch {
	case len(f.conversations) > 0 && !slices.Contains(f.conversations, conv):
		return false
	case len(f.senders) > 0 && (e.Message == nil || !slices.Contains(f.senders, sender)):
		return false
	case !f.from.IsZero() && at.Before(f.from):
		return false
	case !f.to.IsZero() && !at.Before(f.to):
		return false
	case len(f.kinds) > 0 && !slices.Contains(f.kinds, kind) && !slices.Contains(f.kinds, leafKind):
		return false
	}
	return true
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("export", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var f filter
	dir := fl.String("dir", "", "ledger directory (required)")
	who := fl.String("who", "", "who exports (required; sealed in the ledger)")
	why := fl.String("why", "", "why: the case or request (required; sealed in the ledger)")
	out := fl.String("out", "", "bundle directory to write; must not exist or be empty (required)")
	fl.Var((*multi)(&f.conversations), "conversation", "select messages of this conversation `id` (repeatable)")
	fl.Var((*multi)(&f.senders), "sender", "select messages of this sender `id` (repeatable)")
	fl.Var((*multi)(&f.kinds), "kind", "select this message, record or leaf `kind` (repeatable)")
	from := fl.String("from", "", "select messages sent at or after this RFC 3339 `time`")
	to := fl.String("to", "", "select messages sent before this RFC 3339 `time`")
	q := fl.String("q", "", "select messages with this search `query` (terms, \"phrases\", AND/OR/NOT, fields)")
	apiURL := fl.String("api", "", "ask the process that owns the ledger, at this `URL` (its ledger/api handler), instead of opening -dir")
	tokenFile := fl.String("token-file", "", "with -api: the `file` holding the bearer token")
	apiCA := fl.String("api-ca", "", "with -api over https: also trust these CA certificates (PEM `file`)")
	format := fl.String("format", "jsonl", "renderings to write, comma-separated: `rsmf,eml,jsonl` (messages.jsonl with the evidence is always written)")
	var stores backend.Flags
	stores.Register(fl)
	fl.Usage = func() {
		fmt.Fprint(stderr, "usage: export -dir DIR -who X -why Y [-q QUERY] [-conversation ID]... [-sender ID]... [-from RFC3339] [-to RFC3339] [-kind K]... [-format rsmf,eml,jsonl] -out PATH\n"+
			"Selects the entries that match every filter given (any value of a repeated one) and writes them as an export bundle.\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return exitOK
	} else if err != nil {
		return exitRefused
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "export: %s\n", msg)
		return exitRefused
	}
	switch {
	case fl.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fl.Arg(0)))
	case *apiURL != "" && *dir != "":
		return usage("give -dir (open the ledger) or -api (ask its owner), not both")
	case *apiURL != "" && (stores.Store != "" || stores.Blobs != ""):
		return usage("-store and -blobs go with -dir: with -api the ledger's owner opens it")
	case *apiURL != "" && *tokenFile == "":
		return usage("-api needs -token-file")
	case *apiURL == "" && *dir == "":
		return usage("-dir is required (or -api URL -token-file F to ask the process that owns the ledger)")
	case *out == "":
		return usage("-out is required")
	case *apiURL != "" && *why == "":
		return usage("-why is required: the export is sealed into the ledger (the server names who)")
	case *apiURL == "" && (*who == "" || *why == ""):
		return usage("-who and -why are required: the export is sealed into the ledger")
	}
	for _, t := range []struct {
		name string
		s    string
		at   *time.Time
	}{{"-from", *from, &f.from}, {"-to", *to, &f.to}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.s)
		if err != nil {
			return usage(fmt.Sprintf("%s %q: want an RFC 3339 time such as 2026-07-01T00:00:00Z", t.name, t.s))
		}
		*t.at = v
	}
	formats, err := parseFormats(*format)
	if err != nil {
		return usage(err.Error())
	}
	if !f.from.IsZero() && !f.to.IsZero() && !f.from.Before(f.to) {
		return usage(fmt.Sprintf("-from %s is not before -to %s: the range is empty", *from, *to))
	}
	f.query = *q
	if f.empty() && f.query == "" {
		return usage("give at least one of -conversation, -sender, -from, -to, -kind: export refuses to select everything")
	}
	if *apiURL != "" {
		if err := export.CheckDir(*out); err != nil {
			return usage(fmt.Sprintf("-out: %v", err))
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		r := &remote{base: *apiURL, tokenFile: *tokenFile, caFile: *apiCA}
		return r.export(ctx, &f, *why, formats, *out, stdout, stderr)
	}
	spec, err := stores.Parse(*dir)
	if err != nil {
		return usage(err.Error())
	}
	if err := layout.Exists(*dir); err != nil {
		return usage(err.Error())
	}
	if inside(*dir, *out) {
		return usage(fmt.Sprintf("-out %s is inside the ledger directory: the bundle holds plain text", *out))
	}
	if err := export.CheckDir(*out); err != nil {
		return usage(fmt.Sprintf("-out: %v", err))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l, err := ledgerdir.OpenOn(ctx, *dir, "", spec, ledger.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "export: %v\n", err)
		return ledgerdir.ExitCode(err) // 2 for a directory or store that is not this run's
	}
	code := exportBundle(ctx, l, &f, export.Request{Who: *who, Why: *why, Formats: formats}, *out, stdout, stderr)
	if err := l.Close(); err != nil {
		fmt.Fprintf(stderr, "export: closing the ledger: %v\n", err)
		if code == exitOK {
			code = exitFailed
		}
	}
	return code
}

// exportBundle selects the entries f matches and writes them to out.
// req names who, why and the formats.
func exportBundle(ctx context.Context, l *ledgerdir.Ledger, f *filter, req export.Request, out string, stdout, stderr io.Writer) int {
	who, why := req.Who, req.Why
	size := l.Size()
	var idx []uint64
	unreadable := 0
	if f.query != "" {
		return exportQuery(ctx, l, f, req, out, stdout, stderr)
	}
	selected := map[uint64]bool{} // the messages selected
	matched := 0                  // entries the filter matched (idx adds the records they take along)
	err := l.Access(who, why).For("export-selection").Scan(ctx, 0, size, func(e *ledger.Entry, err error) error {
		if err != nil && !errors.Is(err, ledger.ErrShredded) {
			return err
		}
		if errors.Is(err, ledger.ErrShredded) {
			unreadable++
		}
		if f.match(e, err) {
			idx, matched = append(idx, e.Index), matched+1
			if e.Message != nil {
				selected[e.Index] = true
			}
			return nil
		}
		// A selected message takes along its media records (they name the content of its
		// attachments, fetched after capture) and the annotations of its findings.
		if err == nil {
			if at, ok := search.TakesAlong(ctx, l.Ledger, e); ok && selected[at] {
				idx = append(idx, e.Index)
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "export: selecting entries: %v\n", err)
		return exitFailed
	}
	if len(idx) == 0 {
		fmt.Fprintf(stderr, "export: no entry of the %d matches %s (%d shredded entries have no content to match); nothing written\n", size, f, unreadable)
		return exitFailed
	}
	return write(ctx, l, f, req, idx, matched, size, out, stdout, stderr)
}

// exportQuery selects the messages the search index finds for f and writes them to out.
func exportQuery(ctx context.Context, l *ledgerdir.Ledger, f *filter, req export.Request, out string, stdout, stderr io.Writer) int {
	for _, k := range f.kinds {
		if !slices.Contains(messageKinds, k) {
			fmt.Fprintf(stderr, "export: -kind %q with -q: the index holds messages, of kinds %s\n", k, strings.Join(messageKinds, ", "))
			return exitRefused
		}
	}
	ix, err := search.Open(ctx, l.Ledger, search.Options{Dir: filepath.Join(l.Dir, layout.IndexDir)})
	if err != nil {
		fmt.Fprintf(stderr, "export: search index: %v\n", err)
		return exitFailed
	}
	defer ix.Close()
	q := search.Query{Text: f.query, Conversations: f.conversations, Senders: f.senders, Kinds: f.kinds,
		From: f.from, To: f.to, Limit: search.MaxLimit}
	acc := l.Access(req.Who, req.Why).For("export-selection")
	var idx []uint64
	var size uint64
	matched := 0
	for {
		res, err := ix.Search(ctx, acc, q)
		if errors.Is(err, search.ErrQuery) {
			fmt.Fprintf(stderr, "export: -q: %v\n", err)
			return exitRefused
		}
		if err != nil {
			fmt.Fprintf(stderr, "export: searching: %v\n", err)
			return exitFailed
		}
		idx, matched = append(idx, res.Indexes()...), matched+len(res.Hits)
		size, q.Offset = res.Size, q.Offset+len(res.Hits)
		if len(res.Hits) == 0 || q.Offset >= res.Total {
			break
		}
	}
	if len(idx) == 0 {
		fmt.Fprintf(stderr, "export: no message of the %d entries matches %s; nothing written\n", size, f)
		return exitFailed
	}
	return write(ctx, l, f, req, idx, matched, size, out, stdout, stderr)
}

// messageKinds are the kinds of messages (as opposed to records and leaves).
var messageKinds = []string{capture.KindText, capture.KindRichText, capture.KindPicture, capture.KindAudio,
	capture.KindVideo, capture.KindFile, capture.KindEvent, capture.KindUnknown}

// write writes the selected entries as a bundle and says what it wrote.
// write exports idx: the matched entries, and the records the matched messages take along
// (search.TakesAlong).
func write(ctx context.Context, l *ledgerdir.Ledger, f *filter, req export.Request, idx []uint64, matched int, size uint64, out string, stdout, stderr io.Writer) int {
	req.Indexes, req.Query, req.Signer = idx, f.String(), l.Signing.Signer
	if isTerminal(stderr) {
		req.Progress = progressBar(stderr)
	}
	sum, err := export.Write(ctx, l.Ledger, out, req)
	if err != nil {
		fmt.Fprintf(stderr, "export: %v\n", err)
		if errors.Is(err, export.ErrBadRequest) {
			return exitRefused // refused before anything was written
		}
		return exitFailed
	}
	vkey := l.Signing.VerifierKey
	fmt.Fprintf(stdout, "matched %d of %d entries (%s)", matched, size, f)
	if n := len(idx) - matched; n > 0 {
		fmt.Fprintf(stdout, ", with %d records they take along (media of their attachments, their findings)", n)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "wrote %d entries (%d opened, %d shredded) against tree size %d\n", sum.Entries, sum.Opened, sum.Shredded, sum.TreeSize)
	fmt.Fprintf(stdout, "attachments: %d written, %d not held by the ledger; formats: %s\n", sum.Attachments, sum.Unavailable, strings.Join(append([]string{export.FormatJSONL}, slices.DeleteFunc(slices.Clone(req.Formats), func(s string) bool { return s == export.FormatJSONL })...), ","))
	fmt.Fprintf(stdout, "bundle: %s\n", sum.Dir)
	fmt.Fprintf(stdout, "check it: go run ./examples/verify -bundle %s -key %s\n", sum.Dir, vkey)
	return exitOK
}

// isTerminal reports whether w is a terminal (a progress bar is drawn there, not in a log).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws export.Request.Progress on w, at most ten times a second per phase.
func progressBar(w io.Writer) func(phase string, done, total int) {
	var last time.Time
	var current string
	return func(phase string, done, total int) {
		if phase != current {
			if current != "" {
				fmt.Fprintln(w)
			}
			current, last = phase, time.Time{}
		}
		if time.Since(last) < 100*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		const width = 30
		fill := width
		if total > 0 {
			fill = width * done / total
		}
		fmt.Fprintf(w, "\r%-6s [%s%s] %d/%d", phase, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total)
		if phase == "write" && done == total {
			fmt.Fprintln(w)
		}
	}
}

// parseFormats parses -format: comma-separated names of export formats, each known.
func parseFormats(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case export.FormatRSMF, export.FormatEML, export.FormatJSONL:
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		default:
			return nil, fmt.Errorf("-format %q: unknown format %q (want rsmf, eml or jsonl, comma-separated)", s, f)
		}
	}
	return out, nil
}

// inside reports whether path is dir or lies under it.
func inside(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
