package dingtalktest

import (
	"context"
	"time"

	"github.com/commseal/commseal/capture/capturetest"
)

// NewUpstream returns g as a capturetest.Upstream, so that capturetest.RunSource can check a
// DingTalk Stream source (commseal's dingtalk.Source, or another) through the real SDK: Deliver
// pushes a bot message callback and reports the first ack of its frame (code 200 as Acked;
// any other code, or an event's LATER, as Nacked); Message builds a text bot message with
// BotMessage; Malformed is a bot payload cut off in the middle of its JSON.
//
// Configure g with MaxRedeliveries -1, so that it never pushes again on its own (the suite
// redelivers when it means to), and a RedeliverAfter longer than the test.
func NewUpstream(g *Gateway) capturetest.Upstream { return upstream{g} }

type upstream struct{ g *Gateway }

func (u upstream) Ready(ctx context.Context) error { return u.g.WaitConns(ctx, 1) }

func (u upstream) Deliver(payload []byte) <-chan capturetest.Answer {
	ch := make(chan capturetest.Answer, 1)
	p := u.g.PushBotMessage(payload)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		d, err := p.Answered(ctx)
		if err != nil {
			return // never answered: the channel stays empty
		}
		if d.Code == 200 && d.Status != "LATER" {
			ch <- capturetest.Acked
		} else {
			ch <- capturetest.Nacked
		}
	}()
	return ch
}

func (u upstream) Message(id, text string) []byte { return BotMessage{MsgID: id, Text: text}.JSON() }

func (u upstream) Malformed(id string) []byte {
	return []byte(`{"msgId":"` + id + `","msgtype":"text","text":{"content":`)
}
