package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/commseal/commseal/store"
)

// zeroChunk is how far ahead of the commits the active segment is filled with written zeros.
// A sync that overwrites blocks already written and sized needs no journal commit, only the
// data and a cache flush: on ext4 it takes about half as long as one that extends the file or
// converts fallocated (unwritten) blocks. The zeros are made durable by the next batch's sync,
// once per chunk.
const zeroChunk = 1 << 20

// gatherYields bounds how often the syncer yields to let just-acknowledged writers join the
// next sync.
const gatherYields = 4

// pending is a batch written to the active segment and not yet published: it waits for a sync.
type pending struct {
	seq    uint64 // position in the order of writes since Open
	seg    *segment
	end    int64 // offset just past the batch's commit frame
	locs   []location
	hashes []store.Hash
	ids    []store.Hash // non-zero identities, for the writer's in-flight set
	done   chan error
}

// Append implements store.Log: it is Submit, waited for.
func (s *Store) Append(ctx context.Context, b *store.Batch) error {
	return <-s.Submit(ctx, b)
}

// Submit implements store.Pipeline. It checks b against the log as written (published batches
// and those waiting for a sync), writes it to the active segment with one write, and hands it
// to the syncer; the result arrives once a sync that began after the write has returned. While
// a sync runs, later batches are written and wait for the next one, which covers them all. A
// failed sync fails every batch not yet acknowledged (a sync's error may be another's), and the
// next Submit first cuts the segment back to the last acknowledged batch.
func (s *Store) Submit(ctx context.Context, b *store.Batch) <-chan error {
	done := make(chan error, 1)
	if err := s.submit(ctx, b, done); err != nil {
		done <- err
	}
	return done
}

func (s *Store) submit(ctx context.Context, b *store.Batch, done chan error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("%w: append", store.ErrReadOnly)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	closed, failed := s.closed, s.failed
	s.mu.RUnlock()
	switch {
	case closed:
		return store.ErrClosed
	case failed != nil:
		return fmt.Errorf("filestore: an earlier write failure could not be undone; reopen the store: %w", failed)
	}
	s.smu.Lock()
	broken := s.broken
	s.smu.Unlock()
	if broken != nil || s.w.dirty != nil {
		if err := s.undo(errors.Join(broken, s.w.dirty)); err != nil {
			return err
		}
	}
	s.forgetPublished()
	if s.w.end >= s.segSize {
		if err := s.roll(); err != nil {
			return err
		}
	}
	if err := s.check(b); err != nil {
		return err
	}
	p := s.frame(b, done)
	if err := s.write(p); err != nil {
		if uerr := s.undo(err); uerr != nil {
			return errors.Join(err, uerr)
		}
		return err
	}
	s.smu.Lock()
	if err := s.broken; err != nil {
		// A sync failed while p was being written: p goes with the batches before it, and the
		// next Submit cuts the segment back.
		s.smu.Unlock()
		s.w.dirty = err
		return err
	}
	s.fifo = append(s.fifo, p)
	s.scond.Broadcast() // the syncer
	s.smu.Unlock()
	s.w.written = append(s.w.written, p)
	for _, id := range p.ids {
		s.w.inflight[id] = struct{}{}
	}
	s.w.size += uint64(len(p.locs))
	s.w.hc += int64(len(p.hashes))
	s.w.end = p.end
	return nil
}

// check validates b against the log as written. The writer lock must be held.
func (s *Store) check(b *store.Batch) error {
	if err := store.CheckBatch(b, s.w.size); err != nil {
		return err
	}
	if commitBodySize(s.w.size, len(b.Entries)) > maxBody {
		return fmt.Errorf("%w: batch of %d entries is too large for one commit frame", store.ErrInvalid, len(b.Entries))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k := range b.Entries {
		e := &b.Entries[k]
		if entryFrameSize(e)-frameHeaderSize > maxBody {
			return fmt.Errorf("%w: entry %d has %d bytes, more than the %d a frame holds", store.ErrInvalid, e.Index, len(e.Leaf)+len(e.Payload), maxBody-entryFixed)
		}
		if e.Identity == (store.Hash{}) {
			continue
		}
		if _, dup := s.w.inflight[e.Identity]; dup {
			return fmt.Errorf("%w: entry %d repeats the identity of an entry written just before it", store.ErrDuplicate, e.Index)
		}
		i, found, err := s.lookup(e.Identity)
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: entry %d repeats the identity of entry %d", store.ErrDuplicate, e.Index, i)
		}
	}
	return nil
}

// frame encodes b's entry frames and commit frame into the writer's buffer and describes the
// batch. The writer lock must be held.
func (s *Store) frame(b *store.Batch, done chan error) *pending {
	seg := s.segs[len(s.segs)-1] // the writer owns the segment list's growth
	base := s.w.end
	buf := s.w.buf[:0]
	p := &pending{seq: s.w.seq + 1, seg: seg, done: done,
		locs: make([]location, 0, len(b.Entries)), hashes: append([]store.Hash(nil), b.Hashes...)}
	for k := range b.Entries {
		e := &b.Entries[k]
		off := base + int64(len(buf))
		buf = appendEntryFrame(buf, e)
		p.locs = append(p.locs, location{seq: uint32(seg.seq), length: uint32(base + int64(len(buf)) - off), off: off, identity: e.Identity, conversation: e.Conversation})
		if e.Identity != (store.Hash{}) {
			p.ids = append(p.ids, e.Identity)
		}
	}
	buf = appendCommitFrame(buf, s.w.size, len(b.Entries), b.Hashes)
	p.end = base + int64(len(buf))
	s.w.buf = buf
	return p
}

// write puts p's frames in the active segment, with zeros written ahead of them when they reach
// the end of what is allocated. A failed write leaves bytes of unknown content after the last
// batch, which the caller cuts (undo) before anything else is written. The writer lock must be
// held.
func (s *Store) write(p *pending) error {
	buf := s.w.buf[:p.end-s.w.end]
	defer func() {
		if cap(s.w.buf) > 64<<20 {
			s.w.buf = nil
		}
	}()
	if p.end > s.w.alloc {
		// Zeros ahead, so that the next batches overwrite written blocks. A crash leaves them
		// as zeros or not at all: either way the preallocated tail that Open expects.
		if s.w.zeros == nil {
			s.w.zeros = make([]byte, zeroChunk)
		}
		if _, err := p.seg.f.WriteAt(s.w.zeros, p.end); err == nil {
			s.w.alloc = p.end + zeroChunk
		} else {
			s.w.alloc = p.end
		}
	}
	t0 := time.Now()
	_, err := p.seg.f.WriteAt(buf, s.w.end)
	s.writeTime.Add(int64(time.Since(t0)))
	if err != nil {
		err = fmt.Errorf("filestore: append to %s: %w", p.seg.path, err)
		s.w.dirty = err
		return err
	}
	s.w.seq = p.seq
	s.writes.Add(1)
	return nil
}

// syncer makes the written batches durable, one sync at a time: each sync covers every batch
// written before it began (they are in fifo only once their write has returned), so batches
// written while a sync runs share the next one. It then publishes them, in order, and
// acknowledges them. A failed sync fails every batch not yet published, since on Linux a
// writeback error is reported to one sync of the file only; the next Submit cuts the segment
// back (undo).
func (s *Store) syncer() {
	defer s.wg.Done()
	s.smu.Lock()
	defer s.smu.Unlock()
	acked := 0 // batches the last sync acknowledged
	for {
		for len(s.fifo) == 0 && !s.stopping {
			s.scond.Wait()
		}
		if len(s.fifo) == 0 {
			return
		}
		// The writers just acknowledged are likely to write again at once: yield a few times
		// while fewer batches wait than were acknowledged, so that they share this sync
		// rather than wait for the next one. Each yield costs microseconds; a sync, hundreds.
		for i := 0; i < gatherYields && len(s.fifo) < acked && !s.stopping; i++ {
			s.smu.Unlock()
			runtime.Gosched()
			s.smu.Lock()
		}
		n := len(s.fifo)
		seg := s.fifo[n-1].seg // a segment is rolled only with fifo empty
		s.syncing = true
		s.smu.Unlock()
		t0 := time.Now()
		err := seg.f.Sync()
		s.syncTime.Add(int64(time.Since(t0)))
		s.syncs.Add(1)
		s.smu.Lock()
		s.syncing = false
		if err != nil {
			s.broken = fmt.Errorf("filestore: sync of %s: %w", seg.path, err)
			for _, q := range s.fifo {
				q.done <- s.broken
			}
			clear(s.fifo)
			s.fifo = s.fifo[:0]
		} else {
			s.commits.Add(1)
			ready := s.fifo[:n]
			s.publish(ready)
			for _, q := range ready {
				q.done <- nil
			}
			clear(ready)
			s.fifo = append(s.fifo[:0], s.fifo[n:]...)
			acked = n
		}
		s.scond.Broadcast()
	}
}

// publish makes durable batches visible to readers. The sync lock must be held.
func (s *Store) publish(ready []*pending) {
	var entries uint64
	s.mu.Lock()
	for _, q := range ready {
		for k := range q.locs {
			s.indexEntry(s.size+uint64(k), &q.locs[k])
		}
		s.overlay = append(s.overlay, q.locs...)
		s.ovHashes = append(s.ovHashes, q.hashes...)
		s.size += uint64(len(q.locs))
		s.hc += int64(len(q.hashes))
		s.end = q.end
		entries += uint64(len(q.locs))
	}
	pendingSnapshot := len(s.overlay)
	s.mu.Unlock()
	s.published.Store(ready[len(ready)-1].seq)
	s.batches.Add(uint64(len(ready)))
	s.entries.Add(entries)
	if pendingSnapshot >= s.flushN {
		select {
		case s.flushCh <- struct{}{}:
		default:
		}
	}
}

// forgetPublished drops from the writer's in-flight identity set the batches that are published
// (their identities are in the index now). The writer lock must be held.
func (s *Store) forgetPublished() {
	pub := s.published.Load()
	k := 0
	for k < len(s.w.written) && s.w.written[k].seq <= pub {
		for _, id := range s.w.written[k].ids {
			delete(s.w.inflight, id)
		}
		k++
	}
	clear(s.w.written[:k])
	s.w.written = s.w.written[k:]
}

// drain waits until every batch written is published or failed, and returns the error of a
// failed sync since the last undo, if any. The writer lock must be held.
func (s *Store) drain() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	for len(s.fifo) > 0 || s.syncing {
		s.scond.Wait()
	}
	return s.broken
}

// stopSyncer ends the syncer once the batches written are published. The writer lock must be
// held, so that nothing more is written.
func (s *Store) stopSyncer() {
	s.smu.Lock()
	s.stopping = true
	s.scond.Broadcast()
	s.smu.Unlock()
}

// undo brings the writer back to the published log after a failed write or sync: it waits for
// the running syncs, cuts the active segment back to the end of the last published batch and
// makes the cut durable. If the cut fails, the tail is unknown: appends are refused until a
// reopen recovers it. The writer lock must be held.
func (s *Store) undo(cause error) error {
	if err := s.drain(); err != nil {
		cause = err
	}
	s.mu.RLock()
	seg, end, size, hc := s.segs[len(s.segs)-1], s.end, s.size, s.hc
	s.mu.RUnlock()
	err := seg.f.Truncate(end)
	if err == nil {
		err = seg.f.Sync()
		s.syncs.Add(1)
	}
	if err != nil {
		s.mu.Lock()
		s.failed = fmt.Errorf("%w (undoing it: %v)", cause, err)
		s.mu.Unlock()
		s.log.Error("filestore: a write failure left the store unwritable until reopened", "err", s.failed)
		return fmt.Errorf("filestore: an earlier write failure could not be undone; reopen the store: %w", s.failed)
	}
	s.log.Warn("filestore: cut the active segment back to the last acknowledged batch after a failure", "file", seg.path, "offset", end, "cause", cause)
	clear(s.w.inflight)
	clear(s.w.written)
	s.w.written = s.w.written[:0]
	s.w.size, s.w.hc, s.w.end, s.w.alloc = size, hc, end, end
	s.w.dirty = nil
	s.smu.Lock()
	s.broken = nil
	s.smu.Unlock()
	return nil
}

// roll begins a new segment once the active one has reached the segment size, after every
// batch written to it is published, and makes the old one read-only. The writer lock must be
// held.
func (s *Store) roll() error {
	if err := s.drain(); err != nil {
		return s.undo(err) // the next Submit finds the tail cut and rolls then
	}
	s.forgetPublished()
	s.mu.RLock()
	old, end, size := s.segs[len(s.segs)-1], s.end, s.size
	s.mu.RUnlock()
	seq := old.seq + 1
	path := s.path(segmentName(seq))
	if err := s.writeSegmentHeader(seq, size); err != nil {
		os.Remove(path)
		return err
	}
	f, err := s.openFile(path, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	// The closed segment keeps no preallocated tail.
	if err := old.f.Truncate(end); err != nil {
		f.Close()
		return fmt.Errorf("filestore: close segment: %w", err)
	}
	if err := old.f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("filestore: close segment: %w", err)
	}
	s.syncs.Add(1)
	if err := os.Chmod(old.path, closedSegmentMode); err != nil {
		s.log.Warn("filestore: could not make a closed segment read-only", "file", old.path, "err", err)
	}
	// The closed segment keeps its handle: readers take segments' handles under mu and read
	// after releasing it, so a handle is never replaced or closed before the store is.
	s.mu.Lock()
	s.segs = append(s.segs, &segment{seq: seq, first: size, path: path, f: f})
	s.end = segmentHeaderSize
	s.mu.Unlock()
	s.w.end, s.w.alloc = segmentHeaderSize, segmentHeaderSize
	s.log.Info("filestore: new segment", "file", path, "first", size)
	return nil
}

// closedSegmentMode is the mode of a segment once it is closed: read-only, for its owner alone.
const closedSegmentMode = 0o400
