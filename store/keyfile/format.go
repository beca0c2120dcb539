package keyfile

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"unicode/utf8"
)

// The byte format; doc.go specifies it in prose.

const (
	magic      = "CSEALKEY"
	version    = 1
	headerSize = 16 // magic, version uint32, CRC-32C of the 12 bytes before it

	headSize = 8          // length uint32, hcrc uint32
	headXOR  = 0x4b455953 // "KEYS": a zero-filled head never checks
	wrapXOR  = 0x57524150 // "WRAP": the wrapped-key check of a zero-filled region never checks

	// Limits on what one record holds (store.ErrInvalid beyond them).
	maxIDLen   = 1024
	maxKEKLen  = 1024
	maxWrapped = 64 << 10
	maxMeta    = 16 << 20
	maxBody    = 1 + 2 + maxIDLen + 2 + maxKEKLen + 4 + maxMeta + 4 + 4 + maxWrapped + 4

	commitBodyLen = 1 + 8 + 4 + 4
)

// Record types.
const (
	recPut     = 'P' // id, kek, meta, wrapped region
	recMeta    = 'M' // id, meta
	recRewrap  = 'R' // id, kek, wrapped region
	recDestroy = 'D' // id, kek, meta: a tombstone
	recCommit  = 'C' // start of the batch uint64, record count uint32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// fileHeader returns the 16 bytes a vault file begins with.
func fileHeader() []byte {
	h := make([]byte, 0, headerSize)
	h = append(h, magic...)
	h = binary.LittleEndian.AppendUint32(h, version)
	return binary.LittleEndian.AppendUint32(h, crc(h))
}

// record is one decoded record. region and regionLen locate the wrapped region (the wrapped
// key's check and bytes) within the record, counted from the first byte of its head; regionLen
// is 0 for records without one.
type record struct {
	typ       byte
	id, kek   string
	meta      []byte
	wrapped   []byte // a copy; nil unless the region is intact
	region    int
	regionLen int
	erased    bool // the region is all zeros
	intact    bool // the region's check holds
	start     uint64
	count     uint32
}

// encoder appends records to a buffer.
type encoder struct{ buf []byte }

func (e *encoder) begin(typ byte) int {
	at := len(e.buf)
	e.buf = append(e.buf, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	return at
}

// end fills in the head of the record begun at at and appends its CRC, computed over the body
// up to regionStart (the end of the body for a record without a wrapped region): the wrapped
// region, last in the body, is outside it, so erasing the region changes no check.
func (e *encoder) end(at, regionStart int) {
	body := e.buf[at+headSize:]
	e.buf = binary.LittleEndian.AppendUint32(e.buf, crc(e.buf[at+headSize:regionStart]))
	n := uint32(len(body) + 4)
	binary.LittleEndian.PutUint32(e.buf[at:], n)
	binary.LittleEndian.PutUint32(e.buf[at+4:], crc(e.buf[at:at+4])^headXOR)
}

func (e *encoder) str16(s string) {
	e.buf = binary.LittleEndian.AppendUint16(e.buf, uint16(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) bytes32(b []byte) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(len(b)))
	e.buf = append(e.buf, b...)
}

// wrappedRegion appends the wrapped region: the length, then the region proper (check and
// bytes). It returns where the region proper starts in the buffer.
func (e *encoder) wrappedRegion(wrapped []byte) int {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, uint32(len(wrapped)))
	at := len(e.buf)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, crc(wrapped)^wrapXOR)
	e.buf = append(e.buf, wrapped...)
	return at
}

// put appends a put record and returns the offset of its wrapped region in the buffer.
func (e *encoder) put(id, kek string, meta, wrapped []byte) int {
	at := e.begin(recPut)
	e.str16(id)
	e.str16(kek)
	e.bytes32(meta)
	r := e.wrappedRegion(wrapped)
	e.end(at, r)
	return r
}

func (e *encoder) rewrap(id, kek string, wrapped []byte) int {
	at := e.begin(recRewrap)
	e.str16(id)
	e.str16(kek)
	r := e.wrappedRegion(wrapped)
	e.end(at, r)
	return r
}

func (e *encoder) setMeta(id string, meta []byte) {
	at := e.begin(recMeta)
	e.str16(id)
	e.bytes32(meta)
	e.end(at, len(e.buf))
}

func (e *encoder) destroy(id, kek string, meta []byte) {
	at := e.begin(recDestroy)
	e.str16(id)
	e.str16(kek)
	e.bytes32(meta)
	e.end(at, len(e.buf))
}

func (e *encoder) commit(start uint64, count uint32) {
	at := e.begin(recCommit)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, start)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, count)
	e.end(at, len(e.buf))
}

// regionSize is the size of the wrapped region (check and bytes) of wrapped.
func regionSize(wrapped []byte) int { return 4 + len(wrapped) }

// Errors of decoding: errTruncated means the bytes end inside the record.
var (
	errTruncated = errors.New("the record is cut short")
	errBadHead   = errors.New("the record's head does not check")
	errBadBody   = errors.New("the record's checksum does not match")
)

// bodyLen reads and checks a record head.
func bodyLen(head []byte) (int, error) {
	if len(head) < headSize {
		return 0, errTruncated
	}
	n := binary.LittleEndian.Uint32(head)
	if crc(head[:4])^headXOR != binary.LittleEndian.Uint32(head[4:]) {
		return 0, errBadHead
	}
	if n < 1+4 || n > maxBody {
		return 0, errBadHead
	}
	return int(n), nil
}

// reader decodes the fields of a body; a field that runs past the end fails it.
type reader struct {
	b   []byte
	off int
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b)-r.off {
		r.bad = true
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint16(b))
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *reader) str16(limit int) string {
	n := r.u16()
	if n > limit {
		r.bad = true
	}
	return string(r.take(n))
}

func (r *reader) bytes32(limit int) []byte {
	n := r.u32()
	if n > uint32(limit) {
		r.bad = true
		return nil
	}
	b := r.take(int(n))
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// decodeBody decodes the body of a record (everything after its head). It checks the CRC and
// the structure; the wrapped region's state is reported, not judged (the caller knows whether
// the wrapping is current, superseded or destroyed).
func decodeBody(body []byte) (record, error) {
	var rec record
	if len(body) < 1+4 {
		return rec, errBadBody
	}
	r := &reader{b: body[:len(body)-4], off: 1}
	rec.typ = body[0]
	want := binary.LittleEndian.Uint32(body[len(body)-4:])
	checked := len(body) - 4 // how much of the body the CRC covers
	switch rec.typ {
	case recPut, recRewrap:
		rec.id = r.str16(maxIDLen)
		rec.kek = r.str16(maxKEKLen)
		if rec.typ == recPut {
			rec.meta = r.bytes32(maxMeta)
		}
		n := r.u32()
		checked = r.off
		if n == 0 || n > maxWrapped {
			r.bad = true
		}
		region := r.take(4 + int(n))
		if region != nil {
			rec.region, rec.regionLen = headSize+checked, len(region)
			rec.erased = allZero(region)
			if !rec.erased && crc(region[4:])^wrapXOR == binary.LittleEndian.Uint32(region) {
				rec.intact = true
				rec.wrapped = append([]byte(nil), region[4:]...)
			}
		}
	case recMeta:
		rec.id = r.str16(maxIDLen)
		rec.meta = r.bytes32(maxMeta)
	case recDestroy:
		rec.id = r.str16(maxIDLen)
		rec.kek = r.str16(maxKEKLen)
		rec.meta = r.bytes32(maxMeta)
	case recCommit:
		if b := r.take(8); b != nil {
			rec.start = binary.LittleEndian.Uint64(b)
		}
		rec.count = r.u32()
	default:
		return rec, errBadBody
	}
	if r.bad || r.off != len(r.b) {
		return rec, errBadBody
	}
	if crc(body[:checked]) != want {
		return rec, errBadBody
	}
	if rec.typ != recCommit && (rec.id == "" || !utf8.ValidString(rec.id)) {
		return rec, errBadBody
	}
	if (rec.typ == recPut || rec.typ == recRewrap) && rec.kek == "" {
		return rec, errBadBody
	}
	return rec, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// isCommitAt reports whether a whole, valid commit record starts at b[0].
func isCommitAt(b []byte) bool {
	if len(b) < headSize+commitBodyLen || binary.LittleEndian.Uint32(b) != commitBodyLen || b[headSize] != recCommit {
		return false
	}
	if _, err := bodyLen(b); err != nil {
		return false
	}
	_, err := decodeBody(b[headSize : headSize+commitBodyLen])
	return err == nil
}
