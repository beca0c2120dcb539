package main

import (
	"strings"

	"github.com/commseal/commseal/scan"
)

// A query is one or more terms that must all occur in a message (AND); a term may be a
// phrase of several words.
type query struct {
	class string
	terms []string
}

func (q query) String() string {
	var b strings.Builder
	for i, t := range q.terms {
		if i > 0 {
			b.WriteString(" AND ")
		}
		if strings.Contains(t, " ") {
			b.WriteString(`"` + t + `"`)
		} else {
			b.WriteString(t)
		}
	}
	return b.String()
}

// Query classes, in the order the tables show them.
var classes = []string{"1 char", "2 chars", "3 chars", "4 chars", "en word", "en phrase", "AND"}

// queries is the list every engine answers: Chinese terms of 1 to 4 characters in both
// scripts, English words and phrases, and two-term ANDs.
var queries = []query{
	{"1 char", []string{"港"}}, {"1 char", []string{"價"}}, {"1 char", []string{"价"}},
	{"2 chars", []string{"微信"}}, {"2 chars", []string{"報價"}}, {"2 chars", []string{"报价"}}, {"2 chars", []string{"內幕"}},
	{"3 chars", []string{"報價單"}}, {"3 chars", []string{"报价单"}}, {"3 chars", []string{"成交量"}},
	{"4 chars", []string{"內幕消息"}}, {"4 chars", []string{"内幕消息"}}, {"4 chars", []string{"私人電話"}},
	{"en word", []string{"price"}}, {"en word", []string{"WhatsApp"}}, {"en word", []string{"offline"}}, {"en word", []string{"volatile"}},
	{"en phrase", []string{"call me"}}, {"en phrase", []string{"take this offline"}}, {"en phrase", []string{"check the price"}},
	{"AND", []string{"報價", "0700.HK"}}, {"AND", []string{"微信", "call"}}, {"AND", []string{"buy", "TSLA"}},
}

// fold is how commseal sees text: scan.Normalize (width, case, Traditional to Simplified,
// everything but letters and digits dropped).
func fold(s string) string { return scan.Normalize(s) }

// foldWords folds each space-separated word of s and keeps the spaces between them, for an
// engine that tokenizes words itself (bleve): the same folding, without gluing words together.
func foldWords(s string) string {
	var ws []string
	for _, w := range strings.Fields(s) {
		if f := fold(w); f != "" {
			ws = append(ws, f)
		}
	}
	return strings.Join(ws, " ")
}

// bruteForce is the reference: the messages whose folded text contains every folded term.
type bruteForce struct{ folded []string }

func newBruteForce(texts []string) *bruteForce {
	b := &bruteForce{folded: make([]string, len(texts))}
	for i, t := range texts {
		b.folded[i] = fold(t)
	}
	return b
}

// match returns the numbers of the messages q should find.
func (b *bruteForce) match(q query) []int {
	terms := make([]string, len(q.terms))
	for i, t := range q.terms {
		terms[i] = fold(t)
	}
	var out []int
next:
	for i, s := range b.folded {
		for _, t := range terms {
			if !strings.Contains(s, t) {
				continue next
			}
		}
		out = append(out, i)
	}
	return out
}
