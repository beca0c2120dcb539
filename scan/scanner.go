package scan

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Finding is one rule hit in one message.
type Finding struct {
	Rule     string   `json:"rule"`     // the rule's id
	Category string   `json:"category"` // the rule's category
	Severity Severity `json:"severity"` // the rule's severity
	// Term is the lexicon term that matched, as written in the lexicon; for a near rule, the two
	// terms joined by " … ".
	Term string `json:"term"`
	// Start and End are byte offsets into the original text: text[Start:End] is the matched
	// passage, from the first to the last character that matched (characters removed by
	// normalization inside it included).
	Start int `json:"start"`
	End   int `json:"end"` // see Start
	// Lexicon is the version of the lexicon that produced the finding (see Lexicon.Version).
	Lexicon string `json:"lexicon"`
}

// Roles of a term within its rule.
const (
	roleTerm = iota
	roleExclude
	roleNearA
	roleNearB
)

// entry is one term of one rule, compiled.
type entry struct {
	rule  int32
	role  uint8
	order int32  // position of the term in its (sorted) list: earlier wins a tie
	term  string // as written
	// exact terms (in a normalizing automaton): leading and trailing bytes the key lacks
	lead, trail int
	caseRunes   []rune // case-sensitive rules: the term folded without case folding
	check       uint8  // what confirm checks beyond word boundaries: checkExact, checkCase or 0
	wordStart   bool   // word boundary needed before the match
	wordEnd     bool   // word boundary needed after the match
}

// What confirm checks of a match in a normalizing automaton, beyond word boundaries (entry.check):
// it is set from the rule when the lexicon is compiled, so that confirming a hit does not read
// the rule.
const (
	checkExact = 1 + iota // an exact rule: the original text is the term
	checkCase             // a case-sensitive rule: the text folded without case folding is the term's
)

// compiledRule is a rule as a Scanner holds it: its term lists sorted, their order the one that
// settles ties between terms.
type compiledRule struct {
	Rule
}

// Scanner is a compiled lexicon. It is immutable and safe for concurrent use by any number of
// goroutines; to change lexicons, compile a new Scanner and swap it in (see Live).
type Scanner struct {
	version string
	name    string
	rules   []compiledRule // sorted by id
	auto    *automaton
	keyLen  []int32 // per key: bytes (raw) or runes (normalizing)
	keyEnts []int32 // entries of key k: ents[keyEnts[k]:keyEnts[k+1]]
	ents    []entry
	scratch sync.Pool

	normLanesMin int // normLanesMin; tests lower it to cover both batch paths
}

// Compile validates lex and compiles it into a Scanner.
//
// If every rule is exact the automaton runs on the raw bytes. Otherwise it runs on normalized
// symbols and the hits of exact and case-sensitive rules are confirmed against the original
// text, so one pass serves every rule.
func Compile(lex *Lexicon) (*Scanner, error) {
	return compile(lex, denseBudget)
}

func compile(lex *Lexicon, budget int) (*Scanner, error) {
	version, err := lex.Version()
	if err != nil {
		return nil, err
	}
	s := &Scanner{version: version, name: lex.Name, normLanesMin: normLanesMin, rules: compileRules(lex.Rules)}
	norm := false
	for _, r := range s.rules {
		if !r.Exact {
			norm = true
		}
	}
	terms := s.termKeys(norm)
	var symbols map[rune][]byte
	if norm {
		if symbols, err = encodeSymbols(terms); err != nil {
			return nil, &LexiconError{Lexicon: lex.Name, Field: "rules", Err: err}
		}
	}
	s.auto = buildAutomaton(s.groupKeys(terms, norm), norm, budget)
	if norm {
		s.auto.runes = buildRuneTable(s.auto, symbols)
	}
	return s, nil
}

// compileRules returns the rules compiled, sorted by id.
func compileRules(rules []Rule) []compiledRule {
	out := make([]compiledRule, 0, len(rules))
	for _, r := range rules {
		cr := compiledRule{Rule: r}
		cr.Terms = sortedCopy(r.Terms)
		cr.Exclude = sortedCopy(r.Exclude)
		if r.Near != nil {
			cr.Near = &Near{A: sortedCopy(r.Near.A), B: sortedCopy(r.Near.B), Within: r.Near.Within}
		}
		out = append(out, cr)
	}
	slices.SortFunc(out, func(a, b compiledRule) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// termKey is one term of one rule on its way into the automaton: its entry and the key the
// automaton matches, the term's bytes (raw mode) or, until encodeSymbols encodes them, its
// folded runes (normalizing).
type termKey struct {
	key   string
	runes []rune
	e     entry
}

// termKeys compiles every term, exclusion and near term of every rule into an entry, with
// what confirm needs to check a match against the rule's options, and its key.
func (s *Scanner) termKeys(norm bool) []termKey {
	var all []termKey
	for ri, r := range s.rules {
		add := func(role uint8, terms []string) {
			for i, t := range terms {
				e := entry{rule: int32(ri), role: role, order: int32(i), term: t}
				var k termKey
				if norm {
					for _, c := range t {
						if f := foldRune(c); f != foldSkip {
							k.runes = append(k.runes, f)
						}
					}
					if r.Exact {
						e.check = checkExact
						e.lead, e.trail = edgeSkips(t)
					} else if r.CaseSensitive {
						e.check = checkCase
						for _, c := range t {
							if f := foldRuneCase(c); f != foldSkip {
								e.caseRunes = append(e.caseRunes, f)
							}
						}
					}
				} else {
					k.key = t
				}
				if r.WordBoundary {
					first, last := edgeRunes(t, r.Exact)
					e.wordStart, e.wordEnd = isWordRune(first), isWordRune(last)
				}
				k.e = e
				all = append(all, k)
			}
		}
		add(roleTerm, r.Terms)
		add(roleExclude, r.Exclude)
		if r.Near != nil {
			add(roleNearA, r.Near.A)
			add(roleNearB, r.Near.B)
		}
	}
	return all
}

// encodeSymbols gives each non-ASCII rune of the keys a symbol code, the shortest codes to
// the most frequent runes, and encodes every key from its runes. It returns the codes (ASCII
// runes included, as themselves), or an error wrapping ErrTooLarge when the keys have more
// distinct runes than there are codes.
func encodeSymbols(all []termKey) (map[rune][]byte, error) {
	freq := map[rune]int{}
	for _, k := range all {
		for _, r := range k.runes {
			if r >= utf8.RuneSelf {
				freq[r]++
			}
		}
	}
	if len(freq) > maxSymbols {
		return nil, fmt.Errorf("%w: %d distinct characters, limit %d", ErrTooLarge, len(freq), maxSymbols)
	}
	order := make([]rune, 0, len(freq))
	for r := range freq {
		order = append(order, r)
	}
	slices.SortFunc(order, func(a, b rune) int {
		return cmp.Or(cmp.Compare(freq[b], freq[a]), cmp.Compare(a, b))
	})
	symbols := make(map[rune][]byte, len(order)+36)
	for id, r := range order {
		symbols[r] = appendSymbolCode(nil, id)
	}
	buf := make([]byte, 0, 64)
	for i := range all {
		buf = buf[:0]
		for _, r := range all[i].runes {
			if r < utf8.RuneSelf {
				buf = append(buf, byte(r))
				symbols[r] = []byte{byte(r)}
			} else {
				buf = append(buf, symbols[r]...)
			}
		}
		all[i].key = string(buf)
	}
	return symbols, nil
}

// groupKeys gathers the entries of terms that share a key (the same term in several rules or
// lists, or terms that normalize alike) and returns the distinct keys, in first-seen order,
// filling s.keyLen, s.keyEnts and s.ents (entries in rule and term order).
func (s *Scanner) groupKeys(all []termKey, norm bool) [][]byte {
	index := map[string]int{}
	var keys [][]byte
	var groups [][]entry
	for _, k := range all {
		i, ok := index[k.key]
		if !ok {
			i = len(keys)
			index[k.key] = i
			keys = append(keys, []byte(k.key))
			n := len(k.key)
			if norm {
				n = len(k.runes)
			}
			s.keyLen = append(s.keyLen, int32(n))
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], k.e)
	}
	s.keyEnts = make([]int32, 0, len(groups)+1)
	for _, g := range groups {
		s.keyEnts = append(s.keyEnts, int32(len(s.ents)))
		s.ents = append(s.ents, g...)
	}
	s.keyEnts = append(s.keyEnts, int32(len(s.ents)))
	return keys
}

// edgeSkips returns the byte lengths of the runes at the start and end of t that normalization
// removes.
func edgeSkips(t string) (lead, trail int) {
	for i, r := range t {
		if foldRune(r) != foldSkip {
			lead = i
			break
		}
	}
	for i := len(t); i > 0; {
		r, n := utf8.DecodeLastRuneInString(t[:i])
		if foldRune(r) != foldSkip {
			trail = len(t) - i
			break
		}
		i -= n
	}
	return lead, trail
}

// edgeRunes returns the first and last runes of t that a match starts and ends on.
func edgeRunes(t string, exact bool) (first, last rune) {
	first, last = -1, -1
	for _, r := range t {
		if exact || foldRune(r) != foldSkip {
			if first < 0 {
				first = r
			}
			last = r
		}
	}
	return first, last
}

// Version returns the version of the compiled lexicon (see Lexicon.Version).
func (s *Scanner) Version() string { return s.version }

// Name returns the name of the compiled lexicon.
func (s *Scanner) Name() string { return s.name }

// Scan returns the findings in text, ordered by start, end and rule id. It returns nil when
// nothing matches.
func (s *Scanner) Scan(text []byte) []Finding {
	return s.AppendScan(nil, text)
}

// ScanString is Scan for a string.
func (s *Scanner) ScanString(text string) []Finding {
	return s.AppendScan(nil, []byte(text))
}

// AppendScan appends the findings in text to dst and returns the extended slice. With a reused
// dst, a scan that finds nothing does not allocate.
func (s *Scanner) AppendScan(dst []Finding, text []byte) []Finding {
	// Most messages match nothing: scan into a buffer on the stack and touch the pool of
	// working memory only when there is something to work out.
	var buf [16]hit
	var hits []hit
	if s.auto.norm {
		hits = s.auto.scanNorm(text, buf[:0])
	} else {
		hits = s.auto.scanRaw(text, buf[:0])
	}
	if len(hits) == 0 {
		return dst
	}
	sc, _ := s.scratch.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	dst = s.finish(sc, text, hits, dst)
	s.scratch.Put(sc)
	return dst
}

// scratch is per-scan working memory, pooled in the Scanner.
type scratch struct {
	hits   []hit
	lanes8 [8][]hit
	batch  normBatch
	found  []Finding
	occs   []occ
	near   []occ
	reach  []int // near: furthest end among the B occurrences up to each one

	// steps counts the work of resolving occurrences into findings that is not bounded by the
	// lexicon: exclusion checks and near candidates. Tests check that it grows linearly with
	// the text, however the text is made.
	steps int
}

// occ is a confirmed occurrence of an entry.
type occ struct {
	ent        int32
	group      int32 // the entry's rule and role, rule<<2 | role: the first sort key
	start, end int
}

// finish turns raw hits into findings: expand each state's keys, locate starts, confirm
// exact, case-sensitive and word-boundary rules, apply exclusions, pair near terms.
func (s *Scanner) finish(sc *scratch, text []byte, hits []hit, dst []Finding) []Finding {
	a := s.auto
	occs := sc.occs[:0]
	for _, h := range hits {
		for st := int32(h.state); st >= 0; st = a.dict[st] {
			k := a.keyAt[st]
			if k < 0 {
				continue
			}
			start := h.end - int(s.keyLen[k])
			if a.norm {
				start = startOf(text, h.end, int(s.keyLen[k]))
			}
			for ei := s.keyEnts[k]; ei < s.keyEnts[k+1]; ei++ {
				e := &s.ents[ei]
				if st, en, ok := s.confirm(e, text, start, h.end); ok {
					occs = append(occs, occ{ei, e.rule<<2 | int32(e.role), st, en})
				}
			}
		}
	}
	s.sortOccs(occs)
	n0 := len(dst)
	for i := 0; i < len(occs); {
		j := i
		for j < len(occs) && occs[j].group>>2 == occs[i].group>>2 {
			j++
		}
		dst = s.ruleFindings(sc, text, occs[i:j], dst)
		i = j
	}
	sc.occs = occs
	found := dst[n0:]
	slices.SortFunc(found, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(x.Start, y.Start), cmp.Compare(x.End, y.End), strings.Compare(x.Rule, y.Rule))
	})
	return dst
}

// sortOccs sorts occurrences by rule, then role, then position, then term order: a total order
// (an entry occurs once at a span), so any sort gives the same result. A message has few, and
// an insertion sort on them costs less than setting up a general one.
func (s *Scanner) sortOccs(occs []occ) {
	less := func(x, y *occ) bool {
		if x.group != y.group {
			return x.group < y.group
		}
		if x.start != y.start {
			return x.start < y.start
		}
		if x.end != y.end {
			return x.end < y.end
		}
		return s.ents[x.ent].order < s.ents[y.ent].order
	}
	if len(occs) > 24 {
		slices.SortFunc(occs, func(x, y occ) int {
			if less(&x, &y) {
				return -1
			}
			if less(&y, &x) {
				return 1
			}
			return 0
		})
		return
	}
	for i := 1; i < len(occs); i++ {
		for j := i; j > 0 && less(&occs[j], &occs[j-1]); j-- {
			occs[j], occs[j-1] = occs[j-1], occs[j]
		}
	}
}

// ruleFindings handles the occurrences of one rule, sorted by role, position and term order:
// the findings of its terms, then of its near pairs, one per span.
func (s *Scanner) ruleFindings(sc *scratch, text []byte, occs []occ, dst []Finding) []Finding {
	r := &s.rules[occs[0].group>>2]
	var roles [4][]occ // by role
	for i := 0; i < len(occs); {
		role := occs[i].group & 3
		j := i
		for j < len(occs) && occs[j].group&3 == role {
			j++
		}
		roles[role] = occs[i:j]
		i = j
	}
	excl := roles[roleExclude]
	nRule := len(dst)
	dst = s.termFindings(sc, r, roles[roleTerm], excl, dst)
	nTerms := len(dst)
	dst = s.nearFindings(sc, text, r, roles[roleNearA], roles[roleNearB], excl, dst)
	if len(dst) == nTerms {
		return dst
	}
	// One finding per span: a term's finding first, then the first near pair.
	mine := dst[nRule:]
	slices.SortStableFunc(mine, func(x, y Finding) int { return cmp.Or(cmp.Compare(x.Start, y.Start), cmp.Compare(x.End, y.End)) })
	mine = slices.CompactFunc(mine, func(x, y Finding) bool { return x.Start == y.Start && x.End == y.End })
	return dst[:nRule+len(mine)]
}

// finding is a finding of rule r.
func (s *Scanner) finding(r *compiledRule, term string, start, end int) Finding {
	return Finding{Rule: r.ID, Category: r.Category, Severity: r.Severity, Term: term, Start: start, End: end, Lexicon: s.version}
}

// termFindings appends a finding for each span where a term of r occurs (the first term in
// order when several do) and no exclusion covers it. terms and excl are sorted by position.
func (s *Scanner) termFindings(sc *scratch, r *compiledRule, terms, excl []occ, dst []Finding) []Finding {
	cov := spanCover{spans: excl, steps: &sc.steps}
	for i, o := range terms {
		if i > 0 && o.start == terms[i-1].start && o.end == terms[i-1].end {
			continue // same span, an earlier term already reported it
		}
		if !cov.covers(o) {
			dst = append(dst, s.finding(r, s.ents[o.ent].term, o.start, o.end))
		}
	}
	return dst
}

// nearFindings appends a finding for each occurrence of a near term of A that has a term of B
// within r.Near.Within characters, neither covered by an exclusion, spanning both. nearA,
// nearB and excl are sorted by position.
func (s *Scanner) nearFindings(sc *scratch, text []byte, r *compiledRule, nearA, nearB, excl []occ, dst []Finding) []Finding {
	if len(nearA) == 0 || len(nearB) == 0 {
		return dst
	}
	bs := sc.near[:0]
	cov := spanCover{spans: excl, steps: &sc.steps}
	for i, o := range nearB {
		if (i == 0 || o.start != nearB[i-1].start || o.end != nearB[i-1].end) && !cov.covers(o) {
			bs = append(bs, o)
		}
	}
	sc.near = bs
	if len(bs) == 0 {
		return dst
	}
	// Each A occurrence pairs with its nearest B occurrence; of equally near ones, the first
	// in (start, end) order. bs is in that order and reach[k] is the furthest end among
	// bs[:k+1], so binary searches find the few candidates, however long the spans are (a
	// term's span includes the characters normalization skips, so one can cover the whole
	// message): the first B that reaches A's start, if it starts before A ends, touches or
	// overlaps A and is 0 apart; otherwise every B that starts before A ends also ends before
	// A starts, and the nearest are the first of those ending last and the first B after A.
	reach := slices.Grow(sc.reach[:0], len(bs))
	furthest := -1
	for _, b := range bs {
		furthest = max(furthest, b.end)
		reach = append(reach, furthest)
	}
	sc.reach = reach
	within := r.Near.Within
	cov = spanCover{spans: excl, steps: &sc.steps}
	for i, o := range nearA {
		if i > 0 && o.start == nearA[i-1].start && o.end == nearA[i-1].end || cov.covers(o) {
			continue
		}
		sc.steps++
		// bs[:p] start before o ends (or where it ends); bs[p:] after.
		p := firstStarting(bs, o.end+1)
		best, bestGap := -1, 0
		if k := firstReaching(reach, o.start); k < p {
			best = k
		} else {
			if p > 0 {
				k := firstReaching(reach[:p], reach[p-1])
				if g := runeGap(text, bs[k].end, o.start, within); g <= within {
					best, bestGap = k, g
				}
			}
			if p < len(bs) {
				// a tie goes to the B before A, which comes first
				if g := runeGap(text, o.end, bs[p].start, within); g <= within && (best < 0 || g < bestGap) {
					best = p
				}
			}
		}
		if best < 0 {
			continue
		}
		b := bs[best]
		dst = append(dst, s.finding(r, s.ents[o.ent].term+" … "+s.ents[b.ent].term, min(o.start, b.start), max(o.end, b.end)))
	}
	return dst
}

// firstStarting returns the index of the first of occs (sorted by start) that starts at or
// after t, len(occs) if none does. (A binary search written out: a near rule runs several for
// each occurrence, and the generic one's comparison call cost more than the search.)
func firstStarting(occs []occ, t int) int {
	lo, hi := 0, len(occs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if occs[m].start < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// firstReaching returns the index of the first of reach (sorted) that is at least t,
// len(reach) if none is.
func firstReaching(reach []int, t int) int {
	i, _ := slices.BinarySearch(reach, t)
	return i
}

// spanCover tells, for occurrences taken in order of start, whether one of spans (sorted by
// start) covers them: starts at or before the occurrence and ends at or after it. Only spans
// starting at or before the occurrence can, and one of them does exactly when the one that
// reaches furthest does, so a sweep that keeps that furthest end answers each occurrence in
// constant time: n occurrences against m exclusions cost n+m steps instead of n×m.
type spanCover struct {
	spans    []occ
	next     int // spans[:next] start at or before the last occurrence asked about
	furthest int // the furthest end of spans[:next]
	steps    *int
}

// covers reports whether a span covers o. Successive calls must not decrease o.start.
func (c *spanCover) covers(o occ) bool {
	for c.next < len(c.spans) && c.spans[c.next].start <= o.start {
		c.furthest = max(c.furthest, c.spans[c.next].end)
		c.next++
		*c.steps++
	}
	*c.steps++
	return c.next > 0 && o.end <= c.furthest
}

// runeGap returns the number of characters in text[from:to], counted as utf8.RuneCount counts
// them, or limit+1 when there are more than limit: a near rule only asks whether two terms are
// within its limit and which pair is nearer, so a gap is counted no further than the limit,
// whatever the length of the message (it was once an index of the whole message's runes).
func runeGap(text []byte, from, to, limit int) int {
	if to-from <= limit { // no more characters than bytes
		return utf8.RuneCount(text[from:to])
	}
	if to-from >= 4*(limit+1) || asciiOnly(text[from:from+limit+1]) { // at least a character per 4 bytes
		return limit + 1
	}
	n := 0
	for i := from; i < to && n <= limit; n++ {
		if text[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRune(text[i:to])
		i += size
	}
	return n
}

// asciiOnly reports whether b has no byte beyond ASCII, looking at eight bytes at a time.
func asciiOnly(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
	}
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// startOf walks back from end over n characters that normalization keeps and returns where
// the first of them starts.
func startOf(text []byte, end, n int) int {
	pos := end
	for n > 0 && pos > 0 {
		if b := text[pos-1]; b < utf8.RuneSelf { // ASCII: no decoding
			pos--
			if asciiFold[b] != foldSkip {
				n--
			}
			continue
		}
		r, size := utf8.DecodeLastRune(text[:pos])
		pos -= size
		if r < utf8.RuneSelf {
			if asciiFold[r] != foldSkip {
				n--
			}
		} else if foldRune(r) != foldSkip {
			n--
		}
	}
	return pos
}

// confirm checks a raw match of e's key at text[start:end] against the rule's options and
// returns the span to report.
func (s *Scanner) confirm(e *entry, text []byte, start, end int) (int, int, bool) {
	switch e.check {
	case checkExact:
		t := e.term
		core := t[e.lead : len(t)-e.trail]
		if start < e.lead || end+e.trail > len(text) || string(text[start:end]) != core ||
			string(text[start-e.lead:start]) != t[:e.lead] || string(text[end:end+e.trail]) != t[len(t)-e.trail:] {
			return 0, 0, false
		}
		start, end = start-e.lead, end+e.trail
	case checkCase:
		k := 0
		for i := start; i < end; {
			c, n := utf8.DecodeRune(text[i:])
			i += n
			f := foldRuneCase(c)
			if f == foldSkip {
				continue
			}
			if k >= len(e.caseRunes) || e.caseRunes[k] != f {
				return 0, 0, false
			}
			k++
		}
		if k != len(e.caseRunes) {
			return 0, 0, false
		}
	}
	if e.wordStart && start > 0 {
		if c, _ := utf8.DecodeLastRune(text[:start]); isWordRune(c) {
			return 0, 0, false
		}
	}
	if e.wordEnd && end < len(text) {
		if c, _ := utf8.DecodeRune(text[end:]); isWordRune(c) {
			return 0, 0, false
		}
	}
	return start, end, true
}

// normLanesMin is the dense table size (in entries: 8 MiB) from which normalizing batches use
// lanes; BenchmarkScan showed them losing at 1,000 terms (2.6 MiB) and winning at 10,000.
const normLanesMin = 1 << 21

// ScanBatch scans every message of msgs and calls emit for each finding with the index of its
// message. Findings of one message come together, in Scan's order; messages may be reported in
// any order. It gives the same findings as Scan on each message, faster on short messages,
// because several messages are in flight at once and the loads of one hide the latency of the
// others.
func (s *Scanner) ScanBatch(msgs [][]byte, emit func(msg int, f Finding)) {
	sc, _ := s.scratch.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	defer s.scratch.Put(sc)
	f := func(msg int, hits []hit) {
		if len(hits) == 0 {
			return
		}
		sc.found = s.finish(sc, msgs[msg], hits, sc.found[:0])
		for _, f := range sc.found {
			emit(msg, f)
		}
	}
	switch {
	case s.auto.norm && len(s.auto.trans) < s.normLanesMin:
		// A small normalizing automaton stays in cache and the symbol loop is bound by its
		// own work, not by loads; interleaving only adds branches there.
		var buf [16]hit
		for i, m := range msgs {
			if hits := s.auto.scanNorm(m, buf[:0]); len(hits) > 0 {
				f(i, hits)
			}
		}
	case s.auto.norm:
		s.auto.scanNormBatch(msgs, &sc.batch, f)
	default:
		s.auto.scanRawLanes(msgs, &sc.lanes8, f)
	}
}
