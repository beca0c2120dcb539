package surveil_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openLedger(t testing.TB) *ledger.Ledger {
	t.Helper()
	return openLedgerWith(t, nil)
}

// openLedgerWith opens a ledger that tells appended (ledger.Options.Appended) what it seals.
func openLedgerWith(t testing.TB, appended func(uint64, seal.Kind, *capture.Message)) *ledger.Ledger {
	t.Helper()
	skey, _, err := seal.GenerateSigningKey("commseal.test/surveil")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	l, err := ledger.Open(context.Background(), memstore.New(), ledger.Options{Signing: keys, CheckpointEvery: 1000,
		CheckpointInterval: time.Hour, Now: func() time.Time { return now }, Appended: appended,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

var texts = []string{"加我微信再講", "buy 500 0700.HK", "call me on WhatsApp", "報價幾多", "delete this chat", "noted"}

// appendMessages seals n messages cycling through texts; the third has a flagged file name too.
func appendMessages(t *testing.T, l *ledger.Ledger, n int, at time.Time) map[uint64]*capture.Message {
	t.Helper()
	out := map[uint64]*capture.Message{}
	for i := range n {
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprintf("m-%d-%d", at.Unix(), i),
			Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%d", i%3), Type: capture.ConversationGroup, Title: "Desk"},
			Sender:       capture.Party{ID: "u1", Name: "Trader"}, SentAt: at.Add(time.Duration(i) * time.Minute),
			Kind: capture.KindText, Text: texts[i%len(texts)], Raw: []byte(`{}`)}
		if i%len(texts) == 1 {
			m.Attachments = []capture.Attachment{{Name: "whatsapp export.txt", MediaType: "text/plain"}}
		}
		rc, err := l.Append(context.Background(), m)
		require.NoError(t, err)
		out[rc.Index] = m
	}
	return out
}

func live(t testing.TB, lexicon []byte) *scan.Live {
	t.Helper()
	lex, err := scan.ParseLexicon(lexicon)
	require.NoError(t, err)
	s, err := scan.Compile(lex)
	require.NoError(t, err)
	lv, err := scan.NewLive(s)
	require.NoError(t, err)
	return lv
}

// annotations reads every findings annotation in the ledger, decrypted.
func annotations(t *testing.T, l *ledger.Ledger) []*surveil.Annotation {
	t.Helper()
	var out []*surveil.Annotation
	require.NoError(t, l.Derive("test").Scan(context.Background(), 0, l.Size(), func(e *ledger.Entry, err error) error {
		if err != nil || e.Leaf.Kind != seal.KindAnnotation {
			return nil
		}
		a, err := surveil.ParseAnnotation(e.Record.Body)
		if err == nil {
			out = append(out, a)
		}
		return nil
	}))
	return out
}

func catchUp(t *testing.T, m *surveil.Monitor) surveil.Stats {
	t.Helper()
	st, err := m.CatchUp(context.Background())
	require.NoError(t, err)
	return st
}

// TestCatchUpAddsUpItsSteps: CatchUp reads from the cursor to the end of the ledger in
// batches and reports the whole run; a second call finds nothing new.
func TestCatchUpAddsUpItsSteps(t *testing.T) {
	l := openLedger(t)
	appendMessages(t, l, 60, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	lv := live(t, scan.DefaultLexiconJSON())
	m, err := surveil.New(l, surveil.Options{Lexicon: lv, Batch: 16})
	require.NoError(t, err)
	size := l.Size()
	st, err := m.CatchUp(context.Background())
	require.NoError(t, err)
	assert.Equal(t, lv.Scanner().Version(), st.Version)
	assert.Equal(t, uint64(0), st.From)
	assert.GreaterOrEqual(t, st.To, size, "it read past every message")
	assert.Equal(t, 60, st.Messages)
	assert.Positive(t, st.Flagged)
	assert.Equal(t, st.Flagged, st.Sealed, "one annotation per flagged message")
	again, err := m.CatchUp(context.Background())
	require.NoError(t, err)
	assert.Equal(t, st.To, again.From)
	assert.Equal(t, again.From, again.To)
	assert.Zero(t, again.Messages)
}

// TestEveryMessageIsScannedOncePerLexiconVersion: each flagged message gets one annotation
// naming the lexicon version, its findings with field and offsets into that field; a second
// monitor (a restart without a cursor) seals nothing; a new lexicon version runs over history
// and seals its own findings.
func TestEveryMessageIsScannedOncePerLexiconVersion(t *testing.T) {
	l := openLedger(t)
	msgs := appendMessages(t, l, 60, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	lv := live(t, scan.DefaultLexiconJSON())
	m, err := surveil.New(l, surveil.Options{Lexicon: lv, Batch: 16})
	require.NoError(t, err)
	st := catchUp(t, m)
	require.Equal(t, 60, st.Messages)
	require.Equal(t, 40, st.Flagged, "微信, whatsapp (text or file name), delete this chat")
	require.Equal(t, 40, st.Sealed)

	got := annotations(t, l)
	require.Len(t, got, 40)
	for _, a := range got {
		msg := msgs[a.Message.Index]
		require.NotNil(t, msg)
		require.Equal(t, msg.ID, a.Message.ID)
		require.Equal(t, lv.Scanner().Version(), a.Lexicon.Version)
		for _, f := range a.Findings {
			text := msg.Text
			if strings.HasPrefix(f.Field, "file.") {
				text = msg.Attachments[0].Name
			}
			require.Equal(t, scan.Normalize(f.Term), scan.Normalize(text[f.Start:f.End]), "%+v", f)
		}
	}

	again, err := surveil.New(l, surveil.Options{Lexicon: lv})
	require.NoError(t, err)
	size := l.Size()
	require.Zero(t, catchUp(t, again).Sealed)
	require.Equal(t, size, l.Size(), "nothing sealed twice")

	_, err = lv.Reload([]byte(`{"name":"quotes","rules":[{"id":"q","category":"pricing","severity":"low","terms":["報價"]}]}`))
	require.NoError(t, err)
	st = catchUp(t, m)
	require.Equal(t, 10, st.Sealed, "the new version ran over history")
	require.Len(t, annotations(t, l), 50)
}

// TestAResumedMonitorSealsNothingTwice: a step that stops part way (the alert sink fails) leaves
// the cursor where it was; the next monitor, from the cursor file, finishes: every flagged
// message has exactly one annotation, and every finding is reported (those reported before the
// failure again, marked not fresh), none lost.
func TestAResumedMonitorSealsNothingTwice(t *testing.T) {
	l := openLedger(t)
	appendMessages(t, l, 30, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	lv := live(t, scan.DefaultLexiconJSON())
	cur := filepath.Join(t.TempDir(), "surveil.cursor")
	reported := map[uint64]int{}
	calls := 0
	m, err := surveil.New(l, surveil.Options{Lexicon: lv, CursorFile: cur, OnSealed: func(_ context.Context, s *surveil.Sealed) error {
		calls++
		if calls == 5 {
			return errors.New("outbox full")
		}
		reported[s.MessageAt]++
		return nil
	}})
	require.NoError(t, err)
	_, err = m.Step(context.Background())
	require.ErrorContains(t, err, "outbox full")
	require.Zero(t, m.Position(lv.Scanner().Version()))
	_, err = os.Stat(cur)
	require.ErrorIs(t, err, os.ErrNotExist, "no cursor written for an unfinished step")

	m2, err := surveil.New(l, surveil.Options{Lexicon: lv, CursorFile: cur, OnSealed: func(_ context.Context, s *surveil.Sealed) error {
		reported[s.MessageAt]++
		return nil
	}})
	require.NoError(t, err)
	catchUp(t, m2)
	require.Len(t, annotations(t, l), 20)
	require.Len(t, reported, 20, "every finding reported")
	again := 0
	for _, n := range reported {
		again += n - 1
	}
	require.Equal(t, 4, again, "the four reported before the failure, once more")
	require.Equal(t, l.Size(), m2.Position(lv.Scanner().Version()), "the cursor is past everything")

	m3, err := surveil.New(l, surveil.Options{Lexicon: lv, CursorFile: cur})
	require.NoError(t, err)
	require.Equal(t, m2.Position(lv.Scanner().Version()), m3.Position(lv.Scanner().Version()), "read back from the file")
}

// TestFindingsAreShreddedWithTheirMessage: an annotation is encrypted under its message's data
// key, so retention that shreds the message's scope makes the annotation unreadable too.
func TestFindingsAreShreddedWithTheirMessage(t *testing.T) {
	l := openLedger(t)
	appendMessages(t, l, 6, time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC))
	m, err := surveil.New(l, surveil.Options{Lexicon: live(t, scan.DefaultLexiconJSON())})
	require.NoError(t, err)
	require.Equal(t, 4, catchUp(t, m).Sealed)
	_, err = l.ApplyRetention(context.Background(), ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1y", Keep: ledger.Period{Years: 1}}}},
		ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	shredded := 0
	require.NoError(t, l.Derive("test").Scan(context.Background(), 0, l.Size(), func(e *ledger.Entry, err error) error {
		if e.Leaf.Kind == seal.KindAnnotation {
			require.ErrorIs(t, err, ledger.ErrShredded)
			shredded++
		}
		return nil
	}))
	require.Equal(t, 4, shredded)
}

// TestBadCursorAndOptions: a damaged cursor file and a monitor without a lexicon are refused.
func TestBadCursorAndOptions(t *testing.T) {
	l := openLedger(t)
	_, err := surveil.New(l, surveil.Options{})
	require.ErrorContains(t, err, "Lexicon is required")
	cur := filepath.Join(t.TempDir(), "c")
	for _, b := range []string{"{", `{"format":"other","versions":{}}`, `{"format":"commseal.surveil.cursor/v1"}`} {
		require.NoError(t, os.WriteFile(cur, []byte(b), 0o600))
		_, err = surveil.New(l, surveil.Options{Lexicon: live(t, scan.DefaultLexiconJSON()), CursorFile: cur})
		require.ErrorIs(t, err, surveil.ErrBadCursor, b)
	}
}

// TestNewRecordAndParseAnnotation: the helper for library users makes a record the ledger
// accepts, and bad annotation bodies are refused with a clear error.
func TestNewRecordAndParseAnnotation(t *testing.T) {
	m := &capture.Message{Platform: "dingtalk", Tenant: "t", ID: strings.Repeat("x", capture.MaxIDLen),
		Conversation: capture.Conversation{ID: "c", Type: capture.ConversationDirect}, SentAt: time.Unix(1, 0)}
	lex := surveil.Lexicon{Name: "n", Version: "sha256:00"}
	f := []surveil.Finding{{Rule: "r", Category: "c", Severity: scan.High, Term: "t", Field: "text", Start: 0, End: 1}}
	rec, err := surveil.NewRecord(m, 3, lex, f, time.Unix(2, 0))
	require.NoError(t, err)
	require.NoError(t, rec.Validate(), "a long message id is hashed into the record id")
	a, err := surveil.ParseAnnotation(rec.Body)
	require.NoError(t, err)
	require.Equal(t, uint64(3), a.Message.Index)
	_, err = surveil.NewRecord(m, 3, lex, nil, time.Unix(2, 0))
	require.Error(t, err)
	_, err = surveil.NewRecord(m, 3, surveil.Lexicon{}, f, time.Unix(2, 0))
	require.Error(t, err)
	for _, b := range []string{`x`, `{"schema":"other"}`, `{"schema":"commseal.findings/v1","lexicon":{"version":"v"},"message":{"id":"m"},"findings":[]}`,
		`{"schema":"commseal.findings/v1","lexicon":{"version":"v"},"message":{"id":"m"},"findings":[{"rule":"r","field":"text","start":5,"end":1}]}`} {
		_, err := surveil.ParseAnnotation([]byte(b))
		require.ErrorIs(t, err, surveil.ErrBadAnnotation, b)
	}
}
