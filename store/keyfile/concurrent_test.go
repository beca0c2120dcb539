package keyfile_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keyfile"
	"github.com/commseal/commseal/store/storetest"
)

// holdFirstWrite makes the vault's first write wait until release is closed, and records every
// write. Inside a synctest bubble, synctest.Wait then returns once the writer is held.
func holdFirstWrite(v *keyfile.Vault) (release chan struct{}, writes func() [][]byte) {
	release = make(chan struct{})
	var mu sync.Mutex
	var seen [][]byte
	v.SetWriteHook(func(b []byte) error {
		mu.Lock()
		seen = append(seen, bytes.Clone(b))
		n := len(seen)
		mu.Unlock()
		if n == 1 {
			<-release
		}
		return nil
	})
	return release, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// records counts the records of each type in a batch.
func records(b []byte) map[byte]int {
	n := map[byte]int{}
	for off := 0; off+9 <= len(b); off += 8 + int(binary.LittleEndian.Uint32(b[off:])) {
		n[b[off+8]]++
	}
	return n
}

// TestCallersShareOneSync: the callers that arrive while a batch is being written and synced
// are written together in the next batch, with one commit record, one write and one sync.
func TestCallersShareOneSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		v := mustOpen(t, filepath.Join(t.TempDir(), "keys.vault"))
		release, writes := holdFirstWrite(v)
		var wg sync.WaitGroup
		put := func(id string) {
			if err := v.PutKey(ctx, storetest.KeyAt(id, 1)); err != nil {
				t.Errorf("PutKey(%q): %v", id, err)
			}
		}
		wg.Go(func() { put("first") })
		synctest.Wait() // the writer holds the first batch
		const waiting = 10
		for i := range waiting {
			wg.Go(func() { put(fmt.Sprintf("k%02d", i)) })
		}
		synctest.Wait() // every other caller waits for the writer
		close(release)
		wg.Wait()
		w := writes()
		if len(w) != 2 {
			t.Fatalf("%d writes for 1 + %d callers; want 2 (the callers that waited share one batch)", len(w), waiting)
		}
		if got := records(w[1]); got['P'] != waiting || got['C'] != 1 {
			t.Fatalf("second batch holds %v; want %d put records and one commit", got, waiting)
		}
		if n := len(listKeys(t, v)); n != waiting+1 {
			t.Fatalf("%d keys; want %d", n, waiting+1)
		}
	})
}

// TestCanceledWhileWaitingChangesNothing: a caller whose context is done while its operation
// waits for the writer returns the context's error, and its operation never happens.
func TestCanceledWhileWaitingChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "keys.vault")
		v := mustOpen(t, path)
		must(t, v.PutKey(ctx, storetest.KeyAt("k", 1)))
		release, writes := holdFirstWrite(v)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := v.PutKey(ctx, storetest.KeyAt("first", 1)); err != nil {
				t.Errorf("PutKey: %v", err)
			}
		})
		synctest.Wait()
		cctx, cancel := context.WithCancel(ctx)
		errs := make(chan error, 3)
		wg.Go(func() { errs <- v.PutKey(cctx, storetest.KeyAt("canceled", 1)) })
		wg.Go(func() { errs <- v.DestroyKey(cctx, "k") })
		wg.Go(func() { errs <- v.Compact(cctx) })
		synctest.Wait()
		cancel()
		for range 3 {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Fatalf("an operation canceled while waiting: %v; want context.Canceled", err)
			}
		}
		close(release)
		wg.Wait()
		if _, err := v.Key(ctx, "canceled"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Key of a canceled PutKey: %v; want ErrNotFound", err)
		}
		if _, err := v.Key(ctx, "k"); err != nil {
			t.Fatalf("Key of a key whose DestroyKey was canceled: %v", err)
		}
		if len(writes()) != 1 {
			t.Fatalf("%d writes; want only the first batch's", len(writes()))
		}
	})
}

// TestCanceledOnceTakenGetsTheOutcome: once the writer has taken an operation, a caller whose
// context is done waits for the outcome and reports it, so a nil error always means done.
func TestCanceledOnceTakenGetsTheOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := mustOpen(t, filepath.Join(t.TempDir(), "keys.vault"))
		release, _ := holdFirstWrite(v)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- v.PutKey(ctx, storetest.KeyAt("taken", 1)) }()
		synctest.Wait() // taken by the writer, which is held
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("the call returned (%v) while its batch was being written", err)
		default:
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("PutKey taken before its context was canceled: %v; want its outcome, nil", err)
		}
		if _, err := v.Key(context.Background(), "taken"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentMixedOperations: many goroutines put, read, change, rewrap, destroy and
// compact at once (run with -race); the state is what every goroutine did, in memory and after
// reopening, and the file holds no superseded or destroyed wrapping.
func TestConcurrentMixedOperations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.vault")
	v := mustOpen(t, path)
	const workers, each = 8, 24
	var wg sync.WaitGroup
	var failed atomic.Value
	fail := func(err error) { failed.CompareAndSwap(nil, err) }
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%02d", w, i)
				if err := v.PutKey(ctx, storetest.KeyAt(id, 1)); err != nil {
					fail(err)
					return
				}
				if got, err := v.Key(ctx, id); err != nil || storetest.SameKey(got, storetest.KeyAt(id, 1)) != "" {
					fail(fmt.Errorf("Key(%q) after PutKey: %v", id, err))
					return
				}
				if err := v.Rewrap(ctx, id, "kek-2", storetest.WrappedAt(id, 2)); err != nil {
					fail(err)
					return
				}
				if err := v.SetMeta(ctx, id, storetest.MetaAt(id, 3)); err != nil {
					fail(err)
					return
				}
				if i%3 == 0 {
					if err := v.DestroyKey(ctx, id); err != nil {
						fail(err)
						return
					}
				}
				if i%8 == 7 && w%2 == 0 {
					if err := v.Compact(ctx); err != nil {
						fail(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	var want []store.WrappedKey
	for w := range workers {
		for i := range each {
			id := fmt.Sprintf("w%d-%02d", w, i)
			k := storetest.KeyAt(id, 2)
			k.Meta = storetest.MetaAt(id, 3)
			if i%3 == 0 {
				k = storetest.Tombstone(k)
			}
			want = append(want, k)
		}
	}
	wantKeys(t, v, want)
	must(t, v.Close())
	r := mustOpen(t, path)
	wantKeys(t, r, want)
	for _, k := range want {
		if n := filesHolding(t, path, storetest.WrappedAt(k.ID, 1)); n != 0 {
			t.Fatalf("the superseded wrapping of %q is still in the file", k.ID)
		}
		if n := filesHolding(t, path, storetest.WrappedAt(k.ID, 2)); k.Destroyed && n != 0 || !k.Destroyed && n != 1 {
			t.Fatalf("key %q (destroyed %v) is in %d files", k.ID, k.Destroyed, n)
		}
	}
}

// TestCompact: compaction leaves a file of exactly the live size holding the same state, with
// no superseded or destroyed wrapping and no second file, and the vault goes on working on it
// (erasures land at the new offsets).
func TestCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.vault")
	v := mustOpen(t, path)
	gone, want := history(t, v)
	for i := range 20 {
		must(t, v.SetMeta(ctx, "a", storetest.MetaAt("a", 100+i)))
	}
	must(t, v.SetMeta(ctx, "a", want[0].Meta))
	before := v.Stats()
	if before.FileBytes <= before.LiveBytes || before.Keys != 5 || before.Destroyed != 2 {
		t.Fatalf("Stats before compaction: %+v", before)
	}
	must(t, v.Compact(ctx))
	after := v.Stats()
	if after.FileBytes != before.LiveBytes || after.LiveBytes != before.LiveBytes {
		t.Fatalf("Stats after compaction: %+v; want the file at LiveBytes %d", after, before.LiveBytes)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != after.FileBytes {
		t.Fatalf("file size after compaction: %v %v; want %d", fi.Size(), err, after.FileBytes)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("files after compaction: %v; want only the vault", names)
	}
	wantKeys(t, v, want)
	for _, w := range gone {
		if filesHolding(t, path, w) != 0 {
			t.Fatal("a superseded or destroyed wrapping is in the compacted file")
		}
	}
	// The vault works on the new file: a rewrap erases the copy the compaction wrote.
	b := want[1]
	must(t, v.Rewrap(ctx, b.ID, "kek-4", storetest.WrappedAt(b.ID, 4)))
	must(t, v.DestroyKey(ctx, "a"))
	if filesHolding(t, path, b.Wrapped) != 0 || filesHolding(t, path, want[0].Wrapped) != 0 {
		t.Fatal("after compaction, Rewrap or DestroyKey left a wrapping in the file")
	}
	b.KEK, b.Wrapped = "kek-4", storetest.WrappedAt(b.ID, 4)
	want[0], want[1] = storetest.Tombstone(want[0]), b
	must(t, v.Close())
	r := mustOpen(t, path)
	wantKeys(t, r, want)
	if r.Recovery() != (keyfile.Recovery{}) {
		t.Fatalf("Recovery after a clean compaction: %+v", r.Recovery())
	}
	must(t, r.Compact(ctx))
	must(t, r.Close())
	wantKeys(t, mustOpen(t, path), want)

	empty := mustOpen(t, filepath.Join(dir, "empty.vault"))
	must(t, empty.Compact(ctx))
	must(t, empty.PutKey(ctx, storetest.KeyAt("k", 1)))
	must(t, empty.Close())
	wantKeys(t, mustOpen(t, empty.Path()), []store.WrappedKey{storetest.KeyAt("k", 1)})
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestCompactInterrupted: each state a crash in Compact can leave opens with the vault's state
// and no file beside it: a second name of the current file (removed), the replaced file or a
// temporary file (scrubbed: both hold wrapped keys).
func TestCompactInterrupted(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (string, []store.WrappedKey) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keys.vault")
		v := mustOpen(t, path)
		_, want := history(t, v)
		must(t, v.Close())
		return path, want
	}
	t.Run("second-name", func(t *testing.T) {
		path, want := setup(t)
		must(t, os.Link(path, path+".old"))
		wantKeys(t, mustOpen(t, path), want)
		if names := dirNames(t, filepath.Dir(path)); len(names) != 1 {
			t.Fatalf("files: %v", names)
		}
	})
	t.Run("replaced-and-temporary", func(t *testing.T) {
		path, want := setup(t)
		old := readFile(t, path)
		must(t, os.WriteFile(path+".old", old, 0o600))
		must(t, os.WriteFile(filepath.Join(filepath.Dir(path), ".keys.vault.tmp123"), old, 0o600))
		// The replacement: a compacted file of the same state.
		v := mustOpen(t, path)
		must(t, v.Compact(ctx))
		must(t, v.Close())
		wantKeys(t, mustOpen(t, path), want)
		if names := dirNames(t, filepath.Dir(path)); len(names) != 1 {
			t.Fatalf("files: %v", names)
		}
	})
	t.Run("vault-missing", func(t *testing.T) {
		path, _ := setup(t)
		must(t, os.Rename(path, path+".old"))
		if _, err := keyfile.Open(path); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("Open with only the replaced file there: %v; want ErrCorrupt", err)
		}
		if _, err := os.Stat(path + ".old"); err != nil {
			t.Fatal("Open removed the only copy")
		}
	})
	t.Run("write-fails", func(t *testing.T) {
		path, want := setup(t)
		v := mustOpen(t, path)
		v.SetWriteHook(func(b []byte) error {
			if len(b) > 16 && string(b[:8]) == "CSEALKEY" {
				return errors.New("disk full")
			}
			return nil
		})
		if err := v.Compact(ctx); err == nil {
			t.Fatal("Compact succeeded with its write failing")
		}
		v.SetWriteHook(nil)
		must(t, v.PutKey(ctx, storetest.KeyAt("after", 1)))
		wantKeys(t, v, append([]store.WrappedKey{want[0], storetest.KeyAt("after", 1)}, want[1:]...)) // "after" sorts after "a"
	})
}

// TestTornGroupBatchAtEveryByte: a batch that carries several callers' operations (a put, a
// set-meta, a rewrap, a destroy) counts whole or not at all: cut at any byte, the file opens
// with the state before the batch.
func TestTornGroupBatchAtEveryByte(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir := t.TempDir()
		path := filepath.Join(dir, "keys.vault")
		v := mustOpen(t, path)
		_, want := history(t, v)
		must(t, v.PutKey(ctx, storetest.KeyAt("hold", 1)))
		want = append(want[:4:4], storetest.KeyAt("hold", 1), want[4]) // sorted: a b c d hold é
		before := v.Size()
		release := make(chan struct{})
		var after []byte
		writes := 0
		v.SetWriteHook(func(b []byte) error {
			writes++
			switch {
			case writes == 1:
				<-release
			case after == nil && allZero(b):
				after = readFile(t, path) // the second batch is synced, nothing erased yet
			}
			return nil
		})
		var wg sync.WaitGroup
		try := func(err error) {
			if err != nil {
				t.Error(err)
			}
		}
		wg.Go(func() { try(v.SetMeta(ctx, "hold", storetest.MetaAt("hold", 2))) })
		synctest.Wait()
		wg.Go(func() { try(v.PutKey(ctx, storetest.KeyAt("new", 1))) })
		wg.Go(func() { try(v.SetMeta(ctx, "a", storetest.MetaAt("a", 7))) })
		wg.Go(func() { try(v.Rewrap(ctx, "b", "kek-7", storetest.WrappedAt("b", 7))) })
		wg.Go(func() { try(v.DestroyKey(ctx, "é")) })
		synctest.Wait()
		close(release)
		wg.Wait()
		must(t, v.Close())
		if writes < 3 || after == nil {
			t.Fatalf("%d writes; want the held batch, the group batch and its erasures", writes)
		}
		first := recordStarts(after)
		var groupStart int64
		for i, s := range first { // the group batch begins after the held batch's commit
			if after[s+8] == 'C' && int64(s) >= before {
				groupStart = int64(first[i+1])
				break
			}
		}
		if got := records(after[groupStart:]); got['P'] != 1 || got['M'] != 1 || got['R'] != 1 || got['D'] != 1 || got['C'] != 1 {
			t.Fatalf("the group batch holds %v; want one of each operation and one commit", got)
		}
		for i := range want {
			if want[i].ID == "hold" {
				want[i].Meta = storetest.MetaAt("hold", 2)
			}
		}
		if d := sameKeys(listKeysAt(t, after[:groupStart], dir), want); d != "" {
			t.Fatalf("the file up to the group batch: %s", d)
		}
		cutPath := filepath.Join(dir, "cut.vault")
		for cut := groupStart; cut < int64(len(after)); cut++ {
			must(t, os.WriteFile(cutPath, after[:cut], 0o600))
			r, err := keyfile.Open(cutPath)
			if err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			if d := sameKeys(listKeys(t, r), want); d != "" {
				t.Fatalf("cut at %d of the group batch [%d, %d): %s", cut, groupStart, len(after), d)
			}
			must(t, r.Close())
		}
	})
}

// listKeysAt lists the keys of a vault file holding b.
func listKeysAt(t *testing.T, b []byte, dir string) []store.WrappedKey {
	t.Helper()
	p := filepath.Join(dir, "whole.vault")
	must(t, os.WriteFile(p, b, 0o600))
	v, err := keyfile.Open(p)
	must(t, err)
	defer v.Close()
	if v.Recovery() != (keyfile.Recovery{}) {
		t.Fatalf("the file before the group batch needed recovery: %+v", v.Recovery())
	}
	return listKeys(t, v)
}
