package capture

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// checkDecode holds DecodeMessage to encoding/json.Unmarshal on b.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var want Message
	werr := json.Unmarshal(b, &want)
	got, gerr := DecodeMessage(b)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%q: encoding/json error %v, DecodeMessage error %v", b, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(got, &want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", b, got, &want)
	}
	if fast, ok := decodeCanonical(b); ok && (werr != nil || !reflect.DeepEqual(fast, &want)) {
		t.Fatalf("%q: the canonical reader accepted what encoding/json reads otherwise", b)
	}
}

// TestDecodeMessageIsEncodingJSON: every canonical message decodes as encoding/json decodes
// it, through the fast reader (the cases without escapes) or the fallback.
func TestDecodeMessageIsEncodingJSON(t *testing.T) {
	ms, _ := jsonCases()
	ms = append(ms, &Message{Platform: "dingtalk", Tenant: "corp", ID: "m2", Kind: KindPicture, Text: "買入 0700.HK 港",
		SentAt: time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC), CapturedAt: time.Date(2026, 11, 29, 9, 30, 1, 5, time.UTC),
		Conversation: Conversation{ID: "cid", Type: ConversationDirect}, Sender: Party{ID: "u1", Name: "黃"},
		Attachments: []Attachment{{Name: "圖.png", MediaType: "image/png", Size: 1 << 40, SHA256: "ab"}, {Ref: "r"}}, Raw: []byte(`{"msgId":"m2"}`)})
	fast := 0
	for _, m := range ms {
		b, err := m.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, b)
		if _, ok := decodeCanonical(b); ok {
			fast++
		}
	}
	if fast < 2 {
		t.Fatalf("only %d canonical messages were read by the fast reader", fast)
	}
	for _, b := range []string{`{}`, `{"platform":"a"}`, `[1]`, `{"platform":"p","tenant":"t","id":"i","conversation":{"id":"c","type":"t"},"sender":{"id":"s"},"sent_at":"2026-01-01T00:00:00Z","captured_at":"2026-01-01T00:00:00Z","kind":"text","raw":"!!"}`} {
		checkDecode(t, []byte(b))
	}
}

// FuzzDecodeMessage holds DecodeMessage to encoding/json on arbitrary bytes and on the
// canonical JSON of arbitrary messages.
func FuzzDecodeMessage(f *testing.F) {
	ms, _ := jsonCases()
	for _, m := range ms {
		if b, err := m.AppendJSON(nil); err == nil {
			f.Add(b, "", int64(0))
		}
	}
	f.Add([]byte(`{"platform":"x"}`), "text 港", int64(7))
	f.Fuzz(func(t *testing.T, b []byte, text string, size int64) {
		checkDecode(t, b)
		m := &Message{Platform: "dingtalk", Tenant: "t", ID: text, Kind: KindText, Text: text, Raw: b,
			SentAt: time.Unix(size%(1<<33), 0).UTC(), CapturedAt: time.Unix(0, size).UTC(),
			Conversation: Conversation{ID: text, Type: "group", Title: text}, Sender: Party{ID: text, Name: text},
			Attachments: []Attachment{{Name: text, Size: size}}}
		if cb, err := m.AppendJSON(nil); err == nil {
			checkDecode(t, cb)
		}
	})
}

func BenchmarkDecodeMessage(b *testing.B) {
	m := &Message{Platform: "dingtalk", Tenant: "corp", ID: "msg-1", Kind: KindText, Text: "請問0700.HK而家報價幾多？我想買入500股，限價318.20",
		SentAt: time.Now().UTC(), CapturedAt: time.Now().UTC(), Conversation: Conversation{ID: "cid-1", Type: "group", Title: "Desk 交易組"},
		Sender: Party{ID: "u1", StaffID: "E1", Name: "Wong Siu Ming 黃小明"},
		Raw:    []byte(`{"msgId":"msg-1","text":{"content":"請問0700.HK而家報價幾多？"},"senderNick":"Wong Siu Ming 黃小明"}`)}
	body, _ := m.AppendJSON(nil)
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var out Message
			if err := json.Unmarshal(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeMessage", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeMessage(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
