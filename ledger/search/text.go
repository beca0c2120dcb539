package search

import (
	"strconv"
	"strings"

	"github.com/commseal/commseal/scan"
)

// fold is how both the index and a query see text: scan.Normalize, so that the index folds
// exactly as the scanner does (width, case, Traditional to Simplified; everything but letters
// and numbers removed).
func fold(s string) string { return scan.Normalize(s) }

// sep separates the folded fields of a document's full text. Normalization never produces it,
// so no query matches across two fields.
const sep = "\x00"

// fullText is the text a term without a field searches: the message text and the names of its
// attachments, folded.
func fullText(d *document) string {
	if len(d.files) == 0 {
		return fold(d.text)
	}
	var b strings.Builder
	b.WriteString(fold(d.text))
	for _, f := range d.files {
		b.WriteString(sep)
		b.WriteString(fold(f.name))
	}
	return b.String()
}

// gram is a posting key: a bigram of two runes, or a single non-ASCII rune (ASCII characters
// on their own are in nearly every message; a one-letter query reads the text instead).
type gram uint64

const unigramMark = 0xFFFFFFFF

func bigram(a, b rune) gram { return gram(uint64(uint32(a))<<32 | uint64(uint32(b))) }
func unigram(a rune) gram   { return gram(uint64(uint32(a))<<32 | unigramMark) }

// grams calls fn with every posting key of folded text s (repeats included).
func grams(s string, fn func(gram)) {
	prev := rune(0)
	for _, r := range s {
		if r == 0 {
			prev = 0
			continue
		}
		if r >= 0x80 {
			fn(unigram(r))
		}
		if prev != 0 {
			fn(bigram(prev, r))
		}
		prev = r
	}
}

func formatUint(n uint64) string { return strconv.FormatUint(n, 10) }

func parseUint(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
