package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
)

// readSide is what surveillance and the search index made of the captured messages.
type readSide struct {
	lexicon               string
	scanned, flagged, new int
	rules                 map[string]int // lexicon findings by rule
	behaviour             map[string]int // behaviour findings by rule
	behaviourVersion      string
	indexed               int
	query                 string
	hits                  int
	open                  int      // alerts in the review queue
	first                 []string // the first few, one line each
}

// sampleRules are the behaviour rules the quickstart runs beside the lexicon: a Hong Kong
// equities desk's trading hours (Hong Kong holidays included) and an external party's first
// contact with a member of staff. Every behaviour rule is off unless a firm configures it
// (examples/archiver -rules FILE takes the same JSON).
const sampleRules = `{
  "version": "quickstart-1",
  "firm_corp_ids": ["` + sampleCorp + `"],
  "rules": [
    {"id": "after-hours", "severity": "medium", "off_hours": {"desks": [
       {"name": "hk-equities", "time_zone": "Asia/Hong_Kong", "open": "09:00", "close": "18:00", "calendar": "HK"}],
       "default_desk": "hk-equities"}},
    {"id": "first-contact", "severity": "low", "first_contact": {}}
  ]}`

// sampleQuery is what the quickstart searches for: two off-channel moves, in Chinese and English.
const sampleQuery = "微信 OR whatsapp"

// surveilAndSearch scans everything sealed with the default lexicon, sealing the findings as
// annotations (from the cursor in the ledger directory), then brings the search index up to
// date and runs one query, sealed as an access.
func surveilAndSearch(ctx context.Context, l *ledgerdir.Ledger) (*readSide, error) {
	s, err := scan.Default()
	if err != nil {
		return nil, err
	}
	lv, err := scan.NewLive(s)
	if err != nil {
		return nil, err
	}
	rules, err := behaviour.ParseRules([]byte(sampleRules))
	if err != nil {
		return nil, err
	}
	d, err := behaviour.New(rules, behaviour.Options{})
	if err != nil {
		return nil, err
	}
	rs := &readSide{lexicon: s.Name(), rules: map[string]int{}, behaviour: map[string]int{}, behaviourVersion: rules.Version, query: sampleQuery}
	m, err := surveil.New(l.Ledger, surveil.Options{Lexicon: lv, Behaviour: d, CursorFile: filepath.Join(l.Dir, layout.CursorFile),
		OnSealed: func(_ context.Context, s *surveil.Sealed) error {
			for _, f := range s.Findings {
				rs.rules[f.Rule]++
			}
			if s.Behaviour != nil {
				rs.behaviour[s.Behaviour.Rule]++
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	st, err := m.CatchUp(ctx)
	if err != nil {
		return nil, fmt.Errorf("surveillance: %w", err)
	}
	rs.scanned, rs.flagged, rs.new = st.Messages, st.Flagged, st.Sealed
	q, err := surveil.Alerts(ctx, l.Ledger, l.Access("quickstart", "show the alert queue").For("review"))
	if err != nil {
		return nil, fmt.Errorf("alert queue: %w", err)
	}
	var firstBehaviour string
	for _, a := range q {
		if !a.Open() {
			continue
		}
		rs.open++
		switch {
		case a.Findings != nil && len(rs.first) < 3:
			f := a.Findings.Findings[0]
			rs.first = append(rs.first, fmt.Sprintf("alert %d: %s (%s) on %q in the %s of message %s",
				a.Index, f.Rule, f.Severity, f.Term, f.Field, a.Findings.Message.ID))
		case a.Behaviour != nil && firstBehaviour == "":
			f := a.Behaviour.Finding
			firstBehaviour = fmt.Sprintf("alert %d: %s (%s), behaviour, message %s: %s", a.Index, f.Rule, f.Severity, f.MsgID, f.Reason)
		}
	}
	if firstBehaviour != "" {
		rs.first = append(rs.first, firstBehaviour)
	}
	ix, err := search.Open(ctx, l.Ledger, search.Options{Dir: filepath.Join(l.Dir, layout.IndexDir)})
	if err != nil {
		return nil, fmt.Errorf("search index: %w", err)
	}
	defer ix.Close()
	res, err := ix.Search(ctx, l.Access("quickstart", "show the search index").For("query"), search.Query{Text: sampleQuery})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	rs.indexed, rs.hits = ix.Stats().Messages, res.Total
	return rs, nil
}

// ruleCounts lists findings per rule, most first.
func ruleCounts(counts map[string]int) string {
	rules := slices.Sorted(maps.Keys(counts))
	slices.SortStableFunc(rules, func(a, b string) int { return counts[b] - counts[a] })
	var parts []string
	for _, r := range rules {
		parts = append(parts, fmt.Sprintf("%s %d", r, counts[r]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
