package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/storetest"
)

// abandon stops s as a crash would: no snapshot, nothing flushed beyond what Append synced.
func (s *Store) abandon() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wmu.Lock()
	s.drain()
	s.stopSyncer()
	s.wmu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.closeFiles()
}

func (s *Store) abandonOrClose() {
	if s.readOnly {
		s.Close()
	} else {
		s.abandon()
	}
}

func mustOpen(t testing.TB, dir string, o *Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func mustAppend(t testing.TB, s *Store, start uint64, n int) uint64 {
	t.Helper()
	if err := s.Append(context.Background(), storetest.BatchAt(start, n)); err != nil {
		t.Fatalf("Append(%d at %d): %v", n, start, err)
	}
	return start + uint64(n)
}

// checkEntries checks that s holds exactly the suite's entries [0, n).
func checkEntries(t testing.TB, s *Store, n uint64) {
	t.Helper()
	ctx := context.Background()
	size, err := s.Size(ctx)
	if err != nil || size != n {
		t.Fatalf("Size = %d, %v; want %d", size, err, n)
	}
	i := uint64(0)
	for e, err := range s.Entries(ctx, 0, math.MaxUint64) {
		if err != nil {
			t.Fatalf("Entries at %d: %v", i, err)
		}
		want := storetest.EntryAt(i)
		if e.Index != i || e.Identity != want.Identity || !bytes.Equal(e.Leaf, want.Leaf) || !bytes.Equal(e.Payload, want.Payload) {
			t.Fatalf("entry %d differs from what was appended", i)
		}
		i++
	}
	if i != n {
		t.Fatalf("Entries yielded %d; want %d", i, n)
	}
	if n > 0 {
		hc := store.StoredHashCount(n)
		hs, err := s.ReadHashes(ctx, []int64{0, hc / 2, hc - 1})
		if err != nil || hs[0] != storetest.HashAt(0) || hs[1] != storetest.HashAt(hc/2) || hs[2] != storetest.HashAt(hc-1) {
			t.Fatalf("ReadHashes: %v", err)
		}
	}
}

// tornFixture writes a store whose last segment ends with a committed batch of 5 entries that
// no index snapshot covers. It returns the directory, the segment path, the offsets where the
// final batch begins and ends, and the number of entries before it.
func tornFixture(t *testing.T) (dir, seg string, begin, end int64, before uint64) {
	dir = t.TempDir()
	s := mustOpen(t, dir, &Options{FlushEvery: 1 << 30})
	n := mustAppend(t, s, 0, 3)
	n = mustAppend(t, s, n, 4)
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	n = mustAppend(t, s, n, 2)
	begin = s.end
	before = n
	mustAppend(t, s, n, 5)
	end = s.end
	s.abandon()
	seg = filepath.Join(dir, segmentName(1))
	// Drop the preallocated tail, so the cases below control every byte after the last commit
	// (TestPreallocatedTailIsNotACut covers the tail).
	if err := os.Truncate(seg, end); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(seg)
	if err != nil || fi.Size() != end {
		t.Fatalf("segment size %v, %v; want %d", fi, err, end)
	}
	return dir, seg, begin, end, before
}

func TestTornTailTruncatedAtEveryOffset(t *testing.T) {
	dir, seg, begin, end, before := tornFixture(t)
	saveCrashImage(t, dir)
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for o := begin; o <= end; o++ {
		if err := os.WriteFile(seg, orig[:o], 0o644); err != nil {
			t.Fatal(err)
		}
		// Every offset through the read-only path (same judgement, no writes, no syncs); every
		// 16th and the edges through a writer, which must cut the file and go on appending.
		writer := o%16 == 0 || o <= begin+1 || o >= end-1
		s, err := Open(context.Background(), dir, &Options{ReadOnly: !writer})
		if err != nil {
			t.Fatalf("Open with the segment cut at %d (final batch %d..%d): %v", o, begin, end, err)
		}
		want := before
		if o == end {
			want = before + 5
		}
		if size, _ := s.Size(context.Background()); size != want {
			t.Fatalf("cut at %d: Size = %d; want %d", o, size, want)
		}
		cuts := s.Recovery().Cut
		switch {
		case o == begin || o == end:
			if len(cuts) != 0 {
				t.Fatalf("cut at a batch boundary %d: Recovery reports cuts %+v; want none", o, cuts)
			}
		case len(cuts) != 1 || cuts[0].Offset != begin || cuts[0].Bytes != written(orig[begin:o]) || cuts[0].File != seg:
			t.Fatalf("cut at %d: Recovery.Cut = %+v; want one cut of %d bytes at %d", o, cuts, written(orig[begin:o]), begin)
		}
		checkEntries(t, s, want)
		if writer {
			if fi, _ := os.Stat(seg); o != end && fi.Size() != begin {
				t.Fatalf("cut at %d: segment has %d bytes after Open; want %d", o, fi.Size(), begin)
			}
			if want == before && o%64 == 0 {
				mustAppend(t, s, before, 5)
				checkEntries(t, s, before+5)
			}
			s.abandon()
		} else {
			s.Close()
		}
		restoreCrashImage(t, dir, seg, orig)
	}
}

// restoreCrashImage puts back the directory as tornFixture left it.
var crashImages sync.Map // dir -> map[name][]byte

func saveCrashImage(t *testing.T, dir string) {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range []string{"state", "index", "hashes", "checkpoints"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			files[name] = b
		}
	}
	crashImages.Store(dir, files)
}

func restoreCrashImage(t *testing.T, dir, seg string, orig []byte) {
	t.Helper()
	v, ok := crashImages.Load(dir)
	if !ok {
		t.Fatalf("no crash image for %s", dir)
	}
	for name, b := range v.(map[string][]byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(seg, orig, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFlippedByteInCommittedBatchIsCorruption(t *testing.T) {
	dir, seg, begin, end, _ := tornFixture(t)
	saveCrashImage(t, dir)
	orig, _ := os.ReadFile(seg)
	for p := begin; p < end; p++ {
		b := bytes.Clone(orig)
		b[p] ^= 1 << (p % 8)
		if err := os.WriteFile(seg, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), dir, nil)
		if !errors.Is(err, store.ErrCorrupt) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("flipped byte at %d in the committed final batch (%d..%d): Open err = %v; want ErrCorrupt", p, begin, end, err)
		}
		if fi, _ := os.Stat(seg); fi.Size() != end {
			t.Fatalf("flipped byte at %d: Open changed the segment to %d bytes; it must not cut committed data", p, fi.Size())
		}
	}
	restoreCrashImage(t, dir, seg, orig)
	s := mustOpen(t, dir, nil)
	defer s.Close()
	if len(s.Recovery().Cut) != 0 {
		t.Fatalf("intact image: cuts %+v", s.Recovery().Cut)
	}
}

func TestFlippedBytesInTornBatchAreCut(t *testing.T) {
	dir, seg, begin, end, before := tornFixture(t)
	saveCrashImage(t, dir)
	orig, _ := os.ReadFile(seg)
	rng := rand.New(rand.NewPCG(1, 2))
	// Every byte of the final batch flipped with the batch torn just short of its end, and
	// random (cut, flips) pairs.
	type tc struct{ cut, flip int64 }
	var cases []tc
	for p := begin; p < end-1; p++ {
		cases = append(cases, tc{end - 1, p})
	}
	for range 300 {
		cut := begin + 1 + rng.Int64N(end-begin-1)
		cases = append(cases, tc{cut, begin + rng.Int64N(cut-begin)})
	}
	for _, c := range cases {
		b := bytes.Clone(orig[:c.cut])
		b[c.flip] ^= 0xff
		if err := os.WriteFile(seg, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), dir, &Options{ReadOnly: c.flip%8 != 0})
		if err != nil {
			t.Fatalf("torn at %d with byte %d flipped: Open: %v; want the torn batch cut", c.cut, c.flip, err)
		}
		size, _ := s.Size(context.Background())
		cuts := s.Recovery().Cut
		s.abandonOrClose()
		if size != before || len(cuts) != 1 || cuts[0].Offset != begin || cuts[0].Bytes != written(b[begin:]) {
			t.Fatalf("torn at %d with byte %d flipped: Size %d, cuts %+v; want %d and one cut at %d", c.cut, c.flip, size, cuts, before, begin)
		}
		restoreCrashImage(t, dir, seg, orig)
	}
}

func TestGarbageAfterLastCommitIsCut(t *testing.T) {
	dir, seg, _, end, before := tornFixture(t)
	saveCrashImage(t, dir)
	orig, _ := os.ReadFile(seg)
	rng := rand.New(rand.NewPCG(3, 4))
	header := make([]byte, frameHeaderSize)
	putFrameHeader(header, make([]byte, 100)) // a valid header whose body never landed
	for _, garbage := range [][]byte{
		{0}, make([]byte, 11), make([]byte, 12), make([]byte, 4096), {0xff},
		header, append(bytes.Clone(header), 1, 2, 3),
		randomBytes(rng, 5), randomBytes(rng, 12), randomBytes(rng, 13), randomBytes(rng, 777), randomBytes(rng, 70000),
	} {
		b := append(bytes.Clone(orig), garbage...)
		if err := os.WriteFile(seg, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), dir, nil)
		if err != nil {
			t.Fatalf("%d bytes of garbage after the last commit: Open: %v", len(garbage), err)
		}
		cuts := s.Recovery().Cut
		checkEntries(t, s, before+5)
		s.Close()
		if written(garbage) == 0 {
			if len(cuts) != 0 {
				t.Fatalf("%d zero bytes after the last commit (preallocated space): cuts %+v; want none", len(garbage), cuts)
			}
		} else if len(cuts) != 1 || cuts[0].Offset != end || cuts[0].Bytes != written(garbage) || cuts[0].Reason == "" {
			t.Fatalf("%d bytes of garbage: cuts %+v; want one cut of them at %d", len(garbage), cuts, end)
		}
		restoreCrashImage(t, dir, seg, orig)
	}
}

// written is the length of b up to its last non-zero byte: what a Cut reports, since zeros at
// the end cannot be told from preallocated space.
func written(b []byte) int64 {
	for k := len(b) - 1; k >= 0; k-- {
		if b[k] != 0 {
			return int64(k + 1)
		}
	}
	return 0
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(rng.Uint32())
	}
	return b
}

func TestPreallocatedTailIsNotACut(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, &Options{FlushEvery: 1 << 30})
	n := mustAppend(t, s, 0, 3)
	n = mustAppend(t, s, n, 4)
	end := s.end
	s.abandon()
	seg := filepath.Join(dir, segmentName(1))
	if fi, _ := os.Stat(seg); fi.Size() <= end {
		t.Fatalf("segment has %d bytes, the commits end at %d: nothing preallocated", fi.Size(), end)
	}
	s = mustOpen(t, dir, nil)
	if cuts := s.Recovery().Cut; len(cuts) != 0 {
		t.Fatalf("preallocated zeros reported as cut: %+v", cuts)
	}
	checkEntries(t, s, n)
	n = mustAppend(t, s, n, 2)
	s.abandon()
	// A crash in the middle of a write leaves a prefix of it before the preallocated zeros.
	b, _ := os.ReadFile(seg)
	s = mustOpen(t, dir, &Options{ReadOnly: true})
	last := s.end
	s.Close()
	// The write reached the disk up to a sector boundary inside the last batch.
	from := (last - 1) &^ 511
	if from <= last-int64(len(b)) || from < segmentHeaderSize {
		t.Fatalf("no sector boundary before %d", last)
	}
	copy(b[from:last], make([]byte, last-from))
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, nil)
	defer s.Close()
	if cuts := s.Recovery().Cut; len(cuts) != 1 || cuts[0].Entries > 2 || cuts[0].Offset+cuts[0].Bytes > from {
		t.Fatalf("torn write before preallocated zeros: cuts %+v; want the batch of 2, written up to %d", cuts, from)
	}
	checkEntries(t, s, n-2)
}

func TestTornTailIsReportedToLogger(t *testing.T) {
	dir, seg, begin, end, _ := tornFixture(t)
	orig, _ := os.ReadFile(seg)
	if err := os.WriteFile(seg, orig[:(begin+end)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	s := mustOpen(t, dir, &Options{Logger: newTextLogger(&logBuf)})
	defer s.Close()
	if !bytes.Contains(logBuf.Bytes(), []byte("cut torn tail")) || !bytes.Contains(logBuf.Bytes(), []byte(seg)) {
		t.Fatalf("log does not report the cut:\n%s", logBuf.String())
	}
}

func TestCorruptionInSnapshottedRegionFoundOnRead(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, nil)
	n := mustAppend(t, s, 0, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(1))
	b, _ := os.ReadFile(seg)
	b[segmentHeaderSize+frameHeaderSize+20] ^= 1 // inside entry 0's identity
	os.Chmod(seg, 0o644)
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, nil)
	defer s.Close()
	if _, err := store.ReadEntry(context.Background(), s, 0); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Entry(0) with a flipped byte: err = %v; want ErrCorrupt", err)
	}
	var last error
	for _, err := range s.Entries(context.Background(), 0, math.MaxUint64) {
		last = err
	}
	if !errors.Is(last, store.ErrCorrupt) {
		t.Fatalf("Entries over a flipped byte ended with %v; want ErrCorrupt", last)
	}
	if e, err := store.ReadEntry(context.Background(), s, n-1); err != nil || e.Index != n-1 {
		t.Fatalf("Entry(%d): %v", n-1, err)
	}
}

func TestDamageInEarlierSegmentIsCorruption(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, &Options{SegmentSize: 4 << 10, FlushEvery: 1 << 30})
	n := uint64(0)
	for range 40 {
		n = mustAppend(t, s, n, 3)
	}
	if len(s.segs) < 3 {
		t.Fatalf("only %d segments", len(s.segs))
	}
	s.abandon()
	seg := filepath.Join(dir, segmentName(2))
	b, _ := os.ReadFile(seg)
	b[len(b)-40] ^= 0x10
	os.Chmod(seg, 0o644)
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, nil); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open with a damaged byte in segment 2 of %d: err = %v; want ErrCorrupt", n, err)
	}
	// Cutting a closed segment short is damage too, not a torn tail.
	b[len(b)-40] ^= 0x10
	if err := os.WriteFile(seg, b[:len(b)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, nil); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open with segment 2 cut short: err = %v; want ErrCorrupt", err)
	}
}

func TestCrashDuringSegmentCreation(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, &Options{SegmentSize: 4 << 10, FlushEvery: 1 << 30})
	n := uint64(0)
	for range 20 {
		n = mustAppend(t, s, n, 3)
	}
	last := len(s.segs)
	s.abandon()
	// The next segment was created but its header never reached the disk.
	next := filepath.Join(dir, segmentName(uint64(last+1)))
	if err := os.WriteFile(next, []byte("CSEAL"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, &Options{SegmentSize: 4 << 10})
	if cuts := s.Recovery().Cut; len(cuts) != 1 || cuts[0].File != next {
		t.Fatalf("cuts %+v; want the unfinished segment", cuts)
	}
	checkEntries(t, s, n)
	n = mustAppend(t, s, n, 30)
	s.Close()
	s = mustOpen(t, dir, nil)
	defer s.Close()
	checkEntries(t, s, n)
}

func TestSecondWriterLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, nil)
	if _, err := Open(context.Background(), dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: err = %v; want ErrLocked", err)
	}
	s.Close()
	s = mustOpen(t, dir, nil) // the lock is released by Close
	s.Close()
}

func TestReadOnlyBesideWriter(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, &Options{SegmentSize: 16 << 10, FlushEvery: 50})
	defer w.Close()
	ctx := context.Background()
	done := make(chan uint64)
	go func() {
		n := uint64(0)
		for n < 3000 {
			if err := w.Append(ctx, storetest.BatchAt(n, int(n%9)+1)); err != nil {
				t.Errorf("Append: %v", err)
				break
			}
			n += n%9 + 1
		}
		done <- n
	}()
	var n uint64
	prev := uint64(0)
	for loop := true; loop; {
		select {
		case n = <-done:
			loop = false
		default:
		}
		r, err := Open(ctx, dir, &Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only Open beside a writer: %v", err)
		}
		size, _ := r.Size(ctx)
		if size < prev {
			t.Fatalf("reader saw %d entries after seeing %d", size, prev)
		}
		prev = size
		if err := r.Append(ctx, storetest.BatchAt(size, 1)); !errors.Is(err, store.ErrReadOnly) {
			t.Fatalf("Append on a read-only store: err = %v; want ErrReadOnly", err)
		}
		if err := r.PutCheckpoint(ctx, store.Checkpoint{Size: 1, Note: []byte("x")}); !errors.Is(err, store.ErrReadOnly) {
			t.Fatalf("PutCheckpoint on a read-only store: err = %v; want ErrReadOnly", err)
		}
		checkEntries(t, r, size)
		r.Close()
	}
	r := mustOpen(t, dir, &Options{ReadOnly: true})
	defer r.Close()
	checkEntries(t, r, n)
}

func TestReadOnlyNeedsAStore(t *testing.T) {
	if _, err := Open(context.Background(), t.TempDir(), &Options{ReadOnly: true}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read-only Open of an empty directory: err = %v; want ErrNotFound", err)
	}
}

// faultFS makes writes fail once a byte budget is spent (a full disk) and syncs or truncates
// fail on demand (EIO).
type faultFS struct {
	mu        sync.Mutex
	budget    int64 // bytes that may still be written; negative: unlimited
	failSync  int   // syncs that are still to fail
	failTrunc bool
}

type faultFile struct {
	file
	fs *faultFS
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	b := f.fs.budget
	if b >= 0 && int64(len(p)) > b {
		f.fs.budget = 0
		f.fs.mu.Unlock()
		n, _ := f.file.WriteAt(p[:b], off) // part of it lands, as on a real full disk
		return n, fmt.Errorf("write: %w", syscall.ENOSPC)
	}
	if b >= 0 {
		f.fs.budget -= int64(len(p))
	}
	f.fs.mu.Unlock()
	return f.file.WriteAt(p, off)
}

func (f faultFile) Sync() error {
	f.fs.mu.Lock()
	fail := f.fs.failSync > 0
	if fail {
		f.fs.failSync--
	}
	f.fs.mu.Unlock()
	if fail {
		return fmt.Errorf("sync: %w", syscall.EIO)
	}
	return f.file.Sync()
}

func (f faultFile) Truncate(n int64) error {
	f.fs.mu.Lock()
	fail := f.fs.failTrunc
	f.fs.mu.Unlock()
	if fail {
		return fmt.Errorf("truncate: %w", syscall.EIO)
	}
	return f.file.Truncate(n)
}

func (ffs *faultFS) set(fn func(*faultFS)) {
	ffs.mu.Lock()
	fn(ffs)
	ffs.mu.Unlock()
}

func faultOptions(ffs *faultFS) *Options {
	return &Options{FlushEvery: 40, wrap: func(path string, f file) file { return faultFile{f, ffs} }}
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{budget: -1}
	s := mustOpen(t, dir, faultOptions(ffs))
	ctx := context.Background()
	n := uint64(0)
	for range 10 {
		n = mustAppend(t, s, n, 7)
	}
	// The disk fills in the middle of the next batch.
	for _, room := range []int64{0, 1, 500} {
		ffs.set(func(f *faultFS) { f.budget = room })
		err := s.Append(ctx, storetest.BatchAt(n, 7))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append on a full disk (%d bytes free): err = %v; want ENOSPC", room, err)
		}
		checkEntries(t, s, n)
	}
	// Checkpoints and blobs fail cleanly too.
	ffs.set(func(f *faultFS) { f.budget = 3 })
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: n, Note: []byte("checkpoint note\n")}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("PutCheckpoint on a full disk: err = %v; want ENOSPC", err)
	}
	ffs.set(func(f *faultFS) { f.budget = 3 })
	blob := []byte("attachment content")
	if err := s.WriteBlob(ctx, sha256Sum(blob), blob); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("PutBlob on a full disk: err = %v; want ENOSPC", err)
	}
	if _, err := s.ReadBlob(ctx, sha256Sum(blob)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Blob after a failed PutBlob: err = %v; want ErrNotFound", err)
	}
	// Space returns: the store goes on without a reopen.
	ffs.set(func(f *faultFS) { f.budget = -1 })
	for range 10 {
		n = mustAppend(t, s, n, 7)
	}
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: n, Note: []byte("checkpoint note\n")}); err != nil {
		t.Fatalf("PutCheckpoint after space returned: %v", err)
	}
	if err := s.WriteBlob(ctx, sha256Sum(blob), blob); err != nil {
		t.Fatalf("PutBlob after space returned: %v", err)
	}
	checkEntries(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, nil)
	defer s.Close()
	checkEntries(t, s, n)
	if len(s.Recovery().Cut) != 0 {
		t.Fatalf("cuts after a clean close: %+v", s.Recovery().Cut)
	}
	if c, err := s.LatestCheckpoint(ctx); err != nil || c.Size != n {
		t.Fatalf("LatestCheckpoint = %d, %v; want %d", c.Size, err, n)
	}
}

func TestSnapshotFailureDoesNotStopAppends(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{budget: -1}
	s := mustOpen(t, dir, faultOptions(ffs))
	n := mustAppend(t, s, 0, 5)
	// The index snapshot finds the disk full; appends go on once there is room.
	ffs.set(func(f *faultFS) { f.budget = 0 })
	if err := s.flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush on a full disk: %v; want ENOSPC", err)
	}
	ffs.set(func(f *faultFS) { f.budget = -1 })
	n = mustAppend(t, s, n, 100)
	checkEntries(t, s, n)
	s.abandon()
	s = mustOpen(t, dir, nil)
	defer s.Close()
	checkEntries(t, s, n)
}

func TestSyncFailure(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{budget: -1}
	s := mustOpen(t, dir, faultOptions(ffs))
	ctx := context.Background()
	n := mustAppend(t, s, 0, 5)
	// fsync fails: the batch is not acknowledged, the write is undone, the store goes on.
	ffs.set(func(f *faultFS) { f.failSync = 1 })
	if err := s.Append(ctx, storetest.BatchAt(n, 3)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing sync: err = %v; want EIO", err)
	}
	checkEntries(t, s, n)
	n = mustAppend(t, s, n, 3)
	// A write fails part way and so does the undo: the store refuses appends until reopened,
	// and the reopen cuts the unacknowledged part.
	ffs.set(func(f *faultFS) { f.budget, f.failTrunc = 100, true })
	if err := s.Append(ctx, storetest.BatchAt(n, 4)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk: err = %v; want ENOSPC", err)
	}
	ffs.set(func(f *faultFS) { f.budget, f.failTrunc = -1, false })
	if err := s.Append(ctx, storetest.BatchAt(n, 4)); err == nil {
		t.Fatalf("Append after an undo failure succeeded; want a refusal until reopen")
	}
	checkEntries(t, s, n)
	s.abandon()
	s = mustOpen(t, dir, nil)
	defer s.Close()
	if cuts := s.Recovery().Cut; len(cuts) != 1 || cuts[0].Bytes != 100 {
		t.Fatalf("reopen after the failed undo: cuts %+v; want the 100 bytes of the unacknowledged batch", cuts)
	}
	checkEntries(t, s, n)
	n = mustAppend(t, s, n, 4)
	checkEntries(t, s, n)
}

func sha256Sum(b []byte) store.Hash { return sha256.Sum256(b) }

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
