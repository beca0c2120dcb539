package memstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}

func Example() {
	ctx := context.Background()
	s := memstore.New()
	defer s.Close()
	if err := s.Append(ctx, storetest.BatchAt(0, 3)); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := s.Size(ctx)
	last, found, _ := s.Lookup(ctx, storetest.EntryAt(2).Identity)
	fmt.Println(n, last, found)
	// Output: 3 2 true
}

func TestKeyVaultConformance(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault { return memstore.NewStorageView() })
}

// The zero KeyVault, which tests use without a view of its storage, keeps the contract too.
func TestZeroKeyVaultConformance(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault { return &memstore.KeyVault{} })
}
