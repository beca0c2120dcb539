package dingtalk_test

import (
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/stretchr/testify/require"
)

func TestParseBotMessageKinds(t *testing.T) {
	cases := []struct {
		name, raw  string
		kind, text string
		atts       int
		convType   string
	}{
		{"text", `{"msgId":"m1","msgtype":"text","text":{"content":" 買入 0700 "},"conversationType":"1","conversationId":"c1","senderId":"u1","senderNick":"陳大文","senderStaffId":"s1","chatbotCorpId":"corp","createAt":1700000000000}`,
			capture.KindText, "買入 0700", 0, capture.ConversationDirect},
		{"richText", `{"msgId":"m2","msgtype":"richText","content":{"richText":[{"text":"see chart"},{"type":"picture","downloadCode":"dc1"}]},"conversationType":"2","conversationId":"c2","chatbotCorpId":"corp"}`,
			capture.KindRichText, "see chart", 1, capture.ConversationGroup},
		{"picture", `{"msgId":"m3","msgtype":"picture","content":{"downloadCode":"dc2"},"conversationType":"2","chatbotCorpId":"corp"}`,
			capture.KindPicture, "", 1, capture.ConversationGroup},
		{"audio", `{"msgId":"m4","msgtype":"audio","content":{"downloadCode":"dc3","recognition":"明天见"},"conversationType":"1","chatbotCorpId":"corp"}`,
			capture.KindAudio, "明天见", 1, capture.ConversationDirect},
		{"file", `{"msgId":"m5","msgtype":"file","content":{"downloadCode":"dc4","fileName":"order.xlsx"},"conversationType":"1","chatbotCorpId":"corp"}`,
			capture.KindFile, "", 1, capture.ConversationDirect},
		{"unknown", `{"msgId":"m6","msgtype":"interactiveCard","conversationType":"1","chatbotCorpId":"corp"}`,
			capture.KindUnknown, "", 0, capture.ConversationDirect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := dingtalk.ParseBotMessage([]byte(c.raw))
			require.NoError(t, err)
			require.Equal(t, c.kind, m.Kind)
			require.Equal(t, c.text, m.Text)
			require.Len(t, m.Attachments, c.atts)
			require.Equal(t, c.convType, m.Conversation.Type)
			require.Equal(t, c.raw, string(m.Raw), "raw must be kept byte for byte")
			require.Equal(t, "corp", m.Tenant)
			require.Equal(t, capture.PlatformDingTalk, m.Platform)
		})
	}
	m, err := dingtalk.ParseBotMessage([]byte(cases[0].raw))
	require.NoError(t, err)
	require.Equal(t, time.UnixMilli(1700000000000).UTC(), m.SentAt)
	require.Equal(t, capture.Party{ID: "u1", StaffID: "s1", Name: "陳大文"}, m.Sender)
}

func TestParseBotMessageErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":     `{"msgId":`,
		"no msgId":     `{"msgtype":"text"}`,
		"trailing":     `{"msgId":"a"} {}`,
		"bad createAt": `{"msgId":"a","createAt":1.5}`,
		"bad content":  `{"msgId":"a","msgtype":"file","content":{"fileName":3}}`,
		"array":        `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := dingtalk.ParseBotMessage([]byte(raw))
			require.ErrorIs(t, err, dingtalk.ErrMalformed)
		})
	}
	// Invalid UTF-8 inside a string is kept verbatim in Raw; the normalized field gets U+FFFD.
	raw := "{\"msgId\":\"a\",\"senderNick\":\"\xff\"}"
	m, err := dingtalk.ParseBotMessage([]byte(raw))
	require.NoError(t, err)
	require.Equal(t, raw, string(m.Raw))
	require.Equal(t, "\ufffd", m.Sender.Name)
	_, err = dingtalk.ParseBotMessage([]byte(`{"errMsg":"quota exceeded","errCode":20001}`))
	require.ErrorIs(t, err, dingtalk.ErrQuotaExhausted)
}

func FuzzParseBotMessage(f *testing.F) {
	f.Add([]byte(`{"msgId":"m1","msgtype":"text","text":{"content":"hi"},"createAt":1}`))
	f.Add([]byte(`{"msgId":"m2","msgtype":"richText","content":{"richText":[{"text":"a"},{"type":"picture"}]}}`))
	f.Add([]byte(`{"errMsg":"x","errCode":20001}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := dingtalk.ParseBotMessage(raw)
		if err != nil {
			return
		}
		if string(m.Raw) != string(raw) {
			t.Fatalf("raw not kept verbatim")
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed message does not validate: %v", err)
		}
	})
}
