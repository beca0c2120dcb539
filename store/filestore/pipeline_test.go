package filestore

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/store/storetest"
)

// diskModel records the writes and syncs of the segment files and can say, at any moment, what
// a machine crash could leave on disk: every write that completed before a sync began and that
// sync returned is there; after that, each 512-byte sector holds any one of the versions it went
// through in the page cache (the writes to it up to some point, none of the later ones).
type diskModel struct {
	mu     sync.Mutex
	base   map[string][]byte // content of each file when it was opened
	writes []diskWrite
	synced map[string]int // per file: writes [0, n) of it are durable
}

type diskWrite struct {
	path string
	off  int64
	data []byte
}

type modelFile struct {
	file
	m    *diskModel
	path string
}

func (f modelFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.file.WriteAt(p, off)
	f.m.mu.Lock()
	f.m.writes = append(f.m.writes, diskWrite{f.path, off, bytes.Clone(p[:n])})
	f.m.mu.Unlock()
	return n, err
}

func (f modelFile) Sync() error {
	f.m.mu.Lock()
	n := len(f.m.writes) // the writes that completed before this sync began
	f.m.mu.Unlock()
	err := f.file.Sync()
	if err == nil {
		f.m.mu.Lock()
		f.m.synced[f.path] = max(f.m.synced[f.path], n)
		f.m.mu.Unlock()
	}
	return err
}

func (m *diskModel) wrap(path string, f file) file {
	if !strings.HasSuffix(path, ".seg") {
		return f
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.base[path]; !ok {
		b, err := os.ReadFile(path)
		if err != nil {
			panic(err) // test helper: the file was just opened
		}
		m.base[path] = b
	}
	return modelFile{f, m, path}
}

// crashImage returns the content a crash now could leave in each segment file, choosing the
// fate of every unsynced sector with rng.
func (m *diskModel) crashImage(rng *rand.Rand) map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	img := map[string][]byte{}
	for p, b := range m.base {
		img[p] = bytes.Clone(b)
	}
	put := func(p string, off int64, data []byte) {
		b := img[p]
		if end := off + int64(len(data)); end > int64(len(b)) {
			b = append(b, make([]byte, end-int64(len(b)))...)
		}
		copy(b[off:], data)
		img[p] = b
	}
	type sectorKey struct {
		path string
		n    int64
	}
	frozen := map[sectorKey]bool{} // sectors whose version on disk is chosen: no later write lands
	for k, w := range m.writes {
		if k < m.synced[w.path] {
			put(w.path, w.off, w.data)
			continue
		}
		const sector = 512
		for o := w.off; o < w.off+int64(len(w.data)); {
			end := min((o/sector+1)*sector, w.off+int64(len(w.data)))
			key := sectorKey{w.path, o / sector}
			if !frozen[key] && rng.IntN(3) != 0 {
				put(w.path, o, w.data[o-w.off:end-w.off])
			} else {
				frozen[key] = true
			}
			o = end
		}
	}
	return img
}

// TestPipelinedCommitCrashImages runs the real pipelined committer with concurrent writers and,
// at random moments, takes the image a machine crash could leave: synced groups whole, the
// groups written after them (being synced or not) torn at random sectors. Every image must open,
// hold every entry acknowledged before it was taken, and take appends.
func TestPipelinedCommitCrashImages(t *testing.T) {
	dir := t.TempDir()
	m := &diskModel{base: map[string][]byte{}, synced: map[string]int{}}
	s := mustOpen(t, dir, &Options{FlushEvery: 1 << 30, SegmentSize: 64 << 10, wrap: m.wrap})
	ctx := context.Background()
	var (
		mu     sync.Mutex
		next   uint64
		acked  atomic.Uint64 // every entry below it is acknowledged
		done   = make([]bool, 0, 1<<16)
		wg     sync.WaitGroup
		stop   atomic.Bool
		failed atomic.Bool
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				mu.Lock()
				i, n := next, uint64(1)
				if i%3 == 1 {
					n = 2
				}
				next += n
				for range n {
					done = append(done, false)
				}
				ch := s.Submit(ctx, storetest.BatchAt(i, int(n)))
				mu.Unlock()
				if err := <-ch; err != nil {
					t.Error(err)
					failed.Store(true)
					return
				}
				mu.Lock()
				for k := i; k < i+n; k++ {
					done[k] = true
				}
				a := acked.Load()
				for a < uint64(len(done)) && done[a] {
					a++
				}
				acked.Store(a)
				mu.Unlock()
			}
		}()
	}
	type image struct {
		acked uint64
		files map[string][]byte
	}
	var images []image
	rng := rand.New(rand.NewPCG(7, 8))
	for len(images) < 24 {
		if failed.Load() {
			break
		}
		a := acked.Load() // before the image: its syncs are in the model
		if a < uint64(len(images)+1)*40 {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		images = append(images, image{a, m.crashImage(rng)})
	}
	stop.Store(true)
	wg.Wait()
	state, err := os.ReadFile(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	s.abandon()
	if len(images) < 24 {
		t.Fatalf("took %d images", len(images))
	}
	cuts := 0
	for k, img := range images {
		cdir := filepath.Join(t.TempDir(), "crash")
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cdir, "state"), state, 0o644); err != nil {
			t.Fatal(err)
		}
		for p, b := range img.files {
			if err := os.WriteFile(filepath.Join(cdir, filepath.Base(p)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(ctx, cdir, nil)
		if err != nil {
			t.Fatalf("image %d (%d entries acknowledged): Open: %v", k, img.acked, err)
		}
		size, _ := s.Size(ctx)
		if size < img.acked {
			t.Fatalf("image %d: %d entries after recovery; %d were acknowledged before the crash", k, size, img.acked)
		}
		checkSuiteEntries(t, s, size)
		if len(s.Recovery().Cut) > 0 {
			cuts++
		}
		if err := s.Append(ctx, storetest.BatchAt(size, 2)); err != nil {
			t.Fatalf("image %d: Append after recovery: %v", k, err)
		}
		s.abandon()
	}
	// The images must include torn groups, or the test shows nothing.
	if cuts == 0 {
		t.Fatalf("no image had a torn tail to cut")
	}
	t.Logf("%d of %d images had a torn tail", cuts, len(images))
}

// checkSuiteEntries checks that s holds the suite's entries [0, n), however they were batched.
func checkSuiteEntries(t *testing.T, s *Store, n uint64) {
	t.Helper()
	i := uint64(0)
	for e, err := range s.Entries(context.Background(), 0, math.MaxUint64) {
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
}
