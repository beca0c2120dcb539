package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
)

// benchMsg is a chat message of about 300 bytes of text.
func benchMsg(i uint64) *capture.Message {
	return &capture.Message{
		Platform: capture.PlatformDingTalk, Tenant: "corp1", ID: fmt.Sprintf("bench-%d", i),
		Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%d", i%1000), Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: fmt.Sprintf("u%d", i%50), Name: "Trader"},
		SentAt:       time.Unix(1700000000+int64(i), 0).UTC(), CapturedAt: time.Unix(1700000000+int64(i), 5).UTC(),
		Kind: capture.KindText, Text: string(bytes.Repeat([]byte("buy 100 lots 0700.HK "), 15)),
		Raw: []byte(fmt.Sprintf(`{"msgId":"bench-%d"}`, i)),
	}
}

// fillLedger appends n benchMsg entries to st from 64 writers and closes the ledger, which is
// encrypted (data keys in memory) when encrypted is set.
func fillLedger(b *testing.B, st store.Store, keys *seal.SigningKey, n uint64, encrypted bool) {
	ctx := context.Background()
	opts := ledger.Options{Signing: keys, CheckpointEvery: 10_000}
	if encrypted {
		ring, err := seal.NewKEKKeyring("kek", bytes.Repeat([]byte{7}, 32))
		if err != nil {
			b.Fatal(err)
		}
		opts.Encryption = &ledger.Encryption{Keyring: ring, Vault: &memstore.KeyVault{}}
	}
	l, err := ledger.Open(ctx, st, opts)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= n; i = next.Add(1) {
				if _, err := l.Append(ctx, benchMsg(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// storedBytes returns every stored leaf and payload of r, and their total size: what Verify
// hashes, for the SHA-256 baseline.
func storedBytes(b *testing.B, r verify.Reader) ([][]byte, int64) {
	var total int64
	var blobs [][]byte
	for e, err := range r.Entries(context.Background(), 0, math.MaxUint64) {
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(e.Leaf) + len(e.Payload))
		blobs = append(blobs, e.Leaf, e.Payload)
	}
	return blobs, total
}

// sha256Baseline is the same-run baseline for Verify: SHA-256 over the stored bytes, on one
// core, from memory.
func sha256Baseline(b *testing.B, blobs [][]byte, total int64) {
	b.SetBytes(total)
	cpu0 := cpuTime()
	for b.Loop() {
		for _, x := range blobs {
			_ = sha256.Sum256(x)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the CPU time the process used per operation since cpu0: on a shared
// machine it moves less than the wall time, and it shows what parallelism cannot hide.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
}

// BenchmarkVerify compares Ledger on an in-memory store with plain SHA-256 over the same
// stored bytes in the same run: the ratio of their MB/s is the figure to report.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	st := memstore.New()
	keys := testKeys(b)
	fillLedger(b, st, keys, n, false)
	blobs, total := storedBytes(b, st)
	b.Run("engine=verify", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			if _, err := verify.Ledger(context.Background(), st, keys.Verifier, verify.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine=sha256", func(b *testing.B) { sha256Baseline(b, blobs, total) })
}

// BenchmarkVerifyFromDisk builds a ledger on the file store (COMMSEAL_BENCH_N entries, default
// 100,000; plain and encrypted), then compares Ledger reading it back from disk (read-only, as
// an auditor opens it) with SHA-256 on one core over the same stored bytes in memory, in the
// same run. Run it with -benchtime 3x. engine=pair runs the two back to back and reports the
// median of their speed ratio (x-sha256: verify's bytes per second over SHA-256's).
func BenchmarkVerifyFromDisk(b *testing.B) {
	n := uint64(100_000)
	if s := os.Getenv("COMMSEAL_BENCH_N"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	for _, mode := range []string{"plain", "encrypted"} {
		b.Run("mode="+mode, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			st, err := filestore.Open(ctx, dir, nil)
			if err != nil {
				b.Fatal(err)
			}
			keys := testKeys(b)
			fillLedger(b, st, keys, n, mode == "encrypted")
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
			ro, err := filestore.Open(ctx, dir, &filestore.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer ro.Close()
			blobs, total := storedBytes(b, ro)
			b.Run("engine=verify", func(b *testing.B) {
				b.SetBytes(total)
				cpu0, start := cpuTime(), time.Now()
				for b.Loop() {
					rep, err := verify.Ledger(ctx, ro, keys.Verifier, verify.Options{})
					if err != nil || rep.Entries != n {
						b.Fatal(err, rep.Entries)
					}
				}
				b.ReportMetric((cpuTime()-cpu0).Seconds()/time.Since(start).Seconds(), "cores")
				reportCPU(b, cpu0)
			})
			b.Run("engine=sha256", func(b *testing.B) { sha256Baseline(b, blobs, total) })
			b.Run("engine=pair", func(b *testing.B) {
				// One verify pass and one SHA-256 pass back to back per iteration: on a machine
				// whose load drifts, the ratio of the pair is the steadier figure.
				var ratios []float64
				for b.Loop() {
					start := time.Now()
					rep, err := verify.Ledger(ctx, ro, keys.Verifier, verify.Options{})
					if err != nil || rep.Entries != n {
						b.Fatal(err, rep.Entries)
					}
					tv := time.Since(start)
					start = time.Now()
					for _, x := range blobs {
						_ = sha256.Sum256(x)
					}
					ratios = append(ratios, time.Since(start).Seconds()/tv.Seconds())
				}
				slices.Sort(ratios)
				b.ReportMetric(ratios[len(ratios)/2], "x-sha256")
			})
		})
	}
}
