package dingtalk

import (
	"context"
	"testing"

	"github.com/commseal/commseal/capture/capturetest"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
	"github.com/stretchr/testify/require"
)

// FuzzFrame feeds arbitrary frames, decoded as the SDK decodes them, to the source's bot and
// event handlers: nothing panics, and every frame the SDK hands over ends in a stored message or
// record and an ack, never in a silent drop.
func FuzzFrame(f *testing.F) {
	f.Add([]byte(`{"specVersion":"1.0","type":"CALLBACK","headers":{"topic":"/v1.0/im/bot/messages/get","messageId":"a"},"data":"{\"msgId\":\"m1\",\"msgtype\":\"text\",\"text\":{\"content\":\"hi\"},\"chatbotCorpId\":\"c\"}"}`))
	f.Add([]byte(`{"type":"CALLBACK","headers":{"messageId":"b"},"data":"{\"errCode\":20001,\"errMsg\":\"quota\"}"}`))
	f.Add([]byte(`{"type":"EVENT","headers":{"topic":"*","eventId":"e1","eventType":"chat_quit","eventBornTime":"12"},"data":"{\"chatId\":\"x\"}"}`))
	f.Add([]byte(`{"type":"EVENT","headers":{"eventId":"\xff"},"data":"\u0000"}`))
	f.Add([]byte(`{"type":"CALLBACK","headers":{},"data":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		df, err := payload.DecodeDataFrame(raw)
		if err != nil || df == nil || df.Headers == nil {
			return // the SDK drops these before any handler runs
		}
		s, err := NewSource(Options{ClientID: "a", ClientSecret: "b", Media: MediaOptions{Disabled: true}})
		require.NoError(t, err)
		sink := capturetest.NewSink()
		s.running, s.sink, s.records, s.workCtx, s.runCtx = true, sink, sink, context.Background(), context.Background()
		var resp *payload.DataFrameResponse
		if df.Type == "EVENT" {
			resp, err = s.onEvent(context.Background(), df)
		} else {
			resp, err = s.onBot(context.Background(), df)
		}
		require.NoError(t, err)
		require.Equal(t, 200, resp.Code, "a sink that never fails stores every frame")
		require.Equal(t, 1, sink.Calls(), "exactly one entry per frame")
	})
}
