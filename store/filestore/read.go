package filestore

import (
	"context"
	"fmt"
	"iter"

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
// sequential read of the segments; every frame's checksum is verified.
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
			es, err := s.entryRun(ctx, i, k)
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

// entryRun reads entries [i, i+k), with one read for each stretch of adjacent frames.
func (s *Store) entryRun(ctx context.Context, i, k uint64) ([]store.Entry, error) {
	// The lock is held only to take what the reads need, never across them: a reader that held
	// it through its disk reads held up the writer publishing each batch (a scan following the
	// log, as surveillance does, cut appends by half). What is taken cannot change under the
	// reads: index records below durable.entries, published frames and the segments list are
	// only ever added to.
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	durableEntries, indexF, segs := s.durable.entries, s.indexF, s.segs
	var nIndexed uint64
	if i < durableEntries {
		nIndexed = min(k, durableEntries-i)
	}
	overlay := make([]location, 0, k-nIndexed)
	for j := nIndexed; j < k; j++ {
		overlay = append(overlay, s.overlay[i+j-durableEntries])
	}
	s.mu.RUnlock()

	locs := make([]location, 0, k)
	if nIndexed > 0 {
		b := make([]byte, nIndexed*indexRecordSize)
		if err := readFull(indexF, b, int64(i)*indexRecordSize); err != nil {
			return nil, fmt.Errorf("filestore: read index: %w", err)
		}
		for j := range nIndexed {
			l, err := decodeLocation(b[j*indexRecordSize:])
			if err != nil {
				return nil, fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i+j, err)
			}
			locs = append(locs, l)
		}
	}
	locs = append(locs, overlay...)
	out := make([]store.Entry, 0, k)
	for a := 0; a < len(locs); {
		// Extend the stretch while frames are in the same segment, close together, and the
		// read stays modest.
		b := a + 1
		for b < len(locs) && locs[b].seq == locs[a].seq && locs[b].off >= locs[b-1].off+int64(locs[b-1].length) &&
			locs[b].off-(locs[b-1].off+int64(locs[b-1].length)) <= 64<<10 &&
			locs[b].off+int64(locs[b].length)-locs[a].off <= 4<<20 {
			b++
		}
		if locs[a].seq == 0 || int(locs[a].seq) > len(segs) {
			return out, fmt.Errorf("%w: entry %d is in segment %d, which does not exist", store.ErrCorrupt, i+uint64(a), locs[a].seq)
		}
		seg := segs[locs[a].seq-1]
		span := make([]byte, locs[b-1].off+int64(locs[b-1].length)-locs[a].off)
		if err := readFull(seg.f, span, locs[a].off); err != nil {
			return out, fmt.Errorf("%w: %s: entries from %d at offset %d: %v", store.ErrCorrupt, seg.path, i+uint64(a), locs[a].off, err)
		}
		for j := a; j < b; j++ {
			rel := locs[j].off - locs[a].off
			e, err := decodeEntryFrame(span[rel:rel+int64(locs[j].length):rel+int64(locs[j].length)], i+uint64(j), &locs[j], seg.path)
			if err != nil {
				return out, err
			}
			out = append(out, e)
		}
		a = b
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ReadHashes implements store.Log.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]store.Hash, len(indexes))
	var buf []byte
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
