package surveil_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
)

// BenchmarkScanMessage measures ScanMessage on a message that matches nothing (most do) and on
// one that trips the default lexicon, as the monitor calls it for every message it reads.
func BenchmarkScanMessage(b *testing.B) {
	s, err := scan.Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, text string }{
		{"clean", "Please send the revised term sheet for the bond issue before the close of business today. 谢谢"},
		{"flagged", "Please send the revised term sheet; call me on WhatsApp before the close of business today."},
		// loadgen's text: both term sets of a near rule ("client", "block trade"), never near
		// enough, so every message pays for evaluating the rule and none is flagged.
		{"near", strings.Repeat("Q3 allocation for client 12: confirm the block trade at the agreed price. ", 5)[:300]},
	} {
		m := &capture.Message{Platform: "dingtalk", ID: "m1", Text: tc.text,
			Conversation: capture.Conversation{ID: "c1", Title: "Rates desk"},
			Attachments:  []capture.Attachment{{Name: "term-sheet.pdf"}}}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				surveil.ScanMessage(s, m)
			}
		})
	}
}

// TestScanMessageNamesEachField: findings come field by field (text, title, then attachments
// by their index, empty names skipped but counted), with offsets into their own field.
func TestScanMessageNamesEachField(t *testing.T) {
	s, err := scan.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := &capture.Message{Text: "加我微信", Conversation: capture.Conversation{Title: "whatsapp group"},
		Attachments: []capture.Attachment{{Name: ""}, {Name: "clean.pdf"}, {Name: "from whatsapp.txt"}}}
	var got []string
	for _, f := range surveil.ScanMessage(s, m) {
		text := map[string]string{"text": m.Text, "title": m.Conversation.Title, "file.2": m.Attachments[2].Name}[f.Field]
		if scan.Normalize(text[f.Start:f.End]) != scan.Normalize(f.Term) {
			t.Errorf("%+v: offsets do not cover the term in %q", f, text)
		}
		if len(got) == 0 || got[len(got)-1] != f.Field {
			got = append(got, f.Field)
		}
	}
	if want := []string{"text", "title", "file.2"}; !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	if fs := surveil.ScanMessage(s, &capture.Message{Text: "see you at lunch"}); fs != nil {
		t.Errorf("a clean message gave %+v", fs)
	}
}

// BenchmarkRebuild measures what a restart costs a monitor with behaviour rules: its first
// step, which replays the ledger's messages into the rules (here all of them: first_contact
// remembers without a time bound), against the baseline of scanning the same messages from
// the start with the lexicon (a monitor without a cursor). Compare the two ns/op.
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	l := openLedger(b)
	lv := live(b, scan.DefaultLexiconJSON())
	const n = 4000
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for i := range n {
		sender := fmt.Sprint("u", i%20)
		if i%7 == 0 {
			sender = fmt.Sprint("ext-", i%13)
		}
		say(b, l, fmt.Sprint("r-", i), fmt.Sprint("cid-", i%50), sender, texts[i%len(texts)], t0.Add(time.Duration(i)*time.Second))
	}
	cur := filepath.Join(b.TempDir(), "surveil.cursor")
	first, err := surveil.New(l, surveil.Options{Lexicon: lv, CursorFile: cur})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := first.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	size := l.Size()
	clock := func() time.Time { return t0.Add(n * time.Second) }
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			m, err := surveil.New(l, surveil.Options{Lexicon: lv, Behaviour: restartDetector(b), CursorFile: cur, Now: clock})
			if err != nil {
				b.Fatal(err)
			}
			st, err := m.Step(ctx)
			if err != nil || st.Replayed != n {
				b.Fatalf("%+v %v", st, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/message")
	})
	b.Run("scan-from-start", func(b *testing.B) {
		for b.Loop() {
			m, err := surveil.New(l, surveil.Options{Lexicon: lv})
			if err != nil {
				b.Fatal(err)
			}
			st, err := m.CatchUp(ctx)
			if err != nil || st.Messages != n {
				b.Fatalf("%+v %v", st, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/message")
	})
	if l.Size() != size {
		b.Fatal("the benchmark sealed something")
	}
}
