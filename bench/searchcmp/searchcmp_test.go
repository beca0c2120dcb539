package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// testN is the corpus size of the tests.
const testN = 2000

// TestEnginesFindWhatBruteForceFinds checks the harness on a 4-character term, which every
// engine should answer exactly: the same messages as brute force (for fts5-raw, which does not
// fold Traditional to Simplified, the messages whose raw text contains it).
func TestEnginesFindWhatBruteForceFinds(t *testing.T) {
	ctx := context.Background()
	texts := corpus(1, testN)
	for _, term := range []string{"內幕消息", "内幕消息"} {
		q := query{"4 chars", []string{term}}
		want := newBruteForce(texts).match(q)
		var raw []int
		for i, s := range texts {
			if strings.Contains(s, term) {
				raw = append(raw, i)
			}
		}
		if len(want) == 0 || len(raw) == 0 || len(raw) == len(want) {
			t.Fatalf("corpus of %d has %d messages with %s folded, %d raw: the test needs some of each script", testN, len(want), term, len(raw))
		}
		for _, e := range []engine{&commseal{}, &fts5{folded: true}, &fts5{}, &bleveEngine{}} {
			t.Run(e.name()+"/"+term, func(t *testing.T) {
				defer e.close()
				if p, ok := e.(preparer); ok {
					if err := p.prepare(ctx, texts); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.build(ctx, texts); err != nil {
					t.Fatal(err)
				}
				exp := want
				if f, ok := e.(*fts5); ok && !f.folded {
					exp = raw
				}
				n, err := e.top(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.all(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				if n != len(exp) || !slices.Equal(got, exp) {
					t.Errorf("%s: count %d, hits %v; brute force %v", e.name(), n, got, exp)
				}
			})
		}
	}
}

// TestCompare checks the correctness column's arithmetic.
func TestCompare(t *testing.T) {
	c := compare([]int{1, 2, 2, 5}, []int{1, 2, 3})
	if c != (check{got: 4, missed: 1, extra: 2}) {
		t.Errorf("compare = %+v", c)
	}
}

// TestShortTermsMissed checks that the tables show what an engine misses: FTS5 trigram
// returns nothing for a two-character term that brute force finds.
func TestShortTermsMissed(t *testing.T) {
	var out, progress bytes.Buffer
	err := run(context.Background(), &out, &progress, config{n: testN, nq: len(queries), seed: 1, timeout: time.Minute},
		[]engine{&commseal{}, &fts5{folded: true}})
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(out.String()) {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "微信" && f[1] == "2" {
			line = l
		}
	}
	f := strings.Fields(line)
	// query, class (two words), expected, commseal, fts5 (count, missed, extra)
	if len(f) != 8 || f[3] == "0" || f[4] != "ok" || f[5] != "0" || f[6] != "(-"+f[3] {
		t.Fatalf("row for 微信: %q\n%s", line, out.String())
	}
}
