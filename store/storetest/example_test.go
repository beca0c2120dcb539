package storetest_test

import (
	"context"
	"fmt"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
)

// An adapter's test runs the whole suite with one call:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
//	}
//
// The suite's deterministic fixtures are exported for adapter-specific tests.
func Example() {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()
	b := storetest.BatchAt(0, 4)
	if err := s.Append(ctx, b); err != nil {
		fmt.Println(err)
		return
	}
	e, _ := store.ReadEntry(ctx, s, 2)
	fmt.Println(len(b.Hashes), e.Index, e.Identity == storetest.EntryAt(2).Identity)
	// Output: 7 2 true
}
