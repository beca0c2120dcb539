package surveil_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/watchlist"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
)

// batchTexts are the pieces the messages of TestBatchedMonitorSealsWhatScanMessageFinds are
// made of: clean chat, lexicon hits (Latin, Chinese, full-width, Traditional), near rules in
// and out of range, replacement and zero-width characters. (The ledger takes no invalid UTF-8;
// scan's own tests hold batches of it to the reference.)
var batchTexts = []string{
	"Q3 allocation for client 12: confirm the block trade at the agreed price. ",
	"Q3 allocation for client 12: the block trade",
	"call me on WhatsApp",
	"ｗｈａｔｓａｐｐ me",
	"加我微信再講",
	"加我微信再讲",
	"delete this chat",
	"buy 500 before the results announcement",
	"客戶 大單",
	"noted, thanks",
	"see you at lunch 🍜",
	"w.h.a.t.s.a.p.p",
	"\uFFFD broken � bytes WhatsApp\u200b",
	"報價幾多",
	"",
}

// batchMessages makes n messages from batchTexts, some of them long (scanned by themselves in
// a batch), with titles and attachment names, some empty.
func batchMessages(n int, seed uint64) []*capture.Message {
	r := rand.New(rand.NewPCG(seed, 7))
	piece := func(k int) string {
		var b strings.Builder
		for range k {
			b.WriteString(batchTexts[r.IntN(len(batchTexts))])
			b.WriteByte(' ')
		}
		return b.String()
	}
	var out []*capture.Message
	for i := range n {
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprintf("b-%d", i),
			Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%d", i%5), Type: capture.ConversationGroup},
			Sender:       capture.Party{ID: "u1"}, SentAt: time.Date(2026, 10, 1, 9, 0, i, 0, time.UTC),
			Kind: capture.KindText, Text: piece(r.IntN(5)), Raw: []byte(`{}`)}
		switch i % 7 {
		case 3:
			m.Text = piece(400) // longer than a batch lane takes
		case 5:
			m.Text = "" // an attachment only
		}
		if r.IntN(3) == 0 {
			m.Conversation.Title = piece(1)
		}
		for range r.IntN(3) {
			m.Attachments = append(m.Attachments, capture.Attachment{Name: strings.TrimSpace(piece(r.IntN(2)))})
		}
		if m.Text == "" && len(m.Attachments) == 0 {
			m.Text = "noted"
		}
		out = append(out, m)
	}
	return out
}

// generatedLexicon is the watch list of n terms (large enough for a normalizing batch to take
// its interleaved-lane path) with a rule of two terms that occur in the tests' messages.
func generatedLexicon(t *testing.T, n int) *scan.Live {
	t.Helper()
	lex := watchlist.Lexicon(n)
	lex.Rules = append(lex.Rules, scan.Rule{ID: "occurring", Category: "generated", Severity: scan.Low, Terms: []string{"再講", "幾多"}})
	s, err := scan.Compile(lex)
	require.NoError(t, err)
	lv, err := scan.NewLive(s)
	require.NoError(t, err)
	return lv
}

// TestBatchedMonitorSealsWhatScanMessageFinds: the monitor scans a step's messages together
// (scan.Scanner.ScanBatch); the annotations it seals, and what it reports, in order, are byte
// for byte what scanning each message by itself with ScanMessage gives, with the default
// lexicon (one message at a time inside the batch), a 10,000-term one (interleaved lanes) and
// an exact one (raw lanes); messages come from the feed and from reading the ledger back.
func TestBatchedMonitorSealsWhatScanMessageFinds(t *testing.T) {
	lexicons := map[string]func(t *testing.T) *scan.Live{
		"default":     func(t *testing.T) *scan.Live { return live(t, scan.DefaultLexiconJSON()) },
		"terms=10000": func(t *testing.T) *scan.Live { return generatedLexicon(t, 10000) },
		"exact": func(t *testing.T) *scan.Live {
			return live(t, []byte(`{"name":"exact","rules":[
				{"id":"wa","category":"off_channel","severity":"high","exact":true,"terms":["WhatsApp","微信"]},
				{"id":"cb","category":"front_running","severity":"medium","exact":true,"word_boundary":true,
				 "near":{"a":["client"],"b":["block trade"],"within":15}}]}`))
		},
	}
	for name, mk := range lexicons {
		t.Run(name, func(t *testing.T) {
			lv := mk(t)
			s := lv.Scanner()
			lex := surveil.Lexicon{Name: s.Name(), Version: s.Version()}
			now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
			feed := surveil.NewFeed(200) // holds a part of the messages: the rest are read back
			l := openLedgerWith(t, feed.Appended)
			msgs := batchMessages(300, 1)
			at := map[uint64]*capture.Message{}
			for _, m := range msgs {
				rc, err := l.Append(context.Background(), m)
				require.NoError(t, err)
				at[rc.Index] = m
			}
			type want struct {
				at   uint64
				body string
			}
			var expect []want
			for i := range l.Size() {
				m := at[i]
				if m == nil {
					continue
				}
				if fs := surveil.ScanMessage(s, m); len(fs) > 0 {
					rec, err := surveil.NewRecord(m, i, lex, fs, now)
					require.NoError(t, err)
					expect = append(expect, want{i, string(rec.Body)})
				}
			}
			require.Greater(t, len(expect), 50, "the messages trip the lexicon")
			require.Less(t, len(expect), len(msgs), "and some do not")

			var reported []want
			mon, err := surveil.New(l, surveil.Options{Lexicon: lv, Batch: 97, Feed: feed, Now: func() time.Time { return now },
				OnSealed: func(_ context.Context, sd *surveil.Sealed) error {
					rec, err := surveil.NewRecord(sd.Message, sd.MessageAt, sd.Lexicon, sd.Findings, now)
					if err != nil {
						return err
					}
					reported = append(reported, want{sd.MessageAt, string(rec.Body)})
					return nil
				}})
			require.NoError(t, err)
			st := catchUp(t, mon)
			require.Equal(t, len(msgs), st.Messages)
			require.Positive(t, st.Fed, "some messages came from the feed")
			require.Less(t, st.Fed, st.Messages, "and some were read back")
			require.Equal(t, expect, reported, "reported in ledger order, as ScanMessage finds")

			var sealed []want
			require.NoError(t, l.Derive("test").Scan(context.Background(), 0, l.Size(), func(e *ledger.Entry, err error) error {
				if err != nil || e.Leaf.Kind != seal.KindAnnotation {
					return err
				}
				a, err := surveil.ParseAnnotation(e.Record.Body)
				require.NoError(t, err)
				sealed = append(sealed, want{a.Message.Index, string(e.Record.Body)})
				return nil
			}))
			slices.SortFunc(sealed, func(x, y want) int { return cmp.Compare(x.at, y.at) }) // sealed concurrently
			require.Equal(t, expect, sealed, "sealed byte for byte as ScanMessage's findings make them")
		})
	}
}
