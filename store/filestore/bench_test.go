package filestore

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

// benchEntry is a 300-byte entry with a unique identity and one of 1000 conversations.
func benchBatch(i uint64, payload []byte) *store.Batch {
	e := store.Entry{Index: i, Payload: payload}
	binary.LittleEndian.PutUint64(e.Identity[:], i+1)
	e.Identity[31] = 1
	binary.LittleEndian.PutUint64(e.Conversation[:], i%1000+1)
	return &store.Batch{Entries: []store.Entry{e}, Hashes: make([]store.Hash, store.StoredHashesFor(i))}
}

// BenchmarkDurableAppend: 64 writers, each appending one 300-byte entry at a time and waiting
// until it is durable, all through the group committer. Reports entries/s, syncs/s and the
// commit latency percentiles.
func BenchmarkDurableAppend(b *testing.B) {
	for _, writers := range []int{64} {
		b.Run("writers="+itoa(writers), func(b *testing.B) { benchAppend(b, writers) })
	}
}

func benchAppend(b *testing.B, writers int) {
	s := mustOpen(b, b.TempDir(), nil)
	defer s.Close()
	ctx := context.Background()
	payload := make([]byte, 300)
	for k := range payload {
		payload[k] = byte('a' + k%26)
	}
	var mu sync.Mutex
	next := uint64(0)
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	before := s.Stats()
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				if i >= uint64(b.N) {
					mu.Unlock()
					return
				}
				next++
				t0 := time.Now()
				ch := s.Submit(ctx, benchBatch(i, payload))
				mu.Unlock()
				if err := <-ch; err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	st := s.Stats()
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(st.Syncs-before.Syncs)/elapsed.Seconds(), "syncs/s")
	b.ReportMetric(float64(b.N)/float64(max(1, st.Commits-before.Commits)), "entries/commit")
	b.ReportMetric(float64(st.Writes-before.Writes)/float64(max(1, st.Commits-before.Commits)), "writes/commit")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkBaselineWriteSync is the same-run baseline: one 350-byte write and one fdatasync
// per entry on a plain file, what a store without group commit would pay.
func BenchmarkBaselineWriteSync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 350)
	off := int64(0)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := f.WriteAt(rec, off); err != nil {
			b.Fatal(err)
		}
		off += int64(len(rec))
		if err := durable.Sync(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
