package surveil

import (
	"slices"
	"sync/atomic"

	"github.com/commseal/commseal/capture"
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
	msg   *capture.Message
}

// NewFeed makes a Feed that holds up to size messages (DefaultFeedSize if size <= 0).
func NewFeed(size int) *Feed {
	if size <= 0 {
		size = DefaultFeedSize
	}
	return &Feed{slots: make([]atomic.Pointer[fed], size)}
}

// Appended keeps what the monitor scans of message m, sealed at index (ledger.Options.Appended).
// A message the monitor has not taken yet is overwritten by one that lands in its slot; the
// monitor then reads it from the ledger.
func (f *Feed) Appended(index uint64, m *capture.Message) {
	c := *m
	c.Raw = nil // the monitor scans what commseal understood, not the raw payload
	c.Attachments = slices.Clone(m.Attachments)
	c.Mentions = slices.Clone(m.Mentions)
	if old := f.slots[index%uint64(len(f.slots))].Swap(&fed{index: index, msg: &c}); old != nil {
		f.dropped.Add(1)
	}
}

// take returns the message sealed at index, if the feed still holds it, and frees its slot.
func (f *Feed) take(index uint64) (*capture.Message, bool) {
	slot := &f.slots[index%uint64(len(f.slots))]
	p := slot.Load()
	if p == nil || p.index != index || !slot.CompareAndSwap(p, nil) {
		return nil, false
	}
	return p.msg, true
}

// Dropped returns how many messages were overwritten before the monitor took them.
func (f *Feed) Dropped() uint64 { return f.dropped.Load() }
