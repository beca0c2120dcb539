package scan

import (
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The Traditional/Hong Kong -> Simplified character table, generated from OpenCC's data by
// scan/internal/gen (see data/README.md and data/OPENCC-LICENSE).
//
//go:embed data/tsfold.txt
var tsfoldData string

// foldSkip marks a rune that normalization removes.
const foldSkip rune = -1

// foldPlanes is how much of Unicode the precomputed fold table covers: the BMP and planes 1
// (emoji, historic scripts) and 2 (rare CJK ideographs). Anything above is folded on the fly.
const foldPlanes = 0x30000

// foldTable is the precomputed fold of every rune below foldPlanes, as a two-level table of
// deltas (fold(r) - r) so that the many identical pages (identity, all-removed) are shared.
type foldTable struct {
	top   [foldPlanes >> 8]uint16
	pages [][256]int32
	ts    map[rune]rune
}

const deltaSkip = int32(-1 << 31)

var foldTables = sync.OnceValue(buildFoldTable)

func parseTSFold() map[rune]rune {
	m := make(map[rune]rune, 4096)
	for line := range strings.Lines(tsfoldData) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSuffix(line, "\n")
		for len(line) > 0 {
			from, n1 := utf8.DecodeRuneInString(line)
			to, n2 := utf8.DecodeRuneInString(line[n1:])
			line = line[n1+n2:]
			m[from] = to
		}
	}
	return m
}

func buildFoldTable() *foldTable {
	t := &foldTable{ts: parseTSFold()}
	index := map[[256]int32]uint16{}
	for p := range t.top {
		var page [256]int32
		for i := range page {
			r := rune(p<<8 | i)
			if f := foldSlow(r, t.ts, true); f == foldSkip {
				page[i] = deltaSkip
			} else {
				page[i] = int32(f - r)
			}
		}
		k, ok := index[page]
		if !ok {
			k = uint16(len(t.pages))
			t.pages = append(t.pages, page)
			index[page] = k
		}
		t.top[p] = k
	}
	return t
}

// foldSlow computes the normalization of one rune from first principles; the tables cache it.
// Only letters and numbers survive; full-width forms become ASCII, case is folded (unless
// caseFold is false) and Traditional Chinese becomes Simplified.
func foldSlow(r rune, ts map[rune]rune, caseFold bool) rune {
	if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
		r -= 0xFEE0
	}
	if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
		return foldSkip
	}
	if caseFold {
		r = unicode.ToLower(unicode.ToUpper(r))
	}
	if s, ok := ts[r]; ok {
		r = s
	}
	return r
}

// foldRune returns the normalized form of r, or foldSkip if normalization removes r.
func foldRune(r rune) rune {
	if r < 0x80 {
		return asciiFold[r]
	}
	t := foldTables()
	if r >= foldPlanes || r < 0 {
		return foldSlow(r, t.ts, true)
	}
	d := t.pages[t.top[r>>8]][r&0xff]
	if d == deltaSkip {
		return foldSkip
	}
	return r + rune(d)
}

// foldRuneCase is foldRune without case folding, for case-sensitive rules.
func foldRuneCase(r rune) rune {
	f := foldRune(r)
	if f == foldSkip || f == r {
		return f
	}
	return foldSlow(r, foldTables().ts, false)
}

// asciiFold is foldRune for ASCII: letters in lower case, digits as they are, the rest removed.
var asciiFold = func() (t [128]rune) {
	for i := range t {
		switch c := rune(i); {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			t[i] = c
		case c >= 'A' && c <= 'Z':
			t[i] = c + 'a' - 'A'
		default:
			t[i] = foldSkip
		}
	}
	return
}()

// Normalize returns text as the scanner sees it when matching a rule that is neither exact nor
// case-sensitive: everything but letters and numbers removed (white space, punctuation,
// symbols and emoji, zero-width and other formatting characters, combining marks), full-width
// forms folded to ASCII, letter case folded, Traditional and Hong Kong Chinese characters folded
// to Simplified. Terms and text are normalized alike, so "W h a t s A p p" matches "whatsapp"
// and "內幕消息" matches "内幕消息". Invalid UTF-8 bytes are removed.
func Normalize(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		if f := foldRune(r); f != foldSkip {
			b.WriteRune(f)
		}
	}
	return b.String()
}

// isWordRune reports whether r is a letter or digit of a script written with spaces between
// words, which is what word boundaries are about. Han, kana, Hangul and Bopomofo are not.
func isWordRune(r rune) bool {
	if r < 0x80 {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	}
	if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
		return false
	}
	return !unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo)
}
