package scan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Generated test data: chat-like messages of about 100 bytes, about 40% of the bytes non-ASCII
// (Chinese, Cantonese particles, emoji, full-width punctuation), and lexicons of any size.

var englishWords = strings.Fields(`ok sure thanks call me later price stock buy sell client order
	today tomorrow market close open please check the report send file meeting lunch dinner deal
	shares bond fund rate will can you we they have got need update account margin trade fill
	limit risk team boss morning night week next last review email phone number plan target
	profit loss long short hedge index futures option volume bid ask spread quote desk sales`)

var cantoneseBits = []string{"嘅", "咗", "喺", "啲", "唔", "係", "嘢", "咩", "囉", "喇", "㗎", "嚟", "佢", "哋", "冇"}

var fillerPunct = []string{"，", "。", "！", "？", "、", ".", ",", "!", "?", " ", "😀", "👍", "🙏", "～"}

// corpusChars is a broad set of common Chinese characters: the Simplified side of the folding
// table (which covers the common characters that have Traditional forms) plus frequent
// characters that have none.
var corpusChars = sync.OnceValue(func() []rune {
	set := map[rune]bool{}
	for _, r := range "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质" + "保证赚钱风险内幕消息客户订单交易微信删除记录股价市场礼物红包回扣请食饭" {
		set[r] = true
	}
	for _, r := range tsPairs() {
		set[r[1]] = true
	}
	out := make([]rune, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
})

// tsPairs is the folding table as (Traditional, Simplified) pairs.
var tsPairs = sync.OnceValue(func() [][2]rune {
	var out [][2]rune
	for t, s := range parseTSFold() {
		if t < foldPlanes && s < foldPlanes {
			out = append(out, [2]rune{t, s})
		}
	}
	slices.SortFunc(out, func(a, b [2]rune) int { return int(a[0] - b[0]) })
	return out
})

// toTraditional maps a Simplified character to one of its Traditional forms, if any.
var toTraditional = sync.OnceValue(func() map[rune]rune {
	m := map[rune]rune{}
	for _, p := range tsPairs() {
		if _, ok := m[p[1]]; !ok && unicode.Is(unicode.Han, p[0]) {
			m[p[1]] = p[0]
		}
	}
	return m
})

// filler writes about n bytes of chat text.
func filler(rng *rand.Rand, b *strings.Builder, n int) {
	chars := corpusChars()
	end := b.Len() + n
	for b.Len() < end {
		switch x := rng.IntN(100); {
		case x < 40:
			for k := 1 + rng.IntN(4); k > 0; k-- {
				b.WriteRune(chars[rng.IntN(len(chars))])
			}
		case x < 45:
			b.WriteString(cantoneseBits[rng.IntN(len(cantoneseBits))])
		case x < 52:
			b.WriteString(fillerPunct[rng.IntN(len(fillerPunct))])
		default:
			w := englishWords[rng.IntN(len(englishWords))]
			if rng.IntN(10) == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			b.WriteByte(' ')
		}
	}
}

// mutate disguises a term the way people dodge filters: changed case, full-width forms, the
// other Chinese script, spaces, dots and zero-width characters inserted.
func mutate(rng *rand.Rand, term string) string {
	var b strings.Builder
	full := rng.IntN(6) == 0
	swap := rng.IntN(2) == 0
	caseMode := rng.IntN(3)
	insert := rng.IntN(3) == 0
	seps := []string{" ", ".", "\u200b", "-", "·", "  ", "\u200d", "*"}
	first := true
	for _, r := range term {
		if insert && !first && rng.IntN(3) == 0 {
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		first = false
		if r < utf8.RuneSelf {
			switch {
			case caseMode == 1 && rng.IntN(2) == 0:
				r = unicode.ToUpper(r)
			case caseMode == 2:
				r = unicode.ToUpper(r)
			}
			if full && r > ' ' && r <= '~' {
				r += 0xFEE0
			}
		} else if swap {
			if t, ok := toTraditional()[r]; ok {
				r = t
			} else if s := foldRune(r); s != foldSkip && s != r && unicode.Is(unicode.Han, s) {
				r = s
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// genMessages returns n messages of about 100 bytes. When terms is not empty, about one
// message in three carries one or two of them, disguised by mutate when disguise is set.
func genMessages(seed uint64, n int, terms []string, disguise bool) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x5ca9))
	out := make([][]byte, n)
	var b strings.Builder
	for i := range out {
		b.Reset()
		size := 70 + rng.IntN(60)
		filler(rng, &b, size/3)
		if len(terms) > 0 && rng.IntN(3) == 0 {
			for k := 1 + rng.IntN(2); k > 0; k-- {
				t := terms[rng.IntN(len(terms))]
				if disguise {
					t = mutate(rng, t)
				}
				b.WriteString(t)
				filler(rng, &b, 5+rng.IntN(10))
			}
		}
		if b.Len() < size {
			filler(rng, &b, size-b.Len())
		}
		out[i] = []byte(b.String())
	}
	return out
}

// genTerms returns n distinct terms: 60% English phrases of two or three words, the last one
// made up (so that, as with a real lexicon, most messages match nothing unless a term was put
// in them), 40% Chinese phrases of two to five characters.
func genTerms(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, 0x7e53))
	chars := corpusChars()
	seen := map[string]bool{}
	out := make([]string, 0, n)
	syll := strings.Fields("ka to ri mu se na lo pe vi da re sho qua ex in ter pro con trans ment ing ly tion")
	for len(out) < n {
		var t string
		if rng.IntN(10) < 6 {
			var ws []string
			for k := 2 + rng.IntN(2); k > 0; k-- {
				if k > 1 && rng.IntN(2) == 0 { // the last word is always made up
					ws = append(ws, englishWords[rng.IntN(len(englishWords))])
				} else {
					w := ""
					for j := 2 + rng.IntN(2); j > 0; j-- {
						w += syll[rng.IntN(len(syll))]
					}
					ws = append(ws, w)
				}
			}
			t = strings.Join(ws, " ")
		} else {
			var rs []rune
			for k := 2 + rng.IntN(4); k > 0; k-- {
				rs = append(rs, chars[rng.IntN(len(chars))])
			}
			t = string(rs)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// termsLexicon wraps terms into a lexicon of rules of up to 50 terms each.
func termsLexicon(terms []string, exact bool) *Lexicon {
	lex := &Lexicon{Name: fmt.Sprintf("generated-%d", len(terms))}
	for i := 0; i < len(terms); i += 50 {
		lex.Rules = append(lex.Rules, Rule{
			ID: fmt.Sprintf("gen.%05d", i/50), Category: "generated", Severity: Medium,
			Terms: terms[i:min(i+50, len(terms))], Exact: exact,
		})
	}
	return lex
}

// allTerms lists every term, exclusion and near term of lex.
func allTerms(lex *Lexicon) []string {
	var out []string
	for _, r := range lex.Rules {
		out = append(out, r.Terms...)
		out = append(out, r.Exclude...)
		if r.Near != nil {
			out = append(out, r.Near.A...)
			out = append(out, r.Near.B...)
		}
	}
	return out
}
