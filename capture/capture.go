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
	"strconv"
	"strings"
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

// Identity is the source identity of a message: the triple a ledger deduplicates on.
type Identity struct {
	Platform, Tenant, ID string
}

// Identity returns the message's source identity.
func (m *Message) Identity() Identity {
	return Identity{Platform: m.Platform, Tenant: m.Tenant, ID: m.ID}
}

// String renders the identity for logs and errors.
func (k Identity) String() string { return k.Platform + "/" + k.Tenant + "/" + k.ID }

// Limits that Message.Validate and Record.Validate enforce. They bound the memory and storage
// one message or record can take, not policy: a field over its limit makes Validate fail with
// ErrInvalidMessage, and a source then seals the payload as a RecordCaptureError (see
// CaptureErrorRaw) instead of storing it as a message, so oversize input is kept as evidence
// and acknowledged rather than refused on every redelivery. Lengths are in bytes.
const (
	// MaxIDLen bounds identifiers: platform, tenant, message, conversation and party ids, staff
	// ids, record ids and the fields of Record.About.
	MaxIDLen = 1 << 10
	// MaxNameLen bounds human-readable names: sender and mention display names, conversation
	// titles, attachment file names.
	MaxNameLen = 4 << 10
	// MaxKindLen bounds short vocabulary values: Message.Kind and Conversation.Type.
	MaxKindLen = 64
	// MaxMediaTypeLen bounds Attachment.MediaType (RFC 6838 allows 127 + "/" + 127).
	MaxMediaTypeLen = 255
	// MaxRefLen bounds Attachment.Ref, a platform's handle for fetching media (DingTalk download
	// codes run to a few hundred bytes).
	MaxRefLen = 4 << 10
	// MaxMentions bounds len(Message.Mentions).
	MaxMentions = 1000
	// MaxAttachments bounds len(Message.Attachments).
	MaxAttachments = 1000
	// MaxTextLen bounds Message.Text.
	MaxTextLen = 16 << 20
	// MaxRawLen bounds Message.Raw, and Record.Body and Record.Raw together.
	MaxRawLen = 16 << 20
)

// ErrInvalidMessage is wrapped by every error that Message.Validate and Record.Validate return.
// It marks a permanent failure: delivering the same input again cannot succeed, so a source
// that gets it from a Sink seals the payload as a capture error and acknowledges it.
var ErrInvalidMessage = errors.New("capture: invalid message")

// checkString checks that v is valid UTF-8 and at most max bytes. name names the field in the
// error; index, when not negative, is the position of its element in a list.
func checkString(name string, index int, v string, max int) error {
	if len(v) <= max && utf8.ValidString(v) {
		return nil
	}
	if index >= 0 {
		name = strings.Replace(name, "[]", "["+strconv.Itoa(index)+"]", 1)
	}
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrInvalidMessage, name, len(v), max)
	}
	return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidMessage, name)
}

// checkStrings checks pairs of field names and values against one limit.
func checkStrings(max int, index int, nameValue ...string) error {
	for i := 0; i+1 < len(nameValue); i += 2 {
		if err := checkString(nameValue[i], index, nameValue[i+1], max); err != nil {
			return err
		}
	}
	return nil
}

func checkConversation(c *Conversation) error {
	if err := checkString("conversation.id", -1, c.ID, MaxIDLen); err != nil {
		return err
	}
	if err := checkString("conversation.type", -1, c.Type, MaxKindLen); err != nil {
		return err
	}
	return checkString("conversation.title", -1, c.Title, MaxNameLen)
}

// fits reports whether v is valid UTF-8 and at most max bytes: the check without the error, so
// that the names in errors are only built when one is reported.
func fits(v string, max int) bool { return len(v) <= max && utf8.ValidString(v) }

func checkParty(prefix string, index int, p *Party) error {
	if fits(p.ID, MaxIDLen) && fits(p.StaffID, MaxIDLen) && fits(p.Name, MaxNameLen) {
		return nil
	}
	if err := checkStrings(MaxIDLen, index, prefix+".id", p.ID, prefix+".staff_id", p.StaffID); err != nil {
		return err
	}
	return checkString(prefix+".name", index, p.Name, MaxNameLen)
}

func checkAttachment(index int, a *Attachment) error {
	if fits(a.Name, MaxNameLen) && fits(a.MediaType, MaxMediaTypeLen) && fits(a.Ref, MaxRefLen) &&
		(a.SHA256 == "" || (len(a.SHA256) == 64 && strings.Trim(a.SHA256, "0123456789abcdef") == "")) && a.Size >= 0 {
		return nil
	}
	if err := checkString("attachments[].name", index, a.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkString("attachments[].media_type", index, a.MediaType, MaxMediaTypeLen); err != nil {
		return err
	}
	if err := checkString("attachments[].ref", index, a.Ref, MaxRefLen); err != nil {
		return err
	}
	if a.SHA256 != "" && (len(a.SHA256) != 64 || strings.Trim(a.SHA256, "0123456789abcdef") != "") {
		return fmt.Errorf("%w: attachments[%d].sha256 is not 64 lowercase hex digits", ErrInvalidMessage, index)
	}
	if a.Size < 0 {
		return fmt.Errorf("%w: attachments[%d].size is negative", ErrInvalidMessage, index)
	}
	return nil
}

// Validate reports whether m can be stored: platform and id are present, every string is valid
// UTF-8 and within its limit (MaxIDLen, MaxNameLen, MaxKindLen, MaxMediaTypeLen, MaxRefLen,
// MaxTextLen), Mentions and Attachments are within MaxMentions and MaxAttachments, each
// attachment's SHA256 is empty or 64 lowercase hex digits and its Size is not negative, and Raw
// is within MaxRawLen. Errors wrap ErrInvalidMessage and name the field. Sinks call it before
// accepting a message; it only reads m.
func (m *Message) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil", ErrInvalidMessage)
	}
	if m.Platform == "" {
		return fmt.Errorf("%w: platform is empty", ErrInvalidMessage)
	}
	if m.ID == "" {
		return fmt.Errorf("%w: id is empty", ErrInvalidMessage)
	}
	// Counts and the raw size first: cheap, and they refuse a huge message before it is scanned.
	if len(m.Raw) > MaxRawLen {
		return fmt.Errorf("%w: raw is %d bytes, over the limit of %d", ErrInvalidMessage, len(m.Raw), MaxRawLen)
	}
	if len(m.Mentions) > MaxMentions {
		return fmt.Errorf("%w: %d mentions, over the limit of %d", ErrInvalidMessage, len(m.Mentions), MaxMentions)
	}
	if len(m.Attachments) > MaxAttachments {
		return fmt.Errorf("%w: %d attachments, over the limit of %d", ErrInvalidMessage, len(m.Attachments), MaxAttachments)
	}
	if err := checkStrings(MaxIDLen, -1, "platform", m.Platform, "tenant", m.Tenant, "id", m.ID); err != nil {
		return err
	}
	if err := checkString("kind", -1, m.Kind, MaxKindLen); err != nil {
		return err
	}
	if err := checkConversation(&m.Conversation); err != nil {
		return err
	}
	if err := checkParty("sender", -1, &m.Sender); err != nil {
		return err
	}
	for i := range m.Mentions {
		if err := checkParty("mentions[]", i, &m.Mentions[i]); err != nil {
			return err
		}
	}
	for i := range m.Attachments {
		if err := checkAttachment(i, &m.Attachments[i]); err != nil {
			return err
		}
	}
	return checkString("text", -1, m.Text, MaxTextLen)
}

// Receipt is what a Sink returns for a stored message.
type Receipt struct {
	Index     uint64 // the ledger index of the message's entry
	Duplicate bool   // the message was already stored; Index is the original entry
}

// A Sink makes messages durable. Implementations must be safe for concurrent use.
type Sink interface {
	// Append stores m and returns only when it is durable, or when a message with the same Identity
	// was already stored, in which case the receipt says Duplicate and names the original
	// entry; a source may then acknowledge m upstream. An error means nothing new is durable
	// and the source must not acknowledge: an error wrapping ErrInvalidMessage is permanent
	// (the source seals the payload as a capture error instead), any other is transient (the
	// platform should deliver m again). Append validates m, and neither retains nor modifies
	// it after returning.
	Append(ctx context.Context, m *Message) (Receipt, error)
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ctx context.Context, m *Message) (Receipt, error)

// Append calls f(ctx, m).
func (f SinkFunc) Append(ctx context.Context, m *Message) (Receipt, error) { return f(ctx, m) }

// A Source delivers messages from a platform to a sink. Implementations are the platform
// adapters (capture/dingtalk.Source); capturetest.RunSource checks one against these rules.
type Source interface {
	// Run captures into sink until ctx ends or the source cannot go on. It acknowledges a
	// delivery upstream only after sink.Append (or AppendRecord, for what it seals as a
	// record) returned nil for it, and answers a failed append so that the platform delivers
	// again. A payload that cannot become a message, or that the sink refuses with
	// ErrInvalidMessage, is sealed as a RecordCaptureError (when sink, or a record sink the
	// source was configured with, implements RecordSink) and acknowledged once that is
	// durable.
	//
	// Once ctx ends, Run takes no new delivery (each is answered so that the platform delivers
	// it again), lets the appends in flight finish and answers them, and returns nil: a stop
	// asked for through ctx is not a failure, and Run never returns ctx.Err(). A non-nil error
	// means Run could not start (a configuration error, a sink without what the source needs)
	// or stopped for good on its own.
	Run(ctx context.Context, sink Sink) error
}
