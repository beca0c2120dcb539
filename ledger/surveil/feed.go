package surveil

import (
	"slices"
	"sync/atomic"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
)

// DefaultFeedSize is how many messages a Feed holds for the monitor by default.
const DefaultFeedSize = 1 << 16

// Feed hands a Monitor what the ledger has just sealed, so that it scans from memory instead of
// reading every message back and decrypting it: give Appended to ledger.Options.Appended when
// the ledger is opened, and the Feed to Options.Feed. It is only a shortcut: a message it does
// not hold (overwritten by a later one before the monitor took it, or the process restarted)
// the monitor reads from the ledger, so nothing escapes. It is a ring of slots by ledger index,
// written and taken without a lock: the appenders never wait for the monitor.
type Feed struct {
	slots   []atomic.Pointer[fed]
	dropped atomic.Uint64
}

type fed struct {
	index uint64
	kind  seal.Kind
	msg   *capture.Message // for a message
}

// NewFeed makes a Feed that holds up to size messages (DefaultFeedSize if size <= 0).
func NewFeed(size int) *Feed {
	if size <= 0 {
		size = DefaultFeedSize
	}
	return &Feed{slots: make([]atomic.Pointer[fed], size)}
}

// Appended keeps what the monitor needs of the entry sealed at index
// (ledger.Options.Appended): for a message, what it scans of it; for another kind, only that
// it is not a message, so that the monitor need not read it. An entry the monitor has not
// taken yet is overwritten by one that lands in its slot; the monitor then reads it from the
// ledger.
func (f *Feed) Appended(index uint64, kind seal.Kind, m *capture.Message) {
	e := &fed{index: index, kind: kind}
	if kind == seal.KindMessage && m != nil {
		// The ledger's copy of the message is the feed's to keep (ledger.Options.Appended);
		// the slices in it are the caller's, and are copied.
		m.Raw = nil // the monitor scans what commseal understood, not the raw payload
		m.Attachments = slices.Clone(m.Attachments)
		m.Mentions = slices.Clone(m.Mentions)
		e.msg = m
	}
	if old := f.slots[index%uint64(len(f.slots))].Swap(e); old != nil {
		f.dropped.Add(1)
	}
}

// take returns what the feed holds of the entry sealed at index, and frees its slot: ok is
// false when it does not hold it; msg is nil for an entry that is not a message.
func (f *Feed) take(index uint64) (msg *capture.Message, ok bool) {
	slot := &f.slots[index%uint64(len(f.slots))]
	p := slot.Load()
	if p == nil || p.index != index || !slot.CompareAndSwap(p, nil) {
		return nil, false
	}
	if p.kind == seal.KindMessage && p.msg == nil {
		return nil, false // a message without its content: read it
	}
	return p.msg, true
}

// Dropped returns how many messages were overwritten before the monitor took them.
func (f *Feed) Dropped() uint64 { return f.dropped.Load() }
