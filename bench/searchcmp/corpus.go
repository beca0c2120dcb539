package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The corpus follows examples/drill/world.go: short trading-desk messages in Traditional
// (Hong Kong) and Simplified Chinese, Cantonese and English, with a few rare lines a
// surveillance team looks for. {t} is a ticker, {q} a quantity, {p} a price.
var (
	tickers   = []string{"0700.HK", "9988.HK", "0005.HK", "1299.HK", "3690.HK", "2318.HK", "0939.HK", "AAPL", "TSLA", "600519.SS"}
	templates = []string{
		"請問{t}而家報價幾多？", "我想買入{q}股{t}，限價{p}", "{t}今日成交量好大", "收市前幫我沽出{q}股{t}",
		"明天{t}的报价是多少", "帮我买入{q}股{t}", "这个价格{p}可以接受", "客户要求卖出{t}",
		"唔該幫我沽{q}股{t}", "得閒傾下{t}", "{t}跌咗好多，係咪要止蝕？", "我哋聽日再傾",
		"Buy {q} {t} at {p}", "Can you check the price on {t}?", "Filled {q} {t} @ {p}", "Noted, thanks",
		"Please confirm the order for {t}", "Market is volatile today",
		// Lines with 港 and 報價單, so that one- and three-character queries have hits.
		"港股今日升咗好多", "請把{t}的報價單發給我", "香港收市後再傾{t}", "港元兑美元{p}",
	}
	flagged = []string{
		"加我微信再講", "call me on WhatsApp later", "let's take this offline", "有內幕消息，{t}下星期會升",
		"用私人電話打俾我", "delete this chat after reading", "我哋用Signal傾", "报价单我私下发给你",
		"有内幕消息，唔好话俾人知", "加微信 call me",
	}
)

// corpus returns n message texts made from seed; the same seed makes the same texts.
func corpus(seed uint64, n int) []string {
	out := make([]string, n)
	for i := range out {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		t := templates[r.IntN(len(templates))]
		if r.IntN(100) < 3 {
			t = flagged[r.IntN(len(flagged))]
		}
		out[i] = strings.NewReplacer("{t}", tickers[r.IntN(len(tickers))], "{q}", fmt.Sprint(100*(1+r.IntN(50))),
			"{p}", fmt.Sprintf("%d.%02d", 10+r.IntN(500), r.IntN(100))).Replace(t)
	}
	return out
}
