package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// The sample conversations: a trader's one-to-one chat with the compliance bot and two desk
// groups that @-mention it, as DingTalk delivers them to a bot.
type sampleConv struct {
	id, title, ctype string // ctype: "1" single, "2" group
	lang             string // en, zh-Hant, zh-Hans
}

var sampleConvs = []sampleConv{
	{id: "cidQS1dQnLbXUGVeKqsyVwS0w==", title: "", ctype: "1", lang: "en"},
	{id: "cidQS2hkEqDeskTradZ8pL4w==", title: "港股交易 HK Equities Desk", ctype: "2", lang: "zh-Hant"},
	{id: "cidQS3shSzDeskSimpK9Xv2g==", title: "沪深交易群", ctype: "2", lang: "zh-Hans"},
}

type sampleSender struct{ id, staff, nick string }

var sampleSenders = []sampleSender{
	{"$:LWCP_v1:$QSa1b2c3d4e5f6", "100231", "Chan Tai Man 陳大文"},
	{"$:LWCP_v1:$QSf6e5d4c3b2a1", "100457", "黃美玲"},
	{"$:LWCP_v1:$QS0a9b8c7d6e5f", "100892", "李强"},
	{"$:LWCP_v1:$QS5f4e3d2c1b0a", "", "Client: Mr. Wong (external)"},
}

// sampleClientCorp is the corp id DingTalk gives the external client's organization: a party
// of another corp than the firm's, which the behaviour rules' first-contact detector watches.
const sampleClientCorp = "dingQSwongfamilyoffice7"

var sampleTexts = map[string][]string{
	"en": {
		"Please buy 2,000 shares of 0700.HK at market before the close.",
		"Confirm: sell 500 shares of 9988.HK, limit HK$82.50, good for day.",
		"Can you guarantee I will not lose money on this IPO allocation?",
		"Let's move this to WhatsApp, easier to talk there.",
		"Received the term sheet, reviewing now.",
		"Order filled: 2,000 @ 381.20. Contract note to follow.",
		"Please delete this chat after reading.",
	},
	"zh-Hant": {
		"幫我喺收市前以市價買入騰訊 2000 股",
		"確認沽出阿里巴巴 500 股，限價 82.5",
		"呢隻股保證有錢賺，唔會蝕",
		"我哋轉用微信傾啦",
		"收到，已經落單",
		"今晚請你食飯，順便講下個新盤",
	},
	"zh-Hans": {
		"请帮我在收盘前以市价买入腾讯 2000 股",
		"确认卖出阿里巴巴 500 股，限价 82.5",
		"内幕消息：下周公布业绩，先买入",
		"我们改用微信聊吧",
		"收到，已下单",
		"这个产品保证收益，稳赚不赔",
	},
}

// botPayload is a bot message in DingTalk's field order (reference/dingtalk.md).
type botPayload struct {
	ConversationID            string          `json:"conversationId"`
	AtUsers                   []atUser        `json:"atUsers,omitempty"`
	ChatbotCorpID             string          `json:"chatbotCorpId"`
	ChatbotUserID             string          `json:"chatbotUserId"`
	MsgID                     string          `json:"msgId"`
	SenderNick                string          `json:"senderNick"`
	IsAdmin                   bool            `json:"isAdmin"`
	SenderStaffID             string          `json:"senderStaffId,omitempty"`
	SessionWebhookExpiredTime int64           `json:"sessionWebhookExpiredTime"`
	CreateAt                  int64           `json:"createAt"`
	SenderCorpID              string          `json:"senderCorpId,omitempty"`
	ConversationType          string          `json:"conversationType"`
	SenderID                  string          `json:"senderId"`
	ConversationTitle         string          `json:"conversationTitle,omitempty"`
	IsInAtList                bool            `json:"isInAtList,omitempty"`
	SessionWebhook            string          `json:"sessionWebhook"`
	Text                      *textContent    `json:"text,omitempty"`
	Content                   json.RawMessage `json:"content,omitempty"`
	RobotCode                 string          `json:"robotCode"`
	MsgType                   string          `json:"msgtype"`
}

type atUser struct {
	DingtalkID string `json:"dingtalkId"`
	StaffID    string `json:"staffId,omitempty"`
}

type textContent struct {
	Content string `json:"content"`
}

const (
	sampleCorp  = "dingQSbroker8f3a2c1e"
	sampleRobot = "dingQSrobotcomplianceA1"
	sampleBotID = "$:LWCP_v1:$QSbotuser000001"
)

// samplePayloads returns n raw bot payloads, one in every ten delivered twice (as DingTalk
// redelivers), deterministic for a given seed so that a second run finds them all stored.
func samplePayloads(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x636f6d6d7365616c))
	start := time.Date(2026, 7, 2, 1, 30, 0, 0, time.UTC) // 09:30 in Hong Kong
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		conv := sampleConvs[rng.IntN(len(sampleConvs))]
		snd := sampleSenders[rng.IntN(len(sampleSenders))]
		at := start.Add(time.Duration(i) * 17 * time.Second)
		switch {
		case i%60 == 59: // a late message: outside the desk's hours (the behaviour rules)
			at = time.Date(2026, 7, 2, 14, 40+i/60, 0, 0, time.UTC) // from 22:40 in Hong Kong, a minute apart
		case i == 100: // on a Hong Kong public holiday (1 July, HKSAR Establishment Day)
			at = time.Date(2026, 7, 1, 2, 15, 0, 0, time.UTC)
		}
		p := botPayload{
			ConversationID: conv.id, ChatbotCorpID: sampleCorp, ChatbotUserID: sampleBotID,
			MsgID:      fmt.Sprintf("msgQS%08x%04d", seed&0xffffffff, i),
			SenderNick: snd.nick, SenderStaffID: snd.staff, SenderID: snd.id,
			SessionWebhookExpiredTime: at.Add(90 * time.Minute).UnixMilli(),
			CreateAt:                  at.UnixMilli(),
			ConversationType:          conv.ctype, ConversationTitle: conv.title,
			SessionWebhook: "https://oapi.dingtalk.com/robot/sendBySession?session=QS" + fmt.Sprint(i),
			RobotCode:      sampleRobot,
		}
		if snd.staff != "" {
			p.SenderCorpID = sampleCorp
		} else {
			p.SenderCorpID = sampleClientCorp
		}
		if conv.ctype == "2" {
			p.IsInAtList = true
			p.AtUsers = []atUser{{DingtalkID: sampleBotID}}
		}
		// Groups deliver only text, richText and picture to a bot; one-to-one chats deliver all.
		kinds := []string{"text", "text", "text", "text", "text", "text", "richText", "picture"}
		if conv.ctype == "1" {
			kinds = append(kinds, "audio", "file")
		}
		texts := sampleTexts[conv.lang]
		switch p.MsgType = kinds[rng.IntN(len(kinds))]; p.MsgType {
		case "text":
			p.Text = &textContent{Content: texts[rng.IntN(len(texts))]}
		case "richText":
			p.Content = mustJSON(map[string]any{"richText": []any{
				map[string]string{"text": texts[rng.IntN(len(texts))]},
				map[string]string{"type": "picture", "downloadCode": fmt.Sprintf("dcQSpic%05d", i)},
			}})
		case "picture":
			p.Content = mustJSON(map[string]string{"downloadCode": fmt.Sprintf("dcQSimg%05d", i)})
		case "audio":
			p.Content = mustJSON(map[string]any{"duration": 4000 + rng.IntN(20000), "downloadCode": fmt.Sprintf("dcQSaud%05d", i),
				"recognition": texts[rng.IntN(len(texts))]})
		case "file":
			p.Content = mustJSON(map[string]string{"spaceId": "2381" + fmt.Sprint(i), "fileName": "order-instruction-" + at.Format("20060102") + ".pdf",
				"downloadCode": fmt.Sprintf("dcQSfile%05d", i), "fileId": fmt.Sprintf("QSfile%05d", i)})
		}
		raw := mustJSON(p)
		out = append(out, raw)
		if i%10 == 9 && len(out) < n {
			out = append(out, raw) // redelivered
		}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed, well-formed values reach here
	}
	return b
}
