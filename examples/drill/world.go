package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
)

// world is the drill's firm: staff on desks, external clients, and the conversations between
// them, all made from a seed so that the same flags make the same ledger.
type world struct {
	staff   []capture.Party
	clients []capture.Party
	convs   []conv
	start   time.Time
	months  int
	n       int // messages over the span
}

type conv struct {
	c       capture.Conversation
	members []int // staff indexes; a direct chat has one, and client >= 0
	client  int
}

var (
	surnames = []string{"Chan 陳", "Wong 黃", "Lee 李", "Cheung 張", "Lau 劉", "Ng 吳", "Ho 何", "Leung 梁", "Lam 林", "Tang 鄧", "Zhang 张", "Wang 王", "Liu 刘", "Smith", "Patel"}
	given    = []string{"Tai Man 大文", "Siu Ming 小明", "Ka Yan 嘉欣", "Wing 詠", "Chi Keung 志強", "Mei 美", "Wei 伟", "Jun 军", "Alice", "Ben", "Priya"}
	tickers  = []string{"0700.HK", "9988.HK", "0005.HK", "1299.HK", "3690.HK", "2318.HK", "0939.HK", "AAPL", "TSLA", "600519.SS"}
	desks    = []string{"股票交易組 Equities", "衍生產品 Derivatives", "固定收益 Fixed Income", "外匯 FX", "私人銀行 Private Banking", "研究部 Research"}
	// Templates by language: Traditional (Hong Kong), Simplified, Cantonese, English; {t} is a
	// ticker, {q} a quantity, {p} a price.
	templates = []string{
		"請問{t}而家報價幾多？", "我想買入{q}股{t}，限價{p}", "{t}今日成交量好大", "收市前幫我沽出{q}股{t}",
		"明天{t}的报价是多少", "帮我买入{q}股{t}", "这个价格{p}可以接受", "客户要求卖出{t}",
		"唔該幫我沽{q}股{t}", "得閒傾下{t}", "{t}跌咗好多，係咪要止蝕？", "我哋聽日再傾",
		"Buy {q} {t} at {p}", "Can you check the price on {t}?", "Filled {q} {t} @ {p}", "Noted, thanks",
		"Please confirm the order for {t}", "Market is volatile today",
	}
	// Rare lines a surveillance team looks for.
	flagged = []string{
		"加我微信再講", "call me on WhatsApp later", "let's take this offline", "有內幕消息，{t}下星期會升",
		"用私人電話打俾我", "delete this chat after reading", "我哋用Signal傾", "报价单我私下发给你",
	}
)

func person(r *rand.Rand, i int, prefix string) capture.Party {
	name := surnames[r.IntN(len(surnames))] + " " + given[r.IntN(len(given))]
	return capture.Party{ID: fmt.Sprintf("%s-%05d", prefix, i), StaffID: func() string {
		if prefix == "staff" {
			return fmt.Sprintf("E%05d", i)
		}
		return ""
	}(), Name: name}
}

// newWorld makes staff, clients, and conversations: one direct chat per client with its
// coverage trader, and one group per desk of about twenty staff.
func newWorld(seed uint64, staff, clients, months, n int, end time.Time) *world {
	r := rand.New(rand.NewPCG(seed, 1))
	w := &world{months: months, start: end.AddDate(0, -months, 0), n: n}
	for i := range staff {
		w.staff = append(w.staff, person(r, i, "staff"))
	}
	for i := range clients {
		w.clients = append(w.clients, person(r, i, "client"))
	}
	for i := range clients {
		s := i % staff
		w.convs = append(w.convs, conv{c: capture.Conversation{ID: fmt.Sprintf("cid-direct-%05d", i), Type: capture.ConversationDirect},
			members: []int{s}, client: i})
	}
	for g := 0; g*20 < staff; g++ {
		var m []int
		for s := g * 20; s < min(staff, g*20+20); s++ {
			m = append(m, s)
		}
		w.convs = append(w.convs, conv{c: capture.Conversation{ID: fmt.Sprintf("cid-group-%04d", g), Type: capture.ConversationGroup,
			Title: fmt.Sprintf("%s %d", desks[g%len(desks)], g)}, members: m, client: -1})
	}
	return w
}

// message makes message i from its own random stream, so that writers in any order make the
// same messages.
func (w *world) message(seed uint64, i int) *capture.Message {
	r := rand.New(rand.NewPCG(seed, uint64(i)+2))
	var cv *conv
	if r.IntN(10) < 7 {
		cv = &w.convs[r.IntN(len(w.clients))]
	} else {
		cv = &w.convs[len(w.clients)+r.IntN(len(w.convs)-len(w.clients))]
	}
	sender := w.staff[cv.members[r.IntN(len(cv.members))]]
	if cv.client >= 0 && r.IntN(2) == 0 {
		sender = w.clients[cv.client]
	}
	// In the order of i over the span, as a live archive receives them, during Hong Kong trading
	// hours (01:00 to 10:00 UTC) mostly.
	span := w.start.AddDate(0, w.months, 0).Sub(w.start)
	day := w.start.Add(time.Duration(float64(span) * float64(i) / float64(w.n))).Truncate(24 * time.Hour)
	at := day.Add(time.Duration(1+r.IntN(9))*time.Hour + time.Duration(r.IntN(3600))*time.Second)
	t := templates[r.IntN(len(templates))]
	if r.IntN(100) < 2 {
		t = flagged[r.IntN(len(flagged))]
	}
	text := strings.NewReplacer("{t}", tickers[r.IntN(len(tickers))], "{q}", fmt.Sprint(100*(1+r.IntN(50))),
		"{p}", fmt.Sprintf("%d.%02d", 10+r.IntN(500), r.IntN(100))).Replace(t)
	m := &capture.Message{
		Platform: capture.PlatformDingTalk, Tenant: "dingcorp-drill", ID: fmt.Sprintf("drill-%08d", i),
		Conversation: cv.c, Sender: sender, SentAt: at, CapturedAt: at.Add(time.Duration(50+r.IntN(900)) * time.Millisecond),
		Kind: capture.KindText, Text: text,
	}
	switch k := r.IntN(100); {
	case k < 3:
		m.Kind = capture.KindPicture
		m.Text = ""
		m.Attachments = []capture.Attachment{{Name: fmt.Sprintf("IMG_%04d.jpg", r.IntN(10000)), MediaType: "image/jpeg", Size: int64(50_000 + r.IntN(500_000))}}
	case k < 5:
		m.Kind = capture.KindFile
		m.Text = ""
		m.Attachments = []capture.Attachment{{Name: fmt.Sprintf("報價單_%s_Q%d.pdf", tickers[r.IntN(len(tickers))], 1+r.IntN(4)), MediaType: "application/pdf", Size: int64(20_000 + r.IntN(200_000))}}
	case k < 7:
		m.Kind = capture.KindAudio // the text is the platform's recognition of the recording
	case k < 10:
		m.Kind = capture.KindRichText
	}
	m.Raw = fmt.Appendf(nil, `{"msgId":%q,"conversationId":%q,"senderStaffId":%q,"createAt":%d,"msgtype":%q}`,
		m.ID, m.Conversation.ID, m.Sender.StaffID, at.UnixMilli(), m.Kind)
	return m
}
