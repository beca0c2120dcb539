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

// Record is a non-message entry that a source or a reviewer seals beside the messages: context
// events, media fetch results, capture errors, annotations. Body is a JSON document whose shape
// depends on Kind; Raw keeps any source payload verbatim.
type Record struct {
	Kind         string       `json:"kind"` // one of the Record constants
	Platform     string       `json:"platform"`
	Tenant       string       `json:"tenant"`
	ID           string       `json:"id,omitempty"` // dedup identity within (Kind, Platform, Tenant); empty: never deduplicated
	Conversation Conversation `json:"conversation,omitzero"`
	About        *Key         `json:"about,omitempty"` // the message this record refers to, if any
	At           time.Time    `json:"at"`              // when the event happened (or was observed)
	Body         []byte       `json:"body,omitempty"`  // a JSON document; its shape depends on Kind
	Raw          []byte       `json:"raw,omitempty"`   // the source payload, byte for byte, if any
}

// Validate reports whether r can be stored.
func (r *Record) Validate() error {
	if r == nil {
		return fmt.Errorf("%w: nil record", ErrInvalidMessage)
	}
	switch r.Kind {
	case RecordContext, RecordMedia, RecordCaptureError, RecordAnnotation:
	default:
		return fmt.Errorf("%w: record kind %q is unknown", ErrInvalidMessage, r.Kind)
	}
	if r.Platform == "" {
		return fmt.Errorf("%w: record platform is empty", ErrInvalidMessage)
	}
	for _, s := range []string{r.Platform, r.Tenant, r.ID, r.Conversation.ID, r.Conversation.Title} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: record field is not valid UTF-8", ErrInvalidMessage)
		}
		if len(s) > MaxIDLen {
			return fmt.Errorf("%w: record field is %d bytes, over the limit of %d", ErrInvalidMessage, len(s), MaxIDLen)
		}
	}
	if len(r.Body)+len(r.Raw) > MaxRawLen {
		return fmt.Errorf("%w: record body and raw are %d bytes, over the limit of %d", ErrInvalidMessage, len(r.Body)+len(r.Raw), MaxRawLen)
	}
	return nil
}

// A RecordSink makes records durable, with the same contract as Sink: nil means durable (or
// already stored when ID is set and was seen before, in which case Duplicate is true).
type RecordSink interface {
	AppendRecord(ctx context.Context, r *Record) (Receipt, error)
}

// ErrBlobNotFound is returned by BlobStore.Blob for a hash that is not stored.
var ErrBlobNotFound = errors.New("capture: blob not found")

// A BlobStore keeps attachment content, addressed by its SHA-256. PutBlob returns only when the
// content is durable; storing the same content twice is harmless.
type BlobStore interface {
	PutBlob(ctx context.Context, data []byte) (sha256 [32]byte, err error)
	Blob(ctx context.Context, sha256 [32]byte) ([]byte, error)
}
