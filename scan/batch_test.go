package scan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The normalizing batch path (batch.go) classifies messages into class streams, packs them
// into lanes and maps hits back to offsets in the text. These tests hold it to the brute-force
// reference (ref_test.go: normalize rune by rune, then compare term by term at every
// position), not only to Scan, so that the two engine paths cannot agree on a mistake.

// batchFindings scans msgs with ScanBatch on the lane path and returns each message's
// findings, checking that every message's findings come together.
func batchFindings(t testing.TB, s *Scanner, msgs [][]byte) [][]Finding {
	t.Helper()
	s.normLanesMin = 0 // the lanes, whatever the size of the automaton
	got := make([][]Finding, len(msgs))
	last := -1
	s.ScanBatch(msgs, func(i int, f Finding) {
		if i != last && got[i] != nil {
			t.Fatalf("findings of message %d not reported together", i)
		}
		last = i
		got[i] = append(got[i], f)
	})
	return got
}

// requireBatchMatchesReference fails on the first messages whose batch findings differ from
// the reference's, and returns how many findings there were.
func requireBatchMatchesReference(t *testing.T, s *Scanner, ref *refMatcher, msgs [][]byte) int {
	t.Helper()
	got := batchFindings(t, s, msgs)
	n, bad := 0, 0
	for i, m := range msgs {
		want := ref.findings(m)
		n += len(want)
		if !slices.Equal(got[i], want) {
			bad++
			t.Errorf("message %d %q:\n got %v\nwant %v", i, m, got[i], want)
			if bad >= 5 {
				t.FailNow()
			}
		}
	}
	return n
}

// oddRunes are runes that exercise every branch of classification: removed ones (spaces,
// punctuation, symbols, emoji, zero-width and formatting characters, combining marks),
// full-width forms, case pairs beyond ASCII, two-byte letters, characters above the BMP, and
// Traditional and Simplified forms of the same characters.
var oddRunes = []rune(" .,!?-*·、，。！？～\t\n\u00ad\u200b\u200c\u200d\ufeff\u0301😀👍🙏" +
	"ＡＢＣａｂｃ０１９＄％　" + "éÉßẞΣσςΩωЖж" + "𠀀𠀁𪚥" + "內内幕證证據据風风險险錢钱體体門门發发臺台為为衛卫裡里賺赚刪删們们說说" + "\uFFFD")

// randomText writes about n bytes: the lexicon's terms (whole, disguised by mutate, or cut
// short), chat filler, odd runes, and now and then an invalid byte or a truncated rune.
func randomText(rng *rand.Rand, terms []string, n int) []byte {
	var b strings.Builder
	for b.Len() < n {
		switch x := rng.IntN(100); {
		case x < 25 && len(terms) > 0:
			b.WriteString(mutate(rng, terms[rng.IntN(len(terms))]))
		case x < 35 && len(terms) > 0:
			t := terms[rng.IntN(len(terms))]
			b.WriteString(t[:rng.IntN(len(t)+1)]) // may cut a rune: invalid UTF-8
		case x < 60:
			b.WriteRune(oddRunes[rng.IntN(len(oddRunes))])
		case x < 63:
			b.WriteByte(byte(0x80 + rng.IntN(0x80))) // a stray continuation or lead byte
		default:
			filler(rng, &b, 1+rng.IntN(12))
		}
	}
	return []byte(b.String())
}

// TestNormalizedBatchMatchesReference: the normalizing batch path gives exactly the
// reference's findings (rules, terms, offsets into the original text) on generated chat with
// disguised terms and on random text mixing CJK and ASCII, full-width forms, Traditional and
// Simplified pairs, removed characters and invalid UTF-8; with the full dense table and with
// only the root dense (every other state sparse, the lanes' slow step); with batches of every
// size around the lane count, empty messages, messages long enough to be scanned alone, and
// enough messages to fill several chunks.
func TestNormalizedBatchMatchesReference(t *testing.T) {
	lex := testLexicon()
	ref := newRefMatcher(lex)
	terms := allTerms(lex)
	rng := rand.New(rand.NewPCG(31, 0xba7c))
	n := 6000
	if raceEnabled && !slow() {
		n = 1500
	}
	msgs := genMessages(32, n/2, terms, true)
	for range n / 2 {
		size := 1 + rng.IntN(160)
		if rng.IntN(200) == 0 {
			size = batchAlone + rng.IntN(3*batchAlone) // scanned alone, between batched ones
		}
		msgs = append(msgs, randomText(rng, terms, size))
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	msgs[3], msgs[50] = nil, []byte{}
	msgs[51] = []byte(" ,.!? 😀\u200b") // nothing that normalization keeps: an empty stream
	for _, budget := range []int{denseBudget, 1} {
		t.Run(fmt.Sprintf("dense=%d", budget), func(t *testing.T) {
			s, err := compile(lex, budget)
			require.NoError(t, err)
			require.True(t, s.auto.norm)
			found := requireBatchMatchesReference(t, s, ref, msgs)
			require.Greater(t, found, len(msgs)/4, "the messages must exercise the lexicon")
			for _, k := range []int{1, 2, 15, 16, 17, 33} {
				requireBatchMatchesReference(t, s, ref, msgs[:k])
			}
		})
	}
}

// TestBatchMatchesDoNotSpanMessages: terms cut into pieces across consecutive messages, which
// the lanes pack one after another, are never found across the cut; each message's findings
// are the reference's for that message alone.
func TestBatchMatchesDoNotSpanMessages(t *testing.T) {
	r := Rule{ID: "r", Category: "c", Severity: Low, Terms: []string{"whatsapp", "微信", "內幕消息", "guaranteed return", "ab"},
		Near: &Near{A: []string{"buy"}, B: []string{"results"}, Within: 50}}
	lex := &Lexicon{Name: "cut", Rules: []Rule{r}}
	ref := newRefMatcher(lex)
	rng := rand.New(rand.NewPCG(33, 0xc07))
	var whole strings.Builder
	for whole.Len() < 200_000 {
		whole.WriteString([]string{"whatsapp", "微信", "內幕消息", "GUARANTEED return", "a", "b", "buy", "results", " ", "，"}[rng.IntN(10)])
	}
	text := []byte(whole.String())
	var msgs [][]byte
	for len(text) > 0 {
		k := min(len(text), 1+rng.IntN(12))
		msgs = append(msgs, text[:k]) // may cut a rune in two
		text = text[k:]
	}
	s := compileT(t, lex)
	found := requireBatchMatchesReference(t, s, ref, msgs)
	require.Greater(t, found, len(msgs)/20)
}

// TestMapEnds checks the mapping of class-stream positions back to text offsets on every
// position where a key can end, against the stream built rune by rune.
func TestMapEnds(t *testing.T) {
	lex := testLexicon()
	a := compileT(t, lex).auto
	terms := allTerms(lex)
	rng := rand.New(rand.NewPCG(34, 0x3a9))
	for range 1000 {
		text := randomText(rng, terms, 1+rng.IntN(200))
		stream := classStream(a, text)
		// the positions that end a rune's classes, and the text offset after that rune
		var hits, want []hit
		p := 0
		for i := 0; i < len(text); {
			n, size := a.classLen(text, i)
			i += size
			if n > 0 {
				p += n
				hits = append(hits, hit{end: p})
				want = append(want, hit{end: i})
			}
		}
		require.Equal(t, len(stream), p, "classLen agrees with classify on %q", text)
		a.mapEnds(text, hits)
		require.Equal(t, want, hits, "%q", text)
	}
}

// FuzzBatchVsReference builds a small normalizing lexicon from fuzzed terms and checks that
// ScanBatch's findings on the fuzzed text, cut into messages at every newline and scanned also
// whole and repeated so that the lanes fill, equal the brute-force reference's, with a normal
// and a minimal dense table.
func FuzzBatchVsReference(f *testing.F) {
	f.Add("whatsapp\n微信\n內幕消息", "Add me on W h a t s A p p\n或者微.信，有內幕消息", uint8(0))
	f.Add("insider\ninsider information\nformation", "INSIDER\nINFORMATION insider", uint8(2))
	f.Add("tip\n貼士\nＡＢＣ股", "multiple tips,\n 贴士 tip abc股", uint8(4))
	f.Add("ab\nb\u200b", "a\xffb\xe5\xb9ab\n\u00adb", uint8(1))
	f.Add("straße\nσίσυφος", "STRASSE Straße\nΣΊΣΥΦΟΣ", uint8(3))
	f.Fuzz(func(t *testing.T, terms string, text string, opts uint8) {
		var ts []string
		for _, term := range strings.Split(terms, "\n") {
			if checkTerm(term) == nil && !slices.Contains(ts, term) && len(ts) < 8 {
				ts = append(ts, term)
			}
		}
		if len(ts) == 0 || !utf8.ValidString(terms) {
			return
		}
		r := Rule{ID: "r", Category: "c", Severity: Low, Terms: ts,
			Exact: opts&1 != 0, CaseSensitive: opts&2 != 0, WordBoundary: opts&4 != 0}
		rules := []Rule{r}
		if r.Exact { // keep the lexicon normalizing: the batch path under test
			r2 := r
			r2.ID, r2.Exact = "r2", false
			rules = append(rules, r2)
		}
		lex := &Lexicon{Name: "fuzz", Rules: rules}
		if lex.Validate() != nil {
			return
		}
		ref := newRefMatcher(lex)
		var msgs [][]byte
		for _, m := range strings.Split(text, "\n") {
			msgs = append(msgs, []byte(m))
		}
		for range 40 {
			msgs = append(msgs, []byte(text))
		}
		for _, budget := range []int{denseBudget, 1} {
			s, err := compile(lex, budget)
			if err != nil {
				t.Fatal(err)
			}
			got := batchFindings(t, s, msgs)
			for i, m := range msgs {
				if want := ref.findings(m); !slices.Equal(got[i], want) {
					t.Fatalf("budget %d: lexicon %+v message %q\n got %v\nwant %v", budget, rules, m, got[i], want)
				}
			}
		}
	})
}

// classStream is the class stream of text, as classify writes it into a lane.
func classStream(a *automaton, text []byte) []byte {
	lane := make([]byte, (maxClasses(len(text))+3)*batchLanes)
	n := a.classify(lane, text)
	out := make([]byte, n)
	for k := range out {
		out[k] = lane[k*batchLanes]
	}
	for k := n * batchLanes; k < len(lane); k++ {
		if lane[k] != classNone {
			panic("classify left a class after the stream")
		}
	}
	return out
}

// TestASCIIKept: the eight-at-once count of the ASCII bytes normalization keeps equals a count
// byte by byte with asciiFold, for every byte value in every position and for random words.
func TestASCIIKept(t *testing.T) {
	want := func(w uint64) int {
		n := 0
		for k := range 8 {
			if asciiFold[byte(w>>(8*k))] != foldSkip {
				n++
			}
		}
		return n
	}
	rng := rand.New(rand.NewPCG(8, 0x7f))
	for pos := range 8 {
		for c := range uint64(128) {
			w := rng.Uint64()&0x7f7f7f7f7f7f7f7f&^(0xff<<(8*pos)) | c<<(8*pos)
			require.Equal(t, want(w), asciiKept(w), "byte %#x at %d in %#x", c, pos, w)
		}
	}
	for range 100000 {
		w := rng.Uint64() & 0x7f7f7f7f7f7f7f7f
		require.Equal(t, want(w), asciiKept(w), "%#x", w)
	}
}
