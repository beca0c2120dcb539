package scan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Adversarial inputs: texts built so that the occurrences of a message, not the lexicon, decide
// how much work resolving them into findings takes. Shared by TestResolveWorkIsLinear and
// BenchmarkAdversarial.

// adversarial is a scanner and a text generator whose text grows linearly with n.
type adversarial struct {
	name string
	lex  func() *Lexicon
	text func(n int) []byte
}

func ruleLexicon(rules ...Rule) func() *Lexicon {
	return func() *Lexicon {
		for i := range rules {
			rules[i].Category, rules[i].Severity = "c", Low
		}
		return &Lexicon{Name: "adversarial", Rules: rules}
	}
}

func repeat(s string) func(n int) []byte {
	return func(n int) []byte { return []byte(strings.Repeat(s, n)) }
}

var adversarialCases = []adversarial{
	// Issue #9 item 11: every term of the rule lies inside an exclusion of it.
	{"exclusions", DefaultLexicon, repeat("wechat pay ")},
	// Half the terms excluded, half not, in both scripts.
	{"exclusions-mixed", DefaultLexicon, repeat("wechat pay wechat 微信支付 微信 ")},
	// Terms everywhere, exclusions nowhere.
	{"terms", DefaultLexicon, repeat("wechat ")},
	// Exclusions overlapping one another and every term.
	{"exclusions-overlapping", ruleLexicon(Rule{ID: "r", Terms: []string{"ab", "b"}, Exclude: []string{"xab", "abx", "xabx", "bxa", "abxabx"}}), repeat("xab")},
	// One exclusion whose span (skipped characters included) covers all the terms.
	{"exclusion-long-span", ruleLexicon(Rule{ID: "r", Terms: []string{"ab"}, Exclude: []string{"qz"}}), func(n int) []byte {
		return []byte("q" + strings.Repeat("ab ", n) + "z")
	}},
	// Near terms everywhere.
	{"near", DefaultLexicon, repeat("buy results ")},
	// Near terms everywhere, after one B occurrence whose span covers half the text: a window
	// sized by the longest B span would take in every B occurrence for every A.
	{"near-long-span", ruleLexicon(Rule{ID: "r", Near: &Near{A: []string{"buy"}, B: []string{"xy", "z"}, Within: 3}}), func(n int) []byte {
		return []byte("x" + strings.Repeat(" ", 6*n) + "y" + strings.Repeat("buy z ", n))
	}},
	// Near terms inside exclusions.
	{"near-excluded", ruleLexicon(Rule{ID: "r", Near: &Near{A: []string{"buy"}, B: []string{"sell"}, Within: 5}, Exclude: []string{"buy sell", "sell buy"}}), repeat("buy sell ")},
}

// resolveSteps scans text and returns the findings and the steps spent resolving them.
func resolveSteps(s *Scanner, text []byte) ([]Finding, int) {
	var hits []hit
	if s.auto.norm {
		hits = s.auto.scanNorm(text, nil)
	} else {
		hits = s.auto.scanRaw(text, nil)
	}
	sc := new(scratch)
	fs := s.finish(sc, text, hits, nil)
	return fs, sc.steps
}

// TestResolveWorkIsLinear (issue #9 item 11): resolving occurrences into findings does work
// linear in the text, however dense in terms, exclusions and near terms it is. 1 MiB of
// "wechat pay " took 3.5 s with the default lexicon, checking every term against every
// exclusion. The work is counted, not timed: doubling the text may at most about double it.
func TestResolveWorkIsLinear(t *testing.T) {
	const n = 2000
	for _, c := range adversarialCases {
		t.Run(c.name, func(t *testing.T) {
			lex := c.lex()
			s := compileT(t, lex)
			small := c.text(n / 20)
			require.Equal(t, newRefMatcher(lex).findings(small), s.Scan(small), "findings differ from the reference")
			f1, w1 := resolveSteps(s, c.text(n))
			f2, w2 := resolveSteps(s, c.text(2*n))
			require.Equal(t, s.Scan(c.text(n)), f1)
			require.Positive(t, w1, "nothing was counted: the input does not exercise exclusions or near terms")
			t.Logf("%d findings, %d steps; twice the text: %d findings, %d steps (%.2fx)", len(f1), w1, len(f2), w2, float64(w2)/float64(w1))
			require.LessOrEqual(t, float64(w2)/float64(w1), 2.2, "resolve work grows faster than the text: %d steps, then %d for twice the text", w1, w2)
		})
	}
}

// denseLexicon builds a rule whose terms and exclusions are made of a few short syllables, so
// that in text made of the same syllables the exclusions overlap one another and the terms
// everywhere.
func denseLexicon(rng *rand.Rand, syll []string) *Lexicon {
	word := func(k int) string {
		var b strings.Builder
		for ; k > 0; k-- {
			b.WriteString(syll[rng.IntN(len(syll))])
		}
		return b.String()
	}
	list := func(n, minLen, maxLen int) []string {
		var out []string
		for range n {
			w := word(minLen + rng.IntN(maxLen-minLen+1))
			if !slices.Contains(out, w) && checkTerm(w) == nil {
				out = append(out, w)
			}
		}
		return out
	}
	var rules []Rule
	for i := range 1 + rng.IntN(3) {
		opts := rng.IntN(16)
		r := Rule{ID: fmt.Sprintf("r%d", i), Category: "c", Severity: Low,
			Exact: opts&1 != 0, CaseSensitive: opts&2 != 0, WordBoundary: opts&4 != 0,
			Terms: list(1+rng.IntN(4), 1, 2), Exclude: list(1+rng.IntN(6), 1, 5)}
		if opts&8 != 0 {
			r.Near = &Near{A: list(1+rng.IntN(3), 1, 2), B: list(1+rng.IntN(3), 1, 3), Within: rng.IntN(12)}
		}
		rules = append(rules, r)
	}
	return &Lexicon{Name: "dense", Rules: rules}
}

// denseText writes n syllables with separators that normalization skips (or not), in changed
// case now and then.
func denseText(rng *rand.Rand, syll []string, n int) []byte {
	seps := []string{"", "", "", " ", ".", "\u200b", "  ", "-", "\n"}
	var b strings.Builder
	for range n {
		w := syll[rng.IntN(len(syll))]
		if rng.IntN(8) == 0 {
			w = strings.ToUpper(w)
		}
		b.WriteString(w)
		b.WriteString(seps[rng.IntN(len(seps))])
	}
	return []byte(b.String())
}

var denseSyllables = [][]string{
	{"a", "b", "ab", "x"},
	{"wechat", "pay", " ", "we"},
	{"微", "信", "支付", "微信"},
	{"buy", "sell", "a", "微", "信"},
}

// TestEngineMatchesReferenceDenseExclusions compares the engine with the brute-force reference
// on lexicons and texts made of a few syllables, so that every message is dense in overlapping
// terms, exclusions and near terms, including a few long messages.
func TestEngineMatchesReferenceDenseExclusions(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 0xe8c1))
	lexicons, findings, want := 0, 0, 120
	if raceEnabled && !slow() {
		want = 30
	}
	for lexicons < want {
		syll := denseSyllables[rng.IntN(len(denseSyllables))]
		lex := denseLexicon(rng, syll)
		if lex.Validate() != nil {
			continue
		}
		lexicons++
		var msgs [][]byte
		for range 40 {
			msgs = append(msgs, denseText(rng, syll, rng.IntN(120)))
		}
		if lexicons%10 == 0 {
			msgs = append(msgs, denseText(rng, syll, 800))
		}
		ref := newRefMatcher(lex)
		refFound := make([][]Finding, len(msgs))
		for i, m := range msgs {
			refFound[i] = ref.findings(m)
			findings += len(refFound[i])
		}
		for _, budget := range []int{denseBudget, 1} {
			s, err := compile(lex, budget)
			require.NoError(t, err)
			for i, m := range msgs {
				if got := s.Scan(m); !slices.Equal(got, refFound[i]) {
					require.Equal(t, refFound[i], got, "lexicon %+v budget %d message %q", lex.Rules, budget, m)
				}
			}
		}
	}
	t.Logf("%d lexicons, %d findings", lexicons, findings)
	require.Greater(t, findings, 500*lexicons, "the texts must actually be dense in findings")
}

// FuzzDenseExclusions is FuzzEngineVsReference with text made of the lexicon's own terms and
// exclusions, joined by the separators layout picks, so that exclusions overlap one another and
// the terms they cover.
func FuzzDenseExclusions(f *testing.F) {
	f.Add("wechat\npay\nwechat pay\nwe chat", []byte{0x00, 0x11, 0x22, 0x03, 0x40, 0x31}, uint8(0), uint8(3))
	f.Add("ab\nb\nxab\nabx\nbxa", []byte("0123456789abcdef"), uint8(4), uint8(0))
	f.Add("微信\n支付\n微信支付\n微", []byte{0x00, 0x01, 0x12, 0x23, 0x30, 0x02}, uint8(8), uint8(4))
	f.Add("buy\nsell\nbuy sell\nsell buy\nb", []byte{0x00, 0x01, 0x10, 0x21, 0x53, 0x04}, uint8(9), uint8(2))
	f.Fuzz(func(t *testing.T, words string, layout []byte, opts uint8, within uint8) {
		var ws []string
		for _, w := range strings.Split(words, "\n") {
			if checkTerm(w) == nil && !slices.Contains(ws, w) && len(ws) < 8 {
				ws = append(ws, w)
			}
		}
		if len(ws) < 2 || len(layout) > 4096 {
			return
		}
		r := Rule{ID: "r", Category: "c", Severity: Low,
			Exact: opts&1 != 0, CaseSensitive: opts&2 != 0, WordBoundary: opts&4 != 0}
		// Terms are the first words; exclusions the rest, and each pair of neighbours joined.
		half := (len(ws) + 1) / 2
		r.Terms = ws[:half]
		r.Exclude = slices.Clone(ws[half:])
		for i := 0; i+1 < len(ws); i++ {
			if j := ws[i] + ws[i+1]; !slices.Contains(r.Exclude, j) && len(j) <= MaxTermBytes {
				r.Exclude = append(r.Exclude, j)
			}
		}
		if opts&8 != 0 {
			r.Near = &Near{A: ws[:1], B: ws[1:2], Within: int(within % 20)}
			if opts&16 != 0 {
				r.Terms = nil
			}
		}
		lex := &Lexicon{Name: "fuzz", Rules: []Rule{r}}
		if lex.Validate() != nil {
			return
		}
		seps := []string{"", " ", ".", "\u200b", "  ", "-", "x", "\xff"}
		var b strings.Builder
		for _, c := range layout {
			b.WriteString(ws[int(c&0x0f)%len(ws)])
			b.WriteString(seps[int(c>>4)%len(seps)])
		}
		text := []byte(b.String())
		want := newRefMatcher(lex).findings(text)
		for _, budget := range []int{denseBudget, 1} {
			s, err := compile(lex, budget)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Scan(text); !slices.Equal(got, want) {
				t.Fatalf("budget %d: rule %+v text %q\n got %v\nwant %v", budget, r, text, got, want)
			}
		}
	})
}
