package search

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/seal"
)

// The index file, DIR/docs.log, is append-only: a header, then records
//
//	uint32 length of the body, uint32 CRC-32C of the body (little-endian), body
//
// whose body starts with its type:
//
//	'D' a document: uvarint ledger index, uvarint length + data key id, then the document
//	    sealed under that data key (ledger.Deriver), so it goes when the key goes
//	'X' a data key that retention shredded: uvarint length + key id
//	'R' an alert or a disposition (package ledger/surveil), or a stored attachment's media
//	    record: uvarint entry index, uvarint length + data key id, then its message, rules,
//	    categories, severities or disposition sealed under that key (the message's)
//	'M' a mark: uvarint tree size, then the 32-byte leaf hash of the entry before it (zero for
//	    size 0). Everything before a mark covers the ledger up to that size; what follows the
//	    last mark (an update cut short) is dropped when the file is opened.
//
// Nothing in it is plaintext but key ids and ledger indexes, which the ledger's leaves show
// anyway.
const (
	logName   = "docs.log"
	logHeader = "commseal search index v2\n" // v2: 'R' records of media records too

	recDoc    = 'D'
	recForget = 'X'
	recMark   = 'M'
	recReview = 'R'

	maxRecord = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errLogCorrupt is wrapped when the index file is damaged before its last mark; the index
// then rebuilds from the ledger.
var errLogCorrupt = errors.New("search: index file damaged")

// sealedDoc is a 'D' record as read back.
type sealedDoc struct {
	index uint64
	keyID string
	ct    []byte
}

// mark is an 'M' record.
type mark struct {
	size uint64
	leaf seal.Hash
}

// logContent is what an index file held up to its last mark.
type logContent struct {
	docs    []sealedDoc
	reviews []sealedDoc // 'R' records: index is the annotation entry's
	forget  []string
	mark    mark
	end     int64 // the offset just after the last mark
}

// logFile is the open index file.
type logFile struct {
	f    *os.File
	path string
	buf  []byte
	end  int64 // the offset after the last mark written
}

// openLog opens (creating) the index file in dir and reads it up to its last mark, cutting off
// what follows. A file that is damaged before that comes back empty with an error wrapping
// errLogCorrupt, ready to be rebuilt.
func openLog(dir string) (*logFile, *logContent, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, nil, fmt.Errorf("search: %w", err)
	}
	path := filepath.Join(dir, logName)
	f, err := durable.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, nil, fmt.Errorf("search: %w", err)
	}
	lf := &logFile{f: f, path: path}
	c, rerr := readLog(bufio.NewReaderSize(f, 1<<20))
	if rerr != nil {
		c = &logContent{}
	}
	if err := lf.cut(c.end); err != nil {
		f.Close()
		return nil, nil, err
	}
	return lf, c, rerr
}

// cut truncates the file at end (writing the header if end is 0) and positions writes there.
func (lf *logFile) cut(end int64) error {
	if end == 0 {
		if err := lf.f.Truncate(0); err != nil {
			return fmt.Errorf("search: %w", err)
		}
		if _, err := lf.f.WriteAt([]byte(logHeader), 0); err != nil {
			return fmt.Errorf("search: %w", err)
		}
		end = int64(len(logHeader))
	} else if err := lf.f.Truncate(end); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	lf.end = end
	if _, err := lf.f.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return durable.Sync(lf.f)
}

// readLog parses an index file up to its last complete mark.
func readLog(r io.Reader) (*logContent, error) {
	hdr := make([]byte, len(logHeader))
	if _, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.EOF) {
			return &logContent{}, nil // a new file
		}
		return nil, fmt.Errorf("%w: header: %v", errLogCorrupt, err)
	}
	if string(hdr) != logHeader {
		if v, ok := strings.CutPrefix(string(hdr), "commseal search index "); ok {
			return nil, fmt.Errorf("%w: format %s, not %s (an index of an earlier version is rebuilt)", errLogCorrupt, strings.TrimSpace(v), strings.TrimSpace(logHeader[len("commseal search index "):]))
		}
		return nil, fmt.Errorf("%w: not a commseal search index", errLogCorrupt)
	}
	c, pending := &logContent{end: int64(len(logHeader))}, &logContent{}
	off := c.end
	var head [8]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return c, nil // the end, or a record cut short after the last mark
		}
		n, sum := binary.LittleEndian.Uint32(head[:4]), binary.LittleEndian.Uint32(head[4:])
		if n == 0 || n > maxRecord {
			return c, nil
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil || crc32.Checksum(body, crcTable) != sum {
			return c, nil
		}
		off += 8 + int64(n)
		done, err := parseRecord(body, pending)
		if err != nil {
			return nil, fmt.Errorf("%w: at offset %d: %v", errLogCorrupt, off-8-int64(n), err)
		}
		if done {
			c.docs = append(c.docs, pending.docs...)
			c.reviews = append(c.reviews, pending.reviews...)
			c.forget = append(c.forget, pending.forget...)
			c.mark, c.end = pending.mark, off
			*pending = logContent{}
		}
	}
}

// sealed reads the rest of a 'D' or 'R' record: index, key id, sealed content.
func (r *decoder) sealed() sealedDoc {
	d := sealedDoc{index: r.uvarint("index"), keyID: r.string("key id")}
	d.ct = r.b
	if r.err == nil && len(d.ct) == 0 {
		r.fail("nothing sealed")
	}
	return d
}

// parseRecord adds one record's content to c and reports whether it was a mark.
func parseRecord(body []byte, c *logContent) (bool, error) {
	r := &decoder{b: body[1:]}
	switch body[0] {
	case recDoc:
		c.docs = append(c.docs, r.sealed())
	case recReview:
		c.reviews = append(c.reviews, r.sealed())
	case recForget:
		c.forget = append(c.forget, r.string("key id"))
		if r.err == nil && len(r.b) != 0 {
			r.fail("trailing bytes")
		}
	case recMark:
		c.mark.size = r.uvarint("size")
		if r.err == nil && len(r.b) != len(c.mark.leaf) {
			r.fail("leaf hash")
		}
		copy(c.mark.leaf[:], r.b)
		return r.err == nil, r.err
	default:
		return false, fmt.Errorf("unknown record type %q", body[0])
	}
	return false, r.err
}

// appendRecord adds one record to lf's buffer.
func (lf *logFile) appendRecord(body ...[]byte) {
	n := 0
	for _, b := range body {
		n += len(b)
	}
	start := len(lf.buf)
	lf.buf = binary.LittleEndian.AppendUint32(lf.buf, uint32(n))
	lf.buf = append(lf.buf, 0, 0, 0, 0)
	for _, b := range body {
		lf.buf = append(lf.buf, b...)
	}
	binary.LittleEndian.PutUint32(lf.buf[start+4:], crc32.Checksum(lf.buf[start+8:], crcTable))
}

func (lf *logFile) doc(index uint64, keyID string, ct []byte) {
	h := binary.AppendUvarint([]byte{recDoc}, index)
	lf.appendRecord(appendString(h, keyID), ct)
}

func (lf *logFile) review(entry uint64, keyID string, ct []byte) {
	h := binary.AppendUvarint([]byte{recReview}, entry)
	lf.appendRecord(appendString(h, keyID), ct)
}

func (lf *logFile) forget(keyID string) { lf.appendRecord(appendString([]byte{recForget}, keyID)) }

// commit appends the buffered records and a mark, and returns once they are durable.
func (lf *logFile) commit(m mark) error {
	lf.appendRecord(binary.AppendUvarint([]byte{recMark}, m.size), m.leaf[:])
	n, err := lf.f.Write(lf.buf)
	lf.buf = lf.buf[:0]
	if err == nil {
		err = durable.Sync(lf.f)
	}
	if err != nil { // leave no torn record for the next commit to follow
		return errors.Join(fmt.Errorf("search: writing the index: %w", err), lf.cut(lf.end))
	}
	lf.end += int64(n)
	return nil
}

func (lf *logFile) close() error { return lf.f.Close() }
