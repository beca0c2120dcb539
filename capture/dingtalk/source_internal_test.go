package dingtalk

import (
	"context"
	"testing"

	"github.com/commseal/commseal/capture/capturetest"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
	"github.com/stretchr/testify/require"
)

// Between Run's ctx ending and Run marking the source as stopping there is a moment in which a
// frame could still be taken; the source checks the ctx itself, so a frame in that moment is
// refused like any frame after the stop began.
func TestSourceRefusesFramesOnceCtxEndedBeforeRunNotices(t *testing.T) {
	s, err := NewSource(Options{ClientID: "a", ClientSecret: "b", Media: MediaOptions{Disabled: true}})
	require.NoError(t, err)
	sink := capturetest.NewSink()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	// As Run leaves it after ctx ended and before it takes s.mu to set stopping.
	s.running, s.stopping, s.sink, s.records, s.workCtx, s.runCtx = true, false, sink, sink, context.Background(), ended
	df := &payload.DataFrame{Type: "CALLBACK", Headers: payload.DataFrameHeader{"messageId": "f1", "topic": TopicBotMessage},
		Data: `{"msgId":"m1","msgtype":"text","text":{"content":"hi"},"chatbotCorpId":"c"}`}
	resp, err := s.onBot(context.Background(), df)
	require.NoError(t, err)
	require.Equal(t, 500, resp.Code)
	ev := &payload.DataFrame{Type: "EVENT", Headers: payload.DataFrameHeader{"messageId": "f2", "eventId": "e1", "eventType": "chat_quit"}, Data: `{}`}
	resp, err = s.onEvent(context.Background(), ev)
	require.NoError(t, err)
	require.Contains(t, resp.Data, "LATER")
	require.Zero(t, sink.Calls(), "nothing taken after ctx ended")
}
