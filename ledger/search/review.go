package search

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
)

// The annotation schemas of package ledger/surveil that the index reads (only the fields it
// needs; surveil documents them whole).
const (
	findingsSchema    = "commseal.findings/v1"
	behaviourSchema   = "commseal.behaviour/v1"
	dispositionSchema = "commseal.disposition/v1"
)

// review is what was sealed about a message after it: an alert (a findings or behaviour
// annotation), a reviewer's disposition of one, or the media record of a fetch of one of its
// attachments after capture (which an export of the message takes with it).
type review struct {
	entry      uint64   // the record's own ledger index
	annotation uint64   // the alert's ledger index (for an alert, entry itself)
	message    uint64   // the message's ledger index (an alert, a media record)
	keyID      string   // the data key it is sealed under (the message's)
	tags       []string // "rule:…", "category:…", "severity:…", or "disposition:…"
	closes     bool     // a disposition that takes the alert out of the open queue
	alert      bool
	media      bool // a media record
}

// mediaFrom reads a media record; ok is true for one about a message the ledger holds.
func mediaFrom(ctx context.Context, l *ledger.Ledger, e *ledger.Entry) (*review, bool) {
	r := e.Record
	if r == nil || r.Kind != capture.RecordMedia || r.About == nil {
		return nil, false
	}
	at, ok, err := l.Lookup(ctx, *r.About)
	if err != nil || !ok {
		return nil, false
	}
	return &review{entry: e.Index, annotation: e.Index, message: at, keyID: e.Leaf.KeyID, media: true}, true
}

// reviewFrom reads an annotation entry; ok is false for one the index does not use.
func reviewFrom(ctx context.Context, l *ledger.Ledger, e *ledger.Entry) (*review, bool) {
	if e.Record == nil {
		return nil, false
	}
	var h struct {
		Schema  string `json:"schema"`
		Message struct {
			Index uint64 `json:"index"`
		} `json:"message"`
		Findings []struct {
			Rule     string `json:"rule"`
			Category string `json:"category"`
			Severity string `json:"severity"`
		} `json:"findings"`
		Finding struct {
			Rule     string `json:"rule"`
			Kind     string `json:"kind"`
			Severity string `json:"severity"`
		} `json:"finding"`
		Annotation  uint64 `json:"annotation"`
		Disposition string `json:"disposition"`
	}
	if json.Unmarshal(e.Record.Body, &h) != nil {
		return nil, false
	}
	r := &review{entry: e.Index, annotation: e.Index, keyID: e.Leaf.KeyID, alert: true}
	switch h.Schema {
	case findingsSchema:
		r.message = h.Message.Index
		for _, f := range h.Findings {
			r.tags = append(r.tags, "rule:"+f.Rule, "category:"+f.Category, "severity:"+f.Severity)
		}
	case behaviourSchema:
		if e.Record.About == nil {
			return nil, false
		}
		at, ok, err := l.Lookup(ctx, capture.Identity(*e.Record.About))
		if err != nil || !ok {
			return nil, false
		}
		r.message = at
		r.tags = []string{"rule:" + h.Finding.Rule, "category:" + h.Finding.Kind, "severity:" + h.Finding.Severity}
	case dispositionSchema:
		r.alert, r.annotation = false, h.Annotation
		r.tags = []string{"disposition:" + h.Disposition}
		r.closes = h.Disposition == "dismissed" || h.Disposition == "escalated"
	default:
		return nil, false
	}
	slices.Sort(r.tags)
	r.tags = slices.Compact(r.tags)
	return r, true
}

// encoding of a review inside the index file (sealed): flags, message index, tags.
func (r *review) appendTo(b []byte) []byte {
	var flags byte
	if r.alert {
		flags |= 1
	}
	if r.closes {
		flags |= 2
	}
	if r.media {
		flags |= 4
	}
	b = append(b, flags)
	b = appendString(b, formatUint(r.message))
	b = appendString(b, formatUint(r.annotation))
	return appendString(b, strings.Join(r.tags, "\x00"))
}

func decodeReview(b []byte) (*review, bool) {
	if len(b) < 1 {
		return nil, false
	}
	r := &review{alert: b[0]&1 != 0, closes: b[0]&2 != 0, media: b[0]&4 != 0}
	d := &decoder{b: b[1:]}
	msg, ann, tags := d.string("message"), d.string("annotation"), d.string("tags")
	if d.err != nil || len(d.b) != 0 {
		return nil, false
	}
	n, ok1 := parseUint(msg)
	a, ok2 := parseUint(ann)
	if !ok1 || !ok2 {
		return nil, false
	}
	r.message, r.annotation = n, a
	if tags != "" {
		r.tags = strings.Split(tags, "\x00")
	}
	return r, true
}

// reviews is the memIndex's view of what was sealed about messages after them: alert tags
// per document, which alerts are open, and each document's records that an export takes
// along (its media records and alerts).
type reviews struct {
	tags    postings
	alerts  map[uint64]*alertState // annotation index -> state
	open    map[docID]int          // documents with open alerts -> how many
	records map[docID][]uint64     // document -> the ledger indexes of its media records and alerts
}

type alertState struct {
	doc    docID
	closed bool
}

// apply records an alert, a disposition or a media record; one about a message the index
// does not hold (not yet indexed, or shredded) is dropped.
func (m *memIndex) apply(r *review) {
	if m.rev.alerts == nil {
		m.rev = reviews{tags: postings{}, alerts: map[uint64]*alertState{}, open: map[docID]int{}, records: map[docID][]uint64{}}
	}
	if r.media || r.alert {
		id, ok := m.docAt(r.message)
		if !ok {
			return
		}
		if !slices.Contains(m.rev.records[id], r.entry) {
			m.rev.records[id] = append(m.rev.records[id], r.entry)
		}
		if r.media {
			return
		}
		for _, t := range r.tags {
			m.rev.tags.insert(t, id)
		}
		m.rev.alerts[r.annotation] = &alertState{doc: id}
		m.rev.open[id]++
		return
	}
	st := m.rev.alerts[r.annotation]
	if st == nil {
		return
	}
	for _, t := range r.tags {
		m.rev.tags.insert(t, st.doc)
	}
	if r.closes && !st.closed {
		st.closed = true
		if m.rev.open[st.doc]--; m.rev.open[st.doc] == 0 {
			delete(m.rev.open, st.doc)
		}
	}
}

// docAt finds the document of a ledger index (documents are in ledger order).
func (m *memIndex) docAt(index uint64) (docID, bool) {
	i, ok := slices.BinarySearch(m.ledger, index)
	return docID(i), ok && !m.dead[i]
}

// insert adds d to k's list, keeping it sorted (alerts arrive after their messages).
func (p postings) insert(k string, d docID) {
	l := p[k]
	i, found := slices.BinarySearch(l, d)
	if !found {
		p[k] = slices.Insert(l, i, d)
	}
}

// reviewed returns the documents a review field matches.
func (m *memIndex) reviewed(field, value string) []docID {
	if field == FieldDisposition && value == "open" {
		out := make([]docID, 0, len(m.rev.open))
		for id := range m.rev.open {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	return slices.Clone(m.rev.tags[field+":"+value])
}
