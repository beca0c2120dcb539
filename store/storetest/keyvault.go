package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/commseal/commseal/store"
)

// RunKeyVault runs the conformance suite for store.KeyVault adapters as subtests of t, one per
// rule, named "KeyVault/rule". open must return a new, empty vault each time it is called, and
// release it when t ends (t.Cleanup). A rule stops at its first violation with a message "rule
// NAME broken: ..."; a rule whose premise failed is skipped, naming the rule it relies on.
//
//	KeyVault/round-trip           a put key reads back as put (wrapped bytes and KEK exactly,
//	                              metadata as the same JSON value), for ids with any UTF-8
//	KeyVault/copies               reads return copies; no write keeps a slice of the caller's
//	KeyVault/duplicate            a second put of an id, live or destroyed: ErrDuplicate,
//	                              nothing changes
//	KeyVault/not-found            an unknown id: ErrNotFound from Key, SetMeta, Rewrap,
//	                              DestroyKey, which create nothing
//	KeyVault/set-meta             SetMeta replaces the metadata and nothing else
//	KeyVault/rewrap               Rewrap replaces KEK and wrapped bytes and nothing else
//	KeyVault/destroy              a destroyed key: ErrDestroyed from Key (with its tombstone:
//	                              id, KEK, metadata, no wrapped bytes), SetMeta and Rewrap;
//	                              destroying again is harmless; Keys lists it as destroyed
//	KeyVault/keys-in-order        Keys yields every key in byte-wise id order; early stop
//	KeyVault/invalid              an empty or non-UTF-8 id, no KEK, no wrapped bytes, metadata
//	                              that is not JSON: ErrInvalid, nothing stored
//	KeyVault/context-done         a done context fails every method, which changes nothing
//	KeyVault/concurrent           concurrent use keeps every key whole, one of racing puts
//	                              wins, and no SetMeta or Rewrap revives a key DestroyKey
//	                              raced to destroy (run with -race)
//
// Three more rules need to see the vault's storage, which no call through store.KeyVault
// shows: they run when the vault open returns also implements VaultStorage, and are skipped
// otherwise.
//
//	KeyVault/written-once         wrapped bytes are written once: SetMeta and Rewrap write no
//	                              copy of a key's wrapped bytes
//	KeyVault/superseded-scrubbed  after Rewrap, the storage no longer holds the superseded
//	                              wrapped bytes
//	KeyVault/destroyed-scrubbed   after DestroyKey, the storage holds no wrapped bytes the key
//	                              ever had (and still holds the other keys')
//
// Wrapped bytes are looked for raw and in hex and base64, whichever way the vault encodes them.
func RunKeyVault(t *testing.T, open func(t *testing.T) store.KeyVault) {
	t.Helper()
	failed := map[string]bool{}
	for _, r := range keyVaultRules {
		unmet := false
		ok := t.Run(r.name, func(t *testing.T) {
			for _, n := range r.needs {
				if failed[n] {
					unmet = true
					t.Skipf("skipped: it relies on rule %s, which failed or could not be checked", n)
				}
			}
			v := open(t)
			if _, ok := v.(store.MetaUpdater); strings.HasPrefix(r.name, "MetaUpdater/") && !ok {
				t.Skipf("skipped: the vault does not implement the optional store.MetaUpdater")
			}
			c := &kvCheck{t: t, rule: r.name, v: v, ctx: context.Background()}
			if r.storage {
				vs, ok := v.(VaultStorage)
				if !ok {
					t.Skipf("skipped: the vault does not implement storetest.VaultStorage")
				}
				c.vs = vs
			}
			r.fn(c)
		})
		if !ok || unmet {
			failed[r.name] = true
		}
	}
}

// VaultStorage lets RunKeyVault see a vault's storage, for the rules that no call through
// store.KeyVault can show: wrapped bytes written once, and nothing superseded or destroyed
// left where the vault keeps keys. A vault's own test implements it on a wrapper that hooks
// the vault's writes (store/keydir's and store/memstore's tests do); embedding Writes gives it
// Written.
type VaultStorage interface {
	store.KeyVault
	// Written returns every byte string the vault wrote to its storage since it was opened, in
	// order: each file or record created or replaced, each overwrite.
	Written() [][]byte
	// Kept returns what the vault's storage holds now: the content of every file or record.
	Kept() ([][]byte, error)
}

// Writes is the Written half of a VaultStorage wrapper: it records what a vault writes and is
// safe for concurrent use. A vault's test embeds it in its wrapper and calls Record from the
// vault's write hook. The zero value is ready to use.
type Writes struct {
	mu   sync.Mutex
	seen [][]byte
}

// Record keeps a copy of b, one write to the vault's storage.
func (w *Writes) Record(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, bytes.Clone(b))
}

// Written implements VaultStorage: every byte string recorded, in order.
func (w *Writes) Written() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}

type kvRule struct {
	name    string
	needs   []string
	storage bool
	fn      func(*kvCheck)
}

var keyVaultRules = []kvRule{
	{name: "KeyVault/round-trip", fn: kvRoundTrip},
	{name: "KeyVault/copies", needs: []string{"KeyVault/round-trip"}, fn: kvCopies},
	{name: "KeyVault/duplicate", needs: []string{"KeyVault/round-trip", "KeyVault/destroy"}, fn: kvDuplicate},
	{name: "KeyVault/not-found", needs: []string{"KeyVault/round-trip"}, fn: kvNotFound},
	{name: "KeyVault/set-meta", needs: []string{"KeyVault/round-trip"}, fn: kvSetMeta},
	{name: "KeyVault/rewrap", needs: []string{"KeyVault/round-trip"}, fn: kvRewrap},
	{name: "KeyVault/destroy", needs: []string{"KeyVault/round-trip"}, fn: kvDestroy},
	{name: "KeyVault/keys-in-order", needs: []string{"KeyVault/round-trip", "KeyVault/destroy"}, fn: kvKeysInOrder},
	{name: "KeyVault/invalid", needs: []string{"KeyVault/round-trip"}, fn: kvInvalid},
	{name: "KeyVault/context-done", needs: []string{"KeyVault/round-trip", "KeyVault/destroy"}, fn: kvContextDone},
	{name: "KeyVault/concurrent", needs: []string{"KeyVault/set-meta", "KeyVault/rewrap", "KeyVault/destroy"}, fn: kvConcurrent},
	{name: "MetaUpdater/atomic", needs: []string{"KeyVault/set-meta", "KeyVault/destroy"}, fn: kvUpdateMeta},
	{name: "KeyVault/written-once", needs: []string{"KeyVault/set-meta", "KeyVault/rewrap"}, storage: true, fn: kvWrittenOnce},
	{name: "KeyVault/superseded-scrubbed", needs: []string{"KeyVault/rewrap"}, storage: true, fn: kvSupersededScrubbed},
	{name: "KeyVault/destroyed-scrubbed", needs: []string{"KeyVault/rewrap", "KeyVault/destroy"}, storage: true, fn: kvDestroyedScrubbed},
}

type kvCheck struct {
	t    *testing.T
	rule string
	ctx  context.Context
	v    store.KeyVault
	vs   VaultStorage // nil unless the rule needs the storage
}

func (c *kvCheck) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("rule %s broken: %s", c.rule, fmt.Sprintf(format, args...))
}

// KeyAt returns the deterministic key the suite stores under id: KEK name, wrapped bytes and
// metadata derived from id and version.
func KeyAt(id string, version int) store.WrappedKey {
	return store.WrappedKey{ID: id, KEK: fmt.Sprintf("kek-%d", version), Wrapped: WrappedAt(id, version), Meta: MetaAt(id, version)}
}

// WrappedAt returns the deterministic wrapped bytes of KeyAt(id, version): different for
// every id and version.
func WrappedAt(id string, version int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", version, id))
	wrapped := make([]byte, 40+len(id)%8)
	for k := range wrapped {
		wrapped[k] = h[k%len(h)] ^ byte(k*31)
	}
	return wrapped
}

// MetaAt returns the deterministic metadata of KeyAt(id, version).
func MetaAt(id string, version int) []byte {
	meta, _ := json.Marshal(map[string]any{"scope": id, "version": version, "note": "<&>"})
	return meta
}

// SameKey reports how got differs from want, or "" if it does not: the same id, KEK and
// wrapped bytes, metadata that is the same JSON value, and the same destroyed flag.
func SameKey(got, want store.WrappedKey) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("id %q, want %q", got.ID, want.ID)
	case got.KEK != want.KEK:
		return fmt.Sprintf("key %q: KEK %q, want %q", want.ID, got.KEK, want.KEK)
	case !bytes.Equal(got.Wrapped, want.Wrapped):
		return fmt.Sprintf("key %q: wrapped bytes differ (%d bytes, want %d)", want.ID, len(got.Wrapped), len(want.Wrapped))
	case got.Destroyed != want.Destroyed:
		return fmt.Sprintf("key %q: destroyed %v, want %v", want.ID, got.Destroyed, want.Destroyed)
	case !sameJSON(got.Meta, want.Meta):
		return fmt.Sprintf("key %q: meta %s, want %s", want.ID, got.Meta, want.Meta)
	}
	return ""
}

// Tombstone returns what a vault keeps of k once destroyed: id, KEK and metadata.
func Tombstone(k store.WrappedKey) store.WrappedKey {
	return store.WrappedKey{ID: k.ID, KEK: k.KEK, Meta: k.Meta, Destroyed: true}
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

func (c *kvCheck) put(k store.WrappedKey) {
	c.t.Helper()
	if err := c.v.PutKey(c.ctx, k); err != nil {
		c.fail("PutKey(%q): %v", k.ID, err)
	}
}

func (c *kvCheck) setMeta(id string, meta []byte) {
	c.t.Helper()
	if err := c.v.SetMeta(c.ctx, id, meta); err != nil {
		c.fail("SetMeta(%q): %v", id, err)
	}
}

func (c *kvCheck) rewrap(k store.WrappedKey) {
	c.t.Helper()
	if err := c.v.Rewrap(c.ctx, k.ID, k.KEK, k.Wrapped); err != nil {
		c.fail("Rewrap(%q): %v", k.ID, err)
	}
}

func (c *kvCheck) destroy(id string) {
	c.t.Helper()
	if err := c.v.DestroyKey(c.ctx, id); err != nil {
		c.fail("DestroyKey(%q): %v", id, err)
	}
}

// want checks that want.ID reads back as want: live, or destroyed with its tombstone.
func (c *kvCheck) want(want store.WrappedKey) {
	c.t.Helper()
	got, err := c.v.Key(c.ctx, want.ID)
	if want.Destroyed {
		if !errors.Is(err, store.ErrDestroyed) {
			c.fail("Key(%q) of a destroyed key: err = %v; want ErrDestroyed", want.ID, err)
		}
		if d := SameKey(got, want); d != "" {
			c.fail("Key(%q) of a destroyed key returns its tombstone (id, KEK, metadata, no wrapped bytes): %s", want.ID, d)
		}
		return
	}
	if err != nil {
		c.fail("Key(%q): %v", want.ID, err)
	}
	if d := SameKey(got, want); d != "" {
		c.fail("Key(%q): %s", want.ID, d)
	}
}

func (c *kvCheck) list() []store.WrappedKey {
	c.t.Helper()
	var ks []store.WrappedKey
	for k, err := range c.v.Keys(c.ctx) {
		if err != nil {
			c.fail("Keys: %v", err)
		}
		ks = append(ks, k)
	}
	return ks
}

// wantKeys checks that Keys yields exactly want, in order.
func (c *kvCheck) wantKeys(want ...store.WrappedKey) {
	c.t.Helper()
	got := c.list()
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for k := range got {
			ids[k] = got[k].ID
		}
		c.fail("Keys yielded %d keys %q; want %d", len(got), ids, len(want))
	}
	for k := range want {
		if d := SameKey(got[k], want[k]); d != "" {
			c.fail("Keys[%d]: %s", k, d)
		}
	}
}

func kvRoundTrip(c *kvCheck) {
	ids := []string{"dk-2026-09", "a/b", "..", "ключ", "with space", ".hidden", "x\x00y", "z", "鍵.2026-07"}
	var want []store.WrappedKey
	for _, id := range ids {
		k := KeyAt(id, 1)
		c.put(k)
		want = append(want, k)
	}
	noMeta := KeyAt("no-meta", 1)
	noMeta.Meta = nil
	c.put(noMeta)
	want = append(want, noMeta)
	for _, k := range want {
		c.want(k)
	}
	slices.SortFunc(want, func(a, b store.WrappedKey) int { return bytes.Compare([]byte(a.ID), []byte(b.ID)) })
	c.wantKeys(want...)
}

func kvCopies(c *kvCheck) {
	k := KeyAt("k", 1)
	in := store.WrappedKey{ID: k.ID, KEK: k.KEK, Wrapped: slices.Clone(k.Wrapped), Meta: slices.Clone(k.Meta)}
	c.put(in)
	clear(in.Wrapped) // the caller reuses its buffers
	in.Meta[0] = ' '
	c.want(k)
	got, err := c.v.Key(c.ctx, k.ID)
	if err != nil {
		c.fail("Key: %v", err)
	}
	clear(got.Wrapped)
	clear(got.Meta)
	for l, err := range c.v.Keys(c.ctx) {
		if err != nil {
			c.fail("Keys: %v", err)
		}
		clear(l.Wrapped)
		clear(l.Meta)
	}
	c.want(k)
	meta := MetaAt("k", 2)
	c.setMeta("k", meta)
	clear(meta)
	k.Meta = MetaAt("k", 2)
	c.want(k)
	w := WrappedAt("k", 3)
	if err := c.v.Rewrap(c.ctx, "k", "kek-3", w); err != nil {
		c.fail("Rewrap: %v", err)
	}
	clear(w)
	k.KEK, k.Wrapped = "kek-3", WrappedAt("k", 3)
	c.want(k)
}

func kvDuplicate(c *kvCheck) {
	live, gone := KeyAt("live", 1), KeyAt("gone", 1)
	c.put(live)
	c.put(gone)
	c.destroy(gone.ID)
	if err := c.v.PutKey(c.ctx, KeyAt("live", 2)); !errors.Is(err, store.ErrDuplicate) {
		c.fail("PutKey of a live id: err = %v; want ErrDuplicate", err)
	}
	c.want(live)
	if err := c.v.PutKey(c.ctx, KeyAt("gone", 2)); !errors.Is(err, store.ErrDuplicate) {
		c.fail("PutKey of a destroyed id: err = %v; want ErrDuplicate (a destroyed key must stay destroyed)", err)
	}
	c.want(Tombstone(gone))
	c.wantKeys(Tombstone(gone), live)
}

func kvNotFound(c *kvCheck) {
	c.put(KeyAt("known", 1))
	if _, err := c.v.Key(c.ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		c.fail("Key of an unknown id: err = %v; want ErrNotFound", err)
	}
	if err := c.v.SetMeta(c.ctx, "unknown", MetaAt("unknown", 1)); !errors.Is(err, store.ErrNotFound) {
		c.fail("SetMeta of an unknown id: err = %v; want ErrNotFound", err)
	}
	if err := c.v.Rewrap(c.ctx, "unknown", "kek-2", WrappedAt("unknown", 2)); !errors.Is(err, store.ErrNotFound) {
		c.fail("Rewrap of an unknown id: err = %v; want ErrNotFound", err)
	}
	if err := c.v.DestroyKey(c.ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		c.fail("DestroyKey of an unknown id: err = %v; want ErrNotFound", err)
	}
	if _, err := c.v.Key(c.ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
		c.fail("Key after SetMeta, Rewrap and DestroyKey of an unknown id: err = %v; want ErrNotFound (they must create nothing)", err)
	}
	c.wantKeys(KeyAt("known", 1))
}

func kvSetMeta(c *kvCheck) {
	k, other := KeyAt("k", 1), KeyAt("other", 1)
	c.put(k)
	c.put(other)
	for version := 2; version <= 4; version++ {
		k.Meta = MetaAt("k", version)
		if version == 4 {
			k.Meta = nil // metadata may be dropped
		}
		c.setMeta("k", k.Meta)
		c.want(k)
		c.wantKeys(k, other)
	}
	c.want(other)
}

func kvUpdateMeta(c *kvCheck) {
	u := c.v.(store.MetaUpdater)
	k := KeyAt("k", 1)
	k.Meta = []byte(`[]`)
	c.put(k)
	// Writers each add their own items at once: none is lost.
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for n := range each {
				errs <- u.UpdateMeta(c.ctx, "k", func(meta []byte) ([]byte, error) {
					var items []string
					if err := json.Unmarshal(meta, &items); err != nil {
						return nil, err
					}
					return json.Marshal(append(items, fmt.Sprint(w, "-", n)))
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			c.fail("UpdateMeta from %d writers at once: %v", writers, err)
		}
	}
	got, err := c.v.Key(c.ctx, "k")
	if err != nil {
		c.fail("Key: %v", err)
	}
	var items []string
	if err := json.Unmarshal(got.Meta, &items); err != nil || len(items) != writers*each {
		c.fail("after %d updates at once the metadata holds %d items (%v): updates undid each other", writers*each, len(items), err)
	}
	// An error from update changes nothing; an update of a destroyed or absent key fails.
	boom := errors.New("update refused")
	if err := u.UpdateMeta(c.ctx, "k", func([]byte) ([]byte, error) { return []byte(`["x"]`), boom }); !errors.Is(err, boom) {
		c.fail("an update that failed: err = %v; want its error", err)
	}
	if again, _ := c.v.Key(c.ctx, "k"); !bytes.Equal(again.Meta, got.Meta) {
		c.fail("an update that failed changed the metadata")
	}
	if err := u.UpdateMeta(c.ctx, "absent", func(m []byte) ([]byte, error) { return m, nil }); !errors.Is(err, store.ErrNotFound) {
		c.fail("UpdateMeta of an absent key: err = %v; want ErrNotFound", err)
	}
	if err := c.v.DestroyKey(c.ctx, "k"); err != nil {
		c.fail("DestroyKey: %v", err)
	}
	if err := u.UpdateMeta(c.ctx, "k", func(m []byte) ([]byte, error) { return m, nil }); !errors.Is(err, store.ErrDestroyed) {
		c.fail("UpdateMeta of a destroyed key: err = %v; want ErrDestroyed", err)
	}
}

func kvRewrap(c *kvCheck) {
	k, other := KeyAt("k", 1), KeyAt("other", 1)
	c.put(k)
	c.put(other)
	for version := 2; version <= 4; version++ {
		n := KeyAt("k", version)
		k.KEK, k.Wrapped = n.KEK, n.Wrapped
		c.rewrap(k)
		c.want(k)
		c.wantKeys(k, other)
	}
	k.KEK = "kek-4" // the same KEK again: a new wrapping all the same
	k.Wrapped = WrappedAt("k", 5)
	c.rewrap(k)
	c.want(k)
	c.want(other)
}

func kvDestroy(c *kvCheck) {
	a, b, d := KeyAt("a", 1), KeyAt("b", 1), KeyAt("d", 1)
	for _, k := range []store.WrappedKey{a, b, d} {
		c.put(k)
	}
	c.destroy("b")
	c.want(Tombstone(b))
	if err := c.v.SetMeta(c.ctx, "b", MetaAt("b", 2)); !errors.Is(err, store.ErrDestroyed) {
		c.fail("SetMeta of a destroyed key: err = %v; want ErrDestroyed", err)
	}
	if err := c.v.Rewrap(c.ctx, "b", "kek-2", WrappedAt("b", 2)); !errors.Is(err, store.ErrDestroyed) {
		c.fail("Rewrap of a destroyed key: err = %v; want ErrDestroyed", err)
	}
	c.want(Tombstone(b))
	for range 2 {
		if err := c.v.DestroyKey(c.ctx, "b"); err != nil {
			c.fail("DestroyKey of a destroyed key: %v; want nil (harmless)", err)
		}
	}
	// A key whose wrapping and metadata changed keeps the last of both in its tombstone.
	d.KEK, d.Wrapped, d.Meta = "kek-3", WrappedAt("d", 3), MetaAt("d", 4)
	c.rewrap(d)
	c.setMeta("d", d.Meta)
	c.destroy("d")
	c.want(Tombstone(d))
	c.want(a)
	c.wantKeys(a, Tombstone(b), Tombstone(d))
}

func kvKeysInOrder(c *kvCheck) {
	ids := []string{"m", "b", "zz", "a", "ab", "B", "z", "aa", "é", "0", "~"}
	for _, id := range ids {
		c.put(KeyAt(id, 1))
	}
	for _, id := range []string{"ab", "0"} {
		c.destroy(id)
	}
	slices.Sort(ids) // Go string order is byte order
	var want []store.WrappedKey
	for _, id := range ids {
		k := KeyAt(id, 1)
		if id == "ab" || id == "0" {
			k = Tombstone(k)
		}
		want = append(want, k)
	}
	c.wantKeys(want...)
	n := 0
	for _, err := range c.v.Keys(c.ctx) {
		if err != nil {
			c.fail("Keys: %v", err)
		}
		if n++; n == 3 {
			break
		}
	}
	c.put(KeyAt("after", 1))
	c.want(KeyAt("after", 1))
}

// badUTF8ID is a key id that is not valid UTF-8: a vault must refuse it (it could be stored,
// then not read back through JSON metadata, which would stop retention and rotation).
const badUTF8ID = "dk1.\xff\xfe"

func kvInvalid(c *kvCheck) {
	live := KeyAt("live", 1)
	c.put(live)
	edit := func(id string, f func(k *store.WrappedKey)) store.WrappedKey {
		k := KeyAt(id, 1)
		f(&k)
		return k
	}
	for _, bad := range []struct {
		what string
		k    store.WrappedKey
	}{
		{"an empty id", KeyAt("", 1)},
		{"an id that is not UTF-8", KeyAt(badUTF8ID, 1)},
		{"no KEK", edit("nokek", func(k *store.WrappedKey) { k.KEK = "" })},
		{"nil wrapped bytes", edit("nowrap", func(k *store.WrappedKey) { k.Wrapped = nil })},
		{"empty wrapped bytes", edit("emptywrap", func(k *store.WrappedKey) { k.Wrapped = []byte{} })},
		{"metadata that is not JSON", edit("badmeta", func(k *store.WrappedKey) { k.Meta = []byte(`{"scope": "x"`) })},
	} {
		if err := c.v.PutKey(c.ctx, bad.k); !errors.Is(err, store.ErrInvalid) {
			c.fail("PutKey with %s: err = %v; want ErrInvalid", bad.what, err)
		}
		if _, err := c.v.Key(c.ctx, bad.k.ID); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
			c.fail("Key after PutKey with %s: err = %v; want ErrNotFound (nothing stored)", bad.what, err)
		}
	}
	if err := c.v.SetMeta(c.ctx, "live", []byte("not json")); !errors.Is(err, store.ErrInvalid) {
		c.fail("SetMeta with metadata that is not JSON: err = %v; want ErrInvalid", err)
	}
	if err := c.v.Rewrap(c.ctx, "live", "", WrappedAt("live", 2)); !errors.Is(err, store.ErrInvalid) {
		c.fail("Rewrap without a KEK: err = %v; want ErrInvalid", err)
	}
	for _, w := range [][]byte{nil, {}} {
		if err := c.v.Rewrap(c.ctx, "live", "kek-2", w); !errors.Is(err, store.ErrInvalid) {
			c.fail("Rewrap without wrapped bytes: err = %v; want ErrInvalid", err)
		}
	}
	c.want(live)
	for _, id := range []string{"", badUTF8ID} {
		if err := c.v.SetMeta(c.ctx, id, nil); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
			c.fail("SetMeta with id %q: err = %v; want ErrInvalid or ErrNotFound", id, err)
		}
		if err := c.v.Rewrap(c.ctx, id, "kek-2", WrappedAt("x", 2)); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
			c.fail("Rewrap with id %q: err = %v; want ErrInvalid or ErrNotFound", id, err)
		}
		if _, err := c.v.Key(c.ctx, id); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
			c.fail("Key with id %q: err = %v; want ErrInvalid or ErrNotFound", id, err)
		}
		if err := c.v.DestroyKey(c.ctx, id); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
			c.fail("DestroyKey with id %q: err = %v; want ErrInvalid or ErrNotFound", id, err)
		}
	}
	c.wantKeys(live)
}

func kvContextDone(c *kvCheck) {
	live, gone := KeyAt("live", 1), KeyAt("gone", 1)
	c.put(gone)
	c.put(live)
	c.destroy(gone.ID)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.v.PutKey(ctx, KeyAt("new", 1)); !errors.Is(err, context.Canceled) {
		c.fail("PutKey with a canceled context: err = %v; want context.Canceled", err)
	}
	if _, err := c.v.Key(ctx, live.ID); !errors.Is(err, context.Canceled) {
		c.fail("Key with a canceled context: err = %v; want context.Canceled", err)
	}
	if err := c.v.SetMeta(ctx, live.ID, MetaAt("live", 2)); !errors.Is(err, context.Canceled) {
		c.fail("SetMeta with a canceled context: err = %v; want context.Canceled", err)
	}
	if err := c.v.Rewrap(ctx, live.ID, "kek-2", WrappedAt("live", 2)); !errors.Is(err, context.Canceled) {
		c.fail("Rewrap with a canceled context: err = %v; want context.Canceled", err)
	}
	if err := c.v.DestroyKey(ctx, live.ID); !errors.Is(err, context.Canceled) {
		c.fail("DestroyKey with a canceled context: err = %v; want context.Canceled", err)
	}
	errs := 0
	for _, err := range c.v.Keys(ctx) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				c.fail("Keys with a canceled context yielded %v; want context.Canceled", err)
			}
			errs++
			break
		}
	}
	if errs == 0 {
		c.fail("Keys with a canceled context yielded no error")
	}
	if _, err := c.v.Key(c.ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		c.fail("Key after a canceled PutKey: err = %v; want ErrNotFound", err)
	}
	c.wantKeys(Tombstone(gone), live)
}

func kvConcurrent(c *kvCheck) {
	const workers, perWorker = 4, 6
	var wg sync.WaitGroup
	errc := make(chan string, workers*4)
	report := func(format string, args ...any) {
		select {
		case errc <- fmt.Sprintf(format, args...):
		default:
		}
	}
	final := func(id string) store.WrappedKey {
		k := KeyAt(id, 2)
		k.Meta = MetaAt(id, 3)
		return k
	}
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("w%d-%02d", w, i)
				if err := c.v.PutKey(c.ctx, KeyAt(id, 1)); err != nil {
					report("PutKey(%q): %v", id, err)
					return
				}
				got, err := c.v.Key(c.ctx, id)
				if err != nil || SameKey(got, KeyAt(id, 1)) != "" {
					report("Key(%q) right after PutKey: %v %s", id, err, SameKey(got, KeyAt(id, 1)))
					return
				}
				k := final(id)
				if err := c.v.Rewrap(c.ctx, id, k.KEK, k.Wrapped); err != nil {
					report("Rewrap(%q): %v", id, err)
					return
				}
				if err := c.v.SetMeta(c.ctx, id, k.Meta); err != nil {
					report("SetMeta(%q): %v", id, err)
					return
				}
				if i%2 == 0 {
					if err := c.v.DestroyKey(c.ctx, id); err != nil {
						report("DestroyKey(%q): %v", id, err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			prev := ""
			for k, err := range c.v.Keys(c.ctx) {
				if err != nil {
					report("Keys during writes: %v", err)
					return
				}
				if k.ID <= prev && prev != "" {
					report("Keys during writes yielded %q after %q", k.ID, prev)
					return
				}
				prev = k.ID
				if k.Destroyed {
					continue
				}
				whole := false
				for _, v := range []int{1, 2} {
					if w := KeyAt(k.ID, v); k.KEK == w.KEK && bytes.Equal(k.Wrapped, w.Wrapped) {
						whole = true
					}
				}
				if !whole {
					report("Keys during writes yielded %q with a KEK and wrapped bytes of no one wrapping", k.ID)
					return
				}
			}
		}
	})
	wg.Wait()
	close(errc)
	for msg := range errc {
		c.fail("%s", msg)
	}
	var want []store.WrappedKey
	for w := range workers {
		for i := range perWorker {
			k := final(fmt.Sprintf("w%d-%02d", w, i))
			if i%2 == 0 {
				k = Tombstone(k)
			}
			want = append(want, k)
		}
	}
	c.wantKeys(want...)

	// Racing puts of one id: exactly one wins.
	var won, dup int
	var mu sync.Mutex
	for r := range 4 {
		wg.Go(func() {
			err := c.v.PutKey(c.ctx, KeyAt("contested", r+1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrDuplicate):
				dup++
			default:
				c.t.Errorf("rule %s broken: racing PutKey: %v", c.rule, err)
			}
		})
	}
	wg.Wait()
	if won != 1 || dup != 3 {
		c.fail("4 racing PutKey of one id: %d succeeded, %d ErrDuplicate; want 1 and 3", won, dup)
	}

	// SetMeta and Rewrap racing DestroyKey: whichever comes first, the key ends destroyed.
	for r := range 32 {
		id := fmt.Sprintf("race-%02d", r)
		c.put(KeyAt(id, 1))
		var merr, rerr, derr error
		wg.Go(func() { merr = c.v.SetMeta(c.ctx, id, MetaAt(id, 2)) })
		wg.Go(func() { rerr = c.v.Rewrap(c.ctx, id, "kek-2", WrappedAt(id, 2)) })
		wg.Go(func() { derr = c.v.DestroyKey(c.ctx, id) })
		wg.Wait()
		if derr != nil || merr != nil && !errors.Is(merr, store.ErrDestroyed) || rerr != nil && !errors.Is(rerr, store.ErrDestroyed) {
			c.fail("SetMeta and Rewrap racing DestroyKey: set-meta %v, rewrap %v, destroy %v", merr, rerr, derr)
		}
		if k, err := c.v.Key(c.ctx, id); !errors.Is(err, store.ErrDestroyed) || k.Wrapped != nil {
			c.fail("SetMeta and Rewrap racing DestroyKey: Key afterwards: err = %v, %d wrapped bytes; want ErrDestroyed (nothing revives a destroyed key)", err, len(k.Wrapped))
		}
	}
}

// encodings are the forms in which the storage rules look for wrapped bytes.
var encodings = []func([]byte) string{
	func(b []byte) string { return string(b) },
	hex.EncodeToString,
	base64.StdEncoding.EncodeToString,
	base64.RawStdEncoding.EncodeToString,
	base64.URLEncoding.EncodeToString,
	base64.RawURLEncoding.EncodeToString,
}

// holds reports whether b holds w in one of the encodings.
func holds(b, w []byte) bool {
	for _, enc := range encodings {
		if bytes.Contains(b, []byte(enc(w))) {
			return true
		}
	}
	return false
}

// count returns how many of bs hold w.
func count(bs [][]byte, w []byte) int {
	n := 0
	for _, b := range bs {
		if holds(b, w) {
			n++
		}
	}
	return n
}

func (c *kvCheck) kept() [][]byte {
	c.t.Helper()
	k, err := c.vs.Kept()
	if err != nil {
		c.fail("Kept: %v", err)
	}
	return k
}

func kvWrittenOnce(c *kvCheck) {
	k := KeyAt("once", 1)
	c.put(k)
	c.put(KeyAt("neighbour", 1))
	for v := 2; v <= 4; v++ {
		c.setMeta("once", MetaAt("once", v))
	}
	n := KeyAt("once", 5)
	c.rewrap(n)
	for v := 6; v <= 7; v++ {
		c.setMeta("once", MetaAt("once", v))
	}
	c.setMeta("neighbour", MetaAt("neighbour", 2))
	written := c.vs.Written()
	for _, w := range []store.WrappedKey{k, n} {
		if got := count(written, w.Wrapped); got != 1 {
			c.fail("the wrapped bytes of %q under %s were written %d times, want once: every copy is one more place a destroyed key can be read back from", w.ID, w.KEK, got)
		}
	}
}

func kvSupersededScrubbed(c *kvCheck) {
	versions := []store.WrappedKey{KeyAt("k", 1), KeyAt("k", 2), KeyAt("k", 3)}
	c.put(versions[0])
	for i := 1; i < len(versions); i++ {
		c.rewrap(versions[i])
		kept := c.kept()
		if count(kept, versions[i].Wrapped) == 0 {
			c.fail("after Rewrap, the storage does not hold the new wrapped bytes: Kept shows nothing (the check would prove nothing)")
		}
		for _, old := range versions[:i] {
			if count(kept, old.Wrapped) > 0 {
				c.fail("after Rewrap under %s, the storage still holds the wrapped bytes under %s", versions[i].KEK, old.KEK)
			}
		}
	}
}

func kvDestroyedScrubbed(c *kvCheck) {
	versions := []store.WrappedKey{KeyAt("doomed", 1), KeyAt("doomed", 2)}
	keep := KeyAt("kept", 1)
	c.put(versions[0])
	c.put(keep)
	c.rewrap(versions[1])
	c.setMeta("doomed", MetaAt("doomed", 3))
	c.destroy("doomed")
	kept := c.kept()
	for _, v := range versions {
		if count(kept, v.Wrapped) > 0 {
			c.fail("after DestroyKey, the storage still holds the key's wrapped bytes under %s", v.KEK)
		}
	}
	if count(kept, keep.Wrapped) == 0 {
		c.fail("after DestroyKey of one key, the storage no longer holds another key's wrapped bytes")
	}
}
