package surveil

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/scan"
)

// Schema names the version of the findings annotation body.
const Schema = "commseal.findings/v1"

// Finding is one lexicon hit in one field of a message.
type Finding struct {
	Rule     string        `json:"rule"`
	Category string        `json:"category"`
	Severity scan.Severity `json:"severity"`
	Term     string        `json:"term"` // the lexicon term as written ("a … b" for a near rule)
	// Field is where it matched: "text" (the message text, which for rich text and audio is the
	// text capture extracted), "title" (the conversation title) or "file.N" (the name of
	// attachment N).
	Field string `json:"field"`
	// Start and End are byte offsets into that field: field[Start:End] is the matched passage.
	Start int `json:"start"`
	End   int `json:"end"`
}

// Lexicon names the lexicon version that produced findings.
type Lexicon struct {
	Name    string `json:"name"`
	Version string `json:"version"` // scan.Scanner.Version: "sha256:…"
}

// Annotation is the body of an annotation entry that seals a message's findings (capture.Record
// of kind capture.RecordAnnotation, About the message, encrypted under the message's data key
// on an encrypted ledger, so it goes when the message goes):
//
//	{"schema":"commseal.findings/v1",
//	 "lexicon":{"name":"default","version":"sha256:…"},
//	 "message":{"index":12,"platform":"dingtalk","tenant":"corp","id":"msg…",
//	            "conversation":"cid…","sender":"user…","sent":"2026-11-02T03:04:05Z"},
//	 "findings":[{"rule":"off-channel","category":"off_channel","severity":"high",
//	              "term":"whatsapp","field":"text","start":11,"end":19}]}
type Annotation struct {
	Schema   string     `json:"schema"`
	Lexicon  Lexicon    `json:"lexicon"`
	Message  MessageRef `json:"message"`
	Findings []Finding  `json:"findings"`
}

// MessageRef names the message findings are about: where it is and who said it where, so that
// a review queue needs no second read of the message.
type MessageRef struct {
	Index        uint64    `json:"index"`
	Platform     string    `json:"platform"`
	Tenant       string    `json:"tenant,omitempty"`
	ID           string    `json:"id"`
	Conversation string    `json:"conversation,omitempty"`
	Sender       string    `json:"sender,omitempty"`
	Sent         time.Time `json:"sent,omitzero"`
}

// ScanMessage scans every scannable field of m (text, conversation title, attachment names)
// with s and returns the findings, field by field. A message that matches nothing costs one
// copy of its fields and no other allocation. (The monitor scans a step's messages together,
// with the same findings; see stepBatch.)
func ScanMessage(s *scan.Scanner, m *capture.Message) []Finding {
	var out []Finding
	var buf []scan.Finding
	var text []byte // one buffer for every field
	field := func(text []byte, name func() string) {
		buf = s.AppendScan(buf[:0], text)
		if len(buf) == 0 {
			return
		}
		n := name()
		for _, h := range buf {
			out = append(out, Finding{Rule: h.Rule, Category: h.Category, Severity: h.Severity, Term: h.Term,
				Field: n, Start: h.Start, End: h.End})
		}
	}
	if m.Text != "" {
		text = append(text[:0], m.Text...)
		field(text, func() string { return "text" })
	}
	if m.Conversation.Title != "" {
		text = append(text[:0], m.Conversation.Title...)
		field(text, func() string { return "title" })
	}
	for i, a := range m.Attachments {
		if a.Name != "" {
			text = append(text[:0], a.Name...)
			field(text, func() string { return "file." + strconv.Itoa(i) })
		}
	}
	return out
}

// recordID is the annotation's dedup identity: one per message and lexicon version, so that a
// message scanned again by the same version (a restart, a re-scan) seals nothing new.
func recordID(lexVersion string, msgID string) string {
	return boundedID("findings/"+lexVersion+"/", msgID)
}

// boundedID returns prefix+key, with key replaced by its SHA-256 when the whole would be longer
// than a record id may be.
func boundedID(prefix, key string) string {
	if len(prefix)+len(key) <= capture.MaxIDLen {
		return prefix + key
	}
	sum := sha256.Sum256([]byte(key))
	return prefix + "sha256:" + hex.EncodeToString(sum[:])
}

// ErrBadAnnotation is wrapped by ParseAnnotation for a body that is not a findings annotation.
var ErrBadAnnotation = errors.New("surveil: not a findings annotation")

// NewRecord turns a message's findings into the annotation record that seals them: append it
// with ledger.AppendRecord. index is the message's ledger index; lex names the lexicon version
// (scan.Scanner.Name and Version); at is when the scan ran.
func NewRecord(m *capture.Message, index uint64, lex Lexicon, findings []Finding, at time.Time) (*capture.Record, error) {
	if len(findings) == 0 {
		return nil, errors.New("surveil: no findings to seal")
	}
	if lex.Version == "" {
		return nil, errors.New("surveil: findings need the lexicon version")
	}
	body, err := json.Marshal(Annotation{Schema: Schema, Lexicon: lex,
		Message: MessageRef{Index: index, Platform: m.Platform, Tenant: m.Tenant, ID: m.ID, Conversation: m.Conversation.ID,
			Sender: m.Sender.ID, Sent: m.SentAt.UTC()}, Findings: findings})
	if err != nil {
		return nil, fmt.Errorf("surveil: %w", err)
	}
	about := m.Identity()
	return &capture.Record{Kind: capture.RecordAnnotation, Platform: m.Platform, Tenant: m.Tenant,
		ID: recordID(lex.Version, m.ID), Conversation: m.Conversation, About: &about, At: at.UTC(), Body: body}, nil
}

// ParseAnnotation reads a findings annotation body.
func ParseAnnotation(body []byte) (*Annotation, error) {
	var a Annotation
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAnnotation, err)
	}
	if a.Schema != Schema {
		return nil, fmt.Errorf("%w: schema %q", ErrBadAnnotation, a.Schema)
	}
	if a.Lexicon.Version == "" || a.Message.ID == "" || len(a.Findings) == 0 {
		return nil, fmt.Errorf("%w: lexicon version, message id and findings are required", ErrBadAnnotation)
	}
	for i, f := range a.Findings {
		if f.Rule == "" || f.Field == "" || f.Start < 0 || f.End < f.Start {
			return nil, fmt.Errorf("%w: finding %d: rule, field and 0 <= start <= end are required", ErrBadAnnotation, i)
		}
	}
	return &a, nil
}
