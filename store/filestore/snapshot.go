package filestore

import (
	"errors"
	"fmt"

	"github.com/commseal/commseal/internal/durable"
)

// Index snapshots: the index and hashes files, and the state file that says how far they are
// durable (see the package documentation). A snapshot is taken in the background every
// Options.FlushEvery entries and at Close; appends go on meanwhile.

// flusher takes a snapshot whenever publish asks for one.
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
	if err := durable.WriteFile(s.path("state"), to.encode()); err != nil {
		return fmt.Errorf("filestore: write state: %w", err)
	}
	s.syncs.Add(4)
	s.mu.Lock()
	// Keep the arrays (their capacity is what the next snapshot needs again); nothing else
	// holds them: readers copy out of them under the lock.
	s.overlay = s.overlay[:copy(s.overlay, s.overlay[n:])]
	s.ovHashes = s.ovHashes[:copy(s.ovHashes, s.ovHashes[len(hashes):])]
	s.durable = to
	s.mu.Unlock()
	return nil
}
