package filestore

import (
	"bytes"
	"io"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/storetest"
)

// memFile is a file in memory, for the fuzzer.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memFile) WriteAt(p []byte, off int64) (int, error) { return 0, io.ErrShortWrite }
func (m *memFile) Sync() error                              { return nil }
func (m *memFile) Truncate(int64) error                     { return nil }
func (m *memFile) Size() (int64, error)                     { return int64(len(m.b)), nil }
func (m *memFile) Close() error                             { return nil }

// segmentBytes encodes batches as the committer writes them, after a segment header.
func segmentBytes(sizes ...int) []byte {
	buf := segmentHeader{seq: 1}.encode()
	n := uint64(0)
	for _, k := range sizes {
		b := storetest.BatchAt(n, k)
		for i := range b.Entries {
			buf = appendEntryFrame(buf, &b.Entries[i])
		}
		buf = appendCommitFrame(buf, n, k, b.Hashes)
		n += uint64(k)
	}
	return buf
}

// FuzzScanSegment feeds arbitrary segment contents to the recovery scanner and the frame
// decoders: they must never panic, and what they accept must be consistent.
func FuzzScanSegment(f *testing.F) {
	good := segmentBytes(1, 3, 2)
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(append(bytes.Clone(good), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13))
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 4
	f.Add(flipped)
	f.Add(segmentHeader{seq: 1}.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < segmentHeaderSize {
			return
		}
		m := &memFile{b: data}
		res, err := scanSegment(m, "fuzz", 1, segmentHeaderSize, int64(len(data)), 0, 0)
		if err != nil {
			return
		}
		if res.end < segmentHeaderSize || res.end > int64(len(data)) {
			t.Fatalf("end %d outside the data (%d bytes)", res.end, len(data))
		}
		if res.tail != nil && res.tail.Offset+res.tail.Bytes != int64(len(data)) {
			t.Fatalf("tail %+v does not reach the end of %d bytes", res.tail, len(data))
		}
		if res.tail == nil && res.end != int64(len(data)) {
			t.Fatalf("no tail, but the scan ended at %d of %d", res.end, len(data))
		}
		if int64(len(res.hashes)) != store.StoredHashCount(uint64(len(res.locs))) {
			t.Fatalf("%d hashes for %d entries", len(res.hashes), len(res.locs))
		}
		for i, l := range res.locs {
			frame := data[l.off : l.off+int64(l.length)]
			e, err := decodeEntryFrame(frame, uint64(i), &l, "fuzz")
			if err != nil {
				t.Fatalf("accepted entry %d does not decode: %v", i, err)
			}
			if e.Identity != l.identity || e.Conversation != l.conversation {
				t.Fatalf("entry %d: location and frame disagree", i)
			}
			var rec [indexRecordSize]byte
			l.encode(rec[:])
			if back, err := decodeLocation(rec[:]); err != nil || back != l {
				t.Fatalf("index record round trip: %+v, %v", back, err)
			}
		}
		// The decoders alone must not panic on anything.
		decodeEntry(data[segmentHeaderSize:])
		decodeCommit(data[segmentHeaderSize:])
		decodeCheckpoint(data[segmentHeaderSize:])
		decodeLocation(data)
		decodeState(data[:min(len(data), stateSize)])
		decodeSegmentHeader(data)
	})
}

func TestScanSegmentFixture(t *testing.T) {
	data := segmentBytes(1, 3, 2)
	res, err := scanSegment(&memFile{b: data}, "x", 1, segmentHeaderSize, int64(len(data)), 0, 0)
	if err != nil || len(res.locs) != 6 || res.tail != nil || res.end != int64(len(data)) {
		t.Fatalf("scan of a clean segment: %+v, %v", res, err)
	}
	for k, h := range res.hashes {
		if h != storetest.HashAt(int64(k)) {
			t.Fatalf("stored hash %d differs", k)
		}
	}
}
