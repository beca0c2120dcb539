package filestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/storetest"
)

func TestConformance(t *testing.T) {
	base := t.TempDir()
	storetest.RunPersistent(t, func(t *testing.T, name string) store.Store {
		s, err := Open(context.Background(), filepath.Join(base, name), &Options{SegmentSize: 64 << 10, FlushEvery: 100})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
