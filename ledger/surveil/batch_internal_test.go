package surveil

import (
	"strings"
	"testing"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/watchlist"
	"github.com/commseal/commseal/scan"
)

// BenchmarkStepScan measures what the monitor spends scanning a step of 4,096 of loadgen's
// messages (300 bytes holding both term sets of a near rule; 1 in 50 flagged), together
// (stepBatch, as Step does) and one at a time (ScanMessage), per message, with the default
// lexicon and with 10,000 more terms.
func BenchmarkStepScan(b *testing.B) {
	def, err := scan.Default()
	if err != nil {
		b.Fatal(err)
	}
	// loadgen's -lexicon-terms 10000: the default lexicon and 10,000 terms that never occur.
	lex := watchlist.Lexicon(10000)
	large, err := scan.Compile(lex)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("Q3 allocation for client 12: confirm the block trade at the agreed price. ", 5)[:300]
	flagged := text[:len(text)-24] + " call me on WhatsApp"
	msgs := make([]*capture.Message, 4096)
	for i := range msgs {
		msgs[i] = &capture.Message{Platform: "dingtalk", ID: "m", Text: text, Conversation: capture.Conversation{ID: "c"}}
		if i%50 == 0 {
			msgs[i].Text = flagged
		}
	}
	for _, lx := range []struct {
		name string
		s    *scan.Scanner
	}{{"default", def}, {"terms=10000", large}} {
		s := lx.s
		b.Run(lx.name+"/batch", func(b *testing.B) {
			var sb stepBatch
			for b.Loop() {
				for i, m := range msgs {
					sb.add(uint64(i), m)
				}
				sb.scan(s, func(uint64, *capture.Message, []Finding) {})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
		})
		b.Run(lx.name+"/single", func(b *testing.B) {
			for b.Loop() {
				for _, m := range msgs {
					ScanMessage(s, m)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
		})
	}
}
