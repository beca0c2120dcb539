package pgstore

import (
	"testing"

	"github.com/commseal/commseal/store"
)

// FuzzEntryOf: stored hash k lives in the row of entry entryOf(k), the i with
// StoredHashCount(i) <= k < StoredHashCount(i+1), for every k a log can have.
func FuzzEntryOf(f *testing.F) {
	for _, k := range []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 1<<20 - 1, 1 << 20, 1<<62 - 1} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k int64) {
		if k < 0 || k >= 1<<62 {
			return
		}
		i := entryOf(k)
		if lo, hi := store.StoredHashCount(i), store.StoredHashCount(i+1); lo > k || k >= hi {
			t.Fatalf("entryOf(%d) = %d, whose stored hashes are [%d, %d)", k, i, lo, hi)
		}
	})
}

// TestEntryOfSmall checks entryOf against the layout built entry by entry.
func TestEntryOfSmall(t *testing.T) {
	k := int64(0)
	for i := uint64(0); i < 5000; i++ {
		for range store.StoredHashesFor(i) {
			if got := entryOf(k); got != i {
				t.Fatalf("entryOf(%d) = %d; want %d", k, got, i)
			}
			k++
		}
	}
}
