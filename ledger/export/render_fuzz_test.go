package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
)

// FuzzRenderings renders a message whose every string is the fuzzer's (valid UTF-8, as
// capture accepts) and checks that the RSMF file is valid against the schema and that neither
// rendering carries a header field the renderer did not write.
func FuzzRenderings(f *testing.F) {
	f.Add("cid-1", "Desk 交易組", "u1", "Wong 黃", "BUY 10", "a.png", "image/png")
	f.Add("cid\r\nBcc: x@y", "t\r\nX-Evil: 1", "u\n", "Eve\r\nBcc: v@x", "<script>\r\n.\r\n", "a\r\nb.pdf", "text/html\r\nX: 1")
	f.Add("", "", "", "", "", "", "")
	f.Add("=?utf-8?q?=0D=0ABcc:_x?=", "\"quoted\" <a@b>", "a@b", "\\", "--commseal-", "../../x", "multipart/mixed; boundary=x")
	want := map[string][]string{
		"rsmf": {"Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Commseal-Ledger",
			"X-Rsmf-Application", "X-Rsmf-Attachmentcount", "X-Rsmf-Begindate", "X-Rsmf-Custodian", "X-Rsmf-Enddate",
			"X-Rsmf-Eventcollectionid", "X-Rsmf-Eventcount", "X-Rsmf-Generator", "X-Rsmf-Participants", "X-Rsmf-Version"},
		"eml": {"Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Commseal-Ledger"},
	}
	f.Fuzz(func(t *testing.T, conv, title, sender, name, text, attName, mediaType string) {
		for _, s := range []string{conv, title, sender, name, text, attName, mediaType} {
			if !utf8.ValidString(s) {
				return
			}
		}
		data := []byte("content")
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m", Kind: capture.KindFile, Text: text,
			Conversation: capture.Conversation{ID: conv, Title: title, Type: capture.ConversationGroup},
			Sender:       capture.Party{ID: sender, Name: name, StaffID: sender},
			SentAt:       time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
			Attachments:  []capture.Attachment{{Name: attName, MediaType: mediaType, SHA256: h}}}
		ts := transcripts([]*exported{{e: &ledger.Entry{Index: 1, Message: m, Leaf: seal.Leaf{Kind: seal.KindMessage}}}},
			map[string][]byte{h: data}, nil)
		rs, err := renderRSMF(ts, rsmfContext{origin: "o.test/l", treeSize: 2, custodian: name, maxEvents: MaxRSMFEvents})
		if err != nil {
			t.Fatal(err)
		}
		es, err := renderEML(ts, emlContext{origin: "o.test/l", treeSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		for kind, files := range map[string]map[string][]byte{"rsmf": rs, "eml": es} {
			for _, b := range files {
				msg, err := mail.ReadMessage(bytes.NewReader(b))
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				var keys []string
				for k := range msg.Header {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, want[kind]) {
					t.Fatalf("%s headers %v", kind, keys)
				}
				if _, err := msg.Header.AddressList("To"); err != nil {
					t.Fatalf("%s To: %v", kind, err)
				}
				if kind == "rsmf" {
					CheckRSMF(t, b)
				}
			}
		}
	})
}
