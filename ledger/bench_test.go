package ledger_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
)

// benchMsg is a ~300-byte chat message.
func benchMsg(i uint64) *capture.Message {
	return &capture.Message{
		Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprintf("m%012d", i), Kind: capture.KindText,
		Conversation: capture.Conversation{ID: fmt.Sprintf("cid%04d", i%1000), Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "u123", Name: "陳大文"},
		Text:         "請幫我以市價買入騰訊控股 1,000 股，下午收市前完成",
		Raw:          []byte(`{"msgId":"m","msgtype":"text","text":{"content":"..."}}`),
	}
}

// BenchmarkAppend measures Append on the in-memory store from many goroutines, so the
// sequencer batches them. Reports entries/s.
func BenchmarkAppend(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", par), func(b *testing.B) {
			st := memstore.New()
			l := openLedger(b, st, testKeys(b), 1000)
			parallelAppends(b, l, par)
		})
	}
}

// parallelAppends appends b.N messages to l from par × GOMAXPROCS goroutines, reports
// entries/s, and closes l.
func parallelAppends(b *testing.B, l *ledger.Ledger, par int) {
	ctx := context.Background()
	var next atomic.Uint64
	b.SetParallelism(par)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(ctx, benchMsg(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	_ = l.Close()
}

// benchLedger opens a ledger on st, encrypted (data keys in memory) when mode is "encrypted".
func benchLedger(b *testing.B, st store.Store, mode string) *ledger.Ledger {
	opts := ledger.Options{Signing: testKeys(b), CheckpointEvery: 1000}
	if mode == "encrypted" {
		opts.Encryption = &ledger.Encryption{Keyring: newKEK(b, "kek"), Vault: &memstore.KeyVault{}}
	}
	l, err := ledger.Open(context.Background(), st, opts)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkInclusionProof measures proofs in a tree of 10⁶ entries; it reports the proof size.
func BenchmarkInclusionProof(b *testing.B) {
	const n = 1_000_000
	var f seal.Frontier
	stored := make([]seal.Hash, 0, 2*n)
	for i := 0; i < n; i++ {
		stored = f.Append(seal.LeafHash([]byte(fmt.Sprint(i))), stored)
	}
	r := hashReaderFunc(func(idx []int64) ([]seal.Hash, error) {
		out := make([]seal.Hash, len(idx))
		for k, x := range idx {
			out[k] = stored[x]
		}
		return out, nil
	})
	var size int
	i := uint64(0)
	for b.Loop() {
		p, err := seal.InclusionProof(n, i%n, r)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p) * 32
		i += 7919
	}
	b.ReportMetric(float64(size), "proof-bytes")
}

// BenchmarkSealedAppend compares the encrypted and the plain append paths in the same run (the
// ratio of their entries/s is the figure to report), 64 writers per processor on the in-memory
// store.
func BenchmarkSealedAppend(b *testing.B) {
	for _, mode := range []string{"plain", "encrypted"} {
		b.Run("mode="+mode, func(b *testing.B) {
			l := benchLedger(b, memstore.New(), mode)
			parallelAppends(b, l, 64)
		})
	}
}

// BenchmarkRead compares reading entries back: plain Get (hash and commitment checked) against
// an accessor's Scan of an encrypted ledger (decrypted, authenticated, commitment checked).
func BenchmarkRead(b *testing.B) {
	const n = 20_000
	for _, mode := range []string{"plain", "encrypted"} {
		b.Run("mode="+mode, func(b *testing.B) {
			ctx := context.Background()
			l := benchLedger(b, memstore.New(), mode)
			defer l.Close()
			for i := uint64(0); i < n; i++ {
				if _, err := l.Append(ctx, benchMsg(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			read := 0
			for b.Loop() {
				if mode == "plain" {
					for i := uint64(0); i < n; i++ {
						if _, err := l.Get(ctx, i); err != nil {
							b.Fatal(err)
						}
					}
				} else if err := l.Access("bench", "read").Scan(ctx, 0, n, func(e *ledger.Entry, err error) error { return err }); err != nil {
					b.Fatal(err)
				}
				read += n
			}
			b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
