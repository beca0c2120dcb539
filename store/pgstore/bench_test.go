package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
)

// benchStores opens, for each store the benchmarks compare, a new empty store: the embedded
// file store in a temporary directory (the baseline) and pgstore on the package's test cluster
// (a server on the same machine and disk, over a Unix socket, fsync and synchronous_commit on).
func benchStores(b *testing.B) []struct {
	name string
	open func(b *testing.B) store.Store
} {
	return []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"filestore", func(b *testing.B) store.Store {
			s, err := filestore.Open(context.Background(), b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"pgstore", func(b *testing.B) store.Store { return open(b, pgtest.Start(b), "bench") }},
	}
}

// BenchmarkAppend appends batches of suite entries (0 to 600 bytes of payload) one after the
// other, each durable before the next, through filestore and pgstore in the same run: batch=1 is
// one commit per entry, batch=64 the size of a ledger's group commit under load. It reports
// entries/s and the mean latency of one Append.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 64} {
		for _, st := range benchStores(b) {
			b.Run(fmt.Sprintf("batch=%d/store=%s", batch, st.name), func(b *testing.B) {
				ctx := context.Background()
				s := st.open(b)
				defer s.Close()
				batches := make([]*store.Batch, b.N)
				for k := range batches {
					batches[k] = storetest.BatchAt(uint64(k*batch), batch)
				}
				b.ResetTimer()
				for _, bt := range batches {
					if err := s.Append(ctx, bt); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/append")
			})
		}
	}
}

// BenchmarkLedgerAppend measures durable appends through a ledger (64 concurrent writers per
// ledger, each Append returning once its message is committed; the ledger groups waiting
// messages into one batch; 300-byte texts in 100 conversations) on filestore and pgstore in the
// same run, and on pgstore with ledgers=2 shared ledgers (Options.Shared: two writers of one log,
// as two processes would be, each with its own connections). It reports messages/s and the p99
// latency of Append. On pgstore every Append also looks its identity up in PostgreSQL
// (store.IdentityIndex), and the first message of a conversation reads the conversation's head
// from it.
func BenchmarkLedgerAppend(b *testing.B) {
	skey, _, err := seal.GenerateSigningKey("bench.example/pgstore")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := seal.ParseSigningKey(skey)
	payload := make([]byte, 300)
	for k := range payload {
		payload[k] = byte('a' + k%26)
	}
	stores := benchStores(b)
	for _, v := range []struct {
		name    string
		store   int // in stores
		ledgers int
		shared  bool
		flights int // MaxInFlight; 0: the default
	}{
		{"store=filestore", 0, 1, false, 0},
		{"store=pgstore", 1, 1, false, 0},
		{"store=pgstore/shared/ledgers=1", 1, 1, true, 0},
		{"store=pgstore/shared/ledgers=2", 1, 2, true, 0},
		{"store=pgstore/shared/ledgers=2/in-flight=1", 1, 2, true, 1},
	} {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			var dsn string
			if v.store == 1 {
				dsn = pgtest.Start(b)
			}
			ls := make([]*ledger.Ledger, v.ledgers)
			for k := range ls {
				var s store.Store
				if dsn != "" {
					s = open(b, dsn, "bench") // each writer with its own connections, as a process would be
				} else {
					s = stores[v.store].open(b)
					defer s.Close()
				}
				l, err := ledger.Open(ctx, s, ledger.Options{Signing: signer, Shared: v.shared, MaxInFlight: v.flights, CheckpointInterval: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				ls[k] = l
			}
			const writers = 64
			var next atomic.Uint64
			lat := make([][]time.Duration, writers*v.ledgers)
			day := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers * v.ledgers {
				l := ls[w%v.ledgers]
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > uint64(b.N) {
							return
						}
						m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i), Kind: capture.KindText,
							Conversation: capture.Conversation{ID: fmt.Sprint("cid", i%100), Type: capture.ConversationGroup},
							SentAt:       day.Add(time.Duration(i) * time.Millisecond), Text: string(payload)}
						t0 := time.Now()
						if _, err := l.Append(ctx, m); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if len(all) > 0 {
				b.ReportMetric(float64(all[min(len(all)-1, len(all)*99/100)].Microseconds())/1000, "p99-ms")
			}
			for _, l := range ls {
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
