package search

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// benchDocs makes n synthetic messages: short texts in Traditional and Simplified Chinese,
// Cantonese and English, over 2,000 conversations and 500 senders.
func benchDocs(n int) []*document {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := strings.Fields("請問 而家 報價 幾多 我想 買入 股 限價 今日 成交量 好大 收市前 幫我 沽出 明天 的 报价 是 多少 帮我 买入 " +
		"这个 价格 可以 接受 客户 要求 卖出 唔該 得閒 傾下 跌咗 好多 係咪 止蝕 聽日 再傾 微信 內幕 私下 電話 " +
		"buy sell at price check filled please confirm order market volatile today call me whatsapp offline noted thanks " +
		"0700.HK 9988.HK 0005.HK AAPL TSLA 600519.SS 100 200 500 1000 42.50 318.20")
	docs := make([]*document, n)
	t0 := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range docs {
		var b strings.Builder
		for range 3 + r.IntN(10) {
			b.WriteString(vocab[r.IntN(len(vocab))])
			b.WriteByte(' ')
		}
		docs[i] = &document{index: uint64(i), kind: "text", sent: t0 + r.Int64N(int64(540*24*time.Hour)),
			conv: fmt.Sprintf("cid-%d", r.IntN(2000)), sender: fmt.Sprintf("u%d", r.IntN(500)), name: "Chan Tai Man 陳大文",
			text: b.String(), keyID: fmt.Sprintf("dk1.%d", r.IntN(50000))}
	}
	return docs
}

var benchQueries = []string{"微信", "報價", "港", "内幕", "買入 0700", "whatsapp", `"call me"`, "止蝕 OR offline", "成交量 NOT 今日"}

// BenchmarkSearch compares the index with the baseline it replaces, reading and folding every
// message's text, on the same 100,000 messages and queries:
//
//	go test ./ledger/search -run '^$' -bench Search -benchtime 20x
func BenchmarkSearch(b *testing.B) {
	docs := benchDocs(100_000)
	m := newMemIndex()
	for _, d := range docs {
		m.add(d)
	}
	nodes := make([]node, len(benchQueries))
	for i, q := range benchQueries {
		n, err := parse(q)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = n
	}
	b.Run("index", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m.run(nodes[i%len(nodes)], &Query{Limit: 100}, 0)
		}
	})
	b.Run("read-every-message", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			t := nodes[i%len(nodes)]
			n := 0
			for _, d := range docs {
				if matchBrute(t, d) {
					n++
				}
			}
		}
	})
	b.Run("conversation+month", func(b *testing.B) {
		from := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; b.Loop(); i++ {
			m.run(nil, &Query{Conversations: []string{fmt.Sprintf("cid-%d", i%2000)}, From: from, To: from.AddDate(0, 1, 0)}, 0)
		}
	})
}

// matchBrute evaluates a parsed full-text query on one document by folding its text.
func matchBrute(n node, d *document) bool {
	switch n := n.(type) {
	case *term:
		return strings.Contains(fold(d.text), n.folded)
	case and:
		for _, x := range n {
			if !matchBrute(x, d) {
				return false
			}
		}
		return true
	case or:
		for _, x := range n {
			if matchBrute(x, d) {
				return true
			}
		}
		return false
	case not:
		return !matchBrute(n.x, d)
	}
	return false
}

// BenchmarkBuild measures adding documents to the in-memory index (folding and postings).
func BenchmarkBuild(b *testing.B) {
	docs := benchDocs(100_000)
	b.ResetTimer()
	for b.Loop() {
		m := newMemIndex()
		for _, d := range docs {
			m.add(d)
		}
	}
	b.ReportMetric(float64(len(docs))*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}
