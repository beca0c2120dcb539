package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/commseal/commseal/store"
)

// The on-disk format is described in the package documentation (doc.go); this file encodes and
// decodes it. Every integer is little-endian.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

const (
	frameHeaderSize = 12
	// headerKey is mixed into the header checksum so that a zero-filled header never checks.
	headerKey = 0x5345414c
	// maxBody bounds a frame body; a header claiming more is invalid, whatever its checksum.
	maxBody = 1 << 30

	typeEntry      = 'E'
	typeCommit     = 'C'
	typeCheckpoint = 'K'

	entryFixed      = 1 + 8 + 32 + 32 + 4 // type, index, identity, conversation, leaf length
	commitFixed     = 1 + 8 + 4           // type, first index, count
	checkpointFixed = 1 + 8               // type, size

	segmentHeaderSize = 32
	segmentMagic      = "CSEALSG1"

	indexRecordSize = 88

	stateSize  = 48
	stateMagic = "CSEALST1"
)

var errFrame = errors.New("invalid frame")

// appendFrameHeader appends the header of a frame whose body is body.
func putFrameHeader(h []byte, body []byte) {
	binary.LittleEndian.PutUint32(h[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(h[4:], crc(body))
	binary.LittleEndian.PutUint32(h[8:], crc(h[:8])^headerKey)
}

// parseFrameHeader returns the body length a header announces, or errFrame if the header does not
// check.
func parseFrameHeader(h []byte) (n int, bodyCRC uint32, err error) {
	if len(h) < frameHeaderSize {
		return 0, 0, errFrame
	}
	if crc(h[:8])^headerKey != binary.LittleEndian.Uint32(h[8:]) {
		return 0, 0, errFrame
	}
	n = int(binary.LittleEndian.Uint32(h[0:]))
	if n == 0 || n > maxBody {
		return 0, 0, errFrame
	}
	return n, binary.LittleEndian.Uint32(h[4:]), nil
}

func entryFrameSize(e *store.Entry) int {
	return frameHeaderSize + entryFixed + len(e.Leaf) + len(e.Payload)
}

// appendEntryFrame appends the frame of e to buf.
func appendEntryFrame(buf []byte, e *store.Entry) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderSize)...)
	buf = append(buf, typeEntry)
	buf = binary.LittleEndian.AppendUint64(buf, e.Index)
	buf = append(buf, e.Identity[:]...)
	buf = append(buf, e.Conversation[:]...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(e.Leaf)))
	buf = append(buf, e.Leaf...)
	buf = append(buf, e.Payload...)
	putFrameHeader(buf[start:], buf[start+frameHeaderSize:])
	return buf
}

func commitBodySize(first uint64, count int) int {
	hc := store.StoredHashCount(first+uint64(count)) - store.StoredHashCount(first)
	return commitFixed + 32*int(hc)
}

// appendCommitFrame appends the commit frame of a batch to buf.
func appendCommitFrame(buf []byte, first uint64, count int, hashes []store.Hash) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderSize)...)
	buf = append(buf, typeCommit)
	buf = binary.LittleEndian.AppendUint64(buf, first)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(count))
	for _, h := range hashes {
		buf = append(buf, h[:]...)
	}
	putFrameHeader(buf[start:], buf[start+frameHeaderSize:])
	return buf
}

func appendCheckpointFrame(buf []byte, c store.Checkpoint) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, frameHeaderSize)...)
	buf = append(buf, typeCheckpoint)
	buf = binary.LittleEndian.AppendUint64(buf, c.Size)
	buf = append(buf, c.Note...)
	putFrameHeader(buf[start:], buf[start+frameHeaderSize:])
	return buf
}

// decodeEntry decodes an entry body. The returned slices alias body.
func decodeEntry(body []byte) (store.Entry, error) {
	var e store.Entry
	if len(body) < entryFixed || body[0] != typeEntry {
		return e, fmt.Errorf("%w: not an entry frame", errFrame)
	}
	e.Index = binary.LittleEndian.Uint64(body[1:])
	copy(e.Identity[:], body[9:41])
	copy(e.Conversation[:], body[41:73])
	leafLen := binary.LittleEndian.Uint32(body[73:])
	rest := body[entryFixed:]
	if uint64(leafLen) > uint64(len(rest)) {
		return e, fmt.Errorf("%w: leaf length %d exceeds the frame", errFrame, leafLen)
	}
	e.Leaf = rest[:leafLen:leafLen]
	e.Payload = rest[leafLen:]
	return e, nil
}

type commitBody struct {
	first  uint64
	count  int
	hashes []byte // 32 bytes each
}

func decodeCommit(body []byte) (commitBody, error) {
	var c commitBody
	if len(body) < commitFixed || body[0] != typeCommit {
		return c, fmt.Errorf("%w: not a commit frame", errFrame)
	}
	c.first = binary.LittleEndian.Uint64(body[1:])
	c.count = int(binary.LittleEndian.Uint32(body[9:]))
	if c.count == 0 || c.first > 1<<62 || len(body) != commitBodySize(c.first, c.count) {
		return c, fmt.Errorf("%w: commit frame of %d entries from %d has %d bytes", errFrame, c.count, c.first, len(body))
	}
	c.hashes = body[commitFixed:]
	return c, nil
}

func decodeCheckpoint(body []byte) (store.Checkpoint, error) {
	if len(body) < checkpointFixed+1 || body[0] != typeCheckpoint {
		return store.Checkpoint{}, fmt.Errorf("%w: not a checkpoint frame", errFrame)
	}
	return store.Checkpoint{Size: binary.LittleEndian.Uint64(body[1:]), Note: body[checkpointFixed:]}, nil
}

// segmentHeader is the first 32 bytes of a segment file.
type segmentHeader struct {
	seq   uint64 // the segment's sequence number, from 1, as in its name
	first uint64 // index of the first entry stored in it
}

func (h segmentHeader) encode() []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b, segmentMagic)
	binary.LittleEndian.PutUint64(b[8:], h.seq)
	binary.LittleEndian.PutUint64(b[16:], h.first)
	binary.LittleEndian.PutUint32(b[28:], crc(b[:28]))
	return b
}

func decodeSegmentHeader(b []byte) (segmentHeader, error) {
	if len(b) < segmentHeaderSize || string(b[:8]) != segmentMagic || crc(b[:28]) != binary.LittleEndian.Uint32(b[28:]) {
		return segmentHeader{}, errors.New("invalid segment header")
	}
	return segmentHeader{seq: binary.LittleEndian.Uint64(b[8:]), first: binary.LittleEndian.Uint64(b[16:])}, nil
}

// location is where an entry's frame is: one record of the index file.
type location struct {
	seq          uint32 // segment
	length       uint32 // whole frame, header included
	off          int64  // of the frame in the segment
	identity     store.Hash
	conversation store.Hash
}

func (l *location) encode(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], l.seq)
	binary.LittleEndian.PutUint32(b[4:], l.length)
	binary.LittleEndian.PutUint64(b[8:], uint64(l.off))
	copy(b[16:48], l.identity[:])
	copy(b[48:80], l.conversation[:])
	binary.LittleEndian.PutUint32(b[80:], crc(b[:80]))
	binary.LittleEndian.PutUint32(b[84:], 0)
}

func decodeLocation(b []byte) (location, error) {
	var l location
	if len(b) < indexRecordSize || crc(b[:80]) != binary.LittleEndian.Uint32(b[80:]) {
		return l, errors.New("index record checksum mismatch")
	}
	l.seq = binary.LittleEndian.Uint32(b[0:])
	l.length = binary.LittleEndian.Uint32(b[4:])
	l.off = int64(binary.LittleEndian.Uint64(b[8:]))
	copy(l.identity[:], b[16:48])
	copy(l.conversation[:], b[48:80])
	if l.seq == 0 || l.off < segmentHeaderSize || l.length < frameHeaderSize+entryFixed {
		return l, errors.New("index record out of range")
	}
	return l, nil
}

// state is the content of the state file: how far the index and hashes files are durable, and
// where in the segments the entries after that begin.
type state struct {
	entries uint64 // index records durable in the index file
	hashes  int64  // stored hashes durable in the hashes file
	seq     uint64 // segment holding the frame of entry `entries` (or the next to be written)
	off     int64  // offset of that frame (or of the end of the last commit)
}

func (s state) encode() []byte {
	b := make([]byte, stateSize)
	copy(b, stateMagic)
	binary.LittleEndian.PutUint64(b[8:], s.entries)
	binary.LittleEndian.PutUint64(b[16:], uint64(s.hashes))
	binary.LittleEndian.PutUint64(b[24:], s.seq)
	binary.LittleEndian.PutUint64(b[32:], uint64(s.off))
	binary.LittleEndian.PutUint32(b[44:], crc(b[:44]))
	return b
}

func decodeState(b []byte) (state, error) {
	if len(b) != stateSize || string(b[:8]) != stateMagic || crc(b[:44]) != binary.LittleEndian.Uint32(b[44:]) {
		return state{}, errors.New("invalid state file")
	}
	s := state{
		entries: binary.LittleEndian.Uint64(b[8:]),
		hashes:  int64(binary.LittleEndian.Uint64(b[16:])),
		seq:     binary.LittleEndian.Uint64(b[24:]),
		off:     int64(binary.LittleEndian.Uint64(b[32:])),
	}
	if s.entries > 1<<62 || s.hashes != store.StoredHashCount(s.entries) || s.seq == 0 || s.seq > 1<<31 || s.off < segmentHeaderSize {
		return state{}, errors.New("state file out of range")
	}
	return s, nil
}
