package filestore

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/commseal/commseal/store"
)

// BenchmarkOpen measures Open of a store of COMMSEAL_OPEN_N entries (default 100,000) of 300
// bytes, closed cleanly (index snapshot covers everything): one sequential read of the index
// file, no hashing.
func BenchmarkOpen(b *testing.B) {
	n := uint64(100_000)
	if v, err := strconv.ParseUint(os.Getenv("COMMSEAL_OPEN_N"), 10, 64); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	s := mustOpen(b, dir, nil)
	payload := make([]byte, 300)
	ctx := context.Background()
	const batch = 4096
	for i := uint64(0); i < n; i += batch {
		k := min(batch, n-i)
		bt := &store.Batch{}
		for j := range k {
			e := benchBatch(i+j, payload)
			bt.Entries = append(bt.Entries, e.Entries[0])
		}
		bt.Hashes = make([]store.Hash, store.StoredHashCount(i+k)-store.StoredHashCount(i))
		if err := s.Append(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s := mustOpen(b, dir, nil)
		if s.Recovery().Indexed != n {
			b.Fatalf("indexed %d of %d", s.Recovery().Indexed, n)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "entries")
}
