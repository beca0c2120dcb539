package dingtalk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
)

// ErrMalformed is wrapped by every error that ParseBotMessage returns for a payload it cannot use.
var ErrMalformed = errors.New("dingtalk: malformed bot message")

// ErrQuotaExhausted is returned (wrapped) for a content-less payload that DingTalk sends when the
// organization's quota is used up (errCode 20001, errMsg set). It is a capture error to record,
// not a message to store.
var ErrQuotaExhausted = errors.New("dingtalk: quota exhausted payload without content")

// botMessage is the subset of the bot callback payload that commseal normalizes. The raw bytes
// are always kept whole, so fields not listed here are never lost.
type botMessage struct {
	MsgID             string                    `json:"msgId"`
	MsgType           string                    `json:"msgtype"`
	Text              *struct{ Content string } `json:"text"`
	Content           json.RawMessage           `json:"content"`
	ConversationType  string                    `json:"conversationType"`
	ConversationID    string                    `json:"conversationId"`
	ConversationTitle string                    `json:"conversationTitle"`
	SenderID          string                    `json:"senderId"`
	SenderStaffID     string                    `json:"senderStaffId"`
	SenderNick        string                    `json:"senderNick"`
	SenderCorpID      string                    `json:"senderCorpId"`
	ChatbotCorpID     string                    `json:"chatbotCorpId"`
	AtUsers           []struct {
		DingtalkID string `json:"dingtalkId"`
		StaffID    string `json:"staffId"`
	} `json:"atUsers"`
	CreateAt json.Number `json:"createAt"`
	ErrMsg   string      `json:"errMsg"`
	ErrCode  json.Number `json:"errCode"`
}

type mediaContent struct {
	DownloadCode string `json:"downloadCode"`
	Recognition  string `json:"recognition"`
	FileName     string `json:"fileName"`
	VideoType    string `json:"videoType"`
	RichText     []struct {
		Text         string `json:"text"`
		Type         string `json:"type"`
		DownloadCode string `json:"downloadCode"`
	} `json:"richText"`
}

// ParseBotMessage normalizes one bot message payload (the `data` of a
// /v1.0/im/bot/messages/get push) into a capture.Message. raw is copied into Message.Raw byte for
// byte. CapturedAt is left zero for the caller to set. It never panics on any input.
//
// A payload over capture.MaxRawLen, or one whose fields are over the capture limits (see
// capture.Message.Validate), fails with an error wrapping both ErrMalformed and
// capture.ErrInvalidMessage; the oversize payload is refused before it is decoded.
func ParseBotMessage(raw []byte) (*capture.Message, error) {
	if len(raw) > capture.MaxRawLen {
		return nil, fmt.Errorf("%w: %w: the payload is %d bytes, over the limit of %d", ErrMalformed, capture.ErrInvalidMessage, len(raw), capture.MaxRawLen)
	}
	var b botMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	if b.ErrMsg != "" && b.MsgType == "" && b.Text == nil && len(b.Content) == 0 {
		return nil, fmt.Errorf("%w: errCode %s: %s", ErrQuotaExhausted, cut(string(b.ErrCode), 32), cut(b.ErrMsg, 256))
	}
	if b.MsgID == "" {
		return nil, fmt.Errorf("%w: msgId is missing", ErrMalformed)
	}
	m := &capture.Message{
		Platform: capture.PlatformDingTalk,
		Tenant:   firstNonEmpty(b.ChatbotCorpID, b.SenderCorpID),
		ID:       b.MsgID,
		Conversation: capture.Conversation{
			ID:    b.ConversationID,
			Title: b.ConversationTitle,
		},
		Sender: capture.Party{ID: b.SenderID, StaffID: b.SenderStaffID, Name: b.SenderNick},
		Raw:    append([]byte(nil), raw...),
	}
	switch b.ConversationType {
	case "1":
		m.Conversation.Type = capture.ConversationDirect
	case "2":
		m.Conversation.Type = capture.ConversationGroup
	case "":
	default:
		m.Conversation.Type = b.ConversationType
	}
	if b.CreateAt != "" {
		ms, err := b.CreateAt.Int64()
		if err != nil {
			return nil, fmt.Errorf("%w: createAt %q is not an integer", ErrMalformed, cut(string(b.CreateAt), 32))
		}
		m.SentAt = time.UnixMilli(ms).UTC()
	}
	for _, u := range b.AtUsers {
		m.Mentions = append(m.Mentions, capture.Party{ID: u.DingtalkID, StaffID: u.StaffID})
	}
	var c mediaContent
	if len(b.Content) > 0 && b.Content[0] == '{' {
		if err := json.Unmarshal(b.Content, &c); err != nil {
			return nil, fmt.Errorf("%w: content: %v", ErrMalformed, err)
		}
	}
	switch b.MsgType {
	case "text":
		m.Kind = capture.KindText
		if b.Text != nil {
			m.Text = strings.TrimSpace(b.Text.Content)
		}
	case "richText":
		m.Kind = capture.KindRichText
		var parts []string
		for _, p := range c.RichText {
			if p.Text != "" {
				parts = append(parts, p.Text)
			}
			if p.Type == "picture" || p.DownloadCode != "" {
				m.Attachments = append(m.Attachments, capture.Attachment{MediaType: "image/*", Ref: p.DownloadCode})
			}
		}
		m.Text = strings.Join(parts, "\n")
	case "picture":
		m.Kind = capture.KindPicture
		m.Attachments = []capture.Attachment{{MediaType: "image/*", Ref: c.DownloadCode}}
	case "audio":
		m.Kind = capture.KindAudio
		m.Text = c.Recognition
		m.Attachments = []capture.Attachment{{MediaType: "audio/*", Ref: c.DownloadCode}}
	case "video":
		m.Kind = capture.KindVideo
		mt := "video/*"
		if c.VideoType != "" {
			mt = "video/" + c.VideoType
		}
		m.Attachments = []capture.Attachment{{MediaType: mt, Ref: c.DownloadCode}}
	case "file":
		m.Kind = capture.KindFile
		m.Attachments = []capture.Attachment{{Name: c.FileName, MediaType: "application/octet-stream", Ref: c.DownloadCode}}
	default:
		m.Kind = capture.KindUnknown
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return m, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
