package dingtalktest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/gorilla/websocket"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
	"github.com/stretchr/testify/require"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

type openReply struct {
	Endpoint string `json:"endpoint"`
	Ticket   string `json:"ticket"`
}

func open(t *testing.T, g *dingtalktest.Gateway, id, secret string) (*http.Response, openReply) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"clientId": id, "clientSecret": secret,
		"subscriptions": []map[string]string{{"type": "CALLBACK", "topic": dingtalktest.TopicBotMessage}, {"type": "EVENT", "topic": "*"}},
	})
	resp, err := http.Post(g.URL+"/v1.0/gateway/connections/open", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var r openReply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp, r
}

// dial opens a raw websocket connection the way the SDK does.
func dial(t *testing.T, g *dingtalktest.Gateway) *websocket.Conn {
	t.Helper()
	before := g.Stats().Connections
	resp, r := open(t, g, dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)
	require.Equal(t, 200, resp.StatusCode)
	require.True(t, strings.HasPrefix(r.Endpoint, "ws://127.0.0.1:"), r.Endpoint)
	require.NotContains(t, r.Endpoint, "?")
	ws, _, err := websocket.DefaultDialer.Dial(r.Endpoint+"?ticket="+r.Ticket, nil)
	require.NoError(t, err)
	t.Cleanup(func() { ws.Close() })
	// The client sees the upgrade answer a moment before the gateway registers the connection.
	require.Eventually(t, func() bool { return g.Stats().Connections > before }, 5*time.Second, time.Millisecond)
	return ws
}

func TestOpenAndTickets(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{TicketTTL: 200 * time.Millisecond})
	defer g.Close()

	resp, _ := open(t, g, "wrong", "creds")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	resp, r := open(t, g, dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)
	require.Equal(t, 200, resp.StatusCode)
	ws, _, err := websocket.DefaultDialer.Dial(r.Endpoint+"?ticket="+r.Ticket, nil)
	require.NoError(t, err)
	ws.Close()

	// Single use: the same ticket is refused before the upgrade.
	_, hr, err := websocket.DefaultDialer.Dial(r.Endpoint+"?ticket="+r.Ticket, nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, hr.StatusCode)
	_, hr, err = websocket.DefaultDialer.Dial(r.Endpoint+"?ticket=made-up", nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, hr.StatusCode)

	// Expired.
	_, r = open(t, g, dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)
	time.Sleep(250 * time.Millisecond)
	_, hr, err = websocket.DefaultDialer.Dial(r.Endpoint+"?ticket="+r.Ticket, nil)
	require.ErrorIs(t, err, websocket.ErrBadHandshake)
	require.Equal(t, http.StatusUnauthorized, hr.StatusCode)

	g.FailOpens(2)
	for range 2 {
		resp, _ = open(t, g, dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	}
	resp, _ = open(t, g, dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)
	require.Equal(t, 200, resp.StatusCode)
	st := g.Stats()
	require.Equal(t, 3, st.TicketsRefused)
	require.Equal(t, 3, st.OpensFailed)
}

type rawFrame struct {
	Type    string            `json:"type"`
	Headers map[string]string `json:"headers"`
	Data    string            `json:"data"`
}

func readFrame(t *testing.T, ws *websocket.Conn) rawFrame {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	typ, b, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, websocket.TextMessage, typ)
	var f rawFrame
	require.NoError(t, json.Unmarshal(b, &f), "headers must be strings: %s", b)
	return f
}

func ack(t *testing.T, ws *websocket.Conn, f rawFrame, code int, data string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"code": code, "headers": map[string]string{"messageId": f.Headers["messageId"], "contentType": "application/json"}, "message": "ok", "data": data})
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, b))
}

func TestRedeliveryAndAckCorrelation(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 50 * time.Millisecond, MaxRedeliveries: 2})
	defer g.Close()
	ws := dial(t, g)

	p := g.PushBotMessage(dingtalktest.TextMessage("m1", "hello"))
	f1 := readFrame(t, ws)
	require.Equal(t, "CALLBACK", f1.Type)
	require.Equal(t, dingtalktest.TopicBotMessage, f1.Headers["topic"])
	ack(t, ws, f1, 500, "") // not stored: push again
	f2 := readFrame(t, ws)
	require.NotEqual(t, f1.Headers["messageId"], f2.Headers["messageId"])
	require.Equal(t, f1.Data, f2.Data)
	f3 := readFrame(t, ws) // left unacked: pushed again
	ack(t, ws, f3, 200, `{"response":null}`)
	<-p.Done()
	ack(t, ws, f2, 200, `{"response":null}`) // late

	ev := g.PushEvent("chat_update_title", "corp", []byte(`{"title":"x"}`))
	e1 := readFrame(t, ws)
	require.Equal(t, "EVENT", e1.Type)
	require.Equal(t, "*", e1.Headers["topic"])
	require.Equal(t, "chat_update_title", e1.Headers["eventType"])
	ack(t, ws, e1, 200, `{"status":"LATER"}`)
	e2 := readFrame(t, ws)
	require.Equal(t, e1.Headers["eventId"], e2.Headers["eventId"])
	ack(t, ws, e2, 200, `{"status":"SUCCESS"}`)
	<-ev.Done()

	gone := g.PushBotMessage(dingtalktest.TextMessage("m2", "never acked"))
	for range 3 {
		readFrame(t, ws)
	}
	<-gone.Done()
	require.Equal(t, []int{2}, g.GivenUp())
	require.NoError(t, g.Wait(ctxT(t, time.Second)))

	d := g.Deliveries()
	require.Len(t, d, 8)
	require.Equal(t, 500, d[0].Code)
	require.False(t, d[0].AckedAt.Before(d[0].SentAt))
	st := g.Stats()
	require.Equal(t, 1, st.LateAcks)
	require.Equal(t, 1, st.Later)
	require.Equal(t, 3, st.Pushes)
	require.Equal(t, 8, st.Frames)
	require.Equal(t, 5, st.Redeliveries)
}

func TestPingPongAndSystemFrames(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{DisconnectGrace: 100 * time.Millisecond})
	defer g.Close()
	ws := dial(t, g)
	var pongs atomic.Int32
	ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })

	// Reading is needed for control frames to be processed.
	frames := make(chan rawFrame, 10)
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				close(frames)
				return
			}
			var f rawFrame
			_ = json.Unmarshal(b, &f)
			frames <- f
		}
	}()
	for range 3 {
		require.NoError(t, ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)))
	}
	require.Eventually(t, func() bool { return pongs.Load() == 3 }, 2*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	require.EqualValues(t, 3, pongs.Load(), "exactly one Pong per Ping, none unasked")

	g.SwallowPings(true)
	require.NoError(t, ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)))
	time.Sleep(50 * time.Millisecond)
	require.EqualValues(t, 3, pongs.Load())
	g.SwallowPings(false)

	g.PingAll()
	f := <-frames
	require.Equal(t, "SYSTEM", f.Type)
	require.Equal(t, "ping", f.Headers["topic"])
	ack(t, ws, f, 200, f.Data)
	require.Eventually(t, func() bool { return g.Stats().SystemPongs == 1 }, time.Second, 5*time.Millisecond)

	require.Equal(t, 1, g.DisconnectAll())
	f = <-frames
	require.Equal(t, "disconnect", f.Headers["topic"])
	// No more pushes to it: the push waits for another connection.
	p := g.PushBotMessage(dingtalktest.TextMessage("m1", "x"))
	_, ok := <-frames // closed by the gateway after the grace
	require.False(t, ok)
	ws2 := dial(t, g)
	f = readFrame(t, ws2)
	ack(t, ws2, f, 200, "")
	<-p.Done()
	st := g.Stats()
	require.Equal(t, 4, st.Pings)
	require.Equal(t, 3, st.Pongs)
	require.Equal(t, 1, st.PingsSwallowed)
}

func TestZombieAbruptCloseRawAndDrop(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 50 * time.Millisecond, DropWhileDisconnected: true})
	defer g.Close()
	ws := dial(t, g)
	conns := g.Conns()
	require.Len(t, conns, 1)
	require.NoError(t, g.Zombie(conns[0].ID))
	p := g.PushBotMessage(dingtalktest.TextMessage("m1", "x"))
	require.True(t, g.PushRaw([]byte("not json")) == false, "a zombie takes no raw frames")
	// The push goes to the zombie and vanishes; once the zombie is closed it is dropped.
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, g.AbruptClose(conns[0].ID))
	_, _, err := ws.ReadMessage()
	require.Error(t, err)
	<-p.Done()
	require.Equal(t, []int{0}, g.GivenUp())
	require.ErrorIs(t, g.Zombie("conn-99"), dingtalktest.ErrNoConn)

	ws2 := dial(t, g)
	require.NoError(t, g.WaitConns(ctxT(t, 5*time.Second), 1))
	require.True(t, g.PushRaw([]byte(`{"headers":{"messageId":1}}`)))
	_, b, err := ws2.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, `{"headers":{"messageId":1}}`, string(b))
}

func TestOpenAPIFakes(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{DownloadQPS: 3})
	defer g.Close()
	post := func(path, token string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", g.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("x-acs-dingtalk-access-token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, _ := post("/v1.0/oauth2/accessToken", "", map[string]string{"appKey": "x", "appSecret": "y"})
	require.Equal(t, 400, code)
	code, m := post("/v1.0/oauth2/accessToken", "", map[string]string{"appKey": dingtalktest.DefaultClientID, "appSecret": dingtalktest.DefaultClientSecret})
	require.Equal(t, 200, code)
	require.EqualValues(t, 7200, m["expireIn"])
	tok := m["accessToken"].(string)

	g.AddFile("dc1", "image/png", []byte("PNGDATA"))
	g.FailDownloads("dc1", 1)
	dl := map[string]string{"downloadCode": "dc1", "robotCode": dingtalktest.DefaultClientID}
	code, _ = post("/v1.0/robot/messageFiles/download", "bad", dl)
	require.Equal(t, 401, code)
	code, m = post("/v1.0/robot/messageFiles/download", tok, dl)
	require.Equal(t, 500, code)
	require.Equal(t, "system error", m["message"])
	code, m = post("/v1.0/robot/messageFiles/download", tok, dl)
	require.Equal(t, 200, code)
	resp, err := http.Get(m["downloadUrl"].(string))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "PNGDATA", string(b))
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	code, _ = post("/v1.0/robot/messageFiles/download", tok, map[string]string{"downloadCode": "nope", "robotCode": dingtalktest.DefaultClientID})
	require.Equal(t, 400, code)
	code, m = post("/v1.0/robot/messageFiles/download", tok, map[string]string{"downloadCode": "nope", "robotCode": dingtalktest.DefaultClientID})
	require.Equal(t, 403, code, "fourth call in the second: throttled")
	require.Equal(t, "Forbidden.AccessDenied.QpsLimitForApi", m["code"])
	g.ExpireTokens()
	code, _ = post("/v1.0/robot/messageFiles/download", tok, dl)
	require.Equal(t, 401, code)
}

// TestRealSDK drives the official SDK against the gateway: a raw callback router, SYSTEM pings
// answered by the SDK, and a redelivery after the handler failed once.
func TestRealSDK(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 50 * time.Millisecond})
	defer g.Close()
	var calls atomic.Int32
	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret)),
		client.WithOpenApiHost(g.URL),
		client.WithAutoReconnect(false),
	)
	cli.RegisterCallbackRouter(dingtalktest.TopicBotMessage, func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
		if calls.Add(1) == 1 {
			return payload.NewDataFrameResponse(500), nil
		}
		r := payload.NewSuccessDataFrameResponse()
		r.SetData(`{"response":null}`)
		return r, nil
	})
	require.NoError(t, cli.Start(ctxT(t, 5*time.Second)))
	defer cli.Close()
	require.NoError(t, g.WaitConns(ctxT(t, 5*time.Second), 1))
	p := g.PushBotMessage(dingtalktest.TextMessage("m1", "hi"))
	<-p.Done()
	g.PingAll()
	require.Eventually(t, func() bool { return g.Stats().SystemPongs == 1 }, 2*time.Second, 5*time.Millisecond)
	d := g.Deliveries()
	require.Len(t, d, 2)
	require.Equal(t, 500, d[0].Code)
	require.Equal(t, 200, d[1].Code)
}
