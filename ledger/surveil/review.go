package surveil

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
)

// DispositionSchema names the version of a disposition annotation body:
//
//	{"schema":"commseal.disposition/v1","annotation":57,"disposition":"dismissed",
//	 "note":"…","who":"alice","why":"daily review","at":"2026-11-29T10:00:00Z"}
const DispositionSchema = "commseal.disposition/v1"

// Disposition is what a reviewer decided about an alert.
type Disposition string

// Dispositions.
const (
	Dismissed Disposition = "dismissed" // a false positive: closes the alert
	Escalated Disposition = "escalated" // taken further (a case, the compliance officer): closes it
	Noted     Disposition = "note"      // a note; the alert stays open
	Assigned  Disposition = "assigned"  // given to someone (Note names whom); stays open
)

// closes reports whether a disposition takes an alert out of the open queue.
func (d Disposition) closes() bool { return d == Dismissed || d == Escalated }

// DispositionRecord is the body of a disposition annotation.
type DispositionRecord struct {
	Schema      string      `json:"schema"`
	Annotation  uint64      `json:"annotation"` // the ledger index of the findings annotation
	Disposition Disposition `json:"disposition"`
	Note        string      `json:"note,omitempty"`
	Who         string      `json:"who"`
	Why         string      `json:"why"`
	At          time.Time   `json:"at"`
}

// ErrNotAnAlert is returned by Dispose for an index that is not a findings or behaviour
// annotation.
var ErrNotAnAlert = errors.New("surveil: not an alert")

// MaxNoteLen bounds a disposition's note.
const MaxNoteLen = 4096

// Dispose seals a reviewer's disposition of the alert sealed at index annotation, as an
// annotation entry about the same message (encrypted under its key, so a note that quotes the
// message goes when it goes). Reading the alert to check it is an access by who for why.
func Dispose(ctx context.Context, l *ledger.Ledger, who, why string, annotation uint64, d Disposition, note string) (uint64, error) {
	switch {
	case !slices.Contains([]Disposition{Dismissed, Escalated, Noted, Assigned}, d):
		return 0, fmt.Errorf("surveil: unknown disposition %q (dismissed, escalated, note, assigned)", d)
	case len(note) > MaxNoteLen:
		return 0, fmt.Errorf("surveil: a note is at most %d bytes", MaxNoteLen)
	case (d == Noted || d == Assigned) && note == "":
		return 0, fmt.Errorf("surveil: a %s needs a note", d)
	}
	e, err := l.Access(who, why).For("review").Get(ctx, annotation)
	if err != nil {
		return 0, err
	}
	if e.Leaf.Kind != seal.KindAnnotation || e.Record == nil || !isAlert(e.Record.Body) {
		return 0, fmt.Errorf("%w: entry %d", ErrNotAnAlert, annotation)
	}
	now := time.Now().UTC()
	body, err := json.Marshal(DispositionRecord{Schema: DispositionSchema, Annotation: annotation, Disposition: d, Note: note,
		Who: who, Why: why, At: now})
	if err != nil {
		return 0, fmt.Errorf("surveil: %w", err)
	}
	r := e.Record
	rc, err := l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordAnnotation, Platform: r.Platform, Tenant: r.Tenant,
		Conversation: r.Conversation, About: r.About, At: now, Body: body})
	if err != nil {
		return 0, fmt.Errorf("surveil: sealing the disposition: %w", err)
	}
	return rc.Index, nil
}

func isAlert(body []byte) bool {
	var h struct{ Schema string }
	return json.Unmarshal(body, &h) == nil && (h.Schema == Schema || h.Schema == BehaviourSchema)
}

// Alert is one entry of the review queue: a findings or behaviour annotation and what
// reviewers decided about it.
type Alert struct {
	Index        uint64               `json:"index"` // the annotation's ledger index
	About        *capture.Identity    `json:"about,omitempty"`
	Conversation string               `json:"conversation,omitempty"`
	At           time.Time            `json:"at"`
	Findings     *Annotation          `json:"findings,omitempty"`
	Behaviour    *BehaviourAnnotation `json:"behaviour,omitempty"`
	Dispositions []DispositionRecord  `json:"dispositions,omitempty"`
}

// Open reports whether no disposition closed the alert.
func (a *Alert) Open() bool {
	return !slices.ContainsFunc(a.Dispositions, func(d DispositionRecord) bool { return d.Disposition.closes() })
}

// Alerts reads the review queue from the ledger, through acc (one access entry: the alerts are
// derived from content): every alert with its dispositions, in the ledger order of the messages
// they are about (annotations are sealed several at a time, so their own order is not the
// messages'). The queue is derived from the ledger alone, so every reviewer sees the same one.
func Alerts(ctx context.Context, l *ledger.Ledger, acc *ledger.Accessor) ([]*Alert, error) {
	var out []*Alert
	at := map[uint64]*Alert{}
	err := acc.Scan(ctx, 0, l.Size(), func(e *ledger.Entry, err error) error {
		if e.Leaf.Kind != seal.KindAnnotation || errors.Is(err, ledger.ErrShredded) {
			return nil
		}
		if err != nil {
			return err
		}
		a := &Alert{Index: e.Index, About: e.Record.About, Conversation: e.Record.Conversation.ID, At: e.Record.At}
		var h struct{ Schema string }
		if json.Unmarshal(e.Record.Body, &h) != nil {
			return nil
		}
		switch h.Schema {
		case Schema:
			if a.Findings, err = ParseAnnotation(e.Record.Body); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
		case BehaviourSchema:
			a.Behaviour = &BehaviourAnnotation{}
			if err := json.Unmarshal(e.Record.Body, a.Behaviour); err != nil {
				return fmt.Errorf("entry %d: %w: %v", e.Index, ErrBadAnnotation, err)
			}
		case DispositionSchema:
			var d DispositionRecord
			if err := json.Unmarshal(e.Record.Body, &d); err != nil {
				return fmt.Errorf("entry %d: %w: %v", e.Index, ErrBadAnnotation, err)
			}
			if t := at[d.Annotation]; t != nil {
				t.Dispositions = append(t.Dispositions, d)
			}
			return nil
		default:
			return nil
		}
		at[e.Index] = a
		out = append(out, a)
		return nil
	})
	slices.SortStableFunc(out, func(a, b *Alert) int { return cmp.Compare(a.order(), b.order()) })
	return out, err
}

// MessageIndex returns the ledger index of the message the alert is about: a findings
// annotation's message; a behaviour annotation's, when it names one (BehaviourAnnotation.Message:
// not for a silence or a reconnect storm, nor in annotations sealed before the field existed).
// ok is false for an alert about no known message.
func (a *Alert) MessageIndex() (index uint64, ok bool) {
	switch {
	case a.Findings != nil:
		return a.Findings.Message.Index, true
	case a.Behaviour != nil && a.Behaviour.Message != nil:
		return a.Behaviour.Message.Index, true
	}
	return 0, false
}

// order is where an alert sorts: at its message, or its own index for an alert about none.
func (a *Alert) order() uint64 {
	if i, ok := a.MessageIndex(); ok {
		return i
	}
	return a.Index
}
