package capture_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
	"github.com/stretchr/testify/require"
)

type memSink struct {
	mu   sync.Mutex
	seen map[capture.Identity]uint64
	n    uint64
	fail error
}

func (s *memSink) Append(_ context.Context, m *capture.Message) (capture.Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return capture.Receipt{}, s.fail
	}
	if s.seen == nil {
		s.seen = map[capture.Identity]uint64{}
	}
	if i, ok := s.seen[m.Identity()]; ok {
		return capture.Receipt{Index: i, Duplicate: true}, nil
	}
	s.seen[m.Identity()] = s.n
	s.n++
	return capture.Receipt{Index: s.n - 1}, nil
}

func parseJSON(raw []byte) (*capture.Message, error) {
	var v struct{ ID, Text string }
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return &capture.Message{Platform: "test", Tenant: "t", ID: v.ID, Text: v.Text, Kind: capture.KindText,
		Raw: append([]byte(nil), raw...)}, nil
}

func TestImporterSkipsBadLinesAndKeepsTheRest(t *testing.T) {
	in := strings.Join([]string{
		`{"ID":"a","Text":"hello"}`,
		`{"ID":"b",`, // malformed
		``,
		`{"ID":"a","Text":"hello again"}`, // duplicate id
		`{"ID":"","Text":"no id"}`,        // invalid: empty id
		"{\"ID\":\"c\",\"Text\":\"x\"}\r", // CRLF
		`{"ID":"d","Text":"` + strings.Repeat("x", 200) + `"}`, // too long
		`{"ID":"e"}`, // no trailing newline
	}, "\n")
	im := capture.Importer{Parse: parseJSON, MaxLine: 100}
	sink := &memSink{}
	st, err := im.Import(context.Background(), strings.NewReader(in), sink)
	require.NoError(t, err)
	require.Equal(t, 7, st.Lines)
	require.Equal(t, 3, st.Stored) // a, c, e
	require.Equal(t, 1, st.Duplicates)
	require.Len(t, st.Skipped, 3)
	require.Equal(t, 2, st.Skipped[0].Line)
	require.Equal(t, 5, st.Skipped[1].Line)
	require.ErrorIs(t, st.Skipped[1], capture.ErrInvalidMessage)
	require.Equal(t, 7, st.Skipped[2].Line)
	require.ErrorIs(t, st.Skipped[2], capture.ErrLineTooLong)
	require.Contains(t, sink.seen, capture.Identity{Platform: "test", Tenant: "t", ID: "e"})
}

func TestImporterStopsOnSinkError(t *testing.T) {
	boom := errors.New("disk full")
	im := capture.Importer{Parse: parseJSON}
	st, err := im.Import(context.Background(), strings.NewReader(`{"ID":"a"}`+"\n"+`{"ID":"b"}`), &memSink{fail: boom})
	require.ErrorIs(t, err, boom)
	require.Contains(t, err.Error(), "line 1")
	require.Equal(t, 0, st.Stored)
}

func TestImporterHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	im := capture.Importer{Parse: parseJSON}
	_, err := im.Import(ctx, strings.NewReader(`{"ID":"a"}`), &memSink{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestValidate(t *testing.T) {
	ok := capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m1"}
	require.NoError(t, ok.Validate())
	cases := map[string]func(m *capture.Message){
		"empty platform": func(m *capture.Message) { m.Platform = "" },
		"empty id":       func(m *capture.Message) { m.ID = "" },
		"long id":        func(m *capture.Message) { m.ID = strings.Repeat("x", capture.MaxIDLen+1) },
		"bad utf8 text":  func(m *capture.Message) { m.Text = "\xff" },
		"bad utf8 name":  func(m *capture.Message) { m.Sender.Name = "a\xc0" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := ok
			mutate(&m)
			require.ErrorIs(t, m.Validate(), capture.ErrInvalidMessage)
		})
	}
	var nilMsg *capture.Message
	require.ErrorIs(t, nilMsg.Validate(), capture.ErrInvalidMessage)
}

// fullMessage has every field set, each well within its limit.
func fullMessage() capture.Message {
	return capture.Message{
		Platform: "dingtalk", Tenant: "corp", ID: "m1", Kind: capture.KindFile, Text: "see attached",
		Conversation: capture.Conversation{ID: "c1", Type: capture.ConversationGroup, Title: "desk"},
		Sender:       capture.Party{ID: "u1", StaffID: "s1", Name: "陳大文"},
		Mentions:     []capture.Party{{ID: "u2", StaffID: "s2", Name: "黃美玲"}},
		Attachments: []capture.Attachment{{Name: "order.pdf", MediaType: "application/pdf", Ref: "dc1", Size: 10,
			SHA256: strings.Repeat("ab", 32)}},
		Raw: []byte(`{}`),
	}
}

// TestValidateBoundsEveryField: every string and list of a Message is bounded; a value at its
// limit passes and one byte (or one element) more fails with ErrInvalidMessage naming the
// field. A 2 MiB sender name used to pass.
func TestValidateBoundsEveryField(t *testing.T) {
	full := fullMessage()
	require.NoError(t, full.Validate())
	type bound struct {
		field string
		max   int
		set   func(m *capture.Message, n int)
	}
	str := func(n int) string { return strings.Repeat("x", n) }
	bounds := []bound{
		{"platform", capture.MaxIDLen, func(m *capture.Message, n int) { m.Platform = str(n) }},
		{"tenant", capture.MaxIDLen, func(m *capture.Message, n int) { m.Tenant = str(n) }},
		{"id", capture.MaxIDLen, func(m *capture.Message, n int) { m.ID = str(n) }},
		{"kind", capture.MaxKindLen, func(m *capture.Message, n int) { m.Kind = str(n) }},
		{"conversation.id", capture.MaxIDLen, func(m *capture.Message, n int) { m.Conversation.ID = str(n) }},
		{"conversation.type", capture.MaxKindLen, func(m *capture.Message, n int) { m.Conversation.Type = str(n) }},
		{"conversation.title", capture.MaxNameLen, func(m *capture.Message, n int) { m.Conversation.Title = str(n) }},
		{"sender.id", capture.MaxIDLen, func(m *capture.Message, n int) { m.Sender.ID = str(n) }},
		{"sender.staff_id", capture.MaxIDLen, func(m *capture.Message, n int) { m.Sender.StaffID = str(n) }},
		{"sender.name", capture.MaxNameLen, func(m *capture.Message, n int) { m.Sender.Name = str(n) }},
		{"mentions[0].id", capture.MaxIDLen, func(m *capture.Message, n int) { m.Mentions[0].ID = str(n) }},
		{"mentions[0].staff_id", capture.MaxIDLen, func(m *capture.Message, n int) { m.Mentions[0].StaffID = str(n) }},
		{"mentions[0].name", capture.MaxNameLen, func(m *capture.Message, n int) { m.Mentions[0].Name = str(n) }},
		{"mentions", capture.MaxMentions, func(m *capture.Message, n int) { m.Mentions = make([]capture.Party, n) }},
		{"attachments", capture.MaxAttachments, func(m *capture.Message, n int) { m.Attachments = make([]capture.Attachment, n) }},
		{"attachments[0].name", capture.MaxNameLen, func(m *capture.Message, n int) { m.Attachments[0].Name = str(n) }},
		{"attachments[0].media_type", capture.MaxMediaTypeLen, func(m *capture.Message, n int) { m.Attachments[0].MediaType = str(n) }},
		{"attachments[0].ref", capture.MaxRefLen, func(m *capture.Message, n int) { m.Attachments[0].Ref = str(n) }},
		{"text", capture.MaxTextLen, func(m *capture.Message, n int) { m.Text = str(n) }},
		{"raw", capture.MaxRawLen, func(m *capture.Message, n int) { m.Raw = make([]byte, n) }},
	}
	for _, b := range bounds {
		t.Run(b.field, func(t *testing.T) {
			m := fullMessage()
			b.set(&m, b.max)
			require.NoError(t, m.Validate(), "at the limit")
			m = fullMessage()
			b.set(&m, b.max+1)
			err := m.Validate()
			require.ErrorIs(t, err, capture.ErrInvalidMessage, "one over the limit")
			require.Contains(t, err.Error(), b.field)
		})
	}
	huge := fullMessage()
	huge.Sender.Name = strings.Repeat("陳", (capture.MaxNameLen+2<<20)/3)
	require.ErrorIs(t, huge.Validate(), capture.ErrInvalidMessage, "a sender name 2 MiB over the limit")

	for name, mutate := range map[string]func(a *capture.Attachment){
		"sha256 not hex":      func(a *capture.Attachment) { a.SHA256 = strings.Repeat("zz", 32) },
		"sha256 upper case":   func(a *capture.Attachment) { a.SHA256 = strings.Repeat("AB", 32) },
		"sha256 short":        func(a *capture.Attachment) { a.SHA256 = "abcd" },
		"negative size":       func(a *capture.Attachment) { a.Size = -1 },
		"name not UTF-8":      func(a *capture.Attachment) { a.Name = "\xff" },
		"media type not UTF8": func(a *capture.Attachment) { a.MediaType = "\xfe" },
	} {
		t.Run(name, func(t *testing.T) {
			m := fullMessage()
			mutate(&m.Attachments[0])
			require.ErrorIs(t, m.Validate(), capture.ErrInvalidMessage)
		})
	}
	m := fullMessage()
	m.Mentions[0].StaffID = "\xff"
	require.ErrorContains(t, m.Validate(), "mentions[0].staff_id is not valid UTF-8")
}

func TestRecordValidateBoundsEveryField(t *testing.T) {
	ok := func() capture.Record {
		return capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "r1",
			Conversation: capture.Conversation{ID: "c1", Type: capture.ConversationGroup, Title: "desk"},
			About:        &capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: "m1"}, Body: []byte(`{}`), Raw: []byte("raw")}
	}
	r := ok()
	require.NoError(t, r.Validate())
	str := func(n int) string { return strings.Repeat("x", n) }
	for name, c := range map[string]struct {
		max int
		set func(r *capture.Record, n int)
	}{
		"record platform":    {capture.MaxIDLen, func(r *capture.Record, n int) { r.Platform = str(n) }},
		"record tenant":      {capture.MaxIDLen, func(r *capture.Record, n int) { r.Tenant = str(n) }},
		"record id":          {capture.MaxIDLen, func(r *capture.Record, n int) { r.ID = str(n) }},
		"conversation.id":    {capture.MaxIDLen, func(r *capture.Record, n int) { r.Conversation.ID = str(n) }},
		"conversation.type":  {capture.MaxKindLen, func(r *capture.Record, n int) { r.Conversation.Type = str(n) }},
		"conversation.title": {capture.MaxNameLen, func(r *capture.Record, n int) { r.Conversation.Title = str(n) }},
		"about.platform":     {capture.MaxIDLen, func(r *capture.Record, n int) { r.About.Platform = str(n) }},
		"about.tenant":       {capture.MaxIDLen, func(r *capture.Record, n int) { r.About.Tenant = str(n) }},
		"about.id":           {capture.MaxIDLen, func(r *capture.Record, n int) { r.About.ID = str(n) }},
		"body and raw":       {capture.MaxRawLen - 3, func(r *capture.Record, n int) { r.Body = make([]byte, n) }},
	} {
		t.Run(name, func(t *testing.T) {
			r := ok()
			c.set(&r, c.max)
			require.NoError(t, r.Validate(), "at the limit")
			r = ok()
			c.set(&r, c.max+1)
			err := r.Validate()
			require.ErrorIs(t, err, capture.ErrInvalidMessage)
			require.Contains(t, err.Error(), name)
		})
	}
	r = ok()
	r.Kind = strings.Repeat("k", 1<<20)
	err := r.Validate()
	require.ErrorIs(t, err, capture.ErrInvalidMessage)
	require.Less(t, len(err.Error()), 200, "an unknown kind is not quoted whole")
}

// TestCaptureFailureRecord: what a capture error keeps of a payload, up to and over the limit.
func TestCaptureFailureRecord(t *testing.T) {
	at := time.Unix(1700000000, 0).UTC()
	small := []byte(`{"msgId":"m1"}`)
	r := (&capture.CaptureFailure{Platform: "p", Raw: small, Cause: errors.New("bad"), At: at,
		Tenant: "corp", ConversationID: "c1", MessageID: "m1", Facts: map[string]any{"code": 7, "reason": "ignored"}}).Record()
	require.NoError(t, r.Validate())
	require.Equal(t, capture.RecordCaptureError, r.Kind)
	require.Equal(t, small, r.Raw)
	require.Equal(t, "corp", r.Tenant)
	require.Equal(t, "c1", r.Conversation.ID)
	require.Equal(t, &capture.Identity{Platform: "p", Tenant: "corp", ID: "m1"}, r.About)
	require.Equal(t, at, r.At)
	sum := sha256.Sum256(small)
	require.Equal(t, "data:"+hex.EncodeToString(sum[:])[:32], r.ID)
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &body))
	require.Equal(t, "bad", body["reason"], "a fact cannot overwrite the body's own keys")
	require.EqualValues(t, 7, body["code"])
	require.EqualValues(t, len(small), body["data_len"])
	require.NotContains(t, body, "raw_truncated")

	// Over the limit: a prefix, with the hash and length of the whole; unusable ids by hash.
	big := make([]byte, capture.MaxRawLen+5<<20)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	long := strings.Repeat("t", capture.MaxIDLen+1)
	r = (&capture.CaptureFailure{Platform: "p", Raw: big, Cause: errors.New(strings.Repeat("é", 10<<10)),
		Tenant: long, ConversationID: "\xff", MessageID: long, Facts: map[string]any{"huge": strings.Repeat("f", 40<<10)}}).Record()
	require.NoError(t, r.Validate())
	require.Equal(t, big[:capture.MaxCaptureErrorRaw], r.Raw)
	require.Empty(t, r.Tenant)
	require.Empty(t, r.Conversation.ID)
	require.Nil(t, r.About)
	body = nil
	require.NoError(t, json.Unmarshal(r.Body, &body))
	sum = sha256.Sum256(big)
	require.Equal(t, hex.EncodeToString(sum[:]), body["data_sha256"])
	require.EqualValues(t, len(big), body["data_len"])
	require.Equal(t, true, body["raw_truncated"])
	require.Equal(t, true, body["facts_dropped"])
	require.EqualValues(t, len(long), body["tenant_len"])
	require.EqualValues(t, len(long), body["message_id_len"])
	require.EqualValues(t, 1, body["conversation_id_len"])
	require.LessOrEqual(t, len(body["reason"].(string)), 4<<10)
	require.True(t, utf8.ValidString(body["reason"].(string)))
}

func FuzzCaptureFailureRecord(f *testing.F) {
	f.Add([]byte("raw"), "cause", "tenant", "conv", "msg")
	f.Add([]byte{0xff}, "\xff\xfe", "\xc0", "", strings.Repeat("x", capture.MaxIDLen+1))
	f.Fuzz(func(t *testing.T, raw []byte, cause, tenant, conv, msg string) {
		r := (&capture.CaptureFailure{Platform: "p", Raw: raw, Cause: errors.New(cause), Tenant: tenant,
			ConversationID: conv, MessageID: msg}).Record()
		if err := r.Validate(); err != nil {
			t.Fatalf("does not validate: %v", err)
		}
		if len(raw) <= capture.MaxCaptureErrorRaw && string(r.Raw) != string(raw) {
			t.Fatal("raw not kept")
		}
	})
}

func ExampleImporter() {
	lines := `{"ID":"m1","Text":"buy 100 0700.HK"}
not json
{"ID":"m1","Text":"buy 100 0700.HK"}
`
	im := capture.Importer{Parse: parseJSON}
	st, err := im.Import(context.Background(), strings.NewReader(lines), &memSink{})
	fmt.Println(st.Stored, st.Duplicates, len(st.Skipped), err)
	fmt.Println(st.Skipped[0].Line)
	// Output:
	// 1 1 1 <nil>
	// 2
}
