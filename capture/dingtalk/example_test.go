package dingtalk_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/commseal/commseal/capture/capturetest"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
)

// A Source captures through the official Stream SDK; here it connects to a local gateway and
// stores into an in-memory sink. In production OpenAPIHost is left empty (HostMainland) or set
// to HostOverseas, the sink is a ledger, and Media.Journal is a NewDirJournal.
func ExampleSource() {
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	sink := capturetest.NewSink()

	src, err := dingtalk.NewSource(dingtalk.Options{
		ClientID:     dingtalktest.DefaultClientID,
		ClientSecret: dingtalktest.DefaultClientSecret,
		OpenAPIHost:  g.URL,
		Media:        dingtalk.MediaOptions{Disabled: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx, sink) }()

	p := g.PushBotMessage(dingtalktest.TextMessage("msg-1", "buy 100 0700.HK"))
	<-p.Done() // acknowledged: the message is stored
	stop()
	fmt.Println("run:", <-done)

	m := sink.Messages()[0]
	fmt.Println(m.Identity(), m.Kind, m.Text)
	fmt.Println("acked with", g.Deliveries()[0].Code)
	// Output:
	// run: <nil>
	// dingtalk/corp-test/msg-1 text buy 100 0700.HK
	// acked with 200
}

// A CallbackHandler serves DingTalk's HTTP callback mode. DingTalk's first push checks the URL.
func ExampleCallbackHandler() {
	sink := capturetest.NewSink()
	h, err := dingtalk.NewCallbackHandler(dingtalk.CallbackOptions{
		Token:    "123456",
		AESKey:   "1234567890123456789012345678901234567890123",
		OwnerKey: "dingsnotzck6pm5veliw",
		Sink:     sink, Records: sink,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// What DingTalk sends (built here with the handler's own crypto).
	c := h.Crypto()
	enc, _ := c.Encrypt([]byte(`{"EventType":"check_url"}`))
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := url.Values{"msg_signature": {c.Sign(ts, "nonce1", enc)}, "timestamp": {ts}, "nonce": {"nonce1"}}
	req := httptest.NewRequest(http.MethodPost, "/dingtalk?"+q.Encode(), strings.NewReader(`{"encrypt":"`+enc+`"}`))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), `"encrypt"`))
	// Output:
	// 200 true
}
