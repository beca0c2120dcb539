package scan

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseLexicon: any input either parses to a lexicon that validates, compiles and
// round-trips through its canonical form to the same version, or fails with a *LexiconError.
func FuzzParseLexicon(f *testing.F) {
	f.Add(DefaultLexiconJSON())
	f.Add(lexJSON(okRule))
	f.Add(lexJSON(`{"id":"r","category":"c","severity":"low","near":{"a":["x"],"b":["y"],"within":3},"exclude":["x y"]}`))
	f.Add([]byte(`{"name":"\u00ff","rules":[{"id":"a","category":"b","severity":"info","terms":["\ud800"],"exact":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lex, err := ParseLexicon(data)
		if err != nil {
			var le *LexiconError
			if !asLexiconError(err, &le) {
				t.Fatalf("error is not a *LexiconError: %v", err)
			}
			return
		}
		v, err := lex.Version()
		if err != nil {
			t.Fatalf("parsed lexicon has no version: %v", err)
		}
		s, err := Compile(lex)
		if err != nil {
			t.Fatalf("parsed lexicon does not compile: %v", err)
		}
		if s.Version() != v {
			t.Fatalf("scanner version %s, lexicon %s", s.Version(), v)
		}
		c, err := lex.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseLexicon(c)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, c)
		}
		if vb, _ := back.Version(); vb != v {
			t.Fatalf("canonical round trip changed the version")
		}
		s.Scan(data) // scanning anything, even the lexicon itself, must not fail
	})
}

func asLexiconError(err error, le **LexiconError) bool {
	for err != nil {
		if e, ok := err.(*LexiconError); ok {
			*le = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// FuzzEngineVsReference builds a small lexicon from fuzzed terms and options and checks that
// the engine's findings on fuzzed text equal the brute-force reference's, with a normal and a
// minimal dense table.
func FuzzEngineVsReference(f *testing.F) {
	f.Add("whatsapp\n微信\n內幕消息", "Add me on W h a t s A p p 或者微.信，有內幕消息", uint8(0), uint8(5))
	f.Add("insider\ninsider information\nformation", "INSIDER INFORMATION insider", uint8(1), uint8(0))
	f.Add("$100\nID-42", "$100 $ 100 id-42 ID-42", uint8(2), uint8(0))
	f.Add("tip\n貼士", "multiple tips, 貼士 tip", uint8(4), uint8(0))
	f.Add("client\norder", "client order, big client with one order", uint8(8), uint8(10))
	f.Add("ab\nb\u200b", "a\xffb\xe5\xb9ab\u00adb", uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, terms string, text string, opts uint8, within uint8) {
		var ts []string
		for _, term := range strings.Split(terms, "\n") {
			if checkTerm(term) == nil && !slices.Contains(ts, term) && len(ts) < 8 {
				ts = append(ts, term)
			}
		}
		if len(ts) == 0 {
			return
		}
		r := Rule{ID: "r", Category: "c", Severity: Low,
			Exact: opts&1 != 0, CaseSensitive: opts&2 != 0, WordBoundary: opts&4 != 0}
		if opts&8 != 0 && len(ts) >= 2 {
			r.Near = &Near{A: ts[:1], B: ts[1:2], Within: int(within % 20)}
			ts = ts[2:]
		}
		if opts&16 != 0 && len(ts) >= 2 {
			r.Exclude = ts[len(ts)-1:]
			ts = ts[:len(ts)-1]
		}
		r.Terms = ts
		rules := []Rule{r}
		if opts&32 != 0 { // a second rule with the other exactness, to mix modes
			r2 := r
			r2.ID, r2.Exact, r2.Near, r2.Exclude = "r2", !r.Exact, nil, nil
			if len(r2.Terms) == 0 {
				r2.Terms = []string{"x"}
			}
			rules = append(rules, r2)
		}
		lex := &Lexicon{Name: "fuzz", Rules: rules}
		if lex.Validate() != nil {
			return
		}
		want := newRefMatcher(lex).findings([]byte(text))
		for _, budget := range []int{denseBudget, 1} {
			s, err := compile(lex, budget)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Scan([]byte(text))
			if !slices.Equal(got, want) {
				t.Fatalf("budget %d: lexicon %+v text %q\n got %v\nwant %v", budget, rules, text, got, want)
			}
		}
	})
}
