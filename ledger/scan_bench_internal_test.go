package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
)

// BenchmarkScan compares reading an encrypted ledger on one goroutine (the baseline) with the
// scan that decodes on several, over the same 20,000 entries:
//
//	go test ./ledger -run '^$' -bench BenchmarkScan -benchtime 5x
func BenchmarkScan(b *testing.B) {
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey("commseal.test/scan")
	if err != nil {
		b.Fatal(err)
	}
	keys, _ := seal.ParseSigningKey(skey)
	l, err := Open(ctx, memstore.New(), Options{Signing: keys, CheckpointEvery: 1 << 20, CheckpointInterval: time.Hour,
		Encryption: &Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const n = 20000
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprint("m", i),
			Conversation: capture.Conversation{ID: fmt.Sprint("cid-", i%500), Type: capture.ConversationGroup, Title: "Desk 交易組"},
			Sender:       capture.Party{ID: fmt.Sprint("u", i%50), Name: "Wong Siu Ming 黃小明"}, SentAt: t0.Add(time.Duration(i) * time.Second),
			Kind: capture.KindText, Text: "請問0700.HK而家報價幾多？我想買入500股，限價318.20",
			Raw: fmt.Appendf(nil, `{"msgId":"m%d","text":{"content":"請問0700.HK而家報價幾多？"},"senderNick":"Wong Siu Ming 黃小明","conversationId":"cid-%d"}`, i, i%500)}
		if _, err := l.Append(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	count := func(*Entry, error) error { return nil }
	for _, c := range []struct {
		name string
		scan func(context.Context, uint64, uint64, func(*Entry, error) error) error
	}{{"serial", l.scanSerial}, {"parallel", l.scan}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.scan(ctx, 0, n, count); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
