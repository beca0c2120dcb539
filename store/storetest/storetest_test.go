package storetest_test

import (
	"context"
	"errors"
	"iter"
	"os"
	"os/exec"
	"regexp"
	"slices"
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
)

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

var broken = map[string]func() store.Store{
	"wrong-sentinel": func() store.Store { return wrongSentinel{memstore.New()} },
	"lying-lookup":   func() store.Store { return lyingLookup{memstore.New()} },
	"aliased-blob":   func() store.Store { return aliasedBlob{memstore.New()} },
	"short-entries":  func() store.Store { return shortEntries{memstore.New()} },
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
		"wrong-sentinel": {"Log.Append/out-of-order", []string{"Log.Append/concurrent"}},
		"lying-lookup":   {"IdentityIndex/lookup", []string{"IdentityIndex/duplicate"}},
		"aliased-blob":   {"Blobs/read-back", []string{"Blobs/hash-mismatch"}},
		"short-entries":  {"Log/read-back", []string{"Log/copies", "Log.Entries/range", "Checkpoints/order", "Store/closed"}},
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
