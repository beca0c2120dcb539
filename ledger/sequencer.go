package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// The write path is a two-stage pipeline. The sequencer (run) takes every waiting request,
// deduplicates it, gives it the next index, links it into its conversation, extends the tree,
// and submits the batch to the store; it then goes on with the next batch while the store
// makes this one durable. The completer (complete) receives the batches in submission order,
// waits for each to be durable, publishes the new size, signs checkpoints, and answers the
// callers. A store that can queue batches in order (Submit, as store/filestore can) thereby
// syncs one group while the next is prepared; any other store is called synchronously.
//
// When a commit fails, the completer answers it and every batch submitted after it with an
// error (their outcome in the store is then unknown to the ledger, so callers retry, and dedup
// makes a retry of a stored entry harmless); the sequencer waits until nothing is in flight,
// reloads its state from the store and carries on.

// maxFlights bounds the batches in flight between the sequencer and the completer.
const maxFlights = 8

// flight is a batch on its way through the pipeline.
type flight struct {
	reqs    []*request
	results []result
	size    uint64       // the ledger's size once this batch is durable
	errc    <-chan error // the store's answer; nil when the batch wrote nothing
}

// submitter is a store that queues batches for durable append in order (store/filestore).
type submitter interface {
	Submit(ctx context.Context, b *store.Batch) <-chan error
}

// ErrCommitAbandoned is wrapped by the error answered to appends that were in flight behind a
// failed commit: they may or may not be stored, and a retry is safe.
var ErrCommitAbandoned = errors.New("ledger: commit abandoned after an earlier failure; retry")

// run is the sequencer.
func (l *Ledger) run() {
	defer close(l.flights)
	for {
		select {
		case r := <-l.reqs:
			l.sequence(l.drain(r))
		case <-l.stop:
			// Senders racing with Close either handed their request over before this point or
			// see l.done closed once the completer is finished.
			for {
				select {
				case r := <-l.reqs:
					l.sequence(l.drain(r))
					continue
				default:
				}
				return
			}
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

// sequence turns a batch of requests into entries and submits them.
func (l *Ledger) sequence(batch []*request) {
	ctx := context.Background() // one caller's cancellation must not abort the others' commit
	if l.failed.Load() {
		l.recover(ctx)
	}
	base := l.next
	fl := &flight{reqs: batch, results: make([]result, len(batch))}
	sb := &store.Batch{Entries: make([]store.Entry, 0, len(batch))}
	inBatch := map[seal.Hash]uint64{}
	heads := map[seal.Hash]convHead{}
	var leafBuf []byte
	var stored []seal.Hash
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
		if leafBuf, err = leaf.AppendBinary(leafBuf[:0]); err != nil {
			fl.results[k] = result{err: fmt.Errorf("ledger: %w", err)}
			continue
		}
		leafBytes := append([]byte(nil), leafBuf...)
		lh := seal.LeafHash(leafBytes)
		stored = l.frontier.Append(lh, stored[:0])
		for _, h := range stored {
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
	if len(sb.Entries) > 0 {
		if s, ok := l.st.(submitter); ok {
			fl.errc = s.Submit(ctx, sb)
		} else {
			c := make(chan error, 1)
			c <- l.st.Append(ctx, sb)
			fl.errc = c
		}
		l.next = fl.size
		durable := l.Size()
		if len(l.convs)+len(heads) > maxConvCache {
			// Forget heads that are durable; the store can find those again.
			for c, h := range l.convs {
				if h.index < durable {
					delete(l.convs, c)
				}
			}
		}
		for c, h := range heads {
			l.convs[c] = h
		}
		if len(l.pending)+len(inBatch) > 1<<14 {
			for id, i := range l.pending {
				if i < durable {
					delete(l.pending, id)
				}
			}
		}
		for id, i := range inBatch {
			l.pending[id] = i
		}
	}
	l.nflight.Add(1)
	l.flights <- fl
}

// lookup finds an identity in this batch, in flight, or in the store.
func (l *Ledger) lookup(ctx context.Context, id seal.Hash, inBatch map[seal.Hash]uint64) (uint64, bool, error) {
	if i, ok := inBatch[id]; ok {
		return i, true, nil
	}
	if i, ok := l.pending[id]; ok {
		return i, true, nil
	}
	i, ok, err := l.st.Lookup(ctx, id)
	if err != nil {
		return 0, false, fmt.Errorf("ledger: dedup lookup: %w", err)
	}
	return i, ok, nil
}

// convHead returns the latest entry of a conversation, from the cache or the store.
func (l *Ledger) convHead(ctx context.Context, conv seal.Hash) (convHead, error) {
	if h, ok := l.convs[conv]; ok {
		return h, nil
	}
	i, ok, err := l.st.LastInConversation(ctx, conv)
	if err != nil {
		return convHead{}, fmt.Errorf("ledger: conversation lookup: %w", err)
	}
	if !ok {
		return convHead{}, nil
	}
	e, err := l.st.Entry(ctx, i)
	if err != nil {
		return convHead{}, fmt.Errorf("ledger: reading conversation head %d: %w", i, err)
	}
	leaf, err := seal.ParseLeaf(e.Leaf)
	if err != nil {
		return convHead{}, fmt.Errorf("%w: conversation head %d: %w", store.ErrCorrupt, i, err)
	}
	if leaf.Conversation != conv {
		return convHead{}, fmt.Errorf("%w: entry %d is indexed under another conversation", store.ErrCorrupt, i)
	}
	return convHead{seq: leaf.ConvSeq, hash: seal.LeafHash(e.Leaf), index: i}, nil
}

// recover waits until no batch is in flight, then reloads the sequencer's state from the
// store, whose contents after a failed commit only the store knows.
func (l *Ledger) recover(ctx context.Context) {
	for l.nflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	clear(l.convs)
	clear(l.pending)
	defer l.failed.Store(false)
	size, err := l.st.Size(ctx)
	if err != nil {
		l.log.Error("ledger: resync: reading size", "err", err)
		return
	}
	hs, err := l.st.ReadHashes(ctx, seal.FrontierIndexes(size))
	if err != nil {
		l.log.Error("ledger: resync: reading frontier", "err", err)
		return
	}
	f, err := seal.LoadFrontier(size, toSeal(hs))
	if err != nil {
		l.log.Error("ledger: resync", "err", err)
		return
	}
	if size != l.Size() {
		l.log.Warn("ledger: store size changed by a failed commit", "was", l.Size(), "now", size)
	}
	l.frontier, l.next = f, size
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
				if l.Size() > l.cp.Size {
					if err := l.checkpointNow(); err != nil {
						l.closeErr = err
					}
				}
				return
			}
			l.finish(fl)
		case <-tick.C:
			if l.Size() > l.cp.Size && l.opts.Now().Sub(l.cpAt) >= l.opts.CheckpointInterval {
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
		l.size.Store(fl.size)
		// Sign before replying, so that a caller whose append completed the policy's count
		// finds its checkpoint in place.
		if fl.size-l.cp.Size >= l.opts.CheckpointEvery {
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
	d := l.opts.CheckpointInterval / 4
	if d < 10*time.Millisecond {
		d = 10 * time.Millisecond
	}
	return d
}

// checkpointNow signs and stores a checkpoint of the durable tree. It runs on the completer.
func (l *Ledger) checkpointNow() error {
	ctx := context.Background()
	size := l.Size()
	if size == 0 || size == l.cp.Size {
		return nil
	}
	root, err := seal.TreeHash(size, l.hashReader(ctx))
	if err != nil {
		l.log.Error("ledger: computing the tree hash for a checkpoint", "size", size, "err", err)
		return fmt.Errorf("ledger: tree hash at %d: %w", size, err)
	}
	cp := seal.Checkpoint{Origin: l.Origin(), Size: size, Root: root}
	if l.cp.Size > 0 {
		// Never sign a head that does not extend the previous one.
		p, err := seal.ConsistencyProof(cp.Size, l.cp.Size, l.hashReader(ctx))
		if err == nil {
			err = seal.CheckConsistency(p, cp.Size, cp.Root, l.cp.Size, l.cp.Root)
		}
		if err != nil {
			l.log.Error("ledger: refusing to sign an inconsistent checkpoint", "size", cp.Size, "previous", l.cp.Size, "err", err)
			return fmt.Errorf("%w: %w", ErrInconsistent, err)
		}
	}
	signed, err := seal.SignCheckpoint(cp, l.keys.Signer)
	if err != nil {
		return fmt.Errorf("ledger: signing checkpoint: %w", err)
	}
	if err := l.st.PutCheckpoint(ctx, store.Checkpoint{Size: cp.Size, Note: signed}); err != nil {
		l.log.Error("ledger: storing checkpoint failed", "size", cp.Size, "err", err)
		return fmt.Errorf("ledger: storing checkpoint at %d: %w", cp.Size, err)
	}
	l.cpMu.Lock()
	l.cp, l.cpNote = cp, signed
	l.cpMu.Unlock()
	l.cpAt = l.opts.Now()
	l.log.Debug("ledger: checkpoint", "size", cp.Size, "root", cp.Root.String())
	return nil
}

// Close stops taking appends, finishes those already handed over, signs a final checkpoint and
// returns. It does not close the store. Calling it again returns the first result.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
	})
	return l.closeErr
}
