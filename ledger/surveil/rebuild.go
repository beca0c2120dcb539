package surveil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
	"github.com/commseal/commseal/seal"
)

// A monitor's behaviour rules keep state over time (when each conversation and source last
// spoke, burst baselines, off-channel moves waiting for a reply, who has met whom), and a new
// monitor's detector starts empty. The detector is a pure function of the calls it gets, so
// before its first step the monitor rebuilds it by replaying, in ledger order, the messages
// before its cursor that the rules still remember (behaviour.Detector.Memory), and restoring
// the behaviour findings sealed among them (behaviour.Detector.Restore): a silence reported
// before the restart is not reported again, a first contact is not new again. What the
// replayed messages cause is dropped: it was sealed and reported before the restart (the
// cursor moves only after that). The replay reads the ledger exactly as the steps do
// (Monitor.scan's path: ledger.Deriver, nothing leaves the process), and is bounded by
// Options.RebuildWindow and Options.RebuildEntries.

// probeRun is how many entries one probe of the replay's start reads at a time (a run this
// short is read serially, without the ledger's parallel decoding).
const probeRun = 64

// errFound stops a probe's scan once it has found a message.
var errFound = errors.New("found")

// rebuildBehaviour rebuilds the behaviour rules' state before the monitor's first step, if it
// has not yet, and counts it in st. It is called with mu held. A replay that fails part way
// goes on from where it stopped at the next call: no message is fed twice.
func (m *Monitor) rebuildBehaviour(ctx context.Context, sc *scan.Scanner, st *Stats) error {
	rb := &m.rebuild
	if rb.done {
		return nil
	}
	began := time.Now()
	err := m.replayAll(ctx, sc)
	rb.took += time.Since(began)
	if err != nil {
		return fmt.Errorf("surveil: rebuilding the behaviour rules: %w", err)
	}
	rb.done = true
	st.Replayed, st.ReplaySkipped, st.ReplayTook = rb.replayed, rb.skipped, rb.took
	ds := m.opts.Behaviour.Stats()
	m.log.Info("surveil: behaviour rules rebuilt from the ledger", "messages", rb.replayed, "skipped_entries", rb.skipped,
		"took", rb.took, "before", m.observed, "conversations", ds.Conversations, "senders", ds.Senders, "pairs", ds.Pairs)
	return nil
}

// replayAll plans the replay if it is not yet, and replays what is left of it.
func (m *Monitor) replayAll(ctx context.Context, sc *scan.Scanner) error {
	rb := &m.rebuild
	if !rb.planned {
		from, skipped, err := m.planReplay(ctx)
		if err != nil {
			return err
		}
		rb.next, rb.skipped, rb.planned = from, skipped, true
	}
	for rb.next < m.observed {
		to := min(m.observed, rb.next+uint64(m.opts.Batch))
		n, err := m.replay(ctx, sc, rb.next, to)
		if err != nil {
			return err
		}
		rb.replayed += n
		rb.next = to
	}
	return nil
}

// planReplay returns where the replay starts: the first entry before the cursor whose message
// is within the rebuild window of the last message before it, or RebuildEntries before the
// cursor if that is later (skipped counts the entries of the window so left out). Ledger
// order follows capture order, roughly that of the messages' times, so the start is found by
// bisection, reading a few entries per probe.
func (m *Monitor) planReplay(ctx context.Context) (from, skipped uint64, err error) {
	end := min(m.observed, m.l.Size())
	window, unbounded := m.opts.Behaviour.Memory()
	if m.opts.RebuildWindow > 0 {
		window = m.opts.RebuildWindow
	} else if unbounded {
		window = max(window, DefaultRebuildMemory)
	}
	entries := uint64(DefaultRebuildEntries)
	if m.opts.RebuildEntries > 0 {
		entries = uint64(m.opts.RebuildEntries)
	}
	lo := end - min(end, entries)
	if window <= 0 {
		return end, 0, nil // rules that remember nothing (off_hours alone)
	}
	last, ok, err := m.lastTime(ctx, end)
	if err != nil || !ok {
		return lo, 0, err // no timed message: the cap alone bounds the replay
	}
	cutoff := last.Add(-window)
	// The first entry i in [0, end) from which the next timed message is not before cutoff
	// (there is one: the last message is not).
	start, hi := uint64(0), end
	for start < hi {
		mid := start + (hi-start)/2
		t, ok, err := m.timeFrom(ctx, mid, end)
		if err != nil {
			return 0, 0, err
		}
		if !ok || !t.Before(cutoff) {
			hi = mid
		} else {
			start = mid + 1
		}
	}
	from = max(start, lo)
	return from, from - start, nil
}

// lastTime returns the time of the last timed message before end.
func (m *Monitor) lastTime(ctx context.Context, end uint64) (time.Time, bool, error) {
	for hi := end; hi > 0; {
		lo := hi - min(hi, probeRun)
		var last time.Time
		found := false
		err := m.scan(ctx, lo, hi, func(_ uint64, msg *capture.Message) {
			if t, ok := messageTime(msg); ok {
				last, found = t, true
			}
		})
		if err != nil || found {
			return last, found, err
		}
		hi = lo
	}
	return time.Time{}, false, nil
}

// timeFrom returns the time of the first timed message at or after i, before end.
func (m *Monitor) timeFrom(ctx context.Context, i, end uint64) (time.Time, bool, error) {
	for ; i < end; i += probeRun {
		var at time.Time
		err := m.d.Scan(ctx, i, min(end, i+probeRun), func(e *ledger.Entry, err error) error {
			if err != nil || e.Leaf.Kind != seal.KindMessage {
				return nil // shredded, or not a message: look further
			}
			if t, ok := messageTime(e.Message); ok {
				at = t
				return errFound
			}
			return nil
		})
		if errors.Is(err, errFound) {
			return at, true, nil
		}
		if err != nil {
			return time.Time{}, false, err
		}
	}
	return time.Time{}, false, nil
}

// messageTime is the time behaviour rules take for a message: SentAt, else CapturedAt.
func messageTime(msg *capture.Message) (time.Time, bool) {
	if !msg.SentAt.IsZero() {
		return msg.SentAt, true
	}
	return msg.CapturedAt, !msg.CapturedAt.IsZero()
}

// replayed is one entry of a replay: a message to observe again, or a finding sealed before to
// restore.
type replayed struct {
	msg   *capture.Message
	found *behaviour.Finding
}

// replay feeds the behaviour rules the messages in [from, to), in ledger order, each with the
// categories of its findings by the lexicon in force, and restores the behaviour findings
// sealed among them. Everything is read before anything is fed, so that a failed read feeds
// nothing. It returns how many messages it replayed.
func (m *Monitor) replay(ctx context.Context, sc *scan.Scanner, from, to uint64) (int, error) {
	var items []replayed
	d := m.opts.Behaviour
	cats := d.UsesCategories() // else the lexicon need not run over the replay
	err := m.d.Scan(ctx, from, to, func(e *ledger.Entry, err error) error {
		switch {
		case e.Leaf.Kind == seal.KindAnnotation:
			// A finding that cannot be read is not restored: at worst its silence is reported
			// again, under the same alert id, and sealed nothing twice.
			if err == nil && e.Record != nil {
				if f := sealedBehaviour(e.Record.Body); f != nil {
					items = append(items, replayed{found: f})
				}
			}
			return nil
		case e.Leaf.Kind != seal.KindMessage || errors.Is(err, ledger.ErrShredded):
			return nil
		case err != nil:
			return fmt.Errorf("entry %d: %w", e.Index, err)
		}
		items = append(items, replayed{msg: e.Message})
		if cats {
			m.batch.add(e.Index, e.Message)
		}
		return nil
	})
	if err != nil {
		m.batch.reset()
		return 0, err
	}
	var found [][]string
	if cats {
		m.batch.scan(sc, func(_ uint64, _ *capture.Message, fs []Finding) { found = append(found, categories(fs)) })
	}
	n := 0
	for _, it := range items {
		if it.msg == nil {
			d.Restore(*it.found)
			continue
		}
		var c []string
		if cats {
			c = found[n]
		}
		d.Observe(it.msg, c) // sealed and reported before the restart
		n++
	}
	return n, nil
}

// sealedBehaviour returns the behaviour finding an annotation body seals, or nil. Most
// annotations are lexicon findings: those are told apart without decoding them.
func sealedBehaviour(body []byte) *behaviour.Finding {
	if !bytes.Contains(body, []byte(`"`+BehaviourSchema+`"`)) {
		return nil
	}
	var a BehaviourAnnotation
	if json.Unmarshal(body, &a) != nil || a.Schema != BehaviourSchema {
		return nil
	}
	return &a.Finding
}
