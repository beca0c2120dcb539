package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"

	"github.com/commseal/commseal/store"
)

// allocChunk is how far ahead the active segment's space is reserved.
const allocChunk = 4 << 20

// request is one Append waiting for the group committer.
type request struct {
	ctx  context.Context
	b    *store.Batch
	done chan error
}

// accepted is a request that passed validation in a group, with the locations of its frames.
type accepted struct {
	req  *request
	locs []location
}

// Append implements store.Log. Concurrent calls are committed together: the committer takes
// every batch queued while the previous write was in flight, checks each in queue order against
// the log as the earlier ones leave it, writes the accepted ones with one write and makes them
// durable with one sync. Append returns only after that sync (or with the reason its batch was
// rejected or the write failed, in which case nothing of the batch is in the log). A batch
// queued behind another is checked against the size that one leaves, so a caller that pipelines
// (queues batch k+1 before batch k returns) gets both in order, or ErrOutOfOrder for the
// second if the first fails (see Submit).
func (s *Store) Append(ctx context.Context, b *store.Batch) error {
	return <-s.Submit(ctx, b)
}

// Submit queues b for the group committer and returns at once; the channel receives what Append
// would return, once. Batches are checked in the order they were submitted, each against the
// log as the batches submitted before it leave it, so a caller may submit batch k+1 while batch
// k is being synced (pipelining) as long as it submits them in order. b must not be modified
// until the result arrives.
func (s *Store) Submit(ctx context.Context, b *store.Batch) <-chan error {
	done := make(chan error, 1)
	if err := s.rlock(ctx); err != nil {
		done <- err
		return done
	}
	ro, failed := s.readOnly, s.failed
	s.mu.RUnlock()
	if ro {
		done <- fmt.Errorf("%w: append", store.ErrReadOnly)
		return done
	}
	if failed != nil {
		done <- fmt.Errorf("filestore: an earlier write failure could not be undone; reopen the store: %w", failed)
		return done
	}
	r := &request{ctx: ctx, b: b, done: done}
	s.qmu.Lock()
	if s.qclosed {
		s.qmu.Unlock()
		done <- store.ErrClosed
		return done
	}
	s.queue = append(s.queue, r)
	s.qcond.Signal()
	s.qmu.Unlock()
	return done
}

func (s *Store) committer() {
	defer s.wg.Done()
	var spare []*request
	for {
		s.qmu.Lock()
		for len(s.queue) == 0 && !s.qclosed {
			s.qcond.Wait()
		}
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			return
		}
		reqs := s.queue
		s.queue = spare[:0]
		s.qmu.Unlock()
		s.commit(reqs)
		// Let the callers just acknowledged run and queue their next batches, so the next
		// group is full rather than half of the writers (2 cores, 64 writers: it doubles the
		// group size).
		runtime.Gosched()
		clear(reqs)
		spare = reqs
	}
}

// commit validates, writes and syncs one group.
func (s *Store) commit(reqs []*request) {
	if err := s.maybeRoll(); err != nil {
		for _, r := range reqs {
			r.done <- err
		}
		return
	}
	s.mu.RLock()
	size, hc, failed := s.size, s.hc, s.failed
	seg := s.segs[len(s.segs)-1]
	base := s.end
	buf := s.buf[:0]
	var ok []accepted
	var inGroup map[store.Hash]struct{}
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		if failed != nil {
			r.done <- fmt.Errorf("filestore: an earlier write failure could not be undone; reopen the store: %w", failed)
			continue
		}
		if err := s.check(r.b, size, hc, &inGroup); err != nil {
			r.done <- err
			continue
		}
		locs := make([]location, len(r.b.Entries))
		for k := range r.b.Entries {
			e := &r.b.Entries[k]
			off := base + int64(len(buf))
			buf = appendEntryFrame(buf, e)
			locs[k] = location{seq: uint32(seg.seq), length: uint32(base + int64(len(buf)) - off), off: off, identity: e.Identity, conversation: e.Conversation}
		}
		buf = appendCommitFrame(buf, size, len(r.b.Entries), r.b.Hashes)
		for k := range r.b.Entries {
			if id := r.b.Entries[k].Identity; id != (store.Hash{}) {
				inGroup[id] = struct{}{}
			}
		}
		size += uint64(len(r.b.Entries))
		hc += int64(len(r.b.Hashes))
		ok = append(ok, accepted{req: r, locs: locs})
	}
	s.mu.RUnlock()
	if cap(buf) <= 64<<20 {
		s.buf = buf
	}
	if len(ok) == 0 {
		return
	}
	var err error
	if need := base + int64(len(buf)); need > s.alloc {
		// Reserve space ahead, so that most syncs need not journal a new file size.
		if aerr := seg.f.Allocate(s.alloc, max(need-s.alloc, allocChunk)); aerr == nil {
			s.alloc = max(need, s.alloc+allocChunk)
		} else {
			s.alloc = need
		}
	}
	_, err = seg.f.WriteAt(buf, base)
	if err == nil {
		err = seg.f.Sync()
		s.syncs.Add(1)
	}
	if err != nil {
		err = fmt.Errorf("filestore: append to %s: %w", seg.path, err)
		// Undo the partial write so the next group starts on a clean frame boundary. If that
		// fails too, the tail is unknown: refuse appends until a reopen recovers it.
		s.alloc = base
		if uerr := s.undo(seg, base); uerr != nil {
			s.mu.Lock()
			s.failed = fmt.Errorf("%w (undoing it: %v)", err, uerr)
			s.mu.Unlock()
			s.log.Error("filestore: write failure left the store unwritable until reopened", "err", s.failed)
		}
		for _, a := range ok {
			a.req.done <- err
		}
		return
	}
	s.commits.Add(1)
	s.mu.Lock()
	for _, a := range ok {
		for k := range a.locs {
			s.indexEntry(s.size+uint64(k), &a.locs[k])
		}
		s.overlay = append(s.overlay, a.locs...)
		s.ovHashes = append(s.ovHashes, a.req.b.Hashes...)
		s.size += uint64(len(a.locs))
		s.hc += int64(len(a.req.b.Hashes))
		s.batches.Add(1)
		s.entries.Add(uint64(len(a.locs)))
	}
	s.end = base + int64(len(buf))
	pending := len(s.overlay)
	s.mu.Unlock()
	for _, a := range ok {
		a.req.done <- nil
	}
	if pending >= s.flushN {
		select {
		case s.flushCh <- struct{}{}:
		default:
		}
	}
}

// check validates b against a log of the given size and hash count, with the identities of the
// batches accepted earlier in the same group. The read lock must be held.
func (s *Store) check(b *store.Batch, size uint64, hc int64, inGroup *map[store.Hash]struct{}) error {
	if err := store.CheckBatch(b, size, hc); err != nil {
		return err
	}
	if commitBodySize(size, len(b.Entries)) > maxBody {
		return fmt.Errorf("%w: batch of %d entries is too large for one commit frame", store.ErrInvalid, len(b.Entries))
	}
	for k := range b.Entries {
		e := &b.Entries[k]
		if entryFrameSize(e)-frameHeaderSize > maxBody {
			return fmt.Errorf("%w: entry %d has %d bytes, more than the %d a frame holds", store.ErrInvalid, e.Index, len(e.Leaf)+len(e.Payload), maxBody-entryFixed)
		}
		if e.Identity == (store.Hash{}) {
			continue
		}
		if _, dup := (*inGroup)[e.Identity]; dup {
			return fmt.Errorf("%w: entry %d repeats the identity of an entry committed with it", store.ErrDuplicate, e.Index)
		}
		i, found, err := s.lookup(e.Identity)
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: entry %d repeats the identity of entry %d", store.ErrDuplicate, e.Index, i)
		}
	}
	if *inGroup == nil {
		*inGroup = map[store.Hash]struct{}{}
	}
	return nil
}

// undo cuts the active segment back to off after a failed write and makes the cut durable.
func (s *Store) undo(seg *segment, off int64) error {
	if err := seg.f.Truncate(off); err != nil {
		return err
	}
	s.syncs.Add(1)
	return seg.f.Sync()
}

// maybeRoll begins a new segment when the active one has reached the segment size, and makes
// the old one read-only.
func (s *Store) maybeRoll() error {
	s.mu.RLock()
	old, end, size, failed := s.segs[len(s.segs)-1], s.end, s.size, s.failed
	s.mu.RUnlock()
	if end < s.segSize || failed != nil {
		return nil
	}
	seq := old.seq + 1
	path := s.path(segmentName(seq))
	if err := s.writeSegmentHeader(seq, size); err != nil {
		os.Remove(path)
		return err
	}
	f, err := s.openFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	// The closed segment keeps no preallocated tail.
	if err := old.f.Truncate(end); err != nil {
		return fmt.Errorf("filestore: close segment: %w", err)
	}
	if err := old.f.Sync(); err != nil {
		return fmt.Errorf("filestore: close segment: %w", err)
	}
	s.syncs.Add(1)
	ro, err := s.openFile(old.path, os.O_RDONLY, 0)
	if err != nil {
		f.Close()
		return fmt.Errorf("filestore: %w", err)
	}
	if err := os.Chmod(old.path, 0o444); err != nil {
		s.log.Warn("filestore: could not make a closed segment read-only", "file", old.path, "err", err)
	}
	s.mu.Lock()
	prev := old.f
	old.f = ro
	s.segs = append(s.segs, &segment{seq: seq, first: size, path: path, f: f})
	s.end = segmentHeaderSize
	s.alloc = segmentHeaderSize
	s.mu.Unlock()
	prev.Close()
	s.log.Info("filestore: new segment", "file", path, "first", size)
	return nil
}

func (s *Store) flusher() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.flushCh:
		}
		if err := s.flush(); err != nil {
			s.log.Error("filestore: index snapshot failed; will retry", "err", err)
		}
	}
}

// flush snapshots the index: it writes the index records and stored hashes of the entries
// appended since the last snapshot, syncs them, and then replaces the state file, which makes
// them part of the durable index. Appends go on meanwhile.
func (s *Store) flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.RLock()
	from := s.durable
	n := s.size - from.entries
	locs := s.overlay[:n]
	hashes := s.ovHashes[:s.hc-from.hashes]
	to := state{entries: s.size, hashes: s.hc, seq: s.segs[len(s.segs)-1].seq, off: s.end}
	s.mu.RUnlock()
	if n == 0 && to.seq == from.seq && to.off == from.off {
		return nil
	}
	ib := make([]byte, len(locs)*indexRecordSize)
	for k := range locs {
		locs[k].encode(ib[k*indexRecordSize:])
	}
	hb := make([]byte, 0, len(hashes)*32)
	for _, h := range hashes {
		hb = append(hb, h[:]...)
	}
	if _, err := s.indexF.WriteAt(ib, int64(from.entries)*indexRecordSize); err != nil {
		return fmt.Errorf("filestore: write index: %w", err)
	}
	if _, err := s.hashesF.WriteAt(hb, from.hashes*32); err != nil {
		return fmt.Errorf("filestore: write stored hashes: %w", err)
	}
	if err := errors.Join(s.indexF.Sync(), s.hashesF.Sync()); err != nil {
		return fmt.Errorf("filestore: sync index: %w", err)
	}
	if err := s.writeFileAtomic(s.path("state"), to.encode()); err != nil {
		return fmt.Errorf("filestore: write state: %w", err)
	}
	s.syncs.Add(4)
	s.mu.Lock()
	s.overlay = slices.Clone(s.overlay[n:])
	s.ovHashes = slices.Clone(s.ovHashes[len(hashes):])
	s.durable = to
	s.mu.Unlock()
	return nil
}
