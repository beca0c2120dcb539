package search_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// env is an encrypted ledger in memory that can be closed and opened again.
type env struct {
	*ledger.Ledger
	st    *memstore.Store
	vault *memstore.KeyVault
	ring  *sealtest.Keyring
	keys  *seal.SigningKey
	now   time.Time
	plain bool
}

func newEnv(t testing.TB) *env {
	skey, _, err := seal.GenerateSigningKey("commseal.test/search")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	e := &env{st: memstore.New(), vault: &memstore.KeyVault{}, ring: sealtest.NewKeyring(), keys: keys,
		now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	e.open(t)
	return e
}

func newPlainEnv(t testing.TB) *env {
	e := newEnv(t)
	require.NoError(t, e.Close())
	e.st, e.plain = memstore.New(), true
	e.open(t)
	return e
}

func (e *env) open(t testing.TB) {
	t.Helper()
	opts := ledger.Options{Signing: e.keys, CheckpointEvery: 1000, CheckpointInterval: time.Hour,
		Now: func() time.Time { return e.now }}
	if !e.plain {
		opts.Encryption = &ledger.Encryption{Keyring: e.ring, Vault: e.vault}
	}
	l, err := ledger.Open(context.Background(), e.st, opts)
	require.NoError(t, err)
	e.Ledger = l
}

func (e *env) reopen(t testing.TB) {
	t.Helper()
	require.NoError(t, e.Close())
	e.open(t)
}

// corpus vocabulary: Traditional, Simplified, Cantonese and English, in several spellings.
var (
	words = []string{
		"微信", "微信", "報價", "报价", "港", "香港", "內幕", "内幕", "買入", "买入", "沽出", "股票",
		"明天", "老闆", "老板", "唔該", "係咪", "傾下", "電話", "电话", "騰訊", "腾讯",
		"WhatsApp", "whatsapp", "ＷｈａｔｓＡｐｐ", "What's App", "Signal", "buy", "sell", "call me",
		"offline", "price", "0700.HK", "500 lots", "tomorrow", "Delete this", "a", "I",
	}
	names  = []string{"Wong Siu Ming 黃小明", "Chan Tai Man 陳大文", "Lee 李", "Alice", "ＡＬＩＣＥ Ng"}
	titles = []string{"Equities Desk 股票組", "機密交易組", "Client 客户 A", "FX", ""}
	files  = []struct{ name, typ string }{
		{"報價單.pdf", "application/pdf"}, {"screenshot 微信.png", "image/png"}, {"orders.xlsx", "application/vnd.ms-excel"},
	}
	kinds = []string{capture.KindText, capture.KindText, capture.KindRichText, capture.KindAudio, capture.KindFile, capture.KindPicture}
)

// message returns a random message i sent at about t.
func message(r *rand.Rand, i int, t time.Time) *capture.Message {
	var text []string
	for range 1 + r.IntN(6) {
		text = append(text, words[r.IntN(len(words))])
	}
	sender := r.IntN(len(names))
	conv := r.IntN(len(titles))
	m := &capture.Message{
		Platform: capture.PlatformDingTalk, Tenant: "corp1", ID: fmt.Sprintf("msg-%d", i),
		Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%d", conv), Type: capture.ConversationGroup, Title: titles[conv]},
		Sender:       capture.Party{ID: fmt.Sprintf("u%d", sender), StaffID: fmt.Sprintf("staff-%d", sender), Name: names[sender]},
		SentAt:       t, CapturedAt: t.Add(time.Second),
		Kind: kinds[r.IntN(len(kinds))], Text: strings.Join(text, " "),
		Raw: []byte(fmt.Sprintf(`{"msgId":"msg-%d"}`, i)),
	}
	if r.IntN(3) == 0 {
		p := r.IntN(len(names))
		m.Mentions = []capture.Party{{ID: fmt.Sprintf("u%d", p), Name: names[p]}}
	}
	if r.IntN(4) == 0 {
		f := files[r.IntN(len(files))]
		m.Attachments = []capture.Attachment{{Name: f.name, MediaType: f.typ}}
	}
	return m
}

// fill appends n random messages sent from start on, a few minutes apart, and returns them by
// ledger index.
func fill(t testing.TB, l *ledger.Ledger, r *rand.Rand, n int, start time.Time) map[uint64]*capture.Message {
	t.Helper()
	out := map[uint64]*capture.Message{}
	at := start
	for range n {
		at = at.Add(time.Duration(1+r.IntN(600)) * time.Second)
		m := message(r, int(r.Int32()), at)
		rc, err := l.Append(context.Background(), m)
		require.NoError(t, err)
		require.False(t, rc.Duplicate, "message ids are unique")
		out[rc.Index] = m
	}
	return out
}

// filledIndex returns an encrypted ledger holding n random messages sent from 1 June 2026 on,
// and an in-memory index over it; both are closed when the test ends.
func filledIndex(t testing.TB, n int) (*env, *search.Index) {
	t.Helper()
	e := newEnv(t)
	t.Cleanup(func() { e.Close() })
	fill(t, e.Ledger, rand.New(rand.NewPCG(1, 2)), n, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	ix, err := search.Open(context.Background(), e.Ledger, search.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ix.Close() })
	return e, ix
}
