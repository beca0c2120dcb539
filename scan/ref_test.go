package scan

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file holds the brute-force reference the engine is checked against. It shares only the
// per-rune normalization (foldRune, foldRuneCase, isWordRune, which normalize_test.go checks on
// known inputs) with the engine; finding where terms occur is done directly, position by
// position, with no automaton.

type refPattern struct {
	rule, role, order int
	term              string
	runes             []rune // folded (case-folded unless the rule is case-sensitive)
	exact             bool
	caseSensitive     bool
	wordStart         bool
	wordEnd           bool
}

type refMatcher struct {
	lex     *Lexicon
	version string
	rules   []Rule // sorted by id, terms sorted
	full    map[rune][]*refPattern
	cased   map[rune][]*refPattern
	exact   []*refPattern
}

func newRefMatcher(lex *Lexicon) *refMatcher {
	v, err := lex.Version()
	if err != nil {
		panic(err)
	}
	m := &refMatcher{lex: lex, version: v, full: map[rune][]*refPattern{}, cased: map[rune][]*refPattern{}}
	for _, r := range lex.Rules {
		r.Terms, r.Exclude = sortedCopy(r.Terms), sortedCopy(r.Exclude)
		if r.Near != nil {
			r.Near = &Near{A: sortedCopy(r.Near.A), B: sortedCopy(r.Near.B), Within: r.Near.Within}
		}
		m.rules = append(m.rules, r)
	}
	slices.SortFunc(m.rules, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) })
	for ri, r := range m.rules {
		lists := [][]string{r.Terms, r.Exclude, nil, nil}
		if r.Near != nil {
			lists[2], lists[3] = r.Near.A, r.Near.B
		}
		for role, list := range lists {
			for order, t := range list {
				p := &refPattern{rule: ri, role: role, order: order, term: t, exact: r.Exact, caseSensitive: r.CaseSensitive && !r.Exact}
				var edge []rune
				for _, c := range t {
					f := foldRune(c)
					if p.caseSensitive {
						f = foldRuneCase(c)
					}
					if f != foldSkip {
						p.runes = append(p.runes, f)
					}
					if r.Exact || f != foldSkip {
						edge = append(edge, c)
					}
				}
				if r.WordBoundary {
					p.wordStart, p.wordEnd = isWordRune(edge[0]), isWordRune(edge[len(edge)-1])
				}
				switch {
				case p.exact:
					m.exact = append(m.exact, p)
				case p.caseSensitive:
					m.cased[p.runes[0]] = append(m.cased[p.runes[0]], p)
				default:
					m.full[p.runes[0]] = append(m.full[p.runes[0]], p)
				}
			}
		}
	}
	return m
}

type refOcc struct {
	p          *refPattern
	start, end int
}

func (m *refMatcher) findings(text []byte) []Finding {
	type kept struct {
		f, fc      rune
		start, end int
	}
	var ks []kept
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRune(text[i:])
		if f := foldRune(r); f != foldSkip {
			ks = append(ks, kept{f, foldRuneCase(r), i, i + n})
		}
		i += n
	}
	var occs []refOcc
	boundaryOK := func(p *refPattern, start, end int) bool {
		if p.wordStart && start > 0 {
			if r, _ := utf8.DecodeLastRune(text[:start]); isWordRune(r) {
				return false
			}
		}
		if p.wordEnd && end < len(text) {
			if r, _ := utf8.DecodeRune(text[end:]); isWordRune(r) {
				return false
			}
		}
		return true
	}
	for i := range ks {
		for pass, idx := range []map[rune][]*refPattern{m.full, m.cased} {
			key := ks[i].f
			if pass == 1 {
				key = ks[i].fc
			}
			for _, p := range idx[key] {
				if i+len(p.runes) > len(ks) {
					continue
				}
				ok := true
				for k, r := range p.runes {
					c := ks[i+k].f
					if pass == 1 {
						c = ks[i+k].fc
					}
					if c != r {
						ok = false
						break
					}
				}
				start, end := ks[i].start, ks[i+len(p.runes)-1].end
				if ok && boundaryOK(p, start, end) {
					occs = append(occs, refOcc{p, start, end})
				}
			}
		}
	}
	for _, p := range m.exact {
		for off := 0; ; {
			j := bytes.Index(text[off:], []byte(p.term))
			if j < 0 {
				break
			}
			start := off + j
			if boundaryOK(p, start, start+len(p.term)) {
				occs = append(occs, refOcc{p, start, start + len(p.term)})
			}
			off = start + 1
		}
	}
	var out []Finding
	for ri, r := range m.rules {
		var roles [4][]refOcc
		for _, o := range occs {
			if o.p.rule == ri {
				roles[o.p.role] = append(roles[o.p.role], o)
			}
		}
		excluded := func(o refOcc) bool {
			for _, x := range roles[roleExclude] {
				if x.start <= o.start && o.end <= x.end {
					return true
				}
			}
			return false
		}
		// first term (in sorted order) for each span, not excluded
		pick := func(list []refOcc) []refOcc {
			slices.SortFunc(list, func(x, y refOcc) int {
				return cmp.Or(cmp.Compare(x.start, y.start), cmp.Compare(x.end, y.end), cmp.Compare(x.p.order, y.p.order))
			})
			var res []refOcc
			for i, o := range list {
				if i > 0 && o.start == list[i-1].start && o.end == list[i-1].end {
					continue
				}
				if !excluded(o) {
					res = append(res, o)
				}
			}
			return res
		}
		var mine []Finding
		has := func(s, e int) bool {
			for _, f := range mine {
				if f.Start == s && f.End == e {
					return true
				}
			}
			return false
		}
		for _, o := range pick(roles[roleTerm]) {
			mine = append(mine, Finding{Rule: r.ID, Category: r.Category, Severity: r.Severity, Term: o.p.term, Start: o.start, End: o.end, Lexicon: m.version})
		}
		if r.Near != nil {
			bs := pick(roles[roleNearB])
			for _, a := range pick(roles[roleNearA]) {
				var best *refOcc
				bestGap := 0
				for k := range bs {
					b := &bs[k]
					var g int
					switch {
					case a.end <= b.start:
						g = utf8.RuneCount(text[a.end:b.start])
					case b.end <= a.start:
						g = utf8.RuneCount(text[b.end:a.start])
					}
					if g > r.Near.Within {
						continue
					}
					if best == nil || g < bestGap || g == bestGap && (b.start < best.start || b.start == best.start && b.end < best.end) {
						best, bestGap = b, g
					}
				}
				if best == nil {
					continue
				}
				s, e := min(a.start, best.start), max(a.end, best.end)
				if !has(s, e) {
					mine = append(mine, Finding{Rule: r.ID, Category: r.Category, Severity: r.Severity, Term: a.p.term + " … " + best.p.term, Start: s, End: e, Lexicon: m.version})
				}
			}
		}
		out = append(out, mine...)
	}
	slices.SortFunc(out, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(x.Start, y.Start), cmp.Compare(x.End, y.End), strings.Compare(x.Rule, y.Rule))
	})
	return out
}
