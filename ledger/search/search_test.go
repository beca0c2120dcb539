package search_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

// A random query, rendered in the query language and evaluated by brute force over messages.
type qnode interface {
	render() string
	match(m *capture.Message) bool
}

type qterm struct{ field, value string }
type qand []qnode
type qor []qnode
type qnot struct{ x qnode }

func (t qterm) render() string {
	v := strconv.Quote(t.value)
	if t.field != "" {
		return t.field + ":" + v
	}
	return v
}

func join(xs []qnode, op string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = "(" + x.render() + ")"
	}
	return strings.Join(parts, op)
}

func (a qand) render() string { return join(a, " ") }
func (o qor) render() string  { return join(o, " OR ") }
func (n qnot) render() string { return "NOT (" + n.x.render() + ")" }

func (a qand) match(m *capture.Message) bool {
	for _, x := range a {
		if !x.match(m) {
			return false
		}
	}
	return true
}

func (o qor) match(m *capture.Message) bool {
	for _, x := range o {
		if x.match(m) {
			return true
		}
	}
	return false
}

func (n qnot) match(m *capture.Message) bool { return !n.x.match(m) }

// match is the documented meaning of a term, read off the message itself.
func (t qterm) match(m *capture.Message) bool {
	v := scan.Normalize(t.value)
	in := func(s string) bool { return v != "" && strings.Contains(scan.Normalize(s), v) }
	party := func(p capture.Party) bool { return p.ID == t.value || p.StaffID == t.value || in(p.Name) }
	switch t.field {
	case "":
		return in(m.Text) || slices.ContainsFunc(m.Attachments, func(a capture.Attachment) bool { return in(a.Name) })
	case "sender":
		return party(m.Sender)
	case "participant":
		return party(m.Sender) || slices.ContainsFunc(m.Mentions, party)
	case "conversation":
		return m.Conversation.ID == t.value || in(m.Conversation.Title)
	case "file":
		return slices.ContainsFunc(m.Attachments, func(a capture.Attachment) bool { return in(a.Name) })
	case "type":
		return slices.ContainsFunc(m.Attachments, func(a capture.Attachment) bool {
			return strings.HasPrefix(strings.ToLower(a.MediaType), strings.ToLower(t.value))
		})
	case "kind":
		return m.Kind == t.value
	}
	panic("field " + t.field)
}

// part returns 1 to 4 runes of s from a random place.
func part(r *rand.Rand, s string) string {
	rs := []rune(s)
	i := r.IntN(len(rs))
	j := min(len(rs), i+1+r.IntN(4))
	return string(rs[i:j])
}

func randomTerm(r *rand.Rand) qnode {
	for {
		var t qterm
		switch r.IntN(10) {
		case 0:
			s := r.IntN(len(names))
			t = qterm{"sender", []string{fmt.Sprintf("u%d", s), fmt.Sprintf("staff-%d", s), part(r, names[s])}[r.IntN(3)]}
		case 1:
			s := r.IntN(len(names))
			t = qterm{"participant", []string{fmt.Sprintf("u%d", s), part(r, names[s])}[r.IntN(2)]}
		case 2:
			c := r.IntN(len(titles))
			t = qterm{"conversation", fmt.Sprintf("cid-%d", c)}
			if titles[c] != "" && r.IntN(2) == 0 {
				t.value = part(r, titles[c])
			}
		case 3:
			f := files[r.IntN(len(files))]
			t = []qterm{{"file", part(r, f.name)}, {"type", f.typ[:1+r.IntN(len(f.typ))]}}[r.IntN(2)]
		case 4:
			t = qterm{"kind", kinds[r.IntN(len(kinds))]}
		default:
			w := words[r.IntN(len(words))]
			if r.IntN(2) == 0 {
				w = part(r, w)
			}
			t = qterm{"", w}
		}
		if t.field == "kind" || t.field == "type" || scan.Normalize(t.value) != "" {
			return t
		}
	}
}

func randomQuery(r *rand.Rand, depth int) qnode {
	if depth == 0 || r.IntN(3) == 0 {
		return randomTerm(r)
	}
	n := 2 + r.IntN(2)
	xs := make([]qnode, n)
	for i := range xs {
		xs[i] = randomQuery(r, depth-1)
	}
	switch r.IntN(4) {
	case 0:
		return qor(xs)
	case 1:
		return qnot{xs[0]}
	case 2:
		return qand{xs[0], qnot{xs[1]}}
	}
	return qand(xs)
}

// expect is the brute-force answer: every live message matching q, in (sent, index) order.
func expect(msgs map[uint64]*capture.Message, q search.Query, n qnode) []uint64 {
	var out []uint64
	for i, m := range msgs {
		switch {
		case n != nil && !n.match(m),
			len(q.Conversations) > 0 && !slices.Contains(q.Conversations, m.Conversation.ID),
			len(q.Senders) > 0 && !slices.Contains(q.Senders, m.Sender.ID) && !slices.Contains(q.Senders, m.Sender.StaffID),
			len(q.Kinds) > 0 && !slices.Contains(q.Kinds, m.Kind),
			!q.From.IsZero() && m.SentAt.Before(q.From),
			!q.To.IsZero() && !m.SentAt.Before(q.To),
			!q.CapturedFrom.IsZero() && m.CapturedAt.Before(q.CapturedFrom),
			!q.CapturedTo.IsZero() && !m.CapturedAt.Before(q.CapturedTo):
			continue
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b uint64) int { return cmp.Or(msgs[a].SentAt.Compare(msgs[b].SentAt), cmp.Compare(a, b)) })
	return out
}

func hitIndexes(r *search.Result) []uint64 {
	out := make([]uint64, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = h.Index
	}
	return out
}

// TestQueriesEqualReadingEveryMessage: 1,000 random queries (Chinese of 1 to 4 characters in
// both scripts, English, phrases, fields, AND / OR / NOT, filters, time ranges, pages) give
// exactly what reading and folding every message gives, on an index built, reopened from its
// file, and then followed as more messages arrive.
func TestQueriesEqualReadingEveryMessage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer func() { e.Close() }()
	r := rand.New(rand.NewPCG(7, 9))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	msgs := fill(t, e.Ledger, r, 1500, start)
	dir := t.TempDir()
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, ix.Close())
	ix, err = search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	defer ix.Close()
	acc := e.Access("tester", "brute-force comparison")

	for round := range 1000 {
		if round == 500 { // the index follows what arrives after it was opened
			for i, m := range fill(t, e.Ledger, r, 500, start.AddDate(0, 2, 0)) {
				msgs[i] = m
			}
		}
		n := randomQuery(r, 3)
		q := search.Query{Text: n.render(), Limit: 1 + r.IntN(50)}
		switch r.IntN(7) {
		case 4:
			q.CapturedFrom = start.Add(time.Duration(r.IntN(5*24)) * time.Hour)
			if r.IntN(2) == 0 {
				q.CapturedTo = q.CapturedFrom.Add(time.Duration(1+r.IntN(10*24)) * time.Hour)
			}
		case 0:
			q.Conversations = []string{fmt.Sprintf("cid-%d", r.IntN(len(titles)))}
		case 1:
			q.Senders = []string{fmt.Sprintf("u%d", r.IntN(len(names))), fmt.Sprintf("staff-%d", r.IntN(len(names)))}
		case 2:
			q.Kinds = []string{kinds[r.IntN(len(kinds))]}
		case 3:
			q.From = start.Add(time.Duration(r.IntN(5*24)) * time.Hour)
			q.To = q.From.Add(time.Duration(1+r.IntN(10*24)) * time.Hour)
		}
		want := expect(msgs, q, n)
		q.Offset = r.IntN(len(want) + 1)
		res, err := ix.Search(ctx, acc, q)
		require.NoError(t, err, q.Text)
		if len(want) != res.Total {
			all := q
			all.Offset, all.Limit = 0, search.MaxLimit
			res, err := ix.Search(ctx, acc, all)
			require.NoError(t, err)
			for _, i := range hitIndexes(res) {
				if !slices.Contains(want, i) {
					t.Logf("extra %d: %+v", i, msgs[i])
				}
			}
			for _, i := range want {
				if !slices.Contains(hitIndexes(res), i) {
					t.Logf("missing %d: %+v", i, msgs[i])
				}
			}
		}
		require.Equal(t, len(want), res.Total, "round %d: %s", round, q.Text)
		page := append([]uint64{}, want[q.Offset:min(len(want), q.Offset+q.Limit)]...)
		require.Equal(t, page, hitIndexes(res), "round %d: %s", round, q.Text)
		for _, h := range res.Hits {
			m := msgs[h.Index]
			require.Equal(t, m.Conversation.ID, h.Conversation)
			require.Equal(t, m.Sender.ID, h.Sender)
			require.True(t, m.SentAt.Equal(h.Sent))
		}
	}
}

// TestShortChineseTermsAndFolding: the cases: one and two characters, either script,
// full width, case, spacing.
func TestShortChineseTermsAndFolding(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer e.Close()
	texts := []string{"加我微信", "報價幾多", "去香港", "有內幕消息", "Call me on ＷｈａｔｓＡｐｐ", "just text"}
	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	idx := map[string]uint64{}
	for i, s := range texts {
		m := message(rand.New(rand.NewPCG(1, uint64(i))), i, at.Add(time.Duration(i)*time.Minute))
		m.Text, m.Attachments = s, nil
		rc, err := e.Append(ctx, m)
		require.NoError(t, err)
		idx[s] = rc.Index
	}
	ix, err := search.Open(ctx, e.Ledger, search.Options{})
	require.NoError(t, err)
	defer ix.Close()
	acc := e.Access("tester", "folding")
	for q, want := range map[string][]string{
		"微信":                  {"加我微信"},
		"報價":                  {"報價幾多"},
		"报价":                  {"報價幾多"},
		"港":                   {"去香港"},
		"「内幕」":                {"有內幕消息"},
		"內幕":                  {"有內幕消息"},
		`"whats app"`:         {"Call me on ＷｈａｔｓＡｐｐ"},
		"WHATSAPP":            {"Call me on ＷｈａｔｓＡｐｐ"},
		"微信 OR 港":             {"加我微信", "去香港"},
		"NOT 微信 NOT 港 NOT 報價": {"有內幕消息", "Call me on ＷｈａｔｓＡｐｐ", "just text"},
		"t":                   {"Call me on ＷｈａｔｓＡｐｐ", "just text"},
	} {
		res, err := ix.Search(ctx, acc, search.Query{Text: q})
		require.NoError(t, err, q)
		got := []uint64{}
		for _, w := range want {
			got = append(got, idx[w])
		}
		require.Equal(t, got, hitIndexes(res), q)
	}
}

// TestBadQueriesAreRefusedAndNotRecorded: each bad query gets an error naming the problem,
// wrapping ErrQuery, and nothing is sealed for it.
func TestBadQueriesAreRefusedAndNotRecorded(t *testing.T) {
	ctx := context.Background()
	e, ix := filledIndex(t, 20)
	size := e.Size()
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		q    search.Query
		want string
	}{
		{search.Query{Text: `"unclosed`}, "malformed"},
		{search.Query{Text: `(微信`}, `expected ")"`},
		{search.Query{Text: `微信)`}, "unexpected"},
		{search.Query{Text: `OR 微信`}, "expected a term"},
		{search.Query{Text: `微信 AND`}, "expected a term"},
		{search.Query{Text: `NOT`}, "expected a term"},
		{search.Query{Text: `"!!!"`}, "no letters or digits"},
		{search.Query{Text: `sender:`}, "field without a value"},
		{search.Query{Text: `"bad \q escape"`}, "malformed"},
		{search.Query{Text: strings.Repeat("(", 40) + "x" + strings.Repeat(")", 40)}, "nested deeper"},
		{search.Query{Text: strings.Repeat("NOT ", 40) + "x"}, "nested deeper"},
		{search.Query{Text: strings.Repeat("x ", 65)}, "more than 64 terms"},
		{search.Query{Text: strings.Repeat("x", search.MaxQueryLen+1)}, "longer than"},
		{search.Query{Text: "\xff"}, "UTF-8"},
		{search.Query{Offset: -1}, "negative offset"},
		{search.Query{Limit: search.MaxLimit + 1}, "limit"},
		{search.Query{From: t0, To: t0}, "not before"},
		{search.Query{CapturedFrom: t0.Add(time.Hour), CapturedTo: t0}, "captured from"},
		{search.Query{Senders: []string{""}}, "empty filter"},
		{search.Query{Kinds: make([]string, search.MaxFilters+1)}, "filter values"},
	} {
		_, err := ix.Search(ctx, e.Access("tester", "bad input"), c.q)
		require.ErrorIs(t, err, search.ErrQuery, "%+v", c.q)
		require.ErrorContains(t, err, c.want)
	}
	require.Equal(t, size, e.Size(), "nothing recorded for refused queries")
	_, err := ix.Search(ctx, e.Access("", ""), search.Query{Text: "x"})
	require.ErrorContains(t, err, "who and why", "a query nobody answers for is refused")
	require.Equal(t, size, e.Size())
}

// TestASearchIsSealedBeforeItAnswers: the access entry names who, why and the tree size; the
// query is not readable in it.
func TestASearchIsSealedBeforeItAnswers(t *testing.T) {
	ctx := context.Background()
	e, ix := filledIndex(t, 50)
	size := e.Size()
	res, err := ix.Search(ctx, e.Access("alice@compliance", "SFC 2026-117"), search.Query{Text: "騰訊 OR WhatsApp"})
	require.NoError(t, err)
	require.Equal(t, size, res.Size)
	require.Equal(t, size+1, e.Size())
	en, err := e.Get(ctx, size)
	require.NoError(t, err)
	body := string(en.Body)
	require.Contains(t, body, `"who":"alice@compliance"`)
	require.Contains(t, body, `"why":"SFC 2026-117"`)
	require.Contains(t, body, `"op":"query"`)
	require.Contains(t, body, fmt.Sprintf(`"to":%d`, size))
	require.NotContains(t, body, "WhatsApp")
	require.NotContains(t, body, "騰訊")
}

// errRecorder fails every recording.
type errRecorder struct{}

func (errRecorder) Query(context.Context, string, uint64) error { return fmt.Errorf("disk full") }

// TestNoHitsWithoutARecord: a query whose access cannot be sealed returns nothing.
func TestNoHitsWithoutARecord(t *testing.T) {
	ctx := context.Background()
	_, ix := filledIndex(t, 5)
	res, err := ix.Search(ctx, errRecorder{}, search.Query{})
	require.ErrorContains(t, err, "disk full")
	require.Nil(t, res)
}

var _ search.Recorder = (*ledger.Accessor)(nil)
