package surveil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/seal"
)

// RescanOptions selects what a re-scan reads.
type RescanOptions struct {
	// From and To bound the messages' sent time, [From, To); zero is unbounded.
	From, To time.Time
	// Conversations, if any, restricts it to those conversation ids.
	Conversations []string
	// Previous is the lexicon version to compare with; "" compares with the version that
	// flagged the most messages in the range before this one.
	Previous string
	// Concurrency is how many annotations are sealed at once (default 32).
	Concurrency int
}

// Report is what a re-scan found, rule by rule, against the previous lexicon version.
type Report struct {
	Lexicon  Lexicon       `json:"lexicon"`
	Previous string        `json:"previous,omitempty"`
	Scanned  int           `json:"scanned"` // messages read
	Flagged  int           `json:"flagged"` // messages with findings
	Sealed   int           `json:"sealed"`  // annotations sealed now (not sealed by an earlier run of this version)
	Rules    []*RuleReport `json:"rules"`
}

// RuleReport is one rule's line of a Report.
type RuleReport struct {
	Rule     string         `json:"rule"`
	Hits     int            `json:"hits"`
	Messages int            `json:"messages"`
	Terms    map[string]int `json:"terms"` // hits per term
	// Added and Removed count messages this rule flags now and the previous version did not,
	// and the reverse.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	// Dismissed and Reviewed count the previous alerts of this rule that reviewers dismissed and
	// disposed of at all; Precision is 1 - Dismissed/Reviewed (0 when none was reviewed).
	Dismissed int     `json:"dismissed"`
	Reviewed  int     `json:"reviewed"`
	Precision float64 `json:"precision"`
}

// Rescan runs lexicon s over the messages opts selects, seals new findings (a message already
// scanned by this version seals nothing), and reports per rule and term against the previous
// version, with the precision of that version's alerts from reviewers' dispositions. The report
// holds counts, not content, but which messages a term flags is read from content: it is
// recorded through acc (who, why, the lexicon version and the selection) before the ledger is
// read, as a query is.
func Rescan(ctx context.Context, l *ledger.Ledger, acc *ledger.Accessor, s *scan.Scanner, opts RescanOptions) (*Report, error) {
	if s == nil {
		return nil, errors.New("surveil: a re-scan needs a lexicon")
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("surveil: from %s is not before to %s", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	lex := Lexicon{Name: s.Name(), Version: s.Version()}
	rep := &Report{Lexicon: lex}
	concurrency := opts.Concurrency
	if concurrency <= 0 {
		concurrency = 32
	}
	what, err := json.Marshal(struct {
		Op      string        `json:"op"`
		Lexicon Lexicon       `json:"lexicon"`
		Options RescanOptions `json:"options"`
	}{"rescan", lex, opts})
	if err != nil {
		return nil, fmt.Errorf("surveil: %w", err)
	}
	if err := acc.For("rescan").Query(ctx, string(what), l.Size()); err != nil {
		return nil, fmt.Errorf("surveil: recording the re-scan: %w", err)
	}
	prev := &history{flagged: map[string]map[uint64]bool{}, rules: map[string]map[string]map[uint64]bool{}, dispositions: map[uint64][]Disposition{}, alerts: map[uint64]*Annotation{}}
	var work []*Sealed
	now := map[string]map[uint64]bool{} // rule -> messages flagged by this version
	size := l.Size()
	err = l.Derive("surveil").Scan(ctx, 0, size, func(e *ledger.Entry, err error) error {
		if errors.Is(err, ledger.ErrShredded) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case e.Leaf.Kind == seal.KindAnnotation:
			prev.add(e)
		case e.Leaf.Kind == seal.KindMessage && opts.selects(e):
			rep.Scanned++
			fs := ScanMessage(s, e.Message)
			if len(fs) == 0 {
				return nil
			}
			rep.Flagged++
			work = append(work, &Sealed{Message: e.Message, MessageAt: e.Index, Lexicon: lex, Findings: fs})
			rep.count(fs, e.Index, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("surveil: re-scan: %w", err)
	}
	var st Stats
	if err := sealWork(ctx, l, work, concurrency, time.Now(), &st); err != nil {
		return nil, err
	}
	rep.Sealed = st.Sealed
	rep.Previous = prev.previous(opts.Previous, lex.Version)
	rep.compare(prev, now)
	return rep, nil
}

func (o *RescanOptions) selects(e *ledger.Entry) bool {
	m := e.Message
	return (o.From.IsZero() || !m.SentAt.Before(o.From)) && (o.To.IsZero() || m.SentAt.Before(o.To)) &&
		(len(o.Conversations) == 0 || slices.Contains(o.Conversations, m.Conversation.ID))
}

func (r *Report) rule(id string) *RuleReport {
	for _, rr := range r.Rules {
		if rr.Rule == id {
			return rr
		}
	}
	rr := &RuleReport{Rule: id, Terms: map[string]int{}}
	r.Rules = append(r.Rules, rr)
	return rr
}

func (r *Report) count(fs []Finding, at uint64, now map[string]map[uint64]bool) {
	for _, f := range fs {
		rr := r.rule(f.Rule)
		rr.Hits++
		rr.Terms[f.Term]++
		if now[f.Rule] == nil {
			now[f.Rule] = map[uint64]bool{}
		}
		if !now[f.Rule][at] {
			now[f.Rule][at] = true
			rr.Messages++
		}
	}
}

// history is what earlier lexicon versions flagged and what reviewers decided.
type history struct {
	flagged      map[string]map[uint64]bool            // version -> messages
	rules        map[string]map[string]map[uint64]bool // version -> rule -> messages
	alerts       map[uint64]*Annotation                // annotation index -> findings
	dispositions map[uint64][]Disposition              // annotation index -> dispositions
}

func (h *history) add(e *ledger.Entry) {
	if e.Record == nil {
		return
	}
	if a, err := ParseAnnotation(e.Record.Body); err == nil {
		v := a.Lexicon.Version
		if h.flagged[v] == nil {
			h.flagged[v], h.rules[v] = map[uint64]bool{}, map[string]map[uint64]bool{}
		}
		h.flagged[v][a.Message.Index] = true
		for _, f := range a.Findings {
			if h.rules[v][f.Rule] == nil {
				h.rules[v][f.Rule] = map[uint64]bool{}
			}
			h.rules[v][f.Rule][a.Message.Index] = true
		}
		h.alerts[e.Index] = a
		return
	}
	var d DispositionRecord
	if json.Unmarshal(e.Record.Body, &d) == nil && d.Schema == DispositionSchema {
		h.dispositions[d.Annotation] = append(h.dispositions[d.Annotation], d.Disposition)
	}
}

// previous picks the version to compare with.
func (h *history) previous(want, current string) string {
	if want != "" {
		return want
	}
	best, n := "", 0
	for v, msgs := range h.flagged {
		if v != current && (len(msgs) > n || len(msgs) == n && v < best) {
			best, n = v, len(msgs)
		}
	}
	return best
}

// compare fills Added, Removed and precision against the previous version.
func (r *Report) compare(h *history, now map[string]map[uint64]bool) {
	before := h.rules[r.Previous]
	for rule, msgs := range before {
		rr := r.rule(rule)
		for at := range msgs {
			if !now[rule][at] {
				rr.Removed++
			}
		}
	}
	for rule, msgs := range now {
		rr := r.rule(rule)
		for at := range msgs {
			if !before[rule][at] {
				rr.Added++
			}
		}
	}
	for at, a := range h.alerts {
		if a.Lexicon.Version != r.Previous || len(h.dispositions[at]) == 0 {
			continue
		}
		seen := map[string]bool{}
		for _, f := range a.Findings {
			if seen[f.Rule] {
				continue
			}
			seen[f.Rule] = true
			rr := r.rule(f.Rule)
			rr.Reviewed++
			if slices.Contains(h.dispositions[at], Dismissed) {
				rr.Dismissed++
			}
		}
	}
	for _, rr := range r.Rules {
		if rr.Reviewed > 0 {
			rr.Precision = 1 - float64(rr.Dismissed)/float64(rr.Reviewed)
		}
	}
	slices.SortFunc(r.Rules, func(a, b *RuleReport) int {
		if a.Rule < b.Rule {
			return -1
		}
		if a.Rule > b.Rule {
			return 1
		}
		return 0
	})
}
