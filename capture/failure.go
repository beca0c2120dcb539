package capture

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxCaptureErrorRaw is how much of a payload a capture error keeps in Record.Raw: the whole
// payload when it is no longer, else its first MaxCaptureErrorRaw bytes. The rest of MaxRawLen
// is left for the record's body.
const MaxCaptureErrorRaw = MaxRawLen - 64<<10

// maxReason bounds the reason a capture error records: an error can quote the input it refused.
const maxReason = 4 << 10

// maxFacts bounds the encoded Facts of a capture error.
const maxFacts = 32 << 10

// A CaptureFailure describes a payload that a source received but could not turn into a stored
// message: it does not parse, it is over a limit, the sink refused it with ErrInvalidMessage.
// Its Record method makes the RecordCaptureError that seals it, so that every source (and every
// path of one source) records the same facts the same way.
type CaptureFailure struct {
	Platform string    // required, e.g. PlatformDingTalk
	Raw      []byte    // the payload, byte for byte, as received
	Cause    error     // why it could not be stored
	At       time.Time // when it was received; zero lets the sink choose

	// What the source could still read of the payload; empty when unknown. A value that is not
	// usable as an identifier (over MaxIDLen, not UTF-8) is recorded by its SHA-256 and length
	// instead.
	Tenant         string
	ConversationID string
	MessageID      string

	// Facts are further platform-specific facts (an error code, a flag) added to the record's
	// body; keys the body already uses are ignored. Dropped whole, and said so, when they
	// encode to more than 32 KiB.
	Facts map[string]any
}

// Record returns the capture error record for f. It always passes Record.Validate (given a
// Platform), whatever f holds:
//
//   - Kind is RecordCaptureError; ID is "data:" and the first 32 hex digits of the payload's
//     SHA-256, so that a redelivery of the same bytes, by whatever path, is recorded once.
//   - Tenant and Conversation.ID are f.Tenant and f.ConversationID when usable as identifiers,
//     so that the record falls under the tenant's and the conversation's retention and legal
//     holds. About names the message (Platform, Tenant, MessageID) when MessageID is usable.
//   - Raw is the payload when it is at most MaxCaptureErrorRaw bytes, else its first
//     MaxCaptureErrorRaw bytes; the body then says raw_truncated, and always gives data_sha256
//     and data_len of the whole payload, so that what was received can be proven even when
//     not all of it is kept.
//   - Body is a JSON object: reason (the cause, cut to 4 KiB at a character boundary),
//     data_sha256, data_len, raw_truncated (when true), message_id (when usable), for each of
//     tenant, conversation_id and message_id that was present but unusable its <name>_sha256
//     and <name>_len, then the Facts.
func (f *CaptureFailure) Record() *Record {
	sum := sha256.Sum256(f.Raw)
	hexSum := hex.EncodeToString(sum[:])
	reason := "unknown"
	if f.Cause != nil {
		reason = cutUTF8(f.Cause.Error(), maxReason)
	}
	body := map[string]any{
		"reason":      reason,
		"data_sha256": hexSum,
		"data_len":    len(f.Raw),
	}
	raw := f.Raw
	if len(raw) > MaxCaptureErrorRaw {
		raw = raw[:MaxCaptureErrorRaw]
		body["raw_truncated"] = true
	}
	usable := func(name, v string) string {
		if v == "" {
			return ""
		}
		if fits(v, MaxIDLen) {
			return v
		}
		h := sha256.Sum256([]byte(v))
		body[name+"_sha256"] = hex.EncodeToString(h[:])
		body[name+"_len"] = len(v)
		return ""
	}
	tenant := usable("tenant", f.Tenant)
	conv := usable("conversation_id", f.ConversationID)
	msgID := usable("message_id", f.MessageID)
	if msgID != "" {
		body["message_id"] = msgID
	}
	if len(f.Facts) > 0 {
		if b, err := json.Marshal(f.Facts); err != nil || len(b) > maxFacts {
			body["facts_dropped"] = true
		} else {
			for k, v := range f.Facts {
				if _, taken := body[k]; !taken {
					body[k] = v
				}
			}
		}
	}
	b, err := json.Marshal(body)
	if err != nil { // cannot happen: the body holds strings, numbers, bools and encodable facts
		b = []byte(`{"reason":"capture error body could not be encoded"}`)
	}
	r := &Record{
		Kind:         RecordCaptureError,
		Platform:     f.Platform,
		Tenant:       tenant,
		ID:           "data:" + hexSum[:32],
		Conversation: Conversation{ID: conv},
		At:           f.At,
		Body:         b,
		Raw:          slices.Clone(raw),
	}
	if msgID != "" {
		r.About = &Identity{Platform: f.Platform, Tenant: tenant, ID: msgID}
	}
	return r
}

// cutUTF8 returns s cut to at most n bytes without splitting a character, with invalid UTF-8
// replaced, so that the result is always valid.
func cutUTF8(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		for i := 0; i < utf8.UTFMax && len(s) > 0; i++ {
			r, size := utf8.DecodeLastRuneInString(s)
			if r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if len(s) > n {
			return cutUTF8(s, n)
		}
	}
	return s
}
