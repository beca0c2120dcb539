package filestore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/storetest"
)

// within reports whether b lies inside buf's storage.
func within(b, buf []byte) bool {
	if len(b) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf[:cap(buf)])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(cap(buf))
}

// TestReadEntriesIsEntriesIntoTheCallersBuffers: ReadEntries returns what Entries yields, for
// runs across segments, across the index snapshot and past the end, in the buffers it is given
// (grown when too small), with every Leaf and Payload inside the returned buffer; the store
// keeps no reference to them.
func TestReadEntriesIsEntriesIntoTheCallersBuffers(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir(), &Options{SegmentSize: 8 << 10, FlushEvery: 1 << 30})
	defer s.Close()
	n := uint64(0)
	for range 30 {
		n = mustAppend(t, s, n, 7)
	}
	if err := s.flush(); err != nil { // entries [0, 210) from the index file
		t.Fatal(err)
	}
	for range 5 {
		n = mustAppend(t, s, n, 3) // the rest from the overlay
	}
	if len(s.segs) < 3 {
		t.Fatalf("only %d segments", len(s.segs))
	}
	var dst []store.Entry
	var buf []byte
	for _, r := range [][2]uint64{{0, 1}, {0, 256}, {5, 9}, {200, 220}, {205, n}, {0, n}, {n - 2, n + 100}, {n, n + 1}, {n + 5, math.MaxUint64}} {
		got, gotBuf, err := s.ReadEntries(ctx, r[0], r[1], dst, buf)
		if err != nil {
			t.Fatalf("ReadEntries(%d, %d): %v", r[0], r[1], err)
		}
		var want []store.Entry
		for e, err := range s.Entries(ctx, r[0], r[1]) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
		}
		if len(got) != len(want) {
			t.Fatalf("ReadEntries(%d, %d) returned %d entries, Entries %d", r[0], r[1], len(got), len(want))
		}
		for k := range got {
			g, w := got[k], want[k]
			if g.Index != w.Index || g.Identity != w.Identity || g.Conversation != w.Conversation || !bytes.Equal(g.Leaf, w.Leaf) || !bytes.Equal(g.Payload, w.Payload) {
				t.Fatalf("ReadEntries(%d, %d): entry %d differs from Entries'", r[0], r[1], g.Index)
			}
			if !within(g.Leaf, gotBuf) || !within(g.Payload, gotBuf) {
				t.Fatalf("ReadEntries(%d, %d): entry %d is not in the returned buffer", r[0], r[1], g.Index)
			}
		}
		if len(got) > 0 && cap(buf) >= len(gotBuf) && unsafe.SliceData(gotBuf) != unsafe.SliceData(buf[:cap(buf)]) {
			t.Fatalf("ReadEntries(%d, %d) allocated although the buffer was large enough", r[0], r[1])
		}
		// The caller owns the buffers: scribbling over them changes nothing in the store.
		for k := range gotBuf {
			gotBuf[k] = 0xAA
		}
		again, _, err := s.ReadEntries(ctx, r[0], r[1], nil, nil)
		if err != nil || len(again) != len(got) {
			t.Fatalf("ReadEntries(%d, %d) again: %d entries, %v", r[0], r[1], len(again), err)
		}
		for _, e := range again {
			if w := storetest.EntryAt(e.Index); !bytes.Equal(e.Leaf, w.Leaf) || !bytes.Equal(e.Payload, w.Payload) {
				t.Fatalf("entry %d read again differs from the one appended", e.Index)
			}
		}
		dst, buf = got, gotBuf
	}
	checkEntries(t, s, n)
}

// TestReadEntriesFailsAsEntriesDoes: a damaged frame is ErrCorrupt, with the entries before it
// returned; a cancelled context and a closed store fail.
func TestReadEntriesFailsAsEntriesDoes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir, nil)
	n := mustAppend(t, s, 0, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(1))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, nil)
	l, err := s.locate(4)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	b[l.off+frameHeaderSize+20] ^= 1 // inside entry 4's identity
	os.Chmod(seg, 0o644)
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, nil)
	got, _, err := s.ReadEntries(ctx, 0, n, nil, nil)
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("ReadEntries over a flipped byte: err = %v; want ErrCorrupt", err)
	}
	if len(got) != 4 || got[3].Index != 3 {
		t.Fatalf("ReadEntries over damage at entry 4 returned %d entries before the error; want 4", len(got))
	}
	got, _, err = s.ReadEntries(ctx, 5, n, nil, nil)
	if err != nil || len(got) != int(n-5) {
		t.Fatalf("ReadEntries after the damage: %d entries, %v", len(got), err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.ReadEntries(cctx, 0, n, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadEntries with a cancelled context: err = %v", err)
	}
	s.Close()
	if _, _, err := s.ReadEntries(ctx, 0, n, nil, nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("ReadEntries after Close: err = %v; want ErrClosed", err)
	}
}
