package keydir_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
	"github.com/commseal/commseal/store/storetest"
)

func TestKeyVaultConformance(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault {
		v, err := keydir.OpenStorageView(filepath.Join(t.TempDir(), "keys"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}

func mustOpen(t *testing.T, dir string) *keydir.Vault {
	t.Helper()
	v, err := keydir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func listKeys(t *testing.T, v store.KeyVault) []store.WrappedKey {
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

func wantKey(t *testing.T, v store.KeyVault, want store.WrappedKey) {
	t.Helper()
	got, err := v.Key(context.Background(), want.ID)
	if want.Destroyed != errors.Is(err, store.ErrDestroyed) || err != nil && !want.Destroyed {
		t.Fatalf("Key(%q): err = %v; want destroyed %v", want.ID, err, want.Destroyed)
	}
	if d := storetest.SameKey(got, want); d != "" {
		t.Fatalf("Key(%q): %s", want.ID, d)
	}
}

// filesHolding returns the names of the files under dir that hold w, raw or in the base64 of
// the JSON encoding.
func filesHolding(t *testing.T, dir string, w []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, w) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(w))) {
			found = append(found, filepath.Base(p))
		}
		return nil
	})
	must(t, err)
	return found
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestReopenSeesSameState: what one Vault did, a Vault opened later on the directory sees.
func TestReopenSeesSameState(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	for _, id := range []string{"a", "b", "c", "d"} {
		must(t, v.PutKey(ctx, storetest.KeyAt(id, 1)))
	}
	b2 := storetest.KeyAt("b", 2)
	must(t, v.Rewrap(ctx, "b", b2.KEK, b2.Wrapped))
	must(t, v.SetMeta(ctx, "b", b2.Meta))
	must(t, v.DestroyKey(ctx, "c"))
	before := listKeys(t, v)

	r := mustOpen(t, dir)
	after := listKeys(t, r)
	if len(after) != len(before) {
		t.Fatalf("reopened vault lists %d keys; before it had %d", len(after), len(before))
	}
	for k := range before {
		if d := storetest.SameKey(after[k], before[k]); d != "" {
			t.Fatalf("reopened vault: %s", d)
		}
	}
	wantKey(t, r, b2)
	wantKey(t, r, storetest.Tombstone(storetest.KeyAt("c", 1)))
	if err := r.PutKey(ctx, storetest.KeyAt("c", 3)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("reopened vault: PutKey of the destroyed id: err = %v; want ErrDuplicate", err)
	}
	must(t, r.PutKey(ctx, storetest.KeyAt("e", 1)))
	if got := listKeys(t, mustOpen(t, dir)); len(got) != 5 || got[4].ID != "e" {
		t.Fatalf("after a put through the reopened vault, a third sees %d keys", len(got))
	}
}

// TestNoFileHoldsSupersededOrDestroyedWrappedBytes: after Rewrap, no file of the directory
// holds the superseded wrapped bytes; after DestroyKey, none holds any the key had; metadata
// changes never copy them.
func TestNoFileHoldsSupersededOrDestroyedWrappedBytes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	var writes int
	copies := map[string]int{}
	versions := []store.WrappedKey{storetest.KeyAt("shred-me", 1), storetest.KeyAt("shred-me", 2), storetest.KeyAt("shred-me", 3)}
	v.SetWriteHook(func(name string, b []byte) error {
		writes++
		for _, k := range versions {
			if bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(k.Wrapped))) {
				copies[k.KEK]++
			}
		}
		return nil
	})
	keep := storetest.KeyAt("keep", 1)
	must(t, v.PutKey(ctx, versions[0]))
	must(t, v.PutKey(ctx, keep))
	for i, k := range versions[1:] {
		must(t, v.SetMeta(ctx, k.ID, storetest.MetaAt(k.ID, 10+i)))
		must(t, v.Rewrap(ctx, k.ID, k.KEK, k.Wrapped))
		if files := filesHolding(t, dir, k.Wrapped); len(files) != 1 {
			t.Fatalf("after Rewrap under %s, files %v hold the new wrapped bytes; want exactly one", k.KEK, files)
		}
		for _, old := range versions[:i+1] {
			if files := filesHolding(t, dir, old.Wrapped); len(files) > 0 {
				t.Fatalf("after Rewrap under %s, files %v still hold the superseded wrapped bytes under %s", k.KEK, files, old.KEK)
			}
		}
		must(t, v.SetMeta(ctx, k.ID, storetest.MetaAt(k.ID, 20+i)))
	}
	for _, k := range versions {
		if copies[k.KEK] != 1 {
			t.Fatalf("the wrapped bytes under %s were written %d times; want once", k.KEK, copies[k.KEK])
		}
	}
	must(t, v.DestroyKey(ctx, "shred-me"))
	for _, k := range versions {
		if files := filesHolding(t, dir, k.Wrapped); len(files) > 0 {
			t.Fatalf("after DestroyKey, files %v still hold wrapped bytes of the key (KEK %s)", files, k.KEK)
		}
	}
	if len(filesHolding(t, dir, keep.Wrapped)) != 1 {
		t.Fatalf("DestroyKey of one key removed another's wrapped bytes")
	}
	got, err := v.Key(ctx, "shred-me")
	if !errors.Is(err, store.ErrDestroyed) || got.KEK != "kek-3" || !strings.Contains(string(got.Meta), `"version":21`) {
		t.Fatalf("the tombstone keeps the last KEK and metadata: %+v, %v", got, err)
	}
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, ".") {
			t.Fatalf("temporary file %s left in the vault", n)
		}
	}
	if writes == 0 {
		t.Fatal("the write hook saw nothing: the checks above proved nothing")
	}
}

// legacyFile writes a key file in the format of earlier versions.
func legacyFile(t *testing.T, dir string, v any, id string) {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, hex.EncodeToString([]byte(id))+".key"), b, 0o600))
}

type legacy struct {
	ID        string          `json:"id"`
	Keyring   string          `json:"keyring,omitempty"`
	Wrapped   []byte          `json:"wrapped,omitempty"`
	Meta      json.RawMessage `json:"meta,omitempty"`
	Destroyed bool            `json:"destroyed,omitempty"`
}

func legacyOf(k store.WrappedKey) legacy {
	return legacy{ID: k.ID, Keyring: k.KEK, Wrapped: k.Wrapped, Meta: k.Meta}
}

// TestEarlierFormatIsReadAndMovedOnFirstWrite: a directory written by an earlier version (one
// JSON file per key) reads as it did; the first write to a key moves it to the new files and
// scrubs the old file, so its wrapped bytes are in exactly one file.
func TestEarlierFormatIsReadAndMovedOnFirstWrite(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	must(t, os.MkdirAll(dir, 0o700))
	a, b, c, d := storetest.KeyAt("dk1.a", 1), storetest.KeyAt("dk1.b", 1), storetest.KeyAt("dk1.c", 1), storetest.KeyAt("dk1.d", 1)
	for _, k := range []store.WrappedKey{a, b, c, d} {
		legacyFile(t, dir, legacyOf(k), k.ID)
	}
	legacyFile(t, dir, legacy{ID: "dk1.gone", Destroyed: true}, "dk1.gone")
	v := mustOpen(t, dir)
	gone := store.WrappedKey{ID: "dk1.gone", Destroyed: true}
	if got := listKeys(t, v); len(got) != 5 || storetest.SameKey(got[4], gone) != "" || storetest.SameKey(got[0], a) != "" {
		t.Fatalf("Keys over the earlier format: %+v", got)
	}
	for _, k := range []store.WrappedKey{a, b, c, d, gone} {
		wantKey(t, v, k)
	}
	if err := v.PutKey(ctx, storetest.KeyAt("dk1.gone", 2)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("PutKey over a key destroyed by an earlier version: %v; want ErrDuplicate", err)
	}

	// SetMeta: the wrapped bytes move to a record; the old file is gone.
	a.Meta = storetest.MetaAt("dk1.a", 2)
	must(t, v.SetMeta(ctx, a.ID, a.Meta))
	wantKey(t, v, a)
	if files := filesHolding(t, dir, a.Wrapped); len(files) != 1 || !strings.HasSuffix(files[0], ".1.rec") {
		t.Fatalf("after SetMeta of an earlier key, its wrapped bytes are in %v; want one record file", files)
	}
	// Rewrap: the old wrapped bytes are scrubbed with the old file.
	nb := storetest.KeyAt("dk1.b", 2)
	must(t, v.Rewrap(ctx, b.ID, nb.KEK, nb.Wrapped))
	b.KEK, b.Wrapped = nb.KEK, nb.Wrapped
	wantKey(t, v, b)
	if files := filesHolding(t, dir, storetest.WrappedAt("dk1.b", 1)); len(files) != 0 {
		t.Fatalf("after Rewrap of an earlier key, %v still hold its old wrapped bytes", files)
	}
	// DestroyKey: a tombstone, no wrapped bytes anywhere.
	must(t, v.DestroyKey(ctx, c.ID))
	wantKey(t, v, storetest.Tombstone(c))
	if files := filesHolding(t, dir, c.Wrapped); len(files) != 0 {
		t.Fatalf("after DestroyKey of an earlier key, %v still hold its wrapped bytes", files)
	}
	must(t, v.DestroyKey(ctx, "dk1.gone")) // harmless
	for _, n := range names(t, dir) {
		if id, _, _ := strings.Cut(n, "."); strings.HasSuffix(n, ".key") && id != hex.EncodeToString([]byte("dk1.d")) && id != hex.EncodeToString([]byte("dk1.gone")) {
			t.Fatalf("an earlier-format file %s is left after its key was written", n)
		}
	}
	r := mustOpen(t, dir)
	for _, k := range []store.WrappedKey{a, b, storetest.Tombstone(c), d, gone} {
		wantKey(t, r, k)
	}
}

// TestCrashAtEveryWriteLeavesAWholeKeyAndNoStrayWrappedBytes interrupts each operation at each
// of its writes (as a crash there would), reopens the directory, and checks that the key reads
// whole, in the state before or after the operation, and that after Open no file holds wrapped
// bytes the key no longer has.
func TestCrashAtEveryWriteLeavesAWholeKeyAndNoStrayWrappedBytes(t *testing.T) {
	ctx := context.Background()
	k1, k2 := storetest.KeyAt("k", 1), storetest.KeyAt("k", 2)
	meta2 := storetest.MetaAt("k", 7)
	type op struct {
		name          string
		early         bool                        // the key is in the earlier format
		setup         func(v *keydir.Vault) error // before the interrupted operation
		run           func(v *keydir.Vault) error // the operation
		before, after store.WrappedKey            // the key's state before and after it
	}
	withMeta := k1
	withMeta.Meta = meta2
	rewrapped := k1
	rewrapped.KEK, rewrapped.Wrapped = k2.KEK, k2.Wrapped
	ops := []op{
		{name: "PutKey", run: func(v *keydir.Vault) error { return v.PutKey(ctx, k1) }, after: k1},
		{name: "SetMeta", setup: func(v *keydir.Vault) error { return v.PutKey(ctx, k1) },
			run: func(v *keydir.Vault) error { return v.SetMeta(ctx, "k", meta2) }, before: k1, after: withMeta},
		{name: "Rewrap", setup: func(v *keydir.Vault) error { return v.PutKey(ctx, k1) },
			run: func(v *keydir.Vault) error { return v.Rewrap(ctx, "k", k2.KEK, k2.Wrapped) }, before: k1, after: rewrapped},
		{name: "Rewrap twice", setup: func(v *keydir.Vault) error {
			if err := v.PutKey(ctx, k1); err != nil {
				return err
			}
			return v.Rewrap(ctx, "k", "kek-0", storetest.WrappedAt("k", 0))
		}, run: func(v *keydir.Vault) error { return v.Rewrap(ctx, "k", k1.KEK, k1.Wrapped) }, before: func() store.WrappedKey {
			k := k1
			k.KEK, k.Wrapped = "kek-0", storetest.WrappedAt("k", 0)
			return k
		}(), after: k1},
		{name: "DestroyKey", setup: func(v *keydir.Vault) error {
			if err := v.PutKey(ctx, k1); err != nil {
				return err
			}
			return v.Rewrap(ctx, "k", k2.KEK, k2.Wrapped)
		}, run: func(v *keydir.Vault) error { return v.DestroyKey(ctx, "k") }, before: rewrapped, after: storetest.Tombstone(rewrapped)},
		{name: "SetMeta of an earlier key", early: true,
			run: func(v *keydir.Vault) error { return v.SetMeta(ctx, "k", meta2) }, before: k1, after: withMeta},
		{name: "Rewrap of an earlier key", early: true,
			run: func(v *keydir.Vault) error { return v.Rewrap(ctx, "k", k2.KEK, k2.Wrapped) }, before: k1, after: rewrapped},
		{name: "DestroyKey of an earlier key", early: true,
			run: func(v *keydir.Vault) error { return v.DestroyKey(ctx, "k") }, before: k1, after: storetest.Tombstone(k1)},
	}
	crash := errors.New("crash")
	for _, o := range ops {
		for at := 1; ; at++ {
			dir := filepath.Join(t.TempDir(), "keys")
			must(t, os.MkdirAll(dir, 0o700))
			if o.early {
				legacyFile(t, dir, legacyOf(k1), "k")
			}
			v := mustOpen(t, dir)
			must(t, v.PutKey(ctx, storetest.KeyAt("other", 1)))
			if o.setup != nil {
				must(t, o.setup(v))
			}
			n := 0
			v.SetWriteHook(func(string, []byte) error {
				if n++; n == at {
					return crash
				}
				return nil
			})
			err := o.run(v)
			if err == nil {
				if at == 1 {
					t.Fatalf("%s: the hook stopped nothing", o.name)
				}
				t.Logf("%s: interrupted at each of its %d writes", o.name, at-1)
				break // every write was interrupted once
			}
			if !errors.Is(err, crash) {
				t.Fatalf("%s, write %d interrupted: %v", o.name, at, err)
			}
			r := mustOpen(t, dir)
			got, err := r.Key(ctx, "k")
			state := ""
			switch {
			case o.before.ID == "" && errors.Is(err, store.ErrNotFound):
				state = "before"
			case err != nil && !errors.Is(err, store.ErrDestroyed):
				t.Fatalf("%s, write %d interrupted: after reopening, Key: %v", o.name, at, err)
			case storetest.SameKey(got, o.after) == "":
				state = "after"
			case o.before.ID != "" && storetest.SameKey(got, o.before) == "":
				state = "before"
			default:
				t.Fatalf("%s, write %d interrupted: after reopening, the key is neither as before nor as after: %+v", o.name, at, got)
			}
			live := o.after
			if state == "before" {
				live = o.before
			}
			for _, w := range [][]byte{k1.Wrapped, k2.Wrapped, storetest.WrappedAt("k", 0)} {
				files := filesHolding(t, dir, w)
				want := 0
				if bytes.Equal(w, live.Wrapped) {
					want = 1
				}
				if len(files) != want {
					t.Fatalf("%s, write %d interrupted, key %s: after reopening, files %v hold wrapped bytes %x...; want %d", o.name, at, state, files, w[:4], want)
				}
			}
			wantKey(t, r, storetest.KeyAt("other", 1))
			if slices.ContainsFunc(names(t, dir), func(n string) bool { return strings.HasPrefix(n, ".") }) {
				t.Fatalf("%s, write %d interrupted: a temporary file is left after reopening: %v", o.name, at, names(t, dir))
			}
			// The operation, run again, completes.
			if err := o.run(r); err != nil && !(o.name == "PutKey" && errors.Is(err, store.ErrDuplicate)) {
				t.Fatalf("%s, write %d interrupted: running it again: %v", o.name, at, err)
			}
			wantKey(t, r, o.after)
		}
	}
}

// TestIDsThatAreNotUTF8 are refused, and a file an earlier version wrote under one does not
// stop Keys (it lists the other keys).
func TestIDsThatAreNotUTF8(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	if err := v.PutKey(ctx, storetest.KeyAt("dk1.\xff", 1)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutKey of an id that is not UTF-8: %v; want ErrInvalid", err)
	}
	legacyFile(t, dir, legacyOf(storetest.KeyAt("dk1.\xff", 1)), "dk1.\xff")
	must(t, v.PutKey(ctx, storetest.KeyAt("dk1.ok", 1)))
	if got := listKeys(t, mustOpen(t, dir)); len(got) != 1 || got[0].ID != "dk1.ok" {
		t.Fatalf("Keys with a stray non-UTF-8 file: %+v", got)
	}
}

// TestLongIDs: an id too long for the file names is refused as invalid, not with an error of
// the file system, and the longest accepted id goes through every operation.
func TestLongIDs(t *testing.T) {
	ctx := context.Background()
	v := mustOpen(t, filepath.Join(t.TempDir(), "keys"))
	longest := strings.Repeat("k", 112)
	k := storetest.KeyAt(longest, 1)
	must(t, v.PutKey(ctx, k))
	wantKey(t, v, k)
	must(t, v.SetMeta(ctx, longest, storetest.MetaAt(longest, 2)))
	must(t, v.Rewrap(ctx, longest, "kek-2", storetest.WrappedAt(longest, 2)))
	must(t, v.DestroyKey(ctx, longest))
	for _, n := range []int{113, 200, 256, 1000} {
		if err := v.PutKey(ctx, storetest.KeyAt(strings.Repeat("k", n), 1)); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("PutKey of a %d-byte id: err = %v; want ErrInvalid", n, err)
		}
	}
}

// TestLongEarlierIDs: an earlier version allowed ids up to 125 bytes; such a key still reads
// and can be destroyed.
func TestLongEarlierIDs(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	must(t, os.MkdirAll(dir, 0o700))
	id := strings.Repeat("q", 125)
	k := storetest.KeyAt(id, 1)
	legacyFile(t, dir, legacyOf(k), id)
	v := mustOpen(t, dir)
	wantKey(t, v, k)
	if err := v.SetMeta(ctx, id, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("SetMeta of a 125-byte earlier key: %v; want ErrInvalid", err)
	}
	must(t, v.DestroyKey(ctx, id))
	wantKey(t, v, storetest.Tombstone(k))
	if files := filesHolding(t, dir, k.Wrapped); len(files) != 0 {
		t.Fatalf("files %v still hold the destroyed key", files)
	}
}

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	v, err := keydir.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = v.PutKey(ctx, store.WrappedKey{ID: "dk1.2026-07.x", KEK: "kek-1", Wrapped: []byte("wrapped bytes"), Meta: []byte(`{"tenant":"corp"}`)})
	_ = v.SetMeta(ctx, "dk1.2026-07.x", []byte(`{"tenant":"corp","kinds":["message"]}`))
	_ = v.DestroyKey(ctx, "dk1.2026-07.x")
	k, err := v.Key(ctx, "dk1.2026-07.x")
	fmt.Println(errors.Is(err, store.ErrDestroyed), k.KEK, string(k.Meta), k.Wrapped == nil)
	// Output: true kek-1 {"tenant":"corp","kinds":["message"]} true
}
