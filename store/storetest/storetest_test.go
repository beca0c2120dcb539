package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
)

// Broken stores, each breaking one rule of the contract.
type (
	wrongSentinel struct{ *memstore.Store } // ErrInvalid where ErrOutOfOrder is due
	lyingLookup   struct{ *memstore.Store } // finds identities that were never stored
	aliasedBlob   struct{ *memstore.Store } // ReadBlob hands out the stored slice
	shortEntries  struct{ *memstore.Store } // Entries drops the last entry
	lastClaimWins struct {                  // Claim records every owner it is given
		*memstore.Store
		owner *string
	}
)

func (s lastClaimWins) Claim(ctx context.Context, owner string) (string, error) {
	if err := store.CheckOwner(owner); err != nil {
		return "", err
	}
	*s.owner = owner // Owner/concurrent, which would race here, is skipped after Owner/claim fails
	return owner, ctx.Err()
}

func (s wrongSentinel) Append(ctx context.Context, b *store.Batch) error {
	err := s.Store.Append(ctx, b)
	if errors.Is(err, store.ErrOutOfOrder) {
		return store.ErrInvalid
	}
	return err
}

func (s lyingLookup) Lookup(ctx context.Context, id store.Hash) (uint64, bool, error) {
	i, ok, err := s.Store.Lookup(ctx, id)
	if !ok && err == nil && id != (store.Hash{}) {
		return 0, true, nil
	}
	return i, ok, err
}

func (s aliasedBlob) ReadBlob(ctx context.Context, sum store.Hash) ([]byte, error) {
	b, err := s.Store.ReadBlob(ctx, sum)
	if err != nil {
		return nil, err
	}
	if keep, ok := aliases[sum]; ok {
		return keep, nil
	}
	aliases[sum] = b
	return b, nil
}

var aliases = map[store.Hash][]byte{} // one subprocess, one goroutine: fine in this test

func (s shortEntries) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		size, _ := s.Store.Size(ctx)
		for e, err := range s.Store.Entries(ctx, start, end) {
			if err == nil && size > 1 && e.Index == size-1 {
				return
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// readerStore is memstore with an EntryReader written from its contract (memstore itself has
// none: tests embed it to tamper with Entries, which a ReadEntries would bypass).
type readerStore struct{ *memstore.Store }

func (s readerStore) ReadEntries(ctx context.Context, start, end uint64, dst []store.Entry, buf []byte) ([]store.Entry, []byte, error) {
	dst, buf = dst[:0], buf[:0]
	var read []store.Entry
	var err error
	n := 0
	for e, e2 := range s.Entries(ctx, start, end) {
		if err = e2; err != nil {
			break
		}
		read = append(read, e)
		n += len(e.Leaf) + len(e.Payload)
	}
	buf = slices.Grow(buf, n) // once, so that no entry's bytes move after they are sliced
	for _, e := range read {
		at := len(buf)
		buf = append(append(buf, e.Leaf...), e.Payload...)
		e.Leaf = buf[at : at+len(e.Leaf) : at+len(e.Leaf)]
		e.Payload = buf[at+len(e.Leaf) : len(buf) : len(buf)]
		dst = append(dst, e)
	}
	return dst, buf, err
}

// Broken entry readers.
type (
	shortRead   struct{ readerStore } // ReadEntries drops the last entry
	aliasedRead struct{ readerStore } // ReadEntries hands out leaves outside the buffer
)

func (s shortRead) ReadEntries(ctx context.Context, start, end uint64, dst []store.Entry, buf []byte) ([]store.Entry, []byte, error) {
	dst, buf, err := s.readerStore.ReadEntries(ctx, start, end, dst, buf)
	if len(dst) > 1 {
		dst = dst[:len(dst)-1]
	}
	return dst, buf, err
}

func (s aliasedRead) ReadEntries(ctx context.Context, start, end uint64, dst []store.Entry, buf []byte) ([]store.Entry, []byte, error) {
	dst, buf, err := s.readerStore.ReadEntries(ctx, start, end, dst, buf)
	for i := range dst {
		dst[i].Leaf = slices.Clone(dst[i].Leaf)
	}
	return dst, buf, err
}

func TestReaderStoreKeepsTheContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return readerStore{memstore.New()} })
}

var broken = map[string]func() store.Store{
	"wrong-sentinel":  func() store.Store { return wrongSentinel{memstore.New()} },
	"lying-lookup":    func() store.Store { return lyingLookup{memstore.New()} },
	"aliased-blob":    func() store.Store { return aliasedBlob{memstore.New()} },
	"short-entries":   func() store.Store { return shortEntries{memstore.New()} },
	"short-read":      func() store.Store { return shortRead{readerStore{memstore.New()}} },
	"aliased-read":    func() store.Store { return aliasedRead{readerStore{memstore.New()}} },
	"last-claim-wins": func() store.Store { return lastClaimWins{memstore.New(), new(string)} },
}

// TestBrokenStore runs the suite on the broken store named by STORETEST_BROKEN; it is run as a
// subprocess by TestSuiteNamesTheBrokenRuleOnce.
func TestBrokenStore(t *testing.T) {
	open, ok := broken[os.Getenv("STORETEST_BROKEN")]
	if !ok {
		t.Skip("run by TestSuiteNamesTheBrokenRuleOnce")
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open() })
}

func TestSuiteNamesTheBrokenRuleOnce(t *testing.T) {
	failLine := regexp.MustCompile(`--- FAIL: TestBrokenStore/(\S+)`)
	skipLine := regexp.MustCompile(`--- SKIP: TestBrokenStore/(\S+)`)
	for name, want := range map[string]struct {
		fails   string
		skipped []string // rules skipped because they rely on the broken one
	}{
		"wrong-sentinel":  {"Log.Append/out-of-order", []string{"Log.Append/concurrent"}},
		"lying-lookup":    {"IdentityIndex/lookup", []string{"IdentityIndex/duplicate"}},
		"aliased-blob":    {"Blobs/read-back", []string{"Blobs/hash-mismatch"}},
		"short-entries":   {"Log/read-back", []string{"Log/copies", "Log.Entries/range", "Checkpoints/order", "Store/closed"}},
		"short-read":      {"EntryReader/same-as-Entries", []string{"EntryReader/buffers", "EntryReader/failures"}},
		"aliased-read":    {"EntryReader/buffers", nil},
		"last-claim-wins": {"Owner/claim", []string{"Owner/concurrent"}},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store that breaks %s:\n%s", want.fails, out)
			}
			var fails, skips []string
			for _, m := range failLine.FindAllStringSubmatch(string(out), -1) {
				fails = append(fails, m[1])
			}
			for _, m := range skipLine.FindAllStringSubmatch(string(out), -1) {
				skips = append(skips, m[1])
			}
			if len(fails) != 1 || fails[0] != want.fails {
				t.Fatalf("failed rules %v; want exactly [%s]:\n%s", fails, want.fails, out)
			}
			if !regexp.MustCompile(`rule ` + regexp.QuoteMeta(want.fails) + ` broken: `).Match(out) {
				t.Errorf("the failure message does not name the rule:\n%s", out)
			}
			for _, r := range want.skipped {
				if !slices.Contains(skips, r) {
					t.Errorf("rule %s, which relies on %s, was not skipped (skipped: %v)", r, want.fails, skips)
				}
			}
		})
	}
}

// fileVault is a key vault over an in-memory "file system" (name -> content), built the way a
// vault must be: a write-once record per wrapping, metadata apart, records zeroed before they
// are dropped. Each flaw breaks one rule that only the storage shows.
type fileVault struct {
	flaw    string
	mu      sync.Mutex
	files   map[string][]byte
	meta    map[string][]byte
	kek     map[string]string
	rec     map[string]int // current record number; -1 destroyed
	written [][]byte
}

func newFileVault(flaw string) *fileVault {
	return &fileVault{flaw: flaw, files: map[string][]byte{}, meta: map[string][]byte{}, kek: map[string]string{}, rec: map[string]int{}}
}

func (v *fileVault) write(name string, b []byte) {
	v.written = append(v.written, slices.Clone(b))
	v.files[name] = slices.Clone(b)
}

func (v *fileVault) drop(name string) {
	clear(v.files[name])
	delete(v.files, name)
}

func recName(id string, n int) string { return fmt.Sprintf("%s.%d", id, n) }

func (v *fileVault) check(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return store.CheckKeyID(id)
}

func (v *fileVault) live(id string) error {
	switch n, ok := v.rec[id]; {
	case !ok:
		return store.ErrNotFound
	case n < 0:
		return store.ErrDestroyed
	}
	return nil
}

func (v *fileVault) PutKey(ctx context.Context, k store.WrappedKey) error {
	if err := v.check(ctx, k.ID); err != nil {
		return err
	}
	if err := store.CheckWrappedKey(k); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.rec[k.ID]; ok {
		return store.ErrDuplicate
	}
	v.write(recName(k.ID, 1), k.Wrapped)
	v.rec[k.ID], v.kek[k.ID], v.meta[k.ID] = 1, k.KEK, slices.Clone(k.Meta)
	return nil
}

func (v *fileVault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := v.check(ctx, id); err != nil {
		return store.WrappedKey{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.live(id)
	if errors.Is(err, store.ErrNotFound) {
		return store.WrappedKey{}, err
	}
	k := store.WrappedKey{ID: id, KEK: v.kek[id], Meta: slices.Clone(v.meta[id]), Destroyed: err != nil}
	if err == nil {
		k.Wrapped = slices.Clone(v.files[recName(id, v.rec[id])])
	}
	return k, err
}

func (v *fileVault) SetMeta(ctx context.Context, id string, meta []byte) error {
	if err := v.check(ctx, id); err != nil {
		return err
	}
	if err := store.CheckMeta(id, meta); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.live(id); err != nil {
		return err
	}
	v.meta[id] = slices.Clone(meta)
	if v.flaw == "rewrites-on-set-meta" { // one file per key, replaced whole (the old keydir)
		v.write(recName(id, v.rec[id]), v.files[recName(id, v.rec[id])])
	}
	return nil
}

func (v *fileVault) Rewrap(ctx context.Context, id, kek string, wrapped []byte) error {
	if err := v.check(ctx, id); err != nil {
		return err
	}
	if err := store.CheckWrapping(id, kek, wrapped); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.live(id); err != nil {
		return err
	}
	old := v.rec[id]
	v.write(recName(id, old+1), wrapped)
	v.rec[id], v.kek[id] = old+1, kek
	if v.flaw != "keeps-superseded" {
		v.drop(recName(id, old))
	}
	return nil
}

func (v *fileVault) DestroyKey(ctx context.Context, id string) error {
	if err := v.check(ctx, id); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.rec[id]
	if !ok {
		return store.ErrNotFound
	}
	for r := n; r > 0 && v.flaw != "keeps-destroyed"; r-- {
		v.drop(recName(id, r)) // with the flaw keeps-superseded, older records are there too
	}
	v.rec[id] = -1
	return nil
}

func (v *fileVault) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return func(yield func(store.WrappedKey, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(store.WrappedKey{}, err)
			return
		}
		v.mu.Lock()
		ids := slices.Sorted(maps.Keys(v.rec))
		v.mu.Unlock()
		for _, id := range ids {
			k, err := v.Key(ctx, id)
			if errors.Is(err, store.ErrDestroyed) {
				err = nil
			}
			if !yield(k, err) || err != nil {
				return
			}
		}
	}
}

func (v *fileVault) Written() [][]byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.written)
}

func (v *fileVault) Kept() ([][]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Collect(maps.Values(v.files)), nil
}

func TestFileVaultKeepsTheContract(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault { return newFileVault("") })
}

// TestBrokenVault runs the key vault suite on the broken vault named by STORETEST_BROKEN_VAULT;
// it is run as a subprocess by TestVaultSuiteNamesTheBrokenRuleOnce.
func TestBrokenVault(t *testing.T) {
	flaw := os.Getenv("STORETEST_BROKEN_VAULT")
	if flaw == "" {
		t.Skip("run by TestVaultSuiteNamesTheBrokenRuleOnce")
	}
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault { return newFileVault(flaw) })
}

func TestVaultSuiteNamesTheBrokenRuleOnce(t *testing.T) {
	failLine := regexp.MustCompile(`--- FAIL: TestBrokenVault/(\S+)`)
	for flaw, want := range map[string]string{
		"rewrites-on-set-meta": "KeyVault/written-once",
		"keeps-superseded":     "KeyVault/superseded-scrubbed",
		"keeps-destroyed":      "KeyVault/destroyed-scrubbed",
	} {
		t.Run(flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenVault$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "STORETEST_BROKEN_VAULT="+flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a vault that breaks %s:\n%s", want, out)
			}
			var fails []string
			for _, m := range failLine.FindAllStringSubmatch(string(out), -1) {
				fails = append(fails, m[1])
			}
			if len(fails) != 1 || fails[0] != want {
				t.Fatalf("failed rules %v; want exactly [%s]:\n%s", fails, want, out)
			}
			if !regexp.MustCompile(`rule ` + regexp.QuoteMeta(want) + ` broken: `).Match(out) {
				t.Errorf("the failure message does not name the rule:\n%s", out)
			}
		})
	}
}
