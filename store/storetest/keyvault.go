package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/commseal/commseal/store"
)

// RunKeyVault runs the conformance suite for store.KeyVault adapters as subtests of t. open must
// return a new, empty vault each time it is called, and release it when t ends (t.Cleanup).
//
// The suite checks, through the interface only: a put key reads back as it was put (its wrapped
// bytes exactly, its metadata as the same JSON value: an adapter may re-encode it), for ids with
// any bytes; reads return copies and a put keeps none of the caller's slices; a second put of an
// id, live or destroyed, fails with store.ErrDuplicate and changes nothing; an unknown id gives
// store.ErrNotFound from Key, UpdateKey and DestroyKey; a destroyed key gives store.ErrDestroyed
// from Key and UpdateKey, destroying it again is harmless, and Keys lists it with Destroyed set
// and Wrapped nil; UpdateKey replaces keyring, wrapped bytes and metadata; Keys yields every key
// in id order (byte-wise) and stops when asked to; an empty id, empty wrapped bytes or metadata
// that is not JSON fail with store.ErrInvalid and store nothing, and so does an id that is not
// valid UTF-8 (an empty or non-UTF-8 id given to Key or DestroyKey may also be reported as
// store.ErrNotFound); a canceled context fails every method
// and changes nothing; and concurrent use (run it with -race) keeps every key whole, lets
// exactly one of several racing puts of an id succeed, and never revives a key that an
// UpdateKey raced to destroy.
func RunKeyVault(t *testing.T, open func(t *testing.T) store.KeyVault) {
	t.Helper()
	for _, c := range keyVaultCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

var keyVaultCases = []struct {
	name string
	fn   func(t *testing.T, v store.KeyVault)
}{
	{"RoundTrip", kvRoundTrip},
	{"Copies", kvCopies},
	{"Duplicate", kvDuplicate},
	{"NotFound", kvNotFound},
	{"Destroy", kvDestroy},
	{"Update", kvUpdate},
	{"KeysInOrder", kvKeysInOrder},
	{"Invalid", kvInvalid},
	{"Canceled", kvCanceled},
	{"Concurrent", kvConcurrent},
}

// KeyAt returns the deterministic key the suite stores under id: wrapped bytes and metadata
// derived from id and version.
func KeyAt(id string, version int) store.WrappedKey {
	wrapped := make([]byte, 40+len(id)%8)
	for k := range wrapped {
		wrapped[k] = byte(k*31+version*7+len(id)) ^ 0xa5
	}
	meta, _ := json.Marshal(map[string]any{"scope": id, "version": version, "note": "<&>"})
	return store.WrappedKey{ID: id, Keyring: fmt.Sprintf("kek-%d", version), Wrapped: wrapped, Meta: meta}
}

// SameKey reports how got differs from want, or "" if it does not: the same id, keyring and
// wrapped bytes, metadata that is the same JSON value, and the same destroyed flag.
func SameKey(got, want store.WrappedKey) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("id %q, want %q", got.ID, want.ID)
	case got.Keyring != want.Keyring:
		return fmt.Sprintf("key %q: keyring %q, want %q", want.ID, got.Keyring, want.Keyring)
	case !bytes.Equal(got.Wrapped, want.Wrapped):
		return fmt.Sprintf("key %q: wrapped bytes differ (%d bytes, want %d)", want.ID, len(got.Wrapped), len(want.Wrapped))
	case got.Destroyed != want.Destroyed:
		return fmt.Sprintf("key %q: destroyed %v, want %v", want.ID, got.Destroyed, want.Destroyed)
	case !sameJSON(got.Meta, want.Meta):
		return fmt.Sprintf("key %q: meta %s, want %s", want.ID, got.Meta, want.Meta)
	}
	return ""
}

func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func mustPutKey(t *testing.T, v store.KeyVault, k store.WrappedKey) {
	t.Helper()
	if err := v.PutKey(context.Background(), k); err != nil {
		t.Fatalf("PutKey(%q): %v", k.ID, err)
	}
}

// wantKey checks that id reads back as want (live) or as destroyed.
func wantKey(t *testing.T, v store.KeyVault, want store.WrappedKey) {
	t.Helper()
	got, err := v.Key(context.Background(), want.ID)
	if want.Destroyed {
		if !errors.Is(err, store.ErrDestroyed) {
			t.Fatalf("Key(%q) of a destroyed key: err = %v; want ErrDestroyed", want.ID, err)
		}
		if got.Wrapped != nil {
			t.Fatalf("Key(%q) of a destroyed key returned %d wrapped bytes", want.ID, len(got.Wrapped))
		}
		return
	}
	if err != nil {
		t.Fatalf("Key(%q): %v", want.ID, err)
	}
	if d := SameKey(got, want); d != "" {
		t.Fatalf("Key(%q): %s", want.ID, d)
	}
}

// listKeys returns what Keys yields, failing on an error.
func listKeys(t *testing.T, v store.KeyVault) []store.WrappedKey {
	t.Helper()
	var ks []store.WrappedKey
	for k, err := range v.Keys(context.Background()) {
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		ks = append(ks, k)
	}
	return ks
}

// wantKeys checks that Keys yields exactly want, in order; destroyed keys are compared by id,
// flag and nil wrapped bytes only.
func wantKeys(t *testing.T, v store.KeyVault, want ...store.WrappedKey) {
	t.Helper()
	got := listKeys(t, v)
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for k := range got {
			ids[k] = got[k].ID
		}
		t.Fatalf("Keys yielded %d keys %q; want %d", len(got), ids, len(want))
	}
	for k := range want {
		if want[k].Destroyed {
			if got[k].ID != want[k].ID || !got[k].Destroyed || got[k].Wrapped != nil {
				t.Fatalf("Keys[%d] = %q (destroyed %v, %d wrapped bytes); want %q destroyed with Wrapped nil",
					k, got[k].ID, got[k].Destroyed, len(got[k].Wrapped), want[k].ID)
			}
			continue
		}
		if d := SameKey(got[k], want[k]); d != "" {
			t.Fatalf("Keys[%d]: %s", k, d)
		}
	}
}

func kvRoundTrip(t *testing.T, v store.KeyVault) {
	ids := []string{"dk-2026-09", "a/b", "..", "ключ", "with space", ".hidden", "x\x00y", "z"}
	var want []store.WrappedKey
	for _, id := range ids {
		k := KeyAt(id, 1)
		mustPutKey(t, v, k)
		want = append(want, k)
	}
	noMeta := KeyAt("no-meta", 1)
	noMeta.Meta, noMeta.Keyring = nil, ""
	mustPutKey(t, v, noMeta)
	want = append(want, noMeta)
	for _, k := range want {
		wantKey(t, v, k)
	}
	slices.SortFunc(want, func(a, b store.WrappedKey) int { return bytes.Compare([]byte(a.ID), []byte(b.ID)) })
	wantKeys(t, v, want...)
}

func kvCopies(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	k := KeyAt("k", 1)
	in := store.WrappedKey{ID: k.ID, Keyring: k.Keyring, Wrapped: slices.Clone(k.Wrapped), Meta: slices.Clone(k.Meta)}
	mustPutKey(t, v, in)
	clear(in.Wrapped) // the caller reuses its buffers
	in.Meta[0] = ' '
	wantKey(t, v, k)
	got, err := v.Key(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	clear(got.Wrapped)
	for l, err := range v.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		clear(l.Wrapped)
	}
	wantKey(t, v, k)
	u := KeyAt("k", 2)
	in = store.WrappedKey{ID: u.ID, Keyring: u.Keyring, Wrapped: slices.Clone(u.Wrapped), Meta: slices.Clone(u.Meta)}
	if err := v.UpdateKey(ctx, in); err != nil {
		t.Fatal(err)
	}
	clear(in.Wrapped)
	wantKey(t, v, u)
}

func kvDuplicate(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	live, gone := KeyAt("live", 1), KeyAt("gone", 1)
	mustPutKey(t, v, live)
	mustPutKey(t, v, gone)
	if err := v.DestroyKey(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := v.PutKey(ctx, KeyAt("live", 2)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("PutKey of a live id: err = %v; want ErrDuplicate", err)
	}
	wantKey(t, v, live)
	if err := v.PutKey(ctx, KeyAt("gone", 2)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("PutKey of a destroyed id: err = %v; want ErrDuplicate (a destroyed key must stay destroyed)", err)
	}
	gone.Destroyed = true
	wantKey(t, v, gone)
	wantKeys(t, v, gone, live)
}

func kvNotFound(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	mustPutKey(t, v, KeyAt("known", 1))
	if _, err := v.Key(ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Key of an unknown id: err = %v; want ErrNotFound", err)
	}
	if err := v.UpdateKey(ctx, KeyAt("unknown", 2)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateKey of an unknown id: err = %v; want ErrNotFound", err)
	}
	if err := v.DestroyKey(ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DestroyKey of an unknown id: err = %v; want ErrNotFound", err)
	}
	if _, err := v.Key(ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Key after UpdateKey and DestroyKey of an unknown id: err = %v; want ErrNotFound (they must create nothing)", err)
	}
	wantKeys(t, v, KeyAt("known", 1))
}

func kvDestroy(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	a, b, c := KeyAt("a", 1), KeyAt("b", 1), KeyAt("c", 1)
	for _, k := range []store.WrappedKey{a, b, c} {
		mustPutKey(t, v, k)
	}
	if err := v.DestroyKey(ctx, "b"); err != nil {
		t.Fatalf("DestroyKey: %v", err)
	}
	b.Destroyed = true
	wantKey(t, v, b)
	if err := v.UpdateKey(ctx, KeyAt("b", 2)); !errors.Is(err, store.ErrDestroyed) {
		t.Fatalf("UpdateKey of a destroyed key: err = %v; want ErrDestroyed", err)
	}
	wantKey(t, v, b)
	for range 2 {
		if err := v.DestroyKey(ctx, "b"); err != nil {
			t.Fatalf("DestroyKey of a destroyed key: %v; want nil (harmless)", err)
		}
	}
	wantKey(t, v, a)
	wantKey(t, v, c)
	wantKeys(t, v, a, b, c)
}

func kvUpdate(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	mustPutKey(t, v, KeyAt("k", 1))
	mustPutKey(t, v, KeyAt("other", 1))
	for version := 2; version <= 4; version++ {
		u := KeyAt("k", version)
		if version == 4 {
			u.Meta = nil // metadata may be dropped
		}
		if err := v.UpdateKey(ctx, u); err != nil {
			t.Fatalf("UpdateKey to version %d: %v", version, err)
		}
		wantKey(t, v, u)
		wantKeys(t, v, u, KeyAt("other", 1))
	}
	wantKey(t, v, KeyAt("other", 1))
}

func kvKeysInOrder(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	ids := []string{"m", "b", "zz", "a", "ab", "B", "z", "aa", "é", "0", "~"}
	for _, id := range ids {
		mustPutKey(t, v, KeyAt(id, 1))
	}
	for _, id := range []string{"ab", "0"} {
		if err := v.DestroyKey(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids) // Go string order is byte order
	var want []store.WrappedKey
	for _, id := range ids {
		k := KeyAt(id, 1)
		k.Destroyed = id == "ab" || id == "0"
		want = append(want, k)
	}
	wantKeys(t, v, want...)
	// Stopping early is allowed and leaves the vault usable.
	n := 0
	for _, err := range v.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	mustPutKey(t, v, KeyAt("after", 1))
	wantKey(t, v, KeyAt("after", 1))
}

// badUTF8ID is a key id that is not valid UTF-8: a vault must refuse it (it could be stored,
// then not read back through JSON metadata, which would stop retention and rotation).
const badUTF8ID = "dk1.\xff\xfe"

func kvInvalid(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	live := KeyAt("live", 1)
	mustPutKey(t, v, live)
	noID := KeyAt("", 1)
	noWrapped := KeyAt("nowrap", 1)
	noWrapped.Wrapped = nil
	emptyWrapped := KeyAt("emptywrap", 1)
	emptyWrapped.Wrapped = []byte{}
	badMeta := KeyAt("badmeta", 1)
	badMeta.Meta = []byte(`{"scope": "x"`)
	notUTF8 := KeyAt(badUTF8ID, 1)
	for _, c := range []struct {
		what string
		k    store.WrappedKey
	}{{"an empty id", noID}, {"an id that is not UTF-8", notUTF8}, {"nil wrapped bytes", noWrapped}, {"empty wrapped bytes", emptyWrapped}, {"metadata that is not JSON", badMeta}} {
		if err := v.PutKey(ctx, c.k); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("PutKey with %s: err = %v; want ErrInvalid", c.what, err)
		}
		if c.k.ID != "" && c.k.ID != badUTF8ID {
			if _, err := v.Key(ctx, c.k.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Key after PutKey with %s: err = %v; want ErrNotFound (nothing stored)", c.what, err)
			}
		}
	}
	for _, c := range []struct {
		what string
		edit func(k *store.WrappedKey)
	}{
		{"nil wrapped bytes", func(k *store.WrappedKey) { k.Wrapped = nil }},
		{"empty wrapped bytes", func(k *store.WrappedKey) { k.Wrapped = []byte{} }},
		{"metadata that is not JSON", func(k *store.WrappedKey) { k.Meta = []byte("not json") }},
	} {
		u := KeyAt("live", 2)
		c.edit(&u)
		if err := v.UpdateKey(ctx, u); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("UpdateKey with %s: err = %v; want ErrInvalid", c.what, err)
		}
		wantKey(t, v, live)
	}
	if err := v.UpdateKey(ctx, noID); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("UpdateKey with an empty id: err = %v; want ErrInvalid", err)
	}
	if err := v.UpdateKey(ctx, notUTF8); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateKey with an id that is not UTF-8: err = %v; want ErrInvalid or ErrNotFound", err)
	}
	if _, err := v.Key(ctx, badUTF8ID); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Key with an id that is not UTF-8: err = %v; want ErrInvalid or ErrNotFound", err)
	}
	if err := v.DestroyKey(ctx, badUTF8ID); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DestroyKey with an id that is not UTF-8: err = %v; want ErrInvalid or ErrNotFound", err)
	}
	if _, err := v.Key(ctx, ""); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Key with an empty id: err = %v; want ErrInvalid or ErrNotFound", err)
	}
	if err := v.DestroyKey(ctx, ""); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DestroyKey with an empty id: err = %v; want ErrInvalid or ErrNotFound", err)
	}
	wantKeys(t, v, live)
}

func kvCanceled(t *testing.T, v store.KeyVault) {
	live, gone := KeyAt("live", 1), KeyAt("gone", 1)
	mustPutKey(t, v, gone)
	mustPutKey(t, v, live)
	if err := v.DestroyKey(context.Background(), gone.ID); err != nil {
		t.Fatal(err)
	}
	gone.Destroyed = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.PutKey(ctx, KeyAt("new", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutKey with a canceled context: err = %v; want context.Canceled", err)
	}
	if _, err := v.Key(ctx, live.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("Key with a canceled context: err = %v; want context.Canceled", err)
	}
	if err := v.UpdateKey(ctx, KeyAt("live", 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("UpdateKey with a canceled context: err = %v; want context.Canceled", err)
	}
	if err := v.DestroyKey(ctx, live.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("DestroyKey with a canceled context: err = %v; want context.Canceled", err)
	}
	var errs int
	for _, err := range v.Keys(ctx) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Keys with a canceled context yielded %v; want context.Canceled", err)
			}
			errs++
			break
		}
	}
	if errs == 0 {
		t.Fatalf("Keys with a canceled context yielded no error")
	}
	if _, err := v.Key(context.Background(), "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Key after a canceled PutKey: err = %v; want ErrNotFound", err)
	}
	wantKeys(t, v, gone, live)
}

func kvConcurrent(t *testing.T, v store.KeyVault) {
	ctx := context.Background()
	const workers, perWorker = 4, 6
	var wg sync.WaitGroup
	errc := make(chan error, workers*4)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	// Workers on their own keys, and a reader listing all of them throughout.
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := fmt.Sprintf("w%d-%02d", w, i)
				if err := v.PutKey(ctx, KeyAt(id, 1)); err != nil {
					report(fmt.Errorf("PutKey(%q): %w", id, err))
					return
				}
				got, err := v.Key(ctx, id)
				if err != nil || SameKey(got, KeyAt(id, 1)) != "" {
					report(fmt.Errorf("Key(%q) right after PutKey: %v %s", id, err, SameKey(got, KeyAt(id, 1))))
					return
				}
				if err := v.UpdateKey(ctx, KeyAt(id, 2)); err != nil {
					report(fmt.Errorf("UpdateKey(%q): %w", id, err))
					return
				}
				if i%2 == 0 {
					if err := v.DestroyKey(ctx, id); err != nil {
						report(fmt.Errorf("DestroyKey(%q): %w", id, err))
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			prev := ""
			for k, err := range v.Keys(ctx) {
				if err != nil {
					report(fmt.Errorf("Keys during writes: %w", err))
					return
				}
				if k.ID <= prev && prev != "" {
					report(fmt.Errorf("Keys during writes yielded %q after %q", k.ID, prev))
					return
				}
				prev = k.ID
				if !k.Destroyed && SameKey(k, KeyAt(k.ID, 1)) != "" && SameKey(k, KeyAt(k.ID, 2)) != "" {
					report(fmt.Errorf("Keys during writes yielded %q in neither version", k.ID))
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	var want []store.WrappedKey
	for w := range workers {
		for i := range perWorker {
			k := KeyAt(fmt.Sprintf("w%d-%02d", w, i), 2)
			k.Destroyed = i%2 == 0
			want = append(want, k)
		}
	}
	wantKeys(t, v, want...)

	// Racing puts of one id: exactly one wins.
	var won, dup int
	var mu sync.Mutex
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := v.PutKey(ctx, KeyAt("contested", r+1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrDuplicate):
				dup++
			default:
				t.Errorf("racing PutKey: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || dup != 3 {
		t.Fatalf("4 racing PutKey of one id: %d succeeded, %d ErrDuplicate; want 1 and 3", won, dup)
	}

	// UpdateKey racing DestroyKey: whichever comes first, the key ends destroyed.
	for r := range 64 {
		id := fmt.Sprintf("race-%02d", r)
		mustPutKey(t, v, KeyAt(id, 1))
		var uerr, derr error
		wg.Add(2)
		go func() { defer wg.Done(); uerr = v.UpdateKey(ctx, KeyAt(id, 2)) }()
		go func() { defer wg.Done(); derr = v.DestroyKey(ctx, id) }()
		wg.Wait()
		if derr != nil || uerr != nil && !errors.Is(uerr, store.ErrDestroyed) {
			t.Fatalf("UpdateKey racing DestroyKey: update %v, destroy %v", uerr, derr)
		}
		if _, err := v.Key(ctx, id); !errors.Is(err, store.ErrDestroyed) {
			t.Fatalf("UpdateKey racing DestroyKey: Key afterwards: err = %v; want ErrDestroyed (an update must never revive a destroyed key)", err)
		}
	}
}
