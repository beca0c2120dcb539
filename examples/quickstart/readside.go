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
)

// readSide is what surveillance and the search index made of the captured messages.
type readSide struct {
	lexicon               string
	scanned, flagged, new int
	rules                 map[string]int
	indexed               int
	query                 string
	hits                  int
	open                  int      // alerts in the review queue
	first                 []string // the first few, one line each
}

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
	rs := &readSide{lexicon: s.Name(), rules: map[string]int{}, query: sampleQuery}
	m, err := surveil.New(l.Ledger, surveil.Options{Lexicon: lv, CursorFile: filepath.Join(l.Dir, layout.CursorFile),
		OnSealed: func(_ context.Context, s *surveil.Sealed) error {
			for _, f := range s.Findings {
				rs.rules[f.Rule]++
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
	for _, a := range q {
		if !a.Open() || a.Findings == nil {
			continue
		}
		rs.open++
		if len(rs.first) < 3 {
			f := a.Findings.Findings[0]
			rs.first = append(rs.first, fmt.Sprintf("alert %d: %s (%s) on %q in the %s of message %s",
				a.Index, f.Rule, f.Severity, f.Term, f.Field, a.Findings.Message.ID))
		}
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
func (rs *readSide) ruleCounts() string {
	rules := slices.Sorted(maps.Keys(rs.rules))
	slices.SortStableFunc(rules, func(a, b string) int { return rs.rules[b] - rs.rules[a] })
	var parts []string
	for _, r := range rules {
		parts = append(parts, fmt.Sprintf("%s %d", r, rs.rules[r]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
