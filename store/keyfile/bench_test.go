package keyfile_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
	"github.com/commseal/commseal/store/keyfile"
)

// benchKey is a key shaped like the ledger's: an id naming tenant, conversation and month, a
// 73-byte wrapping (seal's: version, nonce, key, tag) and the scope's metadata.
func benchKey(i int) store.WrappedKey {
	w := make([]byte, 73)
	rand.Read(w)
	return store.WrappedKey{
		ID:      fmt.Sprintf("dk1.corp.cid%08d.2026-07", i),
		KEK:     "kek-1",
		Wrapped: w,
		Meta:    fmt.Appendf(nil, `{"tenant":"corp","conversation":"cid%08d","month":"2026-07","kinds":["message","media"]}`, i),
	}
}

// keydirFiles writes key k into dir as keydir.PutKey does (record 1 and metadata, in the
// format keydir documents), without its syncs, to build a large keydir vault in seconds.
// TestKeydirFixtureIsWhatPutKeyWrites checks that the files are the same bytes.
func keydirFiles(dir string, k store.WrappedKey) error {
	h := hex.EncodeToString([]byte(k.ID))
	rec, _ := json.Marshal(struct {
		ID      string `json:"id"`
		KEK     string `json:"kek"`
		Wrapped []byte `json:"wrapped"`
	}{k.ID, k.KEK, k.Wrapped})
	meta, _ := json.Marshal(struct {
		ID     string          `json:"id"`
		Record int             `json:"record"`
		Meta   json.RawMessage `json:"meta,omitempty"`
	}{k.ID, 1, k.Meta})
	if err := os.WriteFile(filepath.Join(dir, h+".1.rec"), rec, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, h+".meta"), meta, 0o600)
}

// TestKeydirFixtureIsWhatPutKeyWrites: the benchmark's keydir vault is file for file what
// keydir.PutKey would have written, so the comparison is fair.
func TestKeydirFixtureIsWhatPutKeyWrites(t *testing.T) {
	real, fixture := filepath.Join(t.TempDir(), "real"), filepath.Join(t.TempDir(), "fixture")
	v, err := keydir.Open(real)
	must(t, err)
	must(t, os.MkdirAll(fixture, 0o700))
	for i := range 3 {
		k := benchKey(i)
		must(t, v.PutKey(context.Background(), k))
		must(t, keydirFiles(fixture, k))
	}
	ents, err := os.ReadDir(real)
	must(t, err)
	if len(ents) != 6 {
		t.Fatalf("keydir wrote %d files for 3 keys; want 6", len(ents))
	}
	for _, e := range ents {
		a, b := readFile(t, filepath.Join(real, e.Name())), readFile(t, filepath.Join(fixture, e.Name()))
		if string(a) != string(b) {
			t.Fatalf("%s: keydir wrote %s, the fixture %s", e.Name(), a, b)
		}
	}
	r, err := keydir.Open(fixture)
	must(t, err)
	if n := len(listKeys(t, r)); n != 3 {
		t.Fatalf("keydir reads %d keys from the fixture; want 3", n)
	}
}

// benchKeys is how many keys BenchmarkOpenAndReadEveryKey stores: 100,000, or
// COMMSEAL_BENCH_KEYS.
func benchKeys(b *testing.B) int {
	if s := os.Getenv("COMMSEAL_BENCH_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("COMMSEAL_BENCH_KEYS=%q", s)
		}
		return n
	}
	return 100_000
}

// dropCaches empties the page cache (sync; echo 3 > /proc/sys/vm/drop_caches), reporting
// whether it could (root on Linux).
func dropCaches() bool {
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	syncAll()
	_, err = f.WriteString("3\n")
	return err == nil
}

// BenchmarkOpenAndReadEveryKey opens a vault of N keys (100,000 unless COMMSEAL_BENCH_KEYS
// says otherwise) and reads every key through Keys, as a process that decrypts one document
// per message under its scope's key does at start: keydir (two files per key) against keyfile
// (one file). cache=cold drops the page cache before each open (root only; otherwise only
// cache=warm runs). Reports µs/key.
func BenchmarkOpenAndReadEveryKey(b *testing.B) {
	n := benchKeys(b)
	ctx := context.Background()
	root := b.TempDir()
	dirVault, fileVault := filepath.Join(root, "keys"), filepath.Join(root, "keys.vault")
	if err := os.MkdirAll(dirVault, 0o700); err != nil {
		b.Fatal(err)
	}
	v, err := keyfile.Open(fileVault)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 512 { // enough writers that each sync carries hundreds of keys
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				k := benchKey(i)
				if err := v.PutKey(ctx, k); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				if err := keydirFiles(dirVault, k); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	if err := v.Close(); err != nil {
		b.Fatal(err)
	}
	syncAll()
	openers := []struct {
		name string
		open func() (store.KeyVault, func(), error)
	}{
		{"keydir", func() (store.KeyVault, func(), error) {
			v, err := keydir.Open(dirVault)
			return v, func() {}, err
		}},
		{"keyfile", func() (store.KeyVault, func(), error) {
			v, err := keyfile.Open(fileVault)
			if err != nil {
				return nil, nil, err
			}
			return v, func() { v.Close() }, nil
		}},
	}
	caches := []string{"warm"}
	if dropCaches() {
		caches = append([]string{"cold"}, caches...)
	}
	for _, cache := range caches {
		for _, o := range openers {
			b.Run(fmt.Sprintf("N=%d/cache=%s/%s", n, cache, o.name), func(b *testing.B) {
				if cache == "warm" {
					readAll(b, o.open, n) // the cold runs and the other vault's emptied the cache
				}
				for b.Loop() {
					if cache == "cold" {
						b.StopTimer()
						dropCaches()
						b.StartTimer()
					}
					readAll(b, o.open, n)
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/key")
			})
		}
	}
}

// readAll opens a vault and reads every key.
func readAll(b *testing.B, open func() (store.KeyVault, func(), error), n int) {
	v, closeVault, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer closeVault()
	got := 0
	for k, err := range v.Keys(context.Background()) {
		if err != nil {
			b.Fatal(err)
		}
		if len(k.Wrapped) != 73 {
			b.Fatalf("key %s: %d wrapped bytes", k.ID, len(k.Wrapped))
		}
		got++
	}
	if got != n {
		b.Fatalf("%d keys read; want %d", got, n)
	}
}

// BenchmarkPutKey stores new keys from 1 and 64×GOMAXPROCS goroutines (each PutKey returns once
// its key is durable), keydir against keyfile, and reports keys/s.
func BenchmarkPutKey(b *testing.B) {
	for _, par := range []int{1, 64} {
		for _, name := range []string{"keydir", "keyfile"} {
			b.Run(fmt.Sprintf("writers=%d/%s", par, name), func(b *testing.B) {
				var v store.KeyVault
				switch name {
				case "keydir":
					d, err := keydir.Open(filepath.Join(b.TempDir(), "keys"))
					if err != nil {
						b.Fatal(err)
					}
					v = d
				case "keyfile":
					f, err := keyfile.Open(filepath.Join(b.TempDir(), "keys.vault"))
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					v = f
				}
				ctx := context.Background()
				var next atomic.Int64
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := v.PutKey(ctx, benchKey(int(next.Add(1)))); err != nil {
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
}
