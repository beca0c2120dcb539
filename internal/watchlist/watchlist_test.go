package watchlist_test

import (
	"fmt"
	"testing"

	"github.com/commseal/commseal/internal/watchlist"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

func TestLexiconIsTheDefaultPlusTermsThatNeverMatch(t *testing.T) {
	def := scan.DefaultLexicon()
	lex := watchlist.Lexicon(10000)
	require.Equal(t, lex, watchlist.Lexicon(10000), "the same n gives the same lexicon")
	require.Equal(t, def.Rules, lex.Rules[:len(def.Rules)], "the default rules come first, unchanged")
	terms := map[string]bool{}
	for _, r := range lex.Rules[len(def.Rules):] {
		for _, term := range r.Terms {
			require.False(t, terms[term], "term %q twice", term)
			terms[term] = true
		}
	}
	require.Len(t, terms, 10000)
	require.Equal(t, scan.DefaultLexicon(), watchlist.Lexicon(0))

	small, err := scan.Compile(def)
	require.NoError(t, err)
	large, err := scan.Compile(lex)
	require.NoError(t, err)
	// What the default lexicon finds in text, the watch list finds too, and nothing more.
	for _, text := range []string{
		"call me on WhatsApp, 我們私下說",
		"guaranteed return, no risk",
	} {
		want, got := small.Scan([]byte(text)), large.Scan([]byte(text))
		require.NotEmpty(t, want, "%q trips the default lexicon", text)
		for i := range want { // a finding names its lexicon, which differs
			want[i].Lexicon = ""
		}
		for i := range got {
			got[i].Lexicon = ""
		}
		require.Equal(t, want, got, "%q", text)
	}
}

// The 10,000-term watch list that loadgen -lexicon-terms 10000 and the benchmarks use.
func ExampleLexicon() {
	lex := watchlist.Lexicon(10000)
	s, err := scan.Compile(lex)
	if err != nil {
		panic(err)
	}
	fmt.Println(lex.Name)
	fmt.Println(len(s.Scan([]byte("let's move this to WeChat"))) > 0)
	// Output:
	// commseal-hk-securities-conduct+10000-generated
	// true
}
