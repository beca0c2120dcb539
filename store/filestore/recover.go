package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

// Crash recovery: what Open does before the store takes appends. The package documentation
// (doc.go) says what a crash can leave and how it is told from damage.

func (s *Store) readState() (state, bool, error) {
	b, err := os.ReadFile(s.path("state"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(s.path(segmentName(1))); serr == nil && s.readOnly {
			return state{}, false, fmt.Errorf("%w: %s: segments without a state file", store.ErrCorrupt, s.dir)
		}
		return state{entries: 0, hashes: 0, seq: 1, off: segmentHeaderSize}, true, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("filestore: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		return state{}, false, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, s.path("state"), err)
	}
	return st, false, nil
}

// create lays out an empty store: the first segment, then the state file that points at it.
// A crash in between leaves a segment without a state, which the next Open lays out again.
func (s *Store) create() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".seg") && e.Name() != segmentName(1) {
			return fmt.Errorf("%w: %s: segment %s without a state file", store.ErrCorrupt, s.dir, e.Name())
		}
	}
	if fi, err := os.Stat(s.path(segmentName(1))); err == nil && fi.Size() > segmentHeaderSize {
		return fmt.Errorf("%w: %s: a written segment without a state file", store.ErrCorrupt, s.dir)
	}
	for _, name := range []string{segmentName(1), "index", "hashes", "checkpoints"} {
		if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	if err := s.writeSegmentHeader(1, 0); err != nil {
		return err
	}
	return durable.WriteFile(s.path("state"), state{seq: 1, off: segmentHeaderSize}.encode())
}

func (s *Store) writeSegmentHeader(seq, first uint64) error {
	path := s.path(segmentName(seq))
	f, err := s.openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(segmentHeader{seq: seq, first: first}.encode(), 0); err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	s.syncs.Add(1)
	if err := durable.SyncDir(s.dir); err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	s.syncs.Add(1)
	return nil
}

// trimDerived cuts the index and hashes files back to what the state file says is durable:
// anything beyond was written after the last snapshot and is rebuilt from the segments.
func (s *Store) trimDerived() error {
	for _, d := range []struct {
		f    file
		name string
		want int64
	}{{s.indexF, "index", int64(s.durable.entries) * indexRecordSize}, {s.hashesF, "hashes", s.durable.hashes * 32}} {
		n, err := d.f.Size()
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if n < d.want {
			return fmt.Errorf("%w: %s has %d bytes, the state file says %d are durable", store.ErrCorrupt, s.path(d.name), n, d.want)
		}
		if n > d.want && !s.readOnly {
			if err := d.f.Truncate(d.want); err != nil {
				return fmt.Errorf("filestore: %w", err)
			}
		}
	}
	return nil
}

// loadIndex rebuilds the identity and conversation indexes from the index file: one sequential
// read of fixed-size records, no hashing.
func (s *Store) loadIndex(ctx context.Context) error {
	const chunk = 1 << 14
	n := s.durable.entries
	buf := make([]byte, min(chunk, n)*indexRecordSize)
	for i := uint64(0); i < n; i += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(chunk, n-i)
		b := buf[:k*indexRecordSize]
		if err := readFull(s.indexF, b, int64(i)*indexRecordSize); err != nil {
			return fmt.Errorf("filestore: read index: %w", err)
		}
		for j := range k {
			l, err := decodeLocation(b[j*indexRecordSize:])
			if err != nil {
				return fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i+j, err)
			}
			s.indexEntry(i+j, &l)
		}
	}
	s.size, s.hc = n, s.durable.hashes
	s.recovery.Indexed = n
	return nil
}

// indexEntry adds entry i to the identity and conversation indexes. The identity index keys on
// the first 8 bytes of the digest; the rare identity whose prefix is taken goes to idsMore.
func (s *Store) indexEntry(i uint64, l *location) {
	if l.identity != (store.Hash{}) {
		p := prefix(l.identity)
		if _, taken := s.ids[p]; taken {
			s.idsMore[l.identity] = i
		} else {
			s.ids[p] = i
		}
	}
	if l.conversation != (store.Hash{}) {
		s.convs[l.conversation] = i
	}
}

func prefix(h store.Hash) uint64 {
	return uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16 | uint64(h[3])<<24 |
		uint64(h[4])<<32 | uint64(h[5])<<40 | uint64(h[6])<<48 | uint64(h[7])<<56
}

// floor is the number of entries that recovery may never cut below: those covered by the
// latest checkpoint, which was stored only after they were durable.
func (s *Store) floor() uint64 {
	if len(s.cps) == 0 {
		return 0
	}
	return s.cps[len(s.cps)-1].size
}

// replaySegments opens every segment and reads the frames written after the last snapshot. It
// changes nothing on disk until every segment has been read and nothing a checkpoint covers is
// missing; then, in a writer, it cuts the torn tail a crash left. Its steps: list the segments
// (segmentNumbers), open and replay each (replay.segment), check the floor, make the cuts
// (replay.apply), and reopen the newest segment for appending (activate).
func (s *Store) replaySegments(ctx context.Context) error {
	seqs, err := s.segmentNumbers()
	if err != nil {
		return err
	}
	rp := &replay{s: s, flag: os.O_RDONLY}
	if !s.readOnly {
		rp.flag = os.O_RDWR
	}
	for k, seq := range seqs {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := rp.segment(seq, k == len(seqs)-1)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	if floor := s.floor(); s.size < floor {
		return fmt.Errorf("%w: %s: the segments hold %d entries, but a checkpoint covers %d; nothing was changed", store.ErrCorrupt, s.dir, s.size, floor)
	}
	if err := rp.apply(); err != nil {
		return err
	}
	if len(s.segs) == 0 {
		return fmt.Errorf("%w: %s: no segment", store.ErrCorrupt, s.dir)
	}
	if s.hc != store.StoredHashCount(s.size) {
		return fmt.Errorf("%w: %d stored hashes for %d entries", store.ErrCorrupt, s.hc, s.size)
	}
	return s.activate()
}

// segmentNumbers lists the segment files, which must be numbered 1 to n without a gap and
// include the one the state file names.
func (s *Store) segmentNumbers() ([]uint64, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".seg")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil || seq == 0 || segmentName(seq) != de.Name() {
			return nil, fmt.Errorf("%w: %s: unexpected segment file %s", store.ErrCorrupt, s.dir, de.Name())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for k, seq := range seqs {
		if seq != uint64(k+1) {
			return nil, fmt.Errorf("%w: %s: segment %d is missing", store.ErrCorrupt, s.dir, k+1)
		}
	}
	if uint64(len(seqs)) < s.durable.seq {
		return nil, fmt.Errorf("%w: %s: the state file refers to segment %d, which is missing", store.ErrCorrupt, s.dir, s.durable.seq)
	}
	return seqs, nil
}

// replay is the state of replaySegments: how to open the segments, and the cuts to make once
// every check has passed.
type replay struct {
	s     *Store
	flag  int
	fixes []func() error
}

// segment opens segment seq and replays its frames after the snapshot into the store's
// indexes. done reports a newest segment whose creation a crash interrupted: it holds nothing
// and will be removed.
func (rp *replay) segment(seq uint64, last bool) (done bool, err error) {
	s := rp.s
	path := s.path(segmentName(seq))
	f, err := s.openFile(path, rp.flag)
	if err != nil && !s.readOnly && errors.Is(err, fs.ErrPermission) {
		f, err = s.openFile(path, os.O_RDONLY) // a closed, read-only segment
	}
	if err != nil {
		return false, fmt.Errorf("filestore: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("filestore: %w", err)
	}
	hb := make([]byte, segmentHeaderSize)
	herr := readFull(f, hb, 0)
	h, derr := decodeSegmentHeader(hb)
	if herr != nil || derr != nil || h.seq != seq {
		f.Close()
		// A crash while creating the newest segment can leave it short or unwritten.
		if last && seq > s.durable.seq && size <= segmentHeaderSize {
			s.recovery.Cut = append(s.recovery.Cut, Cut{File: path, Bytes: size, Reason: "segment whose header was never completed"})
			rp.fixes = append(rp.fixes, func() error {
				if err := os.Remove(path); err != nil {
					return err
				}
				return durable.SyncDir(s.dir)
			})
			return true, nil
		}
		return false, fmt.Errorf("%w: %s: invalid segment header", store.ErrCorrupt, path)
	}
	s.segs = append(s.segs, &segment{seq: seq, first: h.first, path: path, f: f})
	if seq < s.durable.seq {
		return false, nil // the snapshot covers it
	}
	from := int64(segmentHeaderSize)
	if seq == s.durable.seq {
		from = s.durable.off
	} else if h.first != s.size {
		return false, fmt.Errorf("%w: %s begins at entry %d, want %d", store.ErrCorrupt, path, h.first, s.size)
	}
	if from > size {
		return false, fmt.Errorf("%w: %s has %d bytes, the state file says %d are durable", store.ErrCorrupt, path, size, from)
	}
	res, err := scanSegment(f, path, seq, from, size, s.size, s.hc)
	if err != nil {
		return false, err
	}
	for k := range res.locs {
		s.indexEntry(s.size+uint64(k), &res.locs[k])
	}
	s.overlay = append(s.overlay, res.locs...)
	s.ovHashes = append(s.ovHashes, res.hashes...)
	s.size += uint64(len(res.locs))
	s.hc += int64(len(res.hashes))
	s.recovery.Replayed += uint64(len(res.locs))
	s.end = res.end
	if res.tail == nil {
		return false, nil
	}
	if !last {
		return false, fmt.Errorf("%w: %s: %s (a later segment exists, so this was committed)", store.ErrCorrupt, path, res.tail.Reason)
	}
	if floor := s.floor(); s.size < floor {
		return false, fmt.Errorf("%w: %s: %s: the frame of entry %d at offset %d is damaged, but a checkpoint covers %d entries, so it was durable; nothing was changed",
			store.ErrCorrupt, path, res.tail.Reason, s.size, res.tail.Offset, floor)
	}
	s.recovery.Cut = append(s.recovery.Cut, *res.tail)
	end := res.end
	rp.fixes = append(rp.fixes, func() error {
		if err := f.Truncate(end); err != nil {
			return err
		}
		return f.Sync()
	})
	return false, nil
}

// apply makes the cuts, in a writer, now that nothing signed is at stake.
func (rp *replay) apply() error {
	if rp.s.readOnly {
		return nil
	}
	for _, fix := range rp.fixes {
		if err := fix(); err != nil {
			return fmt.Errorf("filestore: cut torn tail: %w", err)
		}
	}
	return nil
}

// activate reopens the newest segment for appending, in a writer: writable again even if a crash
// came between the roll that made it read-only and the creation of its successor.
func (s *Store) activate() error {
	if s.readOnly {
		return nil
	}
	last := s.segs[len(s.segs)-1]
	last.f.Close()
	if err := os.Chmod(last.path, durable.FileMode); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	f, err := s.openFile(last.path, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	last.f = f
	if s.alloc, err = f.Size(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

// scanned is what a scan of one segment, from a frame boundary to its end, found.
type scanned struct {
	locs   []location   // entries of committed batches, in order
	hashes []store.Hash // their stored hashes
	end    int64        // offset just past the last commit frame (or the start, if none)
	tail   *Cut         // bytes after end that belong to no committed batch; nil if none
}

// errCorrupt carries where durable data is damaged.
func corruptf(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d: %s", store.ErrCorrupt, path, off, fmt.Sprintf(format, args...))
}

// readErr reports a failed read during a scan. A file that ends before the size the scan began
// with has shrunk under it: damage for a writer (who holds the lock), a roll in progress for a
// reader beside a writer (who then looks again).
func readErr(path string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s shrank while being read", store.ErrCorrupt, path)
	}
	return fmt.Errorf("filestore: read %s: %w", path, err)
}

// readFull reads len(p) bytes at off; io.ErrUnexpectedEOF if the file is shorter.
func readFull(f file, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// scanSegment reads the frames of segment seq from off to size. next and hashCount are the log's
// size and stored-hash count at off. Damage is judged as described in the package documentation:
// an unfinished batch at the end is returned as tail (to be cut); damage followed by a valid
// commit, or inside what can only be a complete commit frame, is corruption.
func scanSegment(f file, path string, seq uint64, off, size int64, next uint64, hashCount int64) (*scanned, error) {
	res := &scanned{end: off}
	var pending []location
	hdr := make([]byte, frameHeaderSize)
	var body []byte
	damage := func(at int64, reason string, incomplete bool) (*scanned, error) {
		if !incomplete {
			if err := judgeDamage(f, path, at, size, next+uint64(len(pending)), pending); err != nil {
				return nil, err
			}
		}
		used, err := usedTo(f, res.end, size)
		if err != nil {
			return nil, readErr(path, err)
		}
		res.tail = &Cut{File: path, Offset: res.end, Bytes: used - res.end, Entries: len(pending), Reason: reason}
		return res, nil
	}
	for off < size {
		if size-off < frameHeaderSize {
			if zero, err := zeroTo(f, off, size); err != nil {
				return nil, readErr(path, err)
			} else if zero && len(pending) == 0 {
				res.end = off
				return res, nil
			}
			return damage(off, "incomplete frame header at the end of the file", true)
		}
		if err := readFull(f, hdr, off); err != nil {
			return nil, readErr(path, err)
		}
		n, sum, err := parseFrameHeader(hdr)
		if err != nil {
			if isZero(hdr) && len(pending) == 0 {
				zero, err := zeroTo(f, off, size)
				if err != nil {
					return nil, readErr(path, err)
				}
				if zero {
					// Preallocated space that no commit reached: the clean end of the segment.
					res.end = off
					return res, nil
				}
			}
			return damage(off, fmt.Sprintf("invalid frame header at offset %d", off), false)
		}
		if off+frameHeaderSize+int64(n) > size {
			return damage(off, fmt.Sprintf("frame at offset %d runs %d bytes past the end of the file", off, off+frameHeaderSize+int64(n)-size), true)
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if err := readFull(f, body, off+frameHeaderSize); err != nil {
			return nil, readErr(path, err)
		}
		if crc(body) != sum {
			return damage(off, fmt.Sprintf("checksum mismatch in the frame at offset %d", off), false)
		}
		frameLen := int64(frameHeaderSize + n)
		switch body[0] {
		case typeEntry:
			e, err := decodeEntry(body)
			if err != nil {
				return nil, corruptf(path, off, "%v", err)
			}
			if want := next + uint64(len(pending)); e.Index != want {
				return nil, corruptf(path, off, "entry frame has index %d, want %d", e.Index, want)
			}
			pending = append(pending, location{seq: uint32(seq), length: uint32(frameLen), off: off, identity: e.Identity, conversation: e.Conversation})
		case typeCommit:
			c, err := decodeCommit(body)
			if err != nil {
				return nil, corruptf(path, off, "%v", err)
			}
			if c.first != next || c.count != len(pending) {
				return nil, corruptf(path, off, "commit of %d entries from %d follows %d entry frames from %d", c.count, c.first, len(pending), next)
			}
			for k := 0; k < len(c.hashes); k += 32 {
				res.hashes = append(res.hashes, store.Hash(c.hashes[k:k+32]))
			}
			res.locs = append(res.locs, pending...)
			next += uint64(c.count)
			hashCount += int64(len(c.hashes) / 32)
			pending = pending[:0]
			res.end = off + frameLen
		default:
			return nil, corruptf(path, off, "unknown frame type %#x", body[0])
		}
		off += frameLen
	}
	if len(pending) > 0 {
		res.tail = &Cut{File: path, Offset: res.end, Bytes: size - res.end, Entries: len(pending), Reason: "entry frames without their commit frame at the end of the file"}
	}
	return res, nil
}

// judgeDamage decides whether a complete but invalid frame at off is the unfinished tail of a
// crash (nil) or damage to durable data (ErrCorrupt). Durable data is damaged if any valid
// commit frame follows, or if the damaged frame is, by its length or its leading fields, the
// commit frame of the pending entries and shows no sign of a torn write (an all-zero sector).
func judgeDamage(f file, path string, off, size int64, next uint64, pending []location) error {
	rest := make([]byte, size-off)
	if err := readFull(f, rest, off); err != nil {
		return readErr(path, err)
	}
	if isZero(rest) {
		return nil
	}
	// A crash before the sync of the last groups leaves them as an arbitrary mix of sectors that
	// reached the disk and sectors that did not (zeros: the space is preallocated). Then the first
	// damaged frame has a sector whose bytes from the frame on are all zero, and valid commit
	// frames of later, unacknowledged batches may follow the hole: a torn tail, not damage.
	extent := frameHeaderSize
	if n, _, err := parseFrameHeader(rest); err == nil {
		extent += n
	}
	if tornSector(rest, off, extent) {
		return nil
	}
	for p := 1; p+frameHeaderSize <= len(rest); p++ {
		n, sum, err := parseFrameHeader(rest[p:])
		if err != nil || p+frameHeaderSize+n > len(rest) {
			continue
		}
		body := rest[p+frameHeaderSize : p+frameHeaderSize+n]
		if body[0] == typeCommit && crc(body) == sum {
			return corruptf(path, off, "damaged frame followed by a valid commit frame at offset %d", off+int64(p))
		}
	}
	if len(pending) == 0 {
		return nil
	}
	first := next - uint64(len(pending))
	want := commitBodySize(first, len(pending))
	n, _, herr := parseFrameHeader(rest)
	lengthField := int(binary.LittleEndian.Uint32(rest[0:min(4, len(rest))]))
	looksLikeCommit := len(rest) >= frameHeaderSize+commitFixed &&
		rest[frameHeaderSize] == typeCommit &&
		binary.LittleEndian.Uint64(rest[frameHeaderSize+1:]) == first &&
		int(binary.LittleEndian.Uint32(rest[frameHeaderSize+9:])) == len(pending)
	notEntry := len(rest) > frameHeaderSize && rest[frameHeaderSize] != typeEntry
	if herr == nil && n == want && notEntry || herr != nil && (lengthField == want && notEntry || looksLikeCommit) {
		frame := rest[:min(len(rest), frameHeaderSize+want)]
		if len(frame) == frameHeaderSize+want && !hasZeroSector(frame, off) {
			return corruptf(path, off, "checksum mismatch in the commit frame of entries %d to %d", first, first+uint64(len(pending))-1)
		}
	}
	return nil
}

// usedTo returns the offset just past the last non-zero byte of f in [from, size), or from if
// there is none: the end of what was written before the preallocated zeros.
func usedTo(f file, from, size int64) (int64, error) {
	buf := make([]byte, min(size-from, 1<<20))
	for end := size; end > from; {
		b := buf[:min(int64(len(buf)), end-from)]
		start := end - int64(len(b))
		if err := readFull(f, b, start); err != nil {
			return 0, err
		}
		for k := len(b) - 1; k >= 0; k-- {
			if b[k] != 0 {
				return start + int64(k) + 1, nil
			}
		}
		end = start
	}
	return from, nil
}

// zeroTo reports whether f holds only zero bytes from off to size.
func zeroTo(f file, off, size int64) (bool, error) {
	buf := make([]byte, min(size-off, 1<<20))
	for off < size {
		b := buf[:min(int64(len(buf)), size-off)]
		if err := readFull(f, b, off); err != nil {
			return false, err
		}
		if !isZero(b) {
			return false, nil
		}
		off += int64(len(b))
	}
	return true, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// hasZeroSector reports whether frame (which starts at file offset off) contains an all-zero,
// 512-byte aligned sector, or ends with zero bytes from a sector boundary on: the mark of a write
// that reached the disk only in part (the space after it is preallocated, hence zero).
func hasZeroSector(frame []byte, off int64) bool {
	const sector = 512
	start := (sector - off%sector) % sector
	for p := start; p < int64(len(frame)); p += sector {
		end := min(p+sector, int64(len(frame)))
		if isZero(frame[p:end]) {
			return true
		}
	}
	return false
}

// tornSector reports whether the frame that begins rest (at file offset off, extent bytes long as
// far as is known) has a sector that did not reach the disk: a 512-byte aligned sector, among
// those the frame touches, whose bytes from off on are all zero (the preallocated content).
// The zero run is judged over the whole sector, not just the frame's part of it, so that a short
// stretch of zeros inside a frame is not taken for a lost sector.
func tornSector(rest []byte, off int64, extent int) bool {
	const sector = 512
	extent = min(extent, len(rest))
	for p := off - off%sector; p < off+int64(extent); p += sector {
		lo := max(p, off) - off
		hi := min(p+sector-off, int64(len(rest)))
		if isZero(rest[lo:hi]) {
			return true
		}
	}
	return false
}
