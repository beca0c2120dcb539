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
	hc, _ := s.HashCount(ctx)
	fmt.Println(n, hc)
	// Output: 3 4
}

func TestKeyVaultConformance(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault { return &memstore.KeyVault{} })
}
