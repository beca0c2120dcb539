// Package watchlist makes the lexicon the size a firm's full watch list reaches, generated
// deterministically, that loadgen -lexicon-terms and the scanning benchmarks measure with, so
// that "the 10,000-term lexicon" in one program means the same lexicon in another. (Internal,
// not a test kit: loadgen, a program, uses it.)
package watchlist

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/commseal/commseal/scan"
)

// Lexicon returns the default lexicon (scan.DefaultLexicon) with n more terms: Chinese runs
// of 2 to 4 characters and Latin words of 6 to 10 letters ending in "zq", in word-bounded rules
// of 50. None of them occurs in ordinary text (no English word ends so, and the Chinese runs are
// drawn at random from the CJK block), so the findings are the default lexicon's while the
// automaton is as large as n terms make it. The same n always gives the same lexicon.
func Lexicon(n int) *scan.Lexicon {
	lex := scan.DefaultLexicon()
	if n <= 0 {
		return lex
	}
	lex.Name += fmt.Sprintf("+%d-generated", n)
	r := rand.New(rand.NewPCG(2026, uint64(n)))
	seen := map[string]bool{}
	var terms []string
	for len(terms) < n {
		var b strings.Builder
		if len(terms)%2 == 0 {
			for range 2 + r.IntN(3) {
				b.WriteRune(rune(0x4E00 + r.IntN(0x9FA5-0x4E00)))
			}
		} else {
			for range 6 + r.IntN(5) {
				b.WriteByte(byte('a' + r.IntN(26)))
			}
			b.WriteString("zq")
		}
		if t := b.String(); !seen[t] {
			seen[t] = true
			terms = append(terms, t)
		}
	}
	for i := 0; i < len(terms); i += 50 {
		lex.Rules = append(lex.Rules, scan.Rule{ID: fmt.Sprintf("generated.%05d", i/50), Category: "generated",
			Severity: scan.Low, WordBoundary: true, Terms: terms[i:min(i+50, len(terms))]})
	}
	return lex
}
