package keyfile_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
	"github.com/commseal/commseal/store/keyfile"
	"github.com/commseal/commseal/store/storetest"
)

func TestKeyVaultConformance(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault {
		v, err := keyfile.OpenStorageView(filepath.Join(t.TempDir(), "keys.vault"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	})
}

// TestKeyVaultConformanceReopened runs the suite on a vault that is closed and reopened after
// every change, so every rule is checked against what Open reads back from the file.
func TestKeyVaultConformanceReopened(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault {
		return &reopening{t: t, path: filepath.Join(t.TempDir(), "keys.vault")}
	})
}

// reopening is a store.KeyVault that opens the vault file for every call.
type reopening struct {
	t    *testing.T
	path string
	mu   sync.Mutex
}

func (r *reopening) with(f func(v *keyfile.Vault) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := keyfile.Open(r.path)
	if err != nil {
		r.t.Errorf("reopening the vault: %v", err)
		return err
	}
	defer v.Close()
	return f(v)
}

func (r *reopening) PutKey(ctx context.Context, k store.WrappedKey) error {
	return r.with(func(v *keyfile.Vault) error { return v.PutKey(ctx, k) })
}

func (r *reopening) Key(ctx context.Context, id string) (k store.WrappedKey, err error) {
	r.with(func(v *keyfile.Vault) error { k, err = v.Key(ctx, id); return nil })
	return k, err
}

func (r *reopening) SetMeta(ctx context.Context, id string, meta []byte) error {
	return r.with(func(v *keyfile.Vault) error { return v.SetMeta(ctx, id, meta) })
}

func (r *reopening) Rewrap(ctx context.Context, id, kek string, wrapped []byte) error {
	return r.with(func(v *keyfile.Vault) error { return v.Rewrap(ctx, id, kek, wrapped) })
}

func (r *reopening) DestroyKey(ctx context.Context, id string) error {
	return r.with(func(v *keyfile.Vault) error { return v.DestroyKey(ctx, id) })
}

func (r *reopening) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return func(yield func(store.WrappedKey, error) bool) {
		var ks []store.WrappedKey
		var kerr error
		r.with(func(v *keyfile.Vault) error {
			for k, err := range v.Keys(ctx) {
				if err != nil {
					kerr = err
					break
				}
				ks = append(ks, k)
			}
			return nil
		})
		for _, k := range ks {
			if !yield(k, nil) {
				return
			}
		}
		if kerr != nil {
			yield(store.WrappedKey{}, kerr)
		}
	}
}

func mustOpen(t testing.TB, path string) *keyfile.Vault {
	t.Helper()
	v, err := keyfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func listKeys(t testing.TB, v store.KeyVault) []store.WrappedKey {
	t.Helper()
	var ks []store.WrappedKey
	for k, err := range v.Keys(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return ks
}

// sameKeys reports how two listings differ, or "".
func sameKeys(got, want []store.WrappedKey) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d keys, want %d", len(got), len(want))
	}
	for i := range got {
		if d := storetest.SameKey(got[i], want[i]); d != "" {
			return d
		}
	}
	return ""
}

func wantKeys(t testing.TB, v store.KeyVault, want []store.WrappedKey) {
	t.Helper()
	if d := sameKeys(listKeys(t, v), want); d != "" {
		t.Fatal(d)
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}

// filesHolding returns the vault's files that hold w.
func filesHolding(t testing.TB, path string, w []byte) int {
	t.Helper()
	files, err := keyfile.Files(path)
	must(t, err)
	n := 0
	for _, b := range files {
		if bytes.Contains(b, w) {
			n++
		}
	}
	return n
}

// history applies a mix of every operation to a vault and returns the wrapped bytes that must
// be gone (superseded or destroyed) and what Keys must list.
func history(t testing.TB, v *keyfile.Vault) (gone [][]byte, want []store.WrappedKey) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d", "é"} {
		must(t, v.PutKey(ctx, storetest.KeyAt(id, 1)))
	}
	must(t, v.SetMeta(ctx, "a", storetest.MetaAt("a", 2)))
	must(t, v.Rewrap(ctx, "b", "kek-2", storetest.WrappedAt("b", 2)))
	must(t, v.Rewrap(ctx, "b", "kek-3", storetest.WrappedAt("b", 3)))
	must(t, v.Rewrap(ctx, "c", "kek-2", storetest.WrappedAt("c", 2)))
	must(t, v.DestroyKey(ctx, "c"))
	must(t, v.DestroyKey(ctx, "d"))
	must(t, v.SetMeta(ctx, "é", nil))
	gone = [][]byte{storetest.WrappedAt("b", 1), storetest.WrappedAt("b", 2), storetest.WrappedAt("c", 1), storetest.WrappedAt("c", 2), storetest.WrappedAt("d", 1)}
	a := storetest.KeyAt("a", 1)
	a.Meta = storetest.MetaAt("a", 2)
	b := storetest.KeyAt("b", 3)
	b.Meta = storetest.MetaAt("b", 1)
	c := storetest.KeyAt("c", 2)
	c.Meta = storetest.MetaAt("c", 1)
	e := storetest.KeyAt("é", 1)
	e.Meta = nil
	want = []store.WrappedKey{a, b, storetest.Tombstone(c), storetest.Tombstone(storetest.KeyAt("d", 1)), e}
	return gone, want
}

// TestReopenSeesSameState: every operation survives closing and reopening, and the file holds
// no superseded or destroyed wrapped bytes, and every live one.
func TestReopenSeesSameState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.vault")
	v := mustOpen(t, path)
	gone, want := history(t, v)
	wantKeys(t, v, want)
	must(t, v.Close())
	r := mustOpen(t, path)
	wantKeys(t, r, want)
	if rec := r.Recovery(); rec != (keyfile.Recovery{}) {
		t.Fatalf("a cleanly closed vault needed recovery: %+v", rec)
	}
	for i, w := range gone {
		if n := filesHolding(t, path, w); n != 0 {
			t.Fatalf("superseded or destroyed wrapping %d is still in the file", i)
		}
	}
	for _, k := range want {
		if !k.Destroyed && filesHolding(t, path, k.Wrapped) != 1 {
			t.Fatalf("live key %q is not in the file: the search proves nothing", k.ID)
		}
	}
}

// recordStarts returns the offset of every record in a vault file.
func recordStarts(b []byte) []int {
	var offs []int
	for off := 16; off+8 <= len(b); {
		offs = append(offs, off)
		off += 8 + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return offs
}

// lastBatch captures the file as it stands once the last batch of op is synced, before any
// erasure op makes: the state a crash while syncing that batch could tear.
func lastBatch(t *testing.T, v *keyfile.Vault, path string, op func() error) []byte {
	t.Helper()
	var snap []byte
	v.SetWriteHook(func(b []byte) error {
		if snap == nil && len(b) > 0 && allZero(b) {
			snap = readFile(t, path)
		}
		return nil
	})
	must(t, op())
	v.SetWriteHook(nil)
	if snap == nil {
		snap = readFile(t, path)
	}
	return snap
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// TestTornLastBatchAtEveryByte: a crash while appending a batch leaves it cut at any byte.
// For each kind of operation, the file is cut at every byte of its batch; Open gives back the
// state before the operation, says how much it cut, erases the cut bytes, and the next Open
// finds nothing to repair.
func TestTornLastBatchAtEveryByte(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		op   func(v *keyfile.Vault) error
	}{
		{"put", func(v *keyfile.Vault) error { return v.PutKey(ctx, storetest.KeyAt("new", 1)) }},
		{"set-meta", func(v *keyfile.Vault) error { return v.SetMeta(ctx, "a", storetest.MetaAt("a", 9)) }},
		{"rewrap", func(v *keyfile.Vault) error { return v.Rewrap(ctx, "a", "kek-9", storetest.WrappedAt("a", 9)) }},
		{"destroy", func(v *keyfile.Vault) error { return v.DestroyKey(ctx, "a") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "keys.vault")
			v := mustOpen(t, path)
			_, want := history(t, v)
			before := v.Size()
			after := lastBatch(t, v, path, func() error { return tc.op(v) })
			must(t, v.Close())
			if int64(len(after)) <= before {
				t.Fatalf("the operation appended nothing")
			}
			cutPath := filepath.Join(dir, "cut.vault")
			for cut := before; cut < int64(len(after)); cut++ {
				must(t, os.WriteFile(cutPath, after[:cut], 0o600))
				r, err := keyfile.Open(cutPath)
				if err != nil {
					t.Fatalf("cut at %d of %d: %v", cut, len(after), err)
				}
				if d := sameKeys(listKeys(t, r), want); d != "" {
					t.Fatalf("cut at %d of %d (batch from %d): %s", cut, len(after), before, d)
				}
				if got := r.Recovery().TornBytes; got != cut-before {
					t.Fatalf("cut at %d: Recovery.TornBytes = %d, want %d", cut, got, cut-before)
				}
				must(t, r.Close())
				if b := readFile(t, cutPath); int64(len(b)) != before {
					t.Fatalf("cut at %d: file is %d bytes after Open, want %d", cut, len(b), before)
				}
				r2, err := keyfile.Open(cutPath)
				must(t, err)
				if rec := r2.Recovery(); rec != (keyfile.Recovery{}) {
					t.Fatalf("cut at %d: the second Open repaired again: %+v", cut, rec)
				}
				must(t, r2.Close())
			}
		})
	}
}

// TestTornTailIsErasedBeforeItIsCut: the bytes after the last whole batch may hold a wrapped
// key that was never acknowledged; Open overwrites them with zeros before it truncates, so the
// blocks it releases do not hold it.
func TestTornTailIsErasedBeforeItIsCut(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.vault")
	v := mustOpen(t, path)
	must(t, v.PutKey(ctx, storetest.KeyAt("a", 1)))
	before := v.Size()
	must(t, v.PutKey(ctx, storetest.KeyAt("torn", 1)))
	must(t, v.Close())
	b := readFile(t, path)
	cut := len(b) - 3 // the commit record cut short
	must(t, os.WriteFile(path, b[:cut], 0o600))
	var writes [][]byte
	r, err := keyfile.OpenWithWriteHook(path, func(w []byte) error {
		writes = append(writes, bytes.Clone(w))
		return nil
	})
	must(t, err)
	defer r.Close()
	if got := r.Recovery().TornBytes; got != int64(cut)-before {
		t.Fatalf("Recovery.TornBytes = %d; want %d", got, int64(cut)-before)
	}
	if len(writes) != 1 || len(writes[0]) != cut-int(before) || !allZero(writes[0]) {
		t.Fatalf("Open wrote %d byte strings; want one: %d zeros over the torn tail", len(writes), cut-int(before))
	}
	if _, err := r.Key(ctx, "torn"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a key of a torn batch: %v; want ErrNotFound", err)
	}
}

// TestDamageBeforeTheTailIsCorrupt flips each byte of every record before the last batch (and
// of the header): Open fails with store.ErrCorrupt naming the offset of the record that holds
// the byte, and leaves the file as it was. A byte of an erased region (a superseded or
// destroyed wrapping) is no damage to anything the vault needs: Open erases it again.
func TestDamageBeforeTheTailIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.vault")
	v := mustOpen(t, path)
	_, want := history(t, v)
	must(t, v.PutKey(context.Background(), storetest.KeyAt("last", 1)))
	last := storetest.KeyAt("last", 1)
	want = append(want[:4], last, want[4])
	must(t, v.Close())
	orig := readFile(t, path)
	starts := recordStarts(orig)
	lastBatchStart := starts[len(starts)-2] // the put of "last", then its commit
	recordOf := func(i int) int {
		at := 0
		for _, s := range starts {
			if s <= i {
				at = s
			}
		}
		return at
	}
	damaged := filepath.Join(dir, "damaged.vault")
	reErased := 0
	for i := 0; i < lastBatchStart; i++ {
		b := bytes.Clone(orig)
		b[i] ^= 0x20
		must(t, os.WriteFile(damaged, b, 0o600))
		r, err := keyfile.Open(damaged)
		if err == nil {
			// Only a byte in an erased region may open: it is erased again.
			if orig[i] != 0 || r.Recovery().Erased != 1 {
				r.Close()
				t.Fatalf("byte %d flipped (record at %d): Open succeeded, Recovery %+v", i, recordOf(i), r.Recovery())
			}
			if d := sameKeys(listKeys(t, r), want); d != "" {
				t.Fatalf("byte %d flipped in an erased region: %s", i, d)
			}
			must(t, r.Close())
			if !bytes.Equal(readFile(t, damaged), orig) {
				t.Fatalf("byte %d flipped in an erased region: the file is not back to its state", i)
			}
			reErased++
			continue
		}
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v; want ErrCorrupt", i, err)
		}
		if i >= 16 && !strings.Contains(err.Error(), fmt.Sprintf("offset %d:", recordOf(i))) {
			t.Fatalf("byte %d flipped: %v; want the offset of its record, %d", i, err, recordOf(i))
		}
		if !bytes.Equal(readFile(t, damaged), b) {
			t.Fatalf("byte %d flipped: the refused Open changed the file", i)
		}
	}
	if reErased == 0 {
		t.Fatal("no byte was in an erased region: the history erases nothing")
	}
}

// TestInterruptedDestroyIsFinishedByOpen: a crash after DestroyKey's tombstone is durable and
// before its zeros are leaves the key destroyed; Open erases what is left.
func TestInterruptedDestroyIsFinishedByOpen(t *testing.T) {
	for _, rewrapped := range []bool{false, true} {
		t.Run(fmt.Sprintf("rewrapped=%v", rewrapped), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "keys.vault")
			v := mustOpen(t, path)
			k := storetest.KeyAt("doomed", 1)
			must(t, v.PutKey(ctx, k))
			must(t, v.PutKey(ctx, storetest.KeyAt("other", 1)))
			if rewrapped {
				k.KEK, k.Wrapped = "kek-2", storetest.WrappedAt("doomed", 2)
				must(t, v.Rewrap(ctx, k.ID, k.KEK, k.Wrapped))
			}
			crash := errors.New("crash")
			v.SetWriteHook(func(b []byte) error {
				if allZero(b) {
					return crash
				}
				return nil
			})
			if err := v.DestroyKey(ctx, k.ID); !errors.Is(err, crash) {
				t.Fatalf("DestroyKey with its erasure failing: %v", err)
			}
			if filesHolding(t, path, k.Wrapped) != 1 {
				t.Fatal("the test did not stop the erasure")
			}
			if err := v.PutKey(ctx, storetest.KeyAt("after", 1)); err == nil {
				t.Fatal("a vault whose write failed accepted another change")
			}
			must(t, v.Close())
			r := mustOpen(t, path)
			if r.Recovery().Erased != 1 {
				t.Fatalf("Recovery %+v; want 1 region erased", r.Recovery())
			}
			if got, err := r.Key(ctx, k.ID); !errors.Is(err, store.ErrDestroyed) || storetest.SameKey(got, storetest.Tombstone(k)) != "" {
				t.Fatalf("Key after the interrupted destroy: %v %s", err, storetest.SameKey(got, storetest.Tombstone(k)))
			}
			if filesHolding(t, path, k.Wrapped) != 0 || filesHolding(t, path, storetest.WrappedAt("doomed", 1)) != 0 {
				t.Fatal("after Open, the file still holds the destroyed key's wrapped bytes")
			}
			if filesHolding(t, path, storetest.WrappedAt("other", 1)) != 1 {
				t.Fatal("the other key is gone")
			}
		})
	}
}

// TestInterruptedRewrapIsFinishedByOpen: a crash after Rewrap's new wrapping is durable and
// before the old one is erased leaves the key under the new wrapping; Open erases the old.
func TestInterruptedRewrapIsFinishedByOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.vault")
	v := mustOpen(t, path)
	must(t, v.PutKey(ctx, storetest.KeyAt("k", 1)))
	v.SetWriteHook(func(b []byte) error {
		if allZero(b) {
			return errors.New("crash")
		}
		return nil
	})
	if err := v.Rewrap(ctx, "k", "kek-2", storetest.WrappedAt("k", 2)); err == nil {
		t.Fatal("Rewrap with its erasure failing succeeded")
	}
	must(t, v.Close())
	r := mustOpen(t, path)
	want := storetest.KeyAt("k", 2)
	want.Meta = storetest.MetaAt("k", 1)
	if got, err := r.Key(ctx, "k"); err != nil || storetest.SameKey(got, want) != "" {
		t.Fatalf("Key after the interrupted rewrap: %v %s", err, storetest.SameKey(got, want))
	}
	if r.Recovery().Erased != 1 || filesHolding(t, path, storetest.WrappedAt("k", 1)) != 0 {
		t.Fatalf("the superseded wrapping is still in the file (Recovery %+v)", r.Recovery())
	}
}

// TestCurrentWrappingErasedIsCorrupt: a live key whose current wrapped bytes are zeros (no
// crash leaves that: the tombstone is durable before the zeros) is reported, not taken for
// destroyed.
func TestCurrentWrappingErasedIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.vault")
	v := mustOpen(t, path)
	must(t, v.PutKey(context.Background(), storetest.KeyAt("k", 1)))
	must(t, v.PutKey(context.Background(), storetest.KeyAt("j", 1)))
	must(t, v.Close())
	b := readFile(t, path)
	w := storetest.WrappedAt("k", 1)
	i := bytes.Index(b, w)
	copy(b[i-4:i+len(w)], make([]byte, 4+len(w)))
	must(t, os.WriteFile(path, b, 0o600))
	if _, err := keyfile.Open(path); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), `"k"`) {
		t.Fatalf("Open with a live key's wrapping zeroed: %v; want ErrCorrupt naming the key", err)
	}
}

// TestNotAKeyFile: a file that is not a vault is refused, unchanged; a file shorter than the
// header that is a prefix of it, or 16 zeros (a creation a crash cut), is completed.
func TestNotAKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"hello world, not a vault", `{"id":"k"}`, "CSEALKEY\x02\x00\x00\x00\x00\x00\x00\x00"} {
		p := filepath.Join(dir, "x.vault")
		must(t, os.WriteFile(p, []byte(content), 0o600))
		if _, err := keyfile.Open(p); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("Open of %q: %v; want ErrCorrupt", content, err)
		}
		if string(readFile(t, p)) != content {
			t.Fatalf("Open of %q changed it", content)
		}
	}
	p := filepath.Join(dir, "short.vault")
	for _, content := range []string{"", "C", "CSEALKEY", "CSEALKEY\x01\x00\x00\x00", strings.Repeat("\x00", 16)} {
		must(t, os.WriteFile(p, []byte(content), 0o600))
		v := mustOpen(t, p)
		must(t, v.PutKey(context.Background(), storetest.KeyAt("k", 1)))
		must(t, v.Close())
		wantKeys(t, mustOpen(t, p), []store.WrappedKey{storetest.KeyAt("k", 1)})
		must(t, os.Remove(p))
	}
}

// TestOneProcessAtATime: a second Open of an open vault file fails.
func TestOneProcessAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.vault")
	mustOpen(t, path)
	if v, err := keyfile.Open(path); err == nil {
		v.Close()
		t.Fatal("a second Open of an open vault succeeded")
	}
}

// TestClosed: after Close every method fails with store.ErrClosed.
func TestClosed(t *testing.T) {
	ctx := context.Background()
	v := mustOpen(t, filepath.Join(t.TempDir(), "keys.vault"))
	must(t, v.PutKey(ctx, storetest.KeyAt("k", 1)))
	must(t, v.Close())
	must(t, v.Close())
	for name, err := range map[string]error{
		"PutKey":     v.PutKey(ctx, storetest.KeyAt("j", 1)),
		"SetMeta":    v.SetMeta(ctx, "k", nil),
		"Rewrap":     v.Rewrap(ctx, "k", "kek-2", []byte("x")),
		"DestroyKey": v.DestroyKey(ctx, "k"),
		"Compact":    v.Compact(ctx),
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
	if _, err := v.Key(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Key after Close: %v", err)
	}
}

// TestLimits: ids, KEK names and wrapped bytes beyond the format's limits are refused.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	v := mustOpen(t, filepath.Join(t.TempDir(), "keys.vault"))
	long := strings.Repeat("x", 1025)
	for name, k := range map[string]store.WrappedKey{
		"id":      {ID: long, KEK: "k", Wrapped: []byte("w")},
		"kek":     {ID: "a", KEK: long, Wrapped: []byte("w")},
		"wrapped": {ID: "a", KEK: "k", Wrapped: make([]byte, 64<<10+1)},
	} {
		if err := v.PutKey(ctx, k); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("PutKey with a long %s: %v; want ErrInvalid", name, err)
		}
	}
	k := store.WrappedKey{ID: strings.Repeat("x", 1024), KEK: strings.Repeat("k", 1024), Wrapped: bytes.Repeat([]byte{7}, 64<<10)}
	must(t, v.PutKey(ctx, k))
	must(t, v.Close())
	wantKeys(t, mustOpen(t, v.Path()), []store.WrappedKey{k})
}

// TestImportFromKeydir moves a keydir vault (live, rewrapped and destroyed keys) into a
// keyfile vault with Import: the same keys read back, before and after reopening; an id that
// exists is refused; a tombstone with wrapped bytes is refused.
func TestImportFromKeydir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := keydir.Open(filepath.Join(dir, "keys"))
	must(t, err)
	for _, id := range []string{"live", "rewrapped", "gone", "gone-rewrapped"} {
		must(t, src.PutKey(ctx, storetest.KeyAt(id, 1)))
	}
	must(t, src.Rewrap(ctx, "rewrapped", "kek-2", storetest.WrappedAt("rewrapped", 2)))
	must(t, src.Rewrap(ctx, "gone-rewrapped", "kek-2", storetest.WrappedAt("gone-rewrapped", 2)))
	must(t, src.SetMeta(ctx, "gone", storetest.MetaAt("gone", 3)))
	must(t, src.DestroyKey(ctx, "gone"))
	must(t, src.DestroyKey(ctx, "gone-rewrapped"))
	want := listKeys(t, src)

	path := filepath.Join(dir, "keys.vault")
	dst := mustOpen(t, path)
	for _, k := range want {
		must(t, dst.Import(ctx, k))
	}
	wantKeys(t, dst, want)
	for _, k := range want {
		if err := dst.Import(ctx, k); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("Import of %q again: %v; want ErrDuplicate", k.ID, err)
		}
	}
	bad := storetest.Tombstone(storetest.KeyAt("bad", 1))
	bad.Wrapped = []byte("wrapped")
	if err := dst.Import(ctx, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Import of a tombstone with wrapped bytes: %v; want ErrInvalid", err)
	}
	must(t, dst.Close())
	wantKeys(t, mustOpen(t, path), want)
	if filesHolding(t, path, storetest.WrappedAt("gone", 1)) != 0 {
		t.Fatal("a destroyed key's wrapped bytes are in the file")
	}
}
