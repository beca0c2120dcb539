package alert

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/scan"
)

// Sentinel errors that callers branch on. Every error of the package that means one of these
// wraps it.
var (
	// ErrInvalidAlert: an Alert fails Validate (missing field, too long, invalid UTF-8). Queuing
	// it again cannot succeed.
	ErrInvalidAlert = errors.New("alert: invalid alert")
	// ErrOutboxFull: the outbox holds Options.MaxRecords records (pending and dead letters) and
	// refuses a new one. Nothing was queued; the caller keeps the alert and tries again later.
	ErrOutboxFull = errors.New("alert: outbox full")
	// ErrOutboxInUse: another open Outbox (in this or another process) owns the directory.
	ErrOutboxInUse = errors.New("alert: outbox directory in use")
	// ErrClosed: the Outbox was closed.
	ErrClosed = errors.New("alert: outbox closed")
	// ErrRunning: Run was called while another Run of the same Outbox is active.
	ErrRunning = errors.New("alert: outbox already running")
	// ErrCorruptRecord: an outbox file is not a valid record (torn, damaged or foreign). Open
	// moves such files to the quarantine subdirectory instead of failing.
	ErrCorruptRecord = errors.New("alert: corrupt outbox record")
	// ErrPermanent: a delivery that can never succeed as it is (the receiver refused the alert
	// with a 4xx status other than 408 and 429, or DingTalk answered with a configuration
	// error). The outbox keeps such an alert as a dead letter; it does not retry it.
	ErrPermanent = errors.New("alert: permanent delivery failure")
	// ErrBadSignature: VerifySignature found a missing, malformed or wrong signature.
	ErrBadSignature = errors.New("alert: bad webhook signature")
	// ErrStaleTimestamp: VerifySignature found a timestamp outside the allowed skew (a replay,
	// or clocks that disagree).
	ErrStaleTimestamp = errors.New("alert: webhook timestamp outside allowed skew")
)

// Limits that Validate enforces, in bytes. They bound what one alert takes on disk and on the
// wire.
const (
	// MaxIDLen bounds Alert.ID, which travels as an HTTP header.
	MaxIDLen = 128
	// MaxRefLen bounds the reference fields: platform, tenant, message, conversation and sender
	// ids (the same bound as capture.MaxIDLen).
	MaxRefLen = capture.MaxIDLen
	// MaxRuleLen bounds Rule, Category and LexiconVersion.
	MaxRuleLen = 256
	// MaxLexiconNameLen bounds LexiconName.
	MaxLexiconNameLen = capture.MaxNameLen
	// MaxExcerptLen bounds Excerpt.
	MaxExcerptLen = 4 << 10
)

// Alert tells a compliance team that a rule flagged a sealed message. It carries references
// (where to look in the ledger) and severities, not what the message said: a reviewer opens
// the message through the ledger, which seals that access. Excerpt is the one exception, for
// operators who choose to put a passage of the message in their alerts.
//
// The JSON form (the webhook body and the outbox record) uses the tags below; empty optional
// fields are omitted.
type Alert struct {
	// ID is the idempotency key: the same finding always gives the same ID, however often it is
	// raised (a producer that crashed and scans again, a retry), so receivers deduplicate on it.
	// NewID derives it; when it is empty, an Alerter fills it with NewID(Index, Rule,
	// LexiconVersion). ASCII letters, digits and . _ : - only.
	ID string `json:"id"`
	// Index is the ledger index of the flagged message; for a finding about no message (a
	// silence, a reconnect storm), of the annotation that seals it.
	Index uint64 `json:"index"`
	// Platform, Tenant and MessageID are the message's source identity (capture.Identity).
	Platform  string `json:"platform"`
	Tenant    string `json:"tenant,omitempty"`
	MessageID string `json:"msg_id"`
	// Conversation is the conversation id; Sender the sender's platform user id.
	Conversation string `json:"conversation,omitempty"`
	Sender       string `json:"sender,omitempty"`
	// Rule is the id of the lexicon rule or behaviour rule that fired; Category its category.
	Rule     string `json:"rule"`
	Category string `json:"category,omitempty"`
	// Severity is the rule's severity.
	Severity scan.Severity `json:"severity"`
	// LexiconName and LexiconVersion name the lexicon that produced the finding (both empty
	// for a behaviour rule). The version is scan.Lexicon.Version's "sha256:…".
	LexiconName    string `json:"lexicon_name,omitempty"`
	LexiconVersion string `json:"lexicon_version,omitempty"`
	// Time is when the flagged message was sent (capture.Message.SentAt).
	Time time.Time `json:"time"`
	// Excerpt is a passage of the message. The producer fills it only when the operator has
	// opted in to content in alerts; even then the outbox stores it and a sender sends it only
	// when their own IncludeExcerpt option is set. Every other Alerter drops it.
	Excerpt string `json:"excerpt,omitempty"`
}

// Alerter delivers alerts. Alert returns nil once the alert is delivered (a log line) or
// durably queued for delivery (an Outbox); an error means the alert was not taken and the
// caller keeps it. Alert with an ID that was already taken is not an error.
type Alerter interface {
	Alert(ctx context.Context, a Alert) error
}

// NewID derives an alert's idempotency key from the finding's identity: the ledger index of
// the message, the rule and the lexicon version (empty for behaviour rules). The result is
// "a-" followed by 32 hex digits of a SHA-256 over the three, each length-prefixed so that no
// two different triples collide by concatenation. A message that trips one rule several times
// gives one alert.
func NewID(index uint64, rule, lexiconVersion string) string {
	h := sha256.New()
	var b [8]byte
	h.Write([]byte("commseal alert id v1\x00"))
	binary.BigEndian.PutUint64(b[:], index)
	h.Write(b[:])
	for _, s := range []string{rule, lexiconVersion} {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	return "a-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// withID returns a with ID filled by NewID when it is empty.
func (a Alert) withID() Alert {
	if a.ID == "" {
		a.ID = NewID(a.Index, a.Rule, a.LexiconVersion)
	}
	return a
}

// Validate checks that a is complete and within the limits: ID, Platform, MessageID and Rule
// present, a known severity, every string valid UTF-8 within its limit, ID made of ASCII
// letters, digits and . _ : -. Errors wrap ErrInvalidAlert and name the field.
func (a *Alert) Validate() error {
	fail := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidAlert, field, why)
	}
	if a.ID == "" {
		return fail("id", "is empty")
	}
	if len(a.ID) > MaxIDLen {
		return fail("id", fmt.Sprintf("is longer than %d bytes", MaxIDLen))
	}
	for i := 0; i < len(a.ID); i++ {
		if !idByte(a.ID[i]) {
			return fail("id", fmt.Sprintf("has byte %#x at %d (want ASCII letters, digits and . _ : -)", a.ID[i], i))
		}
	}
	for _, f := range []struct {
		name, v  string
		max      int
		required bool
	}{
		{"platform", a.Platform, MaxRefLen, true},
		{"tenant", a.Tenant, MaxRefLen, false},
		{"msg_id", a.MessageID, MaxRefLen, true},
		{"conversation", a.Conversation, MaxRefLen, false},
		{"sender", a.Sender, MaxRefLen, false},
		{"rule", a.Rule, MaxRuleLen, true},
		{"category", a.Category, MaxRuleLen, false},
		{"lexicon_name", a.LexiconName, MaxLexiconNameLen, false},
		{"lexicon_version", a.LexiconVersion, MaxRuleLen, false},
		{"excerpt", a.Excerpt, MaxExcerptLen, false},
	} {
		switch {
		case f.required && f.v == "":
			return fail(f.name, "is empty")
		case len(f.v) > f.max:
			return fail(f.name, fmt.Sprintf("is longer than %d bytes", f.max))
		case !utf8.ValidString(f.v):
			return fail(f.name, "is not valid UTF-8")
		}
	}
	if a.Severity < scan.Info || a.Severity > scan.High {
		return fail("severity", fmt.Sprintf("%d is not a known severity", uint8(a.Severity)))
	}
	if _, err := a.Time.MarshalText(); err != nil {
		return fail("time", "cannot be encoded: "+err.Error())
	}
	return nil
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// prepare fills the ID, drops the excerpt unless keep, and validates.
func prepare(a Alert, keep bool) (Alert, error) {
	a = a.withID()
	if !keep {
		a.Excerpt = ""
	}
	if err := a.Validate(); err != nil {
		return Alert{}, err
	}
	return a, nil
}

// Summary is the one-line human text of an alert, as the DingTalk robot and logs show it:
// severity, rule, category and where the message is. It never contains the Excerpt.
func (a *Alert) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", a.Severity, a.Rule)
	if a.Category != "" {
		fmt.Fprintf(&b, " (%s)", a.Category)
	}
	fmt.Fprintf(&b, " ledger #%d", a.Index)
	return b.String()
}
