package capture

import (
	"encoding/json"
	"testing"
	"time"
)

// jsonCases are messages and records whose canonical JSON AppendJSON must write exactly as
// encoding/json does.
func jsonCases() ([]*Message, []*Record) {
	hk := time.FixedZone("HKT", 8*3600)
	ms := []*Message{
		{},
		{Platform: "dingtalk", Tenant: "corp", ID: "m1", Kind: KindText, Text: "hello <b>&amp;</b> \"quoted\" \\ \n\t\r\b\f\x00\x1f\x7f",
			SentAt: time.Date(2026, 11, 29, 9, 30, 0, 123456789, hk), CapturedAt: time.Date(2026, 11, 29, 1, 30, 0, 0, time.UTC),
			Conversation: Conversation{ID: "cid", Type: ConversationGroup, Title: "交易組 \u2028 \u2029"},
			Sender:       Party{ID: "u1", StaffID: "E1", Name: "陳大文"}, Mentions: []Party{{ID: "a"}, {ID: "b", Name: "x"}},
			Attachments: []Attachment{{Name: "a.pdf", MediaType: "application/pdf", Size: 12, SHA256: "ab", Ref: "r"}, {}, {Size: -1}},
			Raw:         []byte(`{"msgId":"m1"}`)},
		{Platform: "p", Text: "bad utf8 \xff\xfe end \xe2\x80", Raw: []byte{}},
	}
	rs := []*Record{
		{},
		{Kind: RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "m1/0", Conversation: Conversation{ID: "c"},
			About: &Identity{Platform: "dingtalk", Tenant: "corp", ID: "m1"}, At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			Body: []byte(`{"status":"stored"}`), Raw: []byte{0, 1, 2}},
		{Kind: RecordCaptureError, Platform: "x", Conversation: Conversation{Title: "only a title"}, At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	return ms, rs
}

func TestAppendJSONIsEncodingJSON(t *testing.T) {
	ms, rs := jsonCases()
	for i, m := range ms {
		checkMessageJSON(t, i, m)
	}
	for i, r := range rs {
		checkRecordJSON(t, i, r)
	}
}

func checkMessageJSON(t *testing.T, i int, m *Message) {
	t.Helper()
	want, werr := json.Marshal(m)
	got, gerr := m.AppendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("message %d: encoding/json error %v, AppendJSON error %v", i, werr, gerr)
	}
	if werr == nil && string(got) != string(want) {
		t.Fatalf("message %d:\n got %s\nwant %s", i, got, want)
	}
}

func checkRecordJSON(t *testing.T, i int, r *Record) {
	t.Helper()
	want, werr := json.Marshal(r)
	got, gerr := r.AppendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("record %d: encoding/json error %v, AppendJSON error %v", i, werr, gerr)
	}
	if werr == nil && string(got) != string(want) {
		t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
	}
}

func TestAppendJSONRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("farther", -100*3600)),
	} {
		m := &Message{SentAt: at}
		if _, err := m.AppendJSON(nil); err == nil {
			t.Errorf("AppendJSON accepted %v", at)
		}
		checkMessageJSON(t, 0, m)
		checkRecordJSON(t, 0, &Record{At: at})
	}
}

// FuzzAppendJSON holds AppendJSON to encoding/json byte for byte on arbitrary strings, bytes,
// sizes and times.
func FuzzAppendJSON(f *testing.F) {
	f.Add("dingtalk", "text <&> \u2028", []byte("raw"), int64(12), int64(1764400000123456789), 8*3600, "title")
	f.Add("", "\xff", []byte(nil), int64(0), int64(-62135596800000000), 0, "")
	f.Fuzz(func(t *testing.T, s, text string, raw []byte, size, nanos int64, offset int, title string) {
		at := time.Unix(0, nanos).In(time.FixedZone("z", offset%(200*3600)))
		m := &Message{Platform: s, Tenant: text, ID: title, Kind: s, Text: text, Raw: raw, SentAt: at, CapturedAt: at,
			Conversation: Conversation{ID: s, Type: text, Title: title}, Sender: Party{ID: text, StaffID: title, Name: s},
			Mentions: []Party{{ID: title, Name: text}}, Attachments: []Attachment{{Name: text, MediaType: s, Size: size, SHA256: title, Ref: s}}}
		if len(raw)%2 == 0 {
			m.Mentions, m.Attachments = nil, nil
		}
		checkMessageJSON(t, 0, m)
		r := &Record{Kind: s, Platform: text, Tenant: title, ID: text, At: at, Body: raw, Raw: []byte(text),
			Conversation: Conversation{Title: title}}
		if size%2 == 0 {
			r.About = &Identity{Platform: s, Tenant: text, ID: title}
		}
		checkRecordJSON(t, 0, r)
	})
}

func BenchmarkMessageJSON(b *testing.B) {
	ms, _ := jsonCases()
	m := ms[1]
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(m)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = m.AppendJSON(buf[:0])
		}
	})
}
