package capture

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Record kinds used in Record.Kind.
const (
	// RecordContext is a platform event that gives context to messages but is not content:
	// members added or removed, a title or owner change, a group disbanded.
	RecordContext = "context"
	// RecordMedia is the result of fetching a message's attachment: the blob's hash and size, or
	// the failure and its reason. About names the message.
	RecordMedia = "media"
	// RecordCaptureError is something a source received but could not turn into a message (a
	// malformed frame, a quota-exhausted payload without content). Sealing it makes the gap
	// visible instead of silent.
	RecordCaptureError = "capture_error"
	// RecordAnnotation is a finding or note about another entry (a lexicon hit, a review
	// decision). About names the entry's message when it has one.
	RecordAnnotation = "annotation"
)

// MediaResult is the Body of a RecordMedia record: the outcome of fetching attachment
// Attachment (its index in the message's Attachments) of the message the record is About.
// A stored attachment's content is the blob whose SHA-256 is SHA256; that record is what
// names the content of an attachment the message itself describes only by a download code.
type MediaResult struct {
	Status       string `json:"status"`     // MediaStored or MediaFailed
	Attachment   int    `json:"attachment"` // the index in the message's Attachments
	DownloadCode string `json:"download_code,omitempty"`
	Name         string `json:"name,omitempty"`       // the attachment's name, as the message gives it
	MediaType    string `json:"media_type,omitempty"` // the message's kind of attachment (picture, file, ...)
	// Stored: the Content-Type the platform served, the content's SHA-256 (lowercase hex) and size.
	ContentType string `json:"content_type,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	Size        int64  `json:"size,omitempty"`
	// Failed: the attempts of the round, the round, why, and whether it was the last.
	Attempts int    `json:"attempts,omitempty"`
	Round    int    `json:"round,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Final    bool   `json:"final,omitempty"`
}

// MediaResult statuses.
const (
	MediaStored = "stored"
	MediaFailed = "failed"
)

// Record is a non-message entry that a source or a reviewer seals beside the messages: context
// events, media fetch results, capture errors, annotations. Body is a JSON document whose shape
// depends on Kind; Raw keeps any source payload verbatim.
type Record struct {
	Kind         string       `json:"kind"` // one of the Record constants
	Platform     string       `json:"platform"`
	Tenant       string       `json:"tenant"`
	ID           string       `json:"id,omitempty"` // dedup identity within (Kind, Platform, Tenant); empty: never deduplicated
	Conversation Conversation `json:"conversation,omitzero"`
	About        *Identity    `json:"about,omitempty"` // the message this record refers to, if any
	At           time.Time    `json:"at"`              // when the event happened (or was observed)
	Body         []byte       `json:"body,omitempty"`  // a JSON document; its shape depends on Kind
	Raw          []byte       `json:"raw,omitempty"`   // the source payload, byte for byte, if any
}

// Validate reports whether r can be stored: Kind is one of the Record constants, Platform is
// present, every string (Platform, Tenant, ID, the Conversation's fields, About's fields) is
// valid UTF-8 and within MaxIDLen (MaxNameLen for the conversation title, MaxKindLen for its
// type), and Body and Raw together are within MaxRawLen. Errors wrap ErrInvalidMessage. It only
// reads r.
func (r *Record) Validate() error {
	if r == nil {
		return fmt.Errorf("%w: nil record", ErrInvalidMessage)
	}
	switch r.Kind {
	case RecordContext, RecordMedia, RecordCaptureError, RecordAnnotation:
	default:
		if len(r.Kind) > MaxKindLen || !utf8.ValidString(r.Kind) {
			return fmt.Errorf("%w: record kind is unknown", ErrInvalidMessage)
		}
		return fmt.Errorf("%w: record kind %q is unknown", ErrInvalidMessage, r.Kind)
	}
	if r.Platform == "" {
		return fmt.Errorf("%w: record platform is empty", ErrInvalidMessage)
	}
	if len(r.Body)+len(r.Raw) > MaxRawLen {
		return fmt.Errorf("%w: record body and raw are %d bytes, over the limit of %d", ErrInvalidMessage, len(r.Body)+len(r.Raw), MaxRawLen)
	}
	if err := checkStrings(MaxIDLen, -1, "record platform", r.Platform, "record tenant", r.Tenant, "record id", r.ID); err != nil {
		return err
	}
	if err := checkConversation(&r.Conversation); err != nil {
		return err
	}
	if a := r.About; a != nil {
		if err := checkStrings(MaxIDLen, -1, "record about.platform", a.Platform, "record about.tenant", a.Tenant, "record about.id", a.ID); err != nil {
			return err
		}
	}
	return nil
}

// A RecordSink makes records durable, with the same contract as Sink. Implementations must be
// safe for concurrent use.
type RecordSink interface {
	// AppendRecord stores r and returns only when it is durable. A record with a non-empty ID
	// that was stored before (same Kind, Platform, Tenant and ID) is not stored again: the
	// receipt says Duplicate and names the original entry. Records without an ID are always
	// appended. Errors are as for Sink.Append: ErrInvalidMessage is permanent, anything else
	// transient. It neither retains nor modifies r after returning.
	AppendRecord(ctx context.Context, r *Record) (Receipt, error)
}

// RecordSinkFunc adapts a function to the RecordSink interface.
type RecordSinkFunc func(ctx context.Context, r *Record) (Receipt, error)

// AppendRecord calls f(ctx, r).
func (f RecordSinkFunc) AppendRecord(ctx context.Context, r *Record) (Receipt, error) {
	return f(ctx, r)
}

// ErrBlobNotFound is returned by BlobStore.Blob for a hash that is not stored.
var ErrBlobNotFound = errors.New("capture: blob not found")

// A BlobStore keeps attachment content, addressed by its SHA-256. Implementations must be safe
// for concurrent use.
type BlobStore interface {
	// PutBlob stores data and returns its SHA-256 once the content is durable. Storing the same
	// content twice is harmless and returns the same hash. It does not retain data.
	PutBlob(ctx context.Context, data []byte) (sha256 [32]byte, err error)
	// Blob returns the content stored under sha256 (a copy the caller may keep), or an error
	// wrapping ErrBlobNotFound when there is none.
	Blob(ctx context.Context, sha256 [32]byte) ([]byte, error)
}
