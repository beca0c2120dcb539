package filestore

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/commseal/commseal/store"
)

// rlock takes the read lock for a call, or says why the call may not proceed.
func (s *Store) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

// Size implements store.Log.
func (s *Store) Size(ctx context.Context) (uint64, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return s.size, nil
}

// locate returns where entry i is. The read lock must be held.
func (s *Store) locate(i uint64) (location, error) {
	if i >= s.durable.entries {
		return s.overlay[i-s.durable.entries], nil
	}
	b := make([]byte, indexRecordSize)
	if err := readFull(s.indexF, b, int64(i)*indexRecordSize); err != nil {
		return location{}, fmt.Errorf("filestore: read index: %w", err)
	}
	l, err := decodeLocation(b)
	if err != nil {
		return location{}, fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i, err)
	}
	return l, nil
}

// decodeEntryFrame checks and decodes the frame of entry i found at l: its checksums, its
// index, and that the identity and conversation it carries are those the index record says
// (an index that disagrees with its frames would mislead deduplication).
func decodeEntryFrame(buf []byte, i uint64, l *location, path string) (store.Entry, error) {
	n, sum, err := parseFrameHeader(buf)
	if err != nil || n != len(buf)-frameHeaderSize {
		return store.Entry{}, corruptf(path, l.off, "entry %d: invalid frame header", i)
	}
	body := buf[frameHeaderSize:]
	if crc(body) != sum {
		return store.Entry{}, corruptf(path, l.off, "entry %d: checksum mismatch", i)
	}
	e, err := decodeEntry(body)
	if err != nil {
		return store.Entry{}, corruptf(path, l.off, "entry %d: %v", i, err)
	}
	if e.Index != i {
		return store.Entry{}, corruptf(path, l.off, "entry frame has index %d, want %d", e.Index, i)
	}
	if e.Identity != l.identity || e.Conversation != l.conversation {
		return store.Entry{}, corruptf(path, l.off, "entry %d: the index record's identity or conversation differs from its frame's", i)
	}
	return e, nil
}

// Entries implements store.Log. It reads the index and the frames in runs, so a full scan is a
// sequential read of the segments; every frame's checksum is verified. The entries of a run
// share one buffer of the run's frames, their own copy.
func (s *Store) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		size, err := s.Size(ctx)
		if err != nil {
			yield(store.Entry{}, err)
			return
		}
		end = min(end, size)
		const run = 256
		for i := start; i < end; {
			k := min(run, end-i)
			es, _, err := s.entryRun(ctx, i, k, nil, nil, false)
			for _, e := range es {
				if cerr := ctx.Err(); cerr != nil {
					yield(store.Entry{}, cerr)
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			i += k
		}
	}
}

// ReadEntries implements store.EntryReader: Entries for a run of entries, read into the
// caller's buffers with one read for each stretch of adjacent frames.
func (s *Store) ReadEntries(ctx context.Context, start, end uint64, dst []store.Entry, buf []byte) ([]store.Entry, []byte, error) {
	size, err := s.Size(ctx)
	if err != nil {
		return dst[:0], buf[:0], err
	}
	if end = min(end, size); start >= end {
		return dst[:0], buf[:0], nil
	}
	return s.entryRun(ctx, start, end-start, dst, buf, true)
}

// readScratch is the memory a read needs only while it runs: the index records of a run of
// entries and the locations they give, the bytes of a run of stored hashes. Store.scratch
// keeps it for the next read.
type readScratch struct {
	index  []byte
	locs   []location
	hashes []byte // stored hashes as read, for ReadHashes
}

// entryRun reads entries [i, i+k) into dst[:0] and their frames into buf[:0] (each grown when
// too small, with room to spare if the caller will reuse them), with one read for each stretch
// of adjacent frames: the entries' Leaf and Payload are slices of the returned buffer.
func (s *Store) entryRun(ctx context.Context, i, k uint64, dst []store.Entry, buf []byte, reuse bool) ([]store.Entry, []byte, error) {
	out, buf := dst[:0], buf[:0]
	sc, _ := s.scratch.Get().(*readScratch)
	if sc == nil {
		sc = &readScratch{}
	}
	defer s.scratch.Put(sc)
	// The lock is held only to take what the reads need, never across them: a reader that held
	// it through its disk reads held up the writer publishing each batch (a scan following the
	// log, as surveillance does, cut appends by half). What is taken cannot change under the
	// reads: index records below durable.entries, published frames and the segments list are
	// only ever added to.
	if err := s.rlock(ctx); err != nil {
		return out, buf, err
	}
	durableEntries, indexF, segs := s.durable.entries, s.indexF, s.segs
	var nIndexed uint64
	if i < durableEntries {
		nIndexed = min(k, durableEntries-i)
	}
	// The locations of entries beyond the index snapshot go at the end, after those the index
	// file gives.
	locs := slices.Grow(sc.locs[:0], int(k))[:nIndexed]
	for j := nIndexed; j < k; j++ {
		locs = append(locs, s.overlay[i+j-durableEntries])
	}
	s.mu.RUnlock()
	sc.locs = locs

	if nIndexed > 0 {
		b := slices.Grow(sc.index[:0], int(nIndexed*indexRecordSize))[:nIndexed*indexRecordSize]
		sc.index = b
		if err := readFull(indexF, b, int64(i)*indexRecordSize); err != nil {
			return out, buf, fmt.Errorf("filestore: read index: %w", err)
		}
		for j := range nIndexed {
			l, err := decodeLocation(b[j*indexRecordSize:])
			if err != nil {
				return out, buf, fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i+j, err)
			}
			locs[j] = l
		}
	}
	// Size the buffer once for every stretch, so that the entries read first never move.
	need := 0
	for a := 0; a < len(locs); {
		b := stretchEnd(locs, a)
		need += int(locs[b-1].off + int64(locs[b-1].length) - locs[a].off)
		a = b
	}
	if cap(buf) < need {
		if reuse {
			need += need / 8 // room for a somewhat longer run next time
		}
		buf = make([]byte, 0, need)
	}
	if cap(out) < len(locs) {
		out = make([]store.Entry, 0, len(locs))
	}
	for a := 0; a < len(locs); {
		b := stretchEnd(locs, a)
		if locs[a].seq == 0 || int(locs[a].seq) > len(segs) {
			return out, buf, fmt.Errorf("%w: entry %d is in segment %d, which does not exist", store.ErrCorrupt, i+uint64(a), locs[a].seq)
		}
		seg := segs[locs[a].seq-1]
		at := len(buf)
		buf = buf[:at+int(locs[b-1].off+int64(locs[b-1].length)-locs[a].off)]
		span := buf[at:len(buf):len(buf)]
		if err := readFull(seg.f, span, locs[a].off); err != nil {
			return out, buf, fmt.Errorf("%w: %s: entries from %d at offset %d: %v", store.ErrCorrupt, seg.path, i+uint64(a), locs[a].off, err)
		}
		for j := a; j < b; j++ {
			rel := locs[j].off - locs[a].off
			e, err := decodeEntryFrame(span[rel:rel+int64(locs[j].length):rel+int64(locs[j].length)], i+uint64(j), &locs[j], seg.path)
			if err != nil {
				return out, buf, err
			}
			out = append(out, e)
		}
		a = b
		if err := ctx.Err(); err != nil {
			return out, buf, err
		}
	}
	return out, buf, nil
}

// stretchEnd returns the end of the stretch of frames that begins at locs[a] and is read with
// one read: frames in the same segment, in order, close together, and a read that stays modest.
func stretchEnd(locs []location, a int) int {
	b := a + 1
	for b < len(locs) && locs[b].seq == locs[a].seq && locs[b].off >= locs[b-1].off+int64(locs[b-1].length) &&
		locs[b].off-(locs[b-1].off+int64(locs[b-1].length)) <= 64<<10 &&
		locs[b].off+int64(locs[b].length)-locs[a].off <= 4<<20 {
		b++
	}
	return b
}

// ReadHashes implements store.Log.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]store.Hash, len(indexes))
	sc, _ := s.scratch.Get().(*readScratch)
	if sc == nil {
		sc = &readScratch{}
	}
	defer s.scratch.Put(sc)
	buf := sc.hashes
	defer func() { sc.hashes = buf }()
	for k := 0; k < len(indexes); {
		x := indexes[k]
		switch {
		case x < 0 || x >= s.hc:
			return nil, fmt.Errorf("%w: stored hash %d (count %d)", store.ErrNotFound, x, s.hc)
		case x >= s.durable.hashes:
			out[k] = s.ovHashes[x-s.durable.hashes]
			k++
		default:
			// Read a run of consecutive indexes in the hashes file with one pread: a verifier
			// asks for thousands at a time.
			n := 1
			for k+n < len(indexes) && n < 1<<12 && indexes[k+n] == x+int64(n) && x+int64(n) < s.durable.hashes {
				n++
			}
			if cap(buf) < 32*n {
				buf = make([]byte, 32*n)
			}
			b := buf[:32*n]
			if err := readFull(s.hashesF, b, x*32); err != nil {
				return nil, fmt.Errorf("filestore: read stored hashes %d..%d: %w", x, x+int64(n)-1, err)
			}
			for j := 0; j < n; j++ {
				copy(out[k+j][:], b[32*j:])
			}
			k += n
		}
	}
	return out, nil
}

// lookup finds identity id. The read lock must be held.
func (s *Store) lookup(id store.Hash) (uint64, bool, error) {
	if id == (store.Hash{}) {
		return 0, false, nil
	}
	if i, ok := s.idsMore[id]; ok {
		return i, true, nil
	}
	i, ok := s.ids[prefix(id)]
	if !ok {
		return 0, false, nil
	}
	l, err := s.locate(i)
	if err != nil {
		return 0, false, err
	}
	return i, l.identity == id, nil
}

// Lookup implements store.IdentityIndex.
func (s *Store) Lookup(ctx context.Context, identity store.Hash) (uint64, bool, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	i, ok, err := s.lookup(identity)
	if !ok {
		i = 0
	}
	return i, ok, err
}

// LastInConversation implements store.ConversationIndex.
func (s *Store) LastInConversation(ctx context.Context, conversation store.Hash) (uint64, bool, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	if conversation == (store.Hash{}) {
		return 0, false, nil
	}
	i, ok := s.convs[conversation]
	return i, ok, nil
}
