package dingtalktest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
)

// The official Stream SDK connects to the gateway through WithOpenApiHost; the gateway pushes a
// bot message and records the SDK's ack.
func Example() {
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()

	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)),
		client.WithOpenApiHost(g.URL),
		client.WithAutoReconnect(false),
	)
	cli.RegisterCallbackRouter(dingtalktest.TopicBotMessage, func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
		fmt.Println("received:", df.Data)
		return payload.NewSuccessDataFrameResponse(), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Start(ctx); err != nil {
		fmt.Println("start:", err)
		return
	}
	defer cli.Close()

	p := g.PushBotMessage([]byte(`{"msgId":"m1","msgtype":"text","text":{"content":"hello"}}`))
	<-p.Done()
	d := g.Deliveries()[0]
	fmt.Println("ack code:", d.Code)
	// Output:
	// received: {"msgId":"m1","msgtype":"text","text":{"content":"hello"}}
	// ack code: 200
}
