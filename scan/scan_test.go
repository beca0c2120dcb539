package scan

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/ahocorasick"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slow reports whether the project-wide switch for slow tests is on.
func slow() bool { return os.Getenv("COMMSEAL_SLOW") == "1" }

// testLexicon is the default lexicon plus rules that exercise every option, and a block of
// generated terms (some with word boundaries) so that the automaton has sparse states too.
func testLexicon() *Lexicon {
	lex := DefaultLexicon()
	lex.Rules = append(lex.Rules,
		Rule{ID: "t.nested", Category: "test", Severity: Low, Terms: []string{"insider", "insider information", "information", "內幕", "內幕消息", "幕消"}},
		Rule{ID: "t.case", Category: "test", Severity: Low, CaseSensitive: true, Terms: []string{"MNPI", "HKEX", "Tencent", "ＡＢＣ股", "iPhone"}},
		Rule{ID: "t.exact", Category: "test", Severity: Info, Exact: true, Terms: []string{"$100", "ID-42", "buy!", "內幕", "client order", "Sell"}},
		Rule{ID: "t.exact-wb", Category: "test", Severity: Info, Exact: true, WordBoundary: true, Terms: []string{"sell", "Sell", "order"}},
		Rule{ID: "t.near", Category: "test", Severity: Low, WordBoundary: true,
			Near: &Near{A: []string{"client", "客户"}, B: []string{"order", "订单", "sell"}, Within: 10}, Exclude: []string{"client order", "客户订单已取消"}},
		Rule{ID: "t.near0", Category: "test", Severity: Low, Terms: []string{"margin call"},
			Near: &Near{A: []string{"margin"}, B: []string{"call", "call me"}, Within: 0}},
	)
	gen := genTerms(99, 400)
	for i := 0; i < len(gen); i += 100 {
		lex.Rules = append(lex.Rules, Rule{ID: fmt.Sprintf("t.gen%d", i), Category: "generated", Severity: Low,
			Terms: gen[i : i+100], WordBoundary: i%200 == 0, CaseSensitive: i == 300})
	}
	return lex
}

func compileT(t testing.TB, lex *Lexicon) *Scanner {
	t.Helper()
	s, err := Compile(lex)
	require.NoError(t, err)
	return s
}

// compareWithReference scans msgs with the engine and the brute-force reference and fails on
// the first few differences.
func compareWithReference(t *testing.T, s *Scanner, ref *refMatcher, msgs [][]byte) (findings int) {
	t.Helper()
	bad := 0
	for i, m := range msgs {
		got, want := s.Scan(m), ref.findings(m)
		findings += len(want)
		if !slices.Equal(got, want) {
			bad++
			assert.Equal(t, want, got, "message %d: %q", i, m)
			if bad >= 5 {
				t.FailNow()
			}
		}
	}
	return findings
}

// TestEngineMatchesReference is the main correctness check: 100,000 generated messages mixing
// English and Chinese, with lexicon terms injected in changed case, full-width forms, the
// other Chinese script and with spaces, dots and zero-width characters inserted, give exactly
// the reference's findings (rule, term, offsets, everything).
func TestEngineMatchesReference(t *testing.T) {
	lex := testLexicon()
	ref := newRefMatcher(lex)
	n := 100_000
	if raceEnabled && !slow() {
		n = 20_000
	}
	msgs := genMessages(1, n, allTerms(lex), true)
	for _, budget := range []int{denseBudget, 1} { // 1: only the root is dense
		t.Run(fmt.Sprintf("dense=%d", budget), func(t *testing.T) {
			s, err := compile(lex, budget)
			require.NoError(t, err)
			if budget == 1 {
				require.EqualValues(t, 1, s.auto.nDense)
				msgs = msgs[:min(len(msgs), 20_000)]
			}
			n := compareWithReference(t, s, ref, msgs)
			t.Logf("%d messages, %d findings", len(msgs), n)
			require.Greater(t, n, len(msgs)/4, "the corpus must actually exercise the lexicon")
		})
	}
}

// TestRawEngineMatchesReference checks the byte-exact automaton (every rule exact).
func TestRawEngineMatchesReference(t *testing.T) {
	terms := append(genTerms(5, 2000), allTerms(DefaultLexicon())...)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	lex := termsLexicon(terms, true)
	lex.Rules[0].WordBoundary = true
	s := compileT(t, lex)
	require.False(t, s.auto.norm)
	n := 20_000
	if raceEnabled && !slow() {
		n = 5000
	}
	found := compareWithReference(t, s, newRefMatcher(lex), genMessages(2, n, terms, false))
	require.Greater(t, found, n/4)
}

// TestSameTermsAsCloudflare compares the matched-term sets with github.com/cloudflare/ahocorasick
// on its native case-sensitive byte matching.
func TestSameTermsAsCloudflare(t *testing.T) {
	terms := append(genTerms(7, 3000), allTerms(DefaultLexicon())...)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	s := compileT(t, termsLexicon(terms, true))
	cf := ahocorasick.NewStringMatcher(terms)
	n := 20_000
	switch {
	case slow():
		n = 100_000
	case raceEnabled:
		n = 5000
	}
	total := 0
	for i, m := range genMessages(3, n, terms, false) {
		var want []string
		for _, k := range cf.MatchThreadSafe(m) {
			want = append(want, terms[k])
		}
		var got []string
		for _, f := range s.Scan(m) {
			got = append(got, f.Term)
		}
		slices.Sort(want)
		slices.Sort(got)
		got = slices.Compact(got)
		total += len(want)
		require.Equal(t, want, got, "message %d: %q", i, m)
	}
	require.Greater(t, total, n/4)
}

func findingsText(text string, fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s:%s@%q", f.Rule, f.Term, text[f.Start:f.End]))
	}
	return out
}

func scanRule(t *testing.T, r Rule, text string) []string {
	t.Helper()
	if r.ID == "" {
		r.ID = "r"
	}
	r.Category, r.Severity = "c", High
	s := compileT(t, &Lexicon{Name: "t", Rules: []Rule{r}})
	fs := s.ScanString(text)
	for _, f := range fs {
		require.Equal(t, s.Version(), f.Lexicon)
		require.Equal(t, "c", f.Category)
		require.Equal(t, High, f.Severity)
	}
	return findingsText(text, fs)
}

func TestOverlappingAndNested(t *testing.T) {
	got := scanRule(t, Rule{Terms: []string{"insider", "insider information", "information", "formation", "內幕", "內幕消息", "消息"}},
		"He has INSIDER information; 佢有內幕消息")
	assert.Equal(t, []string{
		`r:insider@"INSIDER"`, `r:insider information@"INSIDER information"`,
		`r:information@"information"`, `r:formation@"formation"`,
		`r:內幕@"內幕"`, `r:內幕消息@"內幕消息"`, `r:消息@"消息"`,
	}, got)
}

func TestNormalizedMatchingKeepsOriginalOffsets(t *testing.T) {
	r := Rule{Terms: []string{"whatsapp", "微信", "guaranteed return", "保證回報"}}
	for text, want := range map[string]string{
		"add me on W h a t s A p p pls": "W h a t s A p p",
		"ＷｈａｔｓＡｐｐ？":                     "ＷｈａｔｓＡｐｐ",
		"加我微.信":                         "微.信",
		"加我微\u200b信":                    "微\u200b信",
		"GUARANTEED-RETURN!!":           "GUARANTEED-RETURN",
		"呢個保证回报㗎":                       "保证回报",
		"呢個保 證 回 報㗎":                    "保 證 回 報",
		"what\u00adsapp (soft hyphen)":  "what\u00adsapp",
		"👍whats😀app👍":                   "whats😀app",
		"guaranteed\n\treturn":          "guaranteed\n\treturn",
		"Ｇｕａｒａｎｔｅｅｄ　Ｒｅｔｕｒｎ":             "Ｇｕａｒａｎｔｅｅｄ　Ｒｅｔｕｒｎ",
	} {
		got := scanRule(t, r, text)
		require.Len(t, got, 1, text)
		assert.Contains(t, got[0], fmt.Sprintf("@%q", want), text)
	}
}

func TestExclusions(t *testing.T) {
	r := Rule{Terms: []string{"guaranteed return", "保證回報"}, Exclude: []string{"no guaranteed return", "不保證回報"}}
	assert.Empty(t, scanRule(t, r, "There is NO guaranteed return on this fund. 本基金不保证回报。"))
	assert.Equal(t, []string{`r:guaranteed return@"guaranteed return"`},
		scanRule(t, r, "no, guaranteed return"[4:]), "an exclusion must cover the hit, not just be near it")
	assert.Equal(t, []string{`r:guaranteed return@"guaranteed return"`, `r:保證回報@"保證回報"`},
		scanRule(t, r, "we offer a guaranteed return — 保證回報 (no guarantee)"))
}

func TestProximity(t *testing.T) {
	r := Rule{WordBoundary: true, Near: &Near{A: []string{"buy", "買入"}, B: []string{"results", "業績"}, Within: 10}}
	assert.Equal(t, []string{`r:buy … results@"buy before results"`}, scanRule(t, r, "buy before results"))
	assert.Equal(t, []string{`r:買入 … 業績@"业绩前买入"`}, scanRule(t, r, "业绩前买入"))
	assert.Empty(t, scanRule(t, r, "buy now, and many many weeks later the results"), "too far apart")
	assert.Empty(t, scanRule(t, r, "buying before results"), "word boundary applies to near terms")
	assert.Empty(t, scanRule(t, r, "results only"))
	// each A pairs with its nearest B
	assert.Equal(t, []string{`r:buy … results@"results buy"`},
		scanRule(t, r, "results results buy"))
}

func TestWordBoundary(t *testing.T) {
	r := Rule{WordBoundary: true, Terms: []string{"tip", "insider", "貼士", "whatsapp"}}
	assert.Equal(t, []string{`r:tip@"tip"`, `r:tip@"TIP"`}, scanRule(t, r, "a tip, multiple tips, TIP!"))
	assert.Equal(t, []string{`r:貼士@"貼士"`, `r:whatsapp@"whatsapp"`}, scanRule(t, r, "有貼士嗎，用whatsapp傾"),
		"Chinese needs no boundary, and is one for Latin terms")
	assert.Empty(t, scanRule(t, r, "insiders"))
	assert.Equal(t, []string{`r:insider@"insider"`, `r:insider@"insider"`}, scanRule(t, r, "insider insiders insider"))
	r.WordBoundary = false
	assert.Len(t, scanRule(t, r, "multiple tips"), 2)
}

func TestCaseSensitiveAndExact(t *testing.T) {
	cs := Rule{CaseSensitive: true, Terms: []string{"MNPI", "HKEX"}}
	assert.Equal(t, []string{`r:MNPI@"MNPI"`, `r:HKEX@"Ｈ.Ｋ.Ｅ.Ｘ"`}, scanRule(t, cs, "MNPI mnpi Mnpi Ｈ.Ｋ.Ｅ.Ｘ hkex"),
		"case-sensitive keeps the other folding")
	ex := Rule{Exact: true, Terms: []string{"$100", "Ｘ"}}
	assert.Equal(t, []string{`r:$100@"$100"`, `r:Ｘ@"Ｘ"`}, scanRule(t, ex, "$100 $ 100 100 Ｘ X x"))
	// mixed: an exact rule beside a normalized one is confirmed against the original bytes
	s := compileT(t, &Lexicon{Name: "mixed", Rules: []Rule{
		{ID: "exact", Category: "c", Severity: Low, Exact: true, Terms: []string{"$100", "Ｘ"}},
		{ID: "norm", Category: "c", Severity: Low, Terms: []string{"100"}},
	}})
	require.True(t, s.auto.norm)
	text := "$100 $ 100 Ｘ X"
	assert.Equal(t, []string{`exact:$100@"$100"`, `norm:100@"100"`, `norm:100@"100"`, `exact:Ｘ@"Ｘ"`}, findingsText(text, s.ScanString(text)))
}

func TestScanEdgeCases(t *testing.T) {
	s := compileT(t, testLexicon())
	for _, text := range []string{"", "\xff\xfe", "內\xe5幕消息", "\xe5\x85", strings.Repeat("微", 10_000), "\x00\x00", "\uFFFD"} {
		assert.Equal(t, newRefMatcher(testLexicon()).findings([]byte(text)), s.Scan([]byte(text)), "%q", text)
	}
	var dst []Finding
	dst = s.AppendScan(dst, []byte("nothing here"))
	assert.Empty(t, dst)
	allocs := testing.AllocsPerRun(100, func() { dst = s.AppendScan(dst[:0], []byte("nothing to see here, 冇嘢")) })
	assert.Zero(t, allocs, "a scan that finds nothing does not allocate")
}

func TestDefaultLexicon(t *testing.T) {
	s, err := Default()
	require.NoError(t, err)
	lex := DefaultLexicon()
	v, err := lex.Version()
	require.NoError(t, err)
	assert.Equal(t, v, s.Version())
	cats := map[string]bool{}
	for _, r := range lex.Rules {
		cats[r.Category] = true
	}
	for _, c := range []string{"guarantee_of_returns", "inside_information", "front_running", "off_channel", "record_destruction", "market_manipulation", "gifts_entertainment"} {
		assert.True(t, cats[c], c)
	}
	for text, rule := range map[string]string{
		"This fund has a guaranteed return of 8%": "guarantee.returns",
		"呢隻股穩賺唔蝕":                                 "guarantee.returns",
		"保证回报":                                    "guarantee.returns",
		"我收到風，下星期有收購":                             "inside.information",
		"Let's move this to WhatsApp":             "off-channel.move",
		"加我微信傾":                                   "off-channel.move",
		"睇完刪咗佢":                                   "records.destruction-secrecy",
		"Delete this chat after reading":          "records.destruction-secrecy",
		"我哋一齊谷股價":                                 "market.manipulation",
		"收咗佢個紅包":                                  "gifts.entertainment",
		"大單入嚟喇":                                   "front-running.order",
	} {
		var rules []string
		for _, f := range s.ScanString(text) {
			rules = append(rules, f.Rule)
		}
		assert.Contains(t, rules, rule, text)
	}
	assert.Empty(t, s.ScanString("用微信支付就得"), "exclusion: WeChat Pay is not a channel move")
	assert.Empty(t, s.ScanString("Please note there is no guaranteed return."))
}

// TestScanBatchEqualsScan checks the interleaved batch paths against Scan, message by message,
// for batch sizes around the lane count and with empty messages.
func TestScanBatchEqualsScan(t *testing.T) {
	terms := append(genTerms(5, 1000), allTerms(DefaultLexicon())...)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	msgs := genMessages(8, 3000, terms, true)
	msgs[7], msgs[100] = nil, []byte{}
	for _, lex := range []*Lexicon{termsLexicon(terms, true), termsLexicon(terms, false), testLexicon()} {
		for _, budget := range []int{denseBudget, 1} {
			s, err := compile(lex, budget)
			require.NoError(t, err)
			for _, n := range []int{0, 1, 3, 4, 5, 9, 17, len(msgs)} {
				s.normLanesMin = n % 2 * normLanesMin // both normalizing batch paths
				got := make([][]Finding, n)
				s.ScanBatch(msgs[:n], func(i int, f Finding) { got[i] = append(got[i], f) })
				for i, m := range msgs[:n] {
					require.Equal(t, s.Scan(m), got[i], "norm=%v budget=%d batch=%d message %d", s.auto.norm, budget, n, i)
				}
			}
		}
	}
}

// TestManySymbols covers lexicons with more distinct characters than two-byte symbol codes
// can hold (3,072), so that three-byte codes and their two levels of in-code rows are used.
func TestManySymbols(t *testing.T) {
	var terms []string
	var chars []rune
	for r := rune(0x4E00); len(chars) < 4500; r++ {
		if foldRune(r) == r {
			chars = append(chars, r)
		}
	}
	for i := 0; i+3 <= len(chars); i += 3 {
		terms = append(terms, string(chars[i:i+3]), string(chars[i+1:i+3])+"ab")
	}
	lex := termsLexicon(terms, false)
	s := compileT(t, lex)
	require.NotZero(t, s.auto.cls[0xF0], "three-byte symbol codes are in use")
	msgs := genMessages(21, 5000, terms, true)
	for i := range msgs {
		if i%3 == 0 { // also some text made of the lexicon's own characters
			msgs[i] = append(msgs[i], string(chars[i%len(chars):min(len(chars), i%len(chars)+20)])...)
		}
	}
	n := compareWithReference(t, s, newRefMatcher(lex), msgs)
	require.Greater(t, n, 1500)
	for _, budget := range []int{1, 5000} {
		s, err := compile(lex, budget)
		require.NoError(t, err)
		compareWithReference(t, s, newRefMatcher(lex), msgs[:1000])
		got := map[int][]Finding{}
		s.normLanesMin = 0 // lanes
		s.ScanBatch(msgs, func(i int, f Finding) { got[i] = append(got[i], f) })
		for i, m := range msgs {
			require.Equal(t, s.Scan(m), got[i])
		}
	}
}

// TestNearOnALongMessage: proximity on a message with tens of thousands of occurrences of both
// sets stays linear (only B occurrences within reach of an A are considered) and pairs each A
// with its nearest B.
func TestNearOnALongMessage(t *testing.T) {
	r := Rule{ID: "r", Category: "c", Severity: Low, WordBoundary: true, Near: &Near{A: []string{"buy"}, B: []string{"業績"}, Within: 3}}
	s := compileT(t, &Lexicon{Name: "t", Rules: []Rule{r}})
	text := strings.Repeat("buy 业绩 ", 30_000)
	fs := s.ScanString(text)
	require.Len(t, fs, 30_000)
	require.Equal(t, "buy 业绩", text[fs[0].Start:fs[0].End])
	for i, f := range fs[1:] {
		// equally near on both sides: the earlier B wins
		require.Equal(t, "业绩 buy", text[f.Start:f.End], "finding %d", i+1)
	}
	short := []byte(strings.Repeat("buy 业绩 ", 50))
	assert.Equal(t, newRefMatcher(&Lexicon{Name: "t", Rules: []Rule{r}}).findings(short), s.Scan(short))
}
