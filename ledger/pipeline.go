package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// The write path is commseal's one group-commit layer (see the package documentation). The
// sequencer (run) waits for a free slot (at most MaxInFlight batches in flight), takes every
// request waiting, and turns them into one batch that it hands to the store; the completer
// (complete) receives the batches in that order, waits for each to be durable, publishes the
// new size, signs checkpoints and answers the callers. While slots are taken, requests wait and
// the next batch grows: under load, batches are as large as the store's latency makes them.

// ErrCommitAbandoned is wrapped by the error answered to appends that were in flight behind a
// failed commit: they may or may not be stored, and a retry is safe.
var ErrCommitAbandoned = errors.New("ledger: commit abandoned after an earlier failure; retry")

// sequencer is the state the sequencer goroutine owns: the tree and the chains as they will be
// once every batch handed to the store is durable.
type sequencer struct {
	next     uint64
	frontier seal.Frontier
	convs    map[seal.Hash]convHead
	pending  map[seal.Hash]uint64 // identities handed to the store, perhaps not yet durable
	leafBuf  []byte
	stored   []seal.Hash
}

// convHead is the latest entry of a conversation: what the next one links to.
type convHead struct {
	seq   uint64
	hash  seal.Hash
	index uint64
}

// maxConvCache bounds the sequencer's cache of conversation heads, and maxPending its set of
// identities in flight; beyond them, what is durable is dropped and found in the index again.
const (
	maxConvCache = 1 << 16
	maxPending   = 1 << 14
)

func (s *sequencer) init(f seal.Frontier) {
	s.frontier, s.next = f, f.Size()
	s.convs = map[seal.Hash]convHead{}
	s.pending = map[seal.Hash]uint64{}
}

// flight is a batch on its way through the pipeline.
type flight struct {
	reqs    []*request
	results []result
	batch   *store.Batch
	size    uint64       // the ledger's size once this batch is durable
	errc    <-chan error // the store's answer; nil when the batch wrote nothing
}

// run is the sequencer.
func (l *Ledger) run() {
	defer close(l.flights)
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.stop:
			l.drainOnStop()
			return
		}
		select {
		case r := <-l.reqs:
			l.sequence(l.drain(r))
		case <-l.stop:
			<-l.slots
			l.drainOnStop()
			return
		}
	}
}

// drainOnStop sequences the requests handed over while Close began. Senders racing with Close
// either hand their request over before this returns or see l.done closed once the completer
// is finished.
func (l *Ledger) drainOnStop() {
	for {
		select {
		case r := <-l.reqs:
			l.slots <- struct{}{}
			l.sequence(l.drain(r))
		default:
			return
		}
	}
}

// drain returns first and every other request waiting, up to MaxBatch.
func (l *Ledger) drain(first *request) []*request {
	batch := []*request{first}
	for len(batch) < l.opts.MaxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// sequence turns a batch of requests into entries and hands them to the store.
func (l *Ledger) sequence(batch []*request) {
	ctx := context.Background() // one caller's cancellation must not abort the others' commit
	if l.failed.Load() {
		l.recover(ctx)
	}
	s := &l.seq
	base := s.next
	fl := &flight{reqs: batch, results: make([]result, len(batch))}
	sb := &store.Batch{Entries: make([]store.Entry, 0, len(batch))}
	inBatch := map[seal.Hash]uint64{}
	heads := map[seal.Hash]convHead{}
	for k, r := range batch {
		if r.identity != (seal.Hash{}) {
			i, dup, err := l.lookup(ctx, r.identity, inBatch)
			if err != nil {
				fl.results[k] = result{err: err}
				continue
			}
			if dup {
				// Answered when this flight completes, which is after the original's.
				fl.results[k] = result{index: i, dup: true}
				continue
			}
		}
		idx := base + uint64(len(sb.Entries))
		leaf := seal.Leaf{
			Kind: r.kind, Index: idx, Time: r.time, Identity: r.identity,
			Commitment: r.commit, PayloadHash: r.payHash, KeyID: r.keyID,
		}
		if r.conv != (seal.Hash{}) {
			h, ok := heads[r.conv]
			if !ok {
				var err error
				if h, err = l.convHead(ctx, r.conv); err != nil {
					fl.results[k] = result{err: err}
					continue
				}
			}
			leaf.Conversation, leaf.ConvSeq, leaf.ConvPrev = r.conv, h.seq+1, h.hash
		}
		var err error
		if s.leafBuf, err = leaf.AppendBinary(s.leafBuf[:0]); err != nil {
			fl.results[k] = result{err: fmt.Errorf("ledger: %w", err)}
			continue
		}
		leafBytes := append([]byte(nil), s.leafBuf...)
		lh := seal.LeafHash(leafBytes)
		s.stored = s.frontier.Append(lh, s.stored[:0])
		for _, h := range s.stored {
			sb.Hashes = append(sb.Hashes, h)
		}
		if r.conv != (seal.Hash{}) {
			heads[r.conv] = convHead{seq: leaf.ConvSeq, hash: lh, index: idx}
		}
		if r.identity != (seal.Hash{}) {
			inBatch[r.identity] = idx
		}
		sb.Entries = append(sb.Entries, store.Entry{
			Index: idx, Identity: r.identity, Conversation: r.conv, Leaf: leafBytes, Payload: r.payload,
		})
		fl.results[k] = result{index: idx}
	}
	fl.size = base + uint64(len(sb.Entries))
	fl.batch = sb
	if len(sb.Entries) > 0 {
		fl.errc = l.commit(ctx, sb)
		s.next = fl.size
		l.remember(heads, inBatch)
	}
	l.nflight.Add(1)
	l.flights <- fl
}

// commit hands a batch to the store: queued behind the batches in flight if the store is a
// store.Pipeline, else appended now.
func (l *Ledger) commit(ctx context.Context, b *store.Batch) <-chan error {
	if p, ok := l.st.(store.Pipeline); ok {
		return p.Submit(ctx, b)
	}
	c := make(chan error, 1)
	c <- l.st.Append(ctx, b)
	return c
}

// remember keeps the heads and identities of a batch handed to the store, dropping durable ones
// when the caches are full.
func (l *Ledger) remember(heads map[seal.Hash]convHead, inBatch map[seal.Hash]uint64) {
	s := &l.seq
	durable := l.Size()
	if len(s.convs)+len(heads) > maxConvCache {
		for c, h := range s.convs {
			if h.index < durable {
				delete(s.convs, c)
			}
		}
	}
	for c, h := range heads {
		s.convs[c] = h
	}
	if len(s.pending)+len(inBatch) > maxPending {
		for id, i := range s.pending {
			if i < durable {
				delete(s.pending, id)
			}
		}
	}
	for id, i := range inBatch {
		s.pending[id] = i
	}
}

// lookup finds an identity in this batch, in flight, or durable.
func (l *Ledger) lookup(ctx context.Context, id seal.Hash, inBatch map[seal.Hash]uint64) (uint64, bool, error) {
	if i, ok := inBatch[id]; ok {
		return i, true, nil
	}
	if i, ok := l.seq.pending[id]; ok {
		return i, true, nil
	}
	return l.idx.lookup(ctx, id)
}

// convHead returns the latest entry of a conversation, from the cache or the index.
func (l *Ledger) convHead(ctx context.Context, conv seal.Hash) (convHead, error) {
	if h, ok := l.seq.convs[conv]; ok {
		return h, nil
	}
	i, ok, err := l.idx.lastInConversation(ctx, conv)
	if err != nil || !ok {
		return convHead{}, err
	}
	leaf, lh, err := l.idx.leaf(ctx, i)
	if err != nil {
		return convHead{}, fmt.Errorf("ledger: reading conversation head %d: %w", i, err)
	}
	if leaf.Conversation != conv {
		return convHead{}, fmt.Errorf("%w: the store's conversation index points at entry %d, which is in another conversation", store.ErrCorrupt, i)
	}
	return convHead{seq: leaf.ConvSeq, hash: lh, index: i}, nil
}

// recover waits until no batch is in flight, then reloads the sequencer's state from the
// store, whose contents after a failed commit only the store knows.
func (l *Ledger) recover(ctx context.Context) {
	for l.nflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	defer l.failed.Store(false)
	size, err := l.st.Size(ctx)
	if err != nil {
		l.log.Error("ledger: resync: reading size", "err", err)
		return
	}
	f, err := loadFrontier(ctx, l.st, size)
	if err != nil {
		l.log.Error("ledger: resync", "err", err)
		return
	}
	if was := l.Size(); size != was {
		l.log.Warn("ledger: a failed commit left entries in the store", "was", was, "now", size)
		var found []store.Entry
		for e, err := range l.st.Entries(ctx, was, size) {
			if err != nil {
				l.log.Error("ledger: resync: reading entries", "err", err)
				return
			}
			found = append(found, e)
		}
		l.idx.added(found)
	}
	l.seq.init(f)
	l.size.Store(size)
}

// complete is the completer.
func (l *Ledger) complete() {
	defer close(l.done)
	tick := time.NewTicker(l.tickEvery())
	defer tick.Stop()
	for {
		select {
		case fl, ok := <-l.flights:
			if !ok {
				if l.Size() > l.latest().Size {
					if err := l.checkpointNow(); err != nil {
						l.closeErr = err
					}
				}
				return
			}
			l.finish(fl)
			<-l.slots
		case reply := <-l.signs:
			reply <- l.checkpointNow()
		case <-tick.C:
			if l.Size() > l.latest().Size && l.opts.Now().Sub(l.cpAt) >= l.opts.CheckpointInterval {
				_ = l.checkpointNow() // logged; retried at the next tick
			}
		}
	}
}

// finish waits for a flight to be durable and answers its callers.
func (l *Ledger) finish(fl *flight) {
	defer l.nflight.Add(-1)
	var err error
	if fl.errc != nil {
		err = <-fl.errc
	}
	switch {
	case err != nil && !l.failed.Load():
		l.log.Error("ledger: commit failed", "size", fl.size, "err", err)
		l.failed.Store(true)
		err = fmt.Errorf("ledger: commit of entries before %d: %w", fl.size, err)
	case err != nil || l.failed.Load():
		err = fmt.Errorf("%w (%v)", ErrCommitAbandoned, err)
	default:
		if fl.batch != nil {
			l.idx.added(fl.batch.Entries)
		}
		l.size.Store(fl.size)
		// Sign before replying, so that a caller whose append completed the policy's count
		// finds its checkpoint in place.
		if fl.size-l.latest().Size >= l.opts.CheckpointEvery {
			_ = l.checkpointNow() // logged; the entries are durable either way
		}
	}
	for k, r := range fl.reqs {
		res := fl.results[k]
		if err != nil && res.err == nil {
			res = result{err: err}
		}
		r.done <- res
	}
}

func (l *Ledger) tickEvery() time.Duration {
	return max(l.opts.CheckpointInterval/4, 10*time.Millisecond)
}
