// Package capture defines the normalized chat message that every source produces and the
// contract between sources and the ledger.
//
// A Source reads messages from a platform (DingTalk Stream, an HTTP callback, a backfill file)
// and hands each one to a Sink. The Sink makes it durable; only when Sink.Append returns nil may
// the source acknowledge the message upstream. An error means "not stored": the source must not
// acknowledge, so that the platform delivers the message again. Because platforms deliver at
// least once, a Sink deduplicates on the message's source identity (platform, tenant, message
// id); a replay returns the original receipt with Duplicate set.
//
// Message keeps the raw source payload byte for byte beside the normalized fields, so that what
// the platform sent can always be shown, whatever the parser understood of it.
package capture

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Platform names used in Message.Platform.
const (
	PlatformDingTalk = "dingtalk"
)

// Conversation types used in Conversation.Type.
const (
	ConversationDirect = "direct" // a one-to-one chat
	ConversationGroup  = "group"  // a group chat
)

// Message kinds used in Message.Kind.
const (
	KindText     = "text"
	KindRichText = "rich_text"
	KindPicture  = "picture"
	KindAudio    = "audio"
	KindVideo    = "video"
	KindFile     = "file"
	KindEvent    = "event"   // a platform event (member added, title changed, ...): context, not content
	KindUnknown  = "unknown" // a type the parser does not know; Raw still holds it whole
)

// Message is one captured chat message in normalized form. Raw holds the platform's payload
// exactly as received; the other fields are what commseal understood of it.
type Message struct {
	Platform     string       `json:"platform"`           // e.g. PlatformDingTalk
	Tenant       string       `json:"tenant"`             // the organization (DingTalk corp id)
	ID           string       `json:"id"`                 // the platform's message id: the dedup key
	Conversation Conversation `json:"conversation"`       // where it was said
	Sender       Party        `json:"sender"`             // who said it
	Mentions     []Party      `json:"mentions,omitempty"` // who was @-mentioned
	SentAt       time.Time    `json:"sent_at"`            // the platform's creation time
	CapturedAt   time.Time    `json:"captured_at"`        // when commseal received it
	Kind         string       `json:"kind"`               // one of the Kind constants
	Text         string       `json:"text,omitempty"`     // the readable content, if any
	Attachments  []Attachment `json:"attachments,omitempty"`
	Raw          []byte       `json:"raw"` // the source payload, byte for byte
}

// Conversation identifies the chat a message belongs to.
type Conversation struct {
	ID    string `json:"id"`
	Type  string `json:"type"` // ConversationDirect or ConversationGroup
	Title string `json:"title,omitempty"`
}

// Party is a participant: a sender or a mentioned user.
type Party struct {
	ID      string `json:"id"`                 // the platform's user id
	StaffID string `json:"staff_id,omitempty"` // the employee id, for users inside the organization
	Name    string `json:"name,omitempty"`     // the display name at the time of the message
}

// Attachment describes media carried by a message. SHA256 and Size are filled once the media has
// been fetched and stored as a blob; Ref is the platform's handle for fetching it.
type Attachment struct {
	Name      string `json:"name,omitempty"`
	MediaType string `json:"media_type,omitempty"`
	Size      int64  `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"` // lowercase hex of the content, once fetched
	Ref       string `json:"ref,omitempty"`    // e.g. a DingTalk downloadCode
}

// Key is the source identity of a message: the triple a ledger deduplicates on.
type Key struct {
	Platform, Tenant, ID string
}

// Key returns the message's source identity.
func (m *Message) Key() Key { return Key{Platform: m.Platform, Tenant: m.Tenant, ID: m.ID} }

// String renders the key for logs and errors.
func (k Key) String() string { return k.Platform + "/" + k.Tenant + "/" + k.ID }

// Limits on a message that Validate enforces. They bound memory per message, not policy.
const (
	MaxIDLen   = 1 << 10  // platform, tenant, message and conversation ids
	MaxRawLen  = 16 << 20 // the raw payload
	MaxTextLen = 16 << 20
)

// ErrInvalidMessage is wrapped by every error that Validate returns.
var ErrInvalidMessage = errors.New("capture: invalid message")

// Validate reports whether m can be stored: the identity fields are present, strings are valid
// UTF-8 and sizes are within bounds. Sinks call it before accepting a message.
func (m *Message) Validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidMessage, field, why)
	}
	if m == nil {
		return fmt.Errorf("%w: nil", ErrInvalidMessage)
	}
	for _, f := range []struct{ name, v string }{
		{"platform", m.Platform}, {"id", m.ID},
	} {
		if f.v == "" {
			return bad(f.name, "is empty")
		}
	}
	for _, f := range []struct{ name, v string }{
		{"platform", m.Platform}, {"tenant", m.Tenant}, {"id", m.ID}, {"conversation.id", m.Conversation.ID},
	} {
		if len(f.v) > MaxIDLen {
			return bad(f.name, fmt.Sprintf("is %d bytes, over the limit of %d", len(f.v), MaxIDLen))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"platform", m.Platform}, {"tenant", m.Tenant}, {"id", m.ID},
		{"conversation.id", m.Conversation.ID}, {"conversation.title", m.Conversation.Title},
		{"sender.id", m.Sender.ID}, {"sender.name", m.Sender.Name}, {"text", m.Text}, {"kind", m.Kind},
	} {
		if !utf8.ValidString(f.v) {
			return bad(f.name, "is not valid UTF-8")
		}
	}
	if len(m.Text) > MaxTextLen {
		return bad("text", fmt.Sprintf("is %d bytes, over the limit of %d", len(m.Text), MaxTextLen))
	}
	if len(m.Raw) > MaxRawLen {
		return bad("raw", fmt.Sprintf("is %d bytes, over the limit of %d", len(m.Raw), MaxRawLen))
	}
	return nil
}

// Receipt is what a Sink returns for a stored message.
type Receipt struct {
	Index     uint64 // the ledger index of the message's entry
	Duplicate bool   // the message was already stored; Index is the original entry
}

// A Sink makes messages durable. Append returns only when m is durable (or was already stored,
// in which case the receipt says Duplicate); a source may then acknowledge it upstream. On error
// nothing is acknowledged and the platform should deliver the message again. Append must be
// safe for concurrent use and must not retain or modify m after it returns.
type Sink interface {
	Append(ctx context.Context, m *Message) (Receipt, error)
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ctx context.Context, m *Message) (Receipt, error)

// Append calls f(ctx, m).
func (f SinkFunc) Append(ctx context.Context, m *Message) (Receipt, error) { return f(ctx, m) }

// A Source delivers messages from a platform to a sink until ctx ends or it fails. It
// acknowledges a message upstream only after sink.Append returned nil for it.
type Source interface {
	Run(ctx context.Context, sink Sink) error
}
