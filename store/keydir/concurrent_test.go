package keydir_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
	"github.com/commseal/commseal/store/storetest"
)

// stuck is how long a test waits for an operation that must not be blocked before it calls it
// a deadlock; the operation takes milliseconds when it is not blocked.
const stuck = 30 * time.Second

// TestKeysDoNotWaitForEachOther: while the write of one key's file is held up (a slow disk),
// other keys are stored, read, changed and listed. The vault used to do every operation under
// one mutex, so one slow key stopped them all.
func TestKeysDoNotWaitForEachOther(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	// Keys share one of 256 locks by a hash with a per-vault seed: the other keys are chosen
	// among those that do not share the slow key's lock (a shared lock is meant to wait).
	var ids []string
	for i := 0; len(ids) < 9; i++ {
		if id := fmt.Sprintf("k%d", i); !v.SharesLock(id, "slow") {
			ids = append(ids, id)
		}
	}
	other, ids := ids[0], ids[1:]
	must(t, v.PutKey(ctx, storetest.KeyAt(other, 1)))
	slow := hex.EncodeToString([]byte("slow")) + "."
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	v.SetWriteHook(func(name string, _ []byte) error {
		if strings.HasPrefix(name, slow) {
			once.Do(func() { close(entered) })
			<-release
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- v.PutKey(ctx, storetest.KeyAt("slow", 1)) }()
	<-entered
	others := make(chan error, 1)
	go func() {
		others <- func() error {
			for _, id := range ids {
				if err := v.PutKey(ctx, storetest.KeyAt(id, 1)); err != nil {
					return err
				}
			}
			if _, err := v.Key(ctx, other); err != nil {
				return err
			}
			if err := v.SetMeta(ctx, other, storetest.MetaAt(other, 2)); err != nil {
				return err
			}
			n := 0
			for _, err := range v.Keys(ctx) {
				if err != nil {
					return err
				}
				n++
			}
			if n < 9 {
				return fmt.Errorf("Keys listed %d keys; want at least 9", n)
			}
			return nil
		}()
	}()
	select {
	case err := <-others:
		must(t, err)
	case <-time.After(stuck):
		close(release)
		t.Fatal("operations on other keys waited for the held-up write of one key")
	}
	close(release)
	must(t, <-done)
	wantKey(t, v, storetest.KeyAt("slow", 1))
}

// TestConcurrentPutsOfManyKeys stores keys from many goroutines at once and reads every one
// back, in this vault and after reopening it.
func TestConcurrentPutsOfManyKeys(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	const writers, each = 16, 8
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%02d-%d", w, i)
				if err := v.PutKey(ctx, storetest.KeyAt(id, 1)); err != nil {
					failed.Store(err)
					return
				}
				if got, err := v.Key(ctx, id); err != nil || storetest.SameKey(got, storetest.KeyAt(id, 1)) != "" {
					failed.Store(fmt.Errorf("Key(%q) after its PutKey: %v %s", id, err, storetest.SameKey(got, storetest.KeyAt(id, 1))))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, dir)
	if n := len(listKeys(t, r)); n != writers*each {
		t.Fatalf("after reopening: %d keys; want %d", n, writers*each)
	}
	for w := range writers {
		for i := range each {
			wantKey(t, r, storetest.KeyAt(fmt.Sprintf("w%02d-%d", w, i), 1))
		}
	}
}

// TestPutKeyInterruptedBeforeTheDirectorySync: PutKey syncs the directory once, after both of
// the key's files are written, so a crash before that sync may keep the metadata's name and
// lose the record's. That key was never acknowledged: the next Open removes the metadata, the
// key does not exist, and it can be stored again. Metadata naming a missing later record
// (which no crash leaves) is still corrupt.
func TestPutKeyInterruptedBeforeTheDirectorySync(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	must(t, v.PutKey(ctx, storetest.KeyAt("other", 1)))
	k := storetest.KeyAt("k", 1)
	must(t, v.PutKey(ctx, k))
	h := hex.EncodeToString([]byte("k"))
	must(t, os.Remove(filepath.Join(dir, h+".1.rec"))) // the name the crash lost

	r := mustOpen(t, dir)
	if _, err := r.Key(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Key of a PutKey interrupted before its directory sync: %v; want ErrNotFound", err)
	}
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, h+".") {
			t.Fatalf("file %s of the interrupted PutKey is left after reopening", n)
		}
	}
	wantKey(t, r, storetest.KeyAt("other", 1))
	must(t, r.PutKey(ctx, k))
	wantKey(t, r, k)
	wantKey(t, mustOpen(t, dir), k)

	// A key rewrapped (its metadata names record 2) whose record is missing was lost, not
	// interrupted: Open reports it.
	must(t, r.Rewrap(ctx, "k", "kek-2", storetest.WrappedAt("k", 2)))
	must(t, os.Remove(filepath.Join(dir, h+".2.rec")))
	if _, err := keydir.Open(dir); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open with the current record of a rewrapped key missing: %v; want ErrCorrupt", err)
	}
}

// BenchmarkPutKey stores new keys from 1 and 64×GOMAXPROCS goroutines (each PutKey returns once its key
// is durable) and reports keys/s.
func BenchmarkPutKey(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", par), func(b *testing.B) {
			v, err := keydir.Open(filepath.Join(b.TempDir(), "keys"))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("dk1.2026-07.%012d", next.Add(1))
					if err := v.PutKey(ctx, storetest.KeyAt(id, 1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
