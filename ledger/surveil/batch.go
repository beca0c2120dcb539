package surveil

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/scan"
)

// stepBatch scans the messages of a step together: every scannable field of every message goes
// to one scan.Scanner.ScanBatch call, which keeps several messages in flight at once (a large
// lexicon's automaton does not fit in the cache, and one message's table loads hide another's)
// and takes its working memory once per step instead of once per field. It hands each message's
// findings back in ledger order, exactly as ScanMessage gives them. Its buffers are kept from
// step to step (a monitor runs one step at a time).
type stepBatch struct {
	msgs  []batchMsg
	arena []byte      // the fields' bytes, one after the other
	spans []fieldSpan // per field scanned: where its bytes are in arena, and whose they are
	texts [][]byte    // per field scanned: arena[span.start:span.end]
	hits  []fieldHit  // what ScanBatch found, by field
	found []Finding   // a message's findings, before they are copied out
	names []string    // "file.N" for the first attachments, made once
}

type batchMsg struct {
	at  uint64
	msg *capture.Message
}

// fieldSpan is a field of message msg in the arena; field is fieldText, fieldTitle or the
// index of the attachment whose name it is.
type fieldSpan struct {
	msg, field int32
	start, end int
}

const (
	fieldText  = -2
	fieldTitle = -1
)

type fieldHit struct {
	field int // index into spans
	f     scan.Finding
}

// maxArena is the size above which the arena is not kept for the next step: a step of very
// long messages should not pin its memory for good.
const maxArena = 8 << 20

// maxNames is how many attachment field names are kept made.
const maxNames = 16

// add queues the message sealed at ledger index at.
func (b *stepBatch) add(at uint64, m *capture.Message) {
	b.msgs = append(b.msgs, batchMsg{at, m})
}

// scan scans the queued messages with s and calls each, in the order they were added, with
// every message and its findings (nil when it has none). fs is the caller's to keep.
func (b *stepBatch) scan(s *scan.Scanner, each func(at uint64, m *capture.Message, fs []Finding)) {
	b.arena, b.spans, b.texts, b.hits = b.arena[:0], b.spans[:0], b.texts[:0], b.hits[:0]
	for i, x := range b.msgs {
		b.field(i, fieldText, x.msg.Text)
		b.field(i, fieldTitle, x.msg.Conversation.Title)
		for j, a := range x.msg.Attachments {
			b.field(i, j, a.Name)
		}
	}
	for _, sp := range b.spans {
		b.texts = append(b.texts, b.arena[sp.start:sp.end:sp.end])
	}
	s.ScanBatch(b.texts, func(field int, f scan.Finding) {
		b.hits = append(b.hits, fieldHit{field, f})
	})
	// ScanBatch hands over each field's findings together and in order, the fields in any
	// order; the fields are in message order, and in ScanMessage's order within a message.
	slices.SortStableFunc(b.hits, func(x, y fieldHit) int { return cmp.Compare(x.field, y.field) })
	h := 0
	for i, x := range b.msgs {
		var fs []Finding
		if h < len(b.hits) && int(b.spans[b.hits[h].field].msg) == i {
			found := b.found[:0]
			for ; h < len(b.hits) && int(b.spans[b.hits[h].field].msg) == i; h++ {
				f := &b.hits[h].f
				found = append(found, Finding{Rule: f.Rule, Category: f.Category, Severity: f.Severity, Term: f.Term,
					Field: b.fieldName(b.spans[b.hits[h].field].field), Start: f.Start, End: f.End})
			}
			b.found = found
			fs = slices.Clone(found)
		}
		each(x.at, x.msg, fs)
	}
	b.reset()
}

// field queues the field of message i that has text s, unless it is empty.
func (b *stepBatch) field(i, field int, s string) {
	if s == "" {
		return
	}
	start := len(b.arena)
	b.arena = append(b.arena, s...)
	b.spans = append(b.spans, fieldSpan{msg: int32(i), field: int32(field), start: start, end: len(b.arena)})
}

// fieldName is the name of a field in a Finding.
func (b *stepBatch) fieldName(field int32) string {
	switch field {
	case fieldText:
		return "text"
	case fieldTitle:
		return "title"
	}
	if field >= maxNames {
		return "file." + strconv.Itoa(int(field))
	}
	for len(b.names) <= int(field) {
		b.names = append(b.names, "file."+strconv.Itoa(len(b.names)))
	}
	return b.names[field]
}

// reset forgets the step's messages (so that they can be freed) and hits, keeping the buffers
// (the arena only up to maxArena).
func (b *stepBatch) reset() {
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	clear(b.hits)
	b.hits = b.hits[:0]
	clear(b.texts)
	b.texts = b.texts[:0]
	if cap(b.arena) > maxArena {
		b.arena = nil
	}
}
