package dingtalktest

import (
	"encoding/json"
	"time"
)

// BotMessage builds a bot message payload (the data of a /v1.0/im/bot/messages/get push) with
// the fields DingTalk sends. Zero fields get plausible defaults in JSON.
type BotMessage struct {
	MsgID             string
	MsgType           string // text (default), richText, picture, audio, video, file
	Text              string // text.content for text messages
	Content           any    // content for other types, e.g. map[string]any{"downloadCode": "dc1"}
	ConversationID    string // default "cid-test"
	ConversationType  string // "1" single (default) or "2" group
	ConversationTitle string
	SenderID          string // default "sender-test"
	SenderStaffID     string
	SenderNick        string
	CorpID            string // chatbotCorpId and senderCorpId; default "corp-test"
	RobotCode         string // default DefaultClientID
	CreateAt          time.Time
}

// JSON renders the payload.
func (m BotMessage) JSON() []byte {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	created := m.CreateAt
	if created.IsZero() {
		created = time.Now()
	}
	p := map[string]any{
		"msgId":                     m.MsgID,
		"msgtype":                   def(m.MsgType, "text"),
		"conversationId":            def(m.ConversationID, "cid-test"),
		"conversationType":          def(m.ConversationType, "1"),
		"senderId":                  def(m.SenderID, "sender-test"),
		"senderNick":                m.SenderNick,
		"senderCorpId":              def(m.CorpID, "corp-test"),
		"chatbotCorpId":             def(m.CorpID, "corp-test"),
		"chatbotUserId":             "bot-test",
		"robotCode":                 def(m.RobotCode, DefaultClientID),
		"createAt":                  created.UnixMilli(),
		"isAdmin":                   false,
		"isInAtList":                true,
		"sessionWebhook":            "http://127.0.0.1/robot/sendBySession",
		"sessionWebhookExpiredTime": created.Add(time.Hour).UnixMilli(),
	}
	if m.ConversationTitle != "" {
		p["conversationTitle"] = m.ConversationTitle
	}
	if m.SenderStaffID != "" {
		p["senderStaffId"] = m.SenderStaffID
	}
	if p["msgtype"] == "text" {
		p["text"] = map[string]string{"content": m.Text}
	}
	if m.Content != nil {
		p["content"] = m.Content
	}
	b, _ := json.Marshal(p)
	return b
}

// TextMessage returns a text bot message payload with the given msgId and text.
func TextMessage(msgID, text string) []byte {
	return BotMessage{MsgID: msgID, Text: text}.JSON()
}

// QuotaPayload returns the content-less bot payload DingTalk sends when the organization's quota
// is exhausted: conversation and sender are there, msgtype, text and content are not, errCode is
// 20001 and errMsg says why.
func QuotaPayload(msgID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"msgId":          msgID,
		"conversationId": "cid-test",
		"senderId":       "sender-test",
		"chatbotCorpId":  "corp-test",
		"createAt":       time.Now().UnixMilli(),
		"errCode":        20001,
		"errMsg":         "组织的机器人消息额度已用尽",
	})
	return b
}
