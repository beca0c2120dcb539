package console_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
)

var benchQueries = []string{"微信", "報價", "港", "買入 0700", "whatsapp", `"call me"`, "止蝕 OR offline"}

// BenchmarkSearchPage drives the search page through the handler (a signed-in officer with a
// reason: the index's search, the two access entries sealed, the 50 hits read and decrypted
// with their findings, the page rendered) over an encrypted ledger of COMMSEAL_BENCH_N
// messages (default 20,000), and, as the baseline in the same run, the index's Search alone
// with the same queries, and each query's median through the index (index-qN is
// benchQueries[N]). It reports p50 and p95:
//
//	COMMSEAL_BENCH_N=1000000 go test ./ledger/console -run '^$' -bench SearchPage -benchtime 200x
func BenchmarkSearchPage(b *testing.B) {
	n := 20_000
	if s := os.Getenv("COMMSEAL_BENCH_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	skey, _, _ := seal.GenerateSigningKey("commseal.bench/console")
	keys, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys, CheckpointEvery: 1 << 30, CheckpointInterval: time.Hour,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	vocab := strings.Fields("請問 而家 報價 幾多 我想 買入 股 限價 今日 成交量 好大 收市前 幫我 沽出 明天 的 报价 是 多少 帮我 买入 " +
		"这个 价格 可以 接受 客户 要求 卖出 唔該 得閒 傾下 跌咗 好多 係咪 止蝕 聽日 再傾 微信 內幕 私下 電話 香港 " +
		"buy sell at price check filled please confirm order market volatile today call me whatsapp offline noted thanks " +
		"0700.HK 9988.HK 0005.HK AAPL TSLA 600519.SS 100 200 500 1000 42.50 318.20")
	t0 := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	const writers = 16
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for i := w; i < n; i += writers {
				var sb strings.Builder
				for range 3 + r.IntN(10) {
					sb.WriteString(vocab[r.IntN(len(vocab))])
					sb.WriteByte(' ')
				}
				m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i), Kind: capture.KindText,
					Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%d", r.IntN(2000)), Type: capture.ConversationGroup},
					Sender:       capture.Party{ID: fmt.Sprintf("u%d", r.IntN(500)), Name: "Chan Tai Man 陳大文"},
					SentAt:       t0.Add(time.Duration(r.Int64N(int64(540 * 24 * time.Hour)))), Text: sb.String(), Raw: []byte(`{}`)}
				if _, err := l.Append(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ix, err := search.Open(ctx, l, search.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	h, err := console.New(console.Options{Ledger: l, Index: ix, Accounts: testAccounts(b)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	e := &env{srv: srv, l: l}
	c := e.officer(b)
	u, _ := url.Parse(srv.URL)
	var cookie *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "__Host-commseal" {
			cookie = ck
		}
	}
	pct := func(lat []time.Duration, p float64) float64 {
		slices.Sort(lat)
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.Run("page", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			req := httptest.NewRequest("GET", "/search?q="+url.QueryEscape(benchQueries[i%len(benchQueries)]), nil)
			req.AddCookie(cookie)
			w := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(w, req)
			lat = append(lat, time.Since(start))
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
		b.ReportMetric(pct(lat, 0.50), "p50-ms")
		b.ReportMetric(pct(lat, 0.95), "p95-ms")
	})
	b.Run("index-search-only", func(b *testing.B) {
		var lat []time.Duration
		acc := l.Access("bench", "baseline")
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if _, err := ix.Search(ctx, acc, search.Query{Text: benchQueries[i%len(benchQueries)], Limit: console.PageSize}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.ReportMetric(pct(lat, 0.50), "p50-ms")
		b.ReportMetric(pct(lat, 0.95), "p95-ms")
	})
	// Each query's median through the index alone, to see which make the tail.
	for qi, q := range benchQueries {
		b.Run(fmt.Sprintf("index-q%d", qi), func(b *testing.B) {
			var lat []time.Duration
			acc := l.Access("bench", "baseline")
			for b.Loop() {
				start := time.Now()
				if _, err := ix.Search(ctx, acc, search.Query{Text: q, Limit: console.PageSize}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.ReportMetric(pct(lat, 0.50), "p50-ms")
		})
	}
}
