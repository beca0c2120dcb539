package filestore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/store/storetest"
)

// groupBytes encodes batches of the given sizes from entry first as one group commit writes them.
func groupBytes(first uint64, sizes ...int) (b []byte, ends []int) {
	i := first
	for _, n := range sizes {
		batch := storetest.BatchAt(i, n)
		for k := range batch.Entries {
			b = appendEntryFrame(b, &batch.Entries[k])
		}
		b = appendCommitFrame(b, i, n, batch.Hashes)
		ends = append(ends, len(b))
		i += uint64(n)
	}
	return b, ends
}

// TestTornNextGroupNeverHidesSyncedGroup builds the crash images of a pipelined group commit:
// group k written and synced, group k+1 written after it but not yet synced when the machine
// stops. Any mix of k+1's sectors may have reached the disk (the rest reads as zeros, the
// preallocated content), or any prefix of its bytes. Open must accept every such image, keep all
// of group k, keep exactly the batches of k+1 that landed whole before the first missing byte,
// cut the rest, and go on appending.
func TestTornNextGroupNeverHidesSyncedGroup(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, &Options{FlushEvery: 1 << 30})
	n := mustAppend(t, s, 0, 3)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	n = mustAppend(t, s, n, 4) // group k: synced, no snapshot covers it
	p := s.end
	s.abandon()
	seg := filepath.Join(dir, segmentName(1))
	saveCrashImage(t, dir)
	durable, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	durable = durable[:p]
	sizes := []int{3, 1, 5, 2, 1, 7, 2}
	next, ends := groupBytes(n, sizes...)
	full := append(bytes.Clone(durable), next...)
	full = append(full, make([]byte, 4096)...) // preallocated space beyond the group
	const sector = 512

	// expect returns how many entries of k+1 survive in img: the batches that end before the
	// first byte that differs from the complete write.
	expect := func(img []byte) uint64 {
		first := len(next)
		for k := range next {
			if int(p)+k >= len(img) || img[int(p)+k] != next[k] {
				first = k
				break
			}
		}
		got := uint64(0)
		for b, e := range ends {
			if e <= first {
				got += uint64(sizes[b])
			}
		}
		return got
	}
	check := func(name string, img []byte, writer bool) {
		t.Helper()
		writeImage(t, seg, img)
		s, err := Open(context.Background(), dir, &Options{ReadOnly: !writer})
		if err != nil {
			t.Fatalf("%s: Open: %v; a torn unsynced group must never make Open refuse", name, err)
		}
		want := n + expect(img)
		checkEntries(t, s, want)
		if writer {
			if fi, _ := os.Stat(seg); want == n && fi.Size() < p {
				t.Fatalf("%s: Open cut the segment to %d bytes, before the synced group's end %d", name, fi.Size(), p)
			}
			mustAppend(t, s, want, 2)
			checkEntries(t, s, want+2)
			s.abandon()
			s = mustOpen(t, dir, nil)
			if cuts := s.Recovery().Cut; len(cuts) != 0 {
				t.Fatalf("%s: reopen after recovery and an append: cuts %+v; want none", name, cuts)
			}
			checkEntries(t, s, want+2)
			s.abandon()
			restoreCrashImage(t, dir, seg, full)
		} else {
			s.Close()
		}
	}
	// zeroSectors returns full with the sectors of k+1 for which lost reports true zeroed.
	zeroSectors := func(lost func(sec int64) bool) []byte {
		img := bytes.Clone(full)
		for sec := p / sector; sec*sector < p+int64(len(next)); sec++ {
			if lost(sec) {
				for o := max(sec*sector, p); o < min((sec+1)*sector, int64(len(img))); o++ {
					img[o] = 0
				}
			}
		}
		return img
	}

	firstSec, lastSec := p/sector, (p+int64(len(next))-1)/sector
	// A write cut short at any byte where the file ends (it was growing), and at every sector
	// boundary inside preallocated space (the rest of the group reads as zeros).
	for o := int64(0); o <= int64(len(next)); o++ {
		check("file ends after "+itoa(int(o))+" bytes of the group", bytes.Clone(full[:p+o]), o%256 == 0)
		if (p+o)%sector == 0 {
			img := bytes.Clone(full)
			clear(img[p+o : p+int64(len(next))])
			check("sectors from "+itoa(int(p+o))+" lost", img, o%1024 == 0)
		}
	}
	for sec := firstSec; sec <= lastSec; sec++ {
		check("sector "+itoa(int(sec))+" lost", zeroSectors(func(x int64) bool { return x == sec }), sec%2 == 1)
		check("only sector "+itoa(int(sec))+" landed", zeroSectors(func(x int64) bool { return x != sec }), sec%4 == 0)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for k := range 100 {
		img := zeroSectors(func(int64) bool { return rng.IntN(3) == 0 })
		if k%4 == 0 {
			// and the file ends inside the group
			img = img[:p+rng.Int64N(int64(len(next)))]
		}
		check("random sectors "+itoa(k), img, k%20 == 0)
	}
}

// writeImage replaces the content of path with img in place. (Truncating it to zero first would
// make ext4 flush it on close, as it does for a file rewritten from scratch, at a sync's cost.)
func writeImage(t *testing.T, path string, img []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(img, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(img))); err != nil {
		t.Fatal(err)
	}
}
