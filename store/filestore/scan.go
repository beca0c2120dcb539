package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/commseal/commseal/store"
)

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
