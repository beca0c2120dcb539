package dingtalk_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/capturetest"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/stretchr/testify/require"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testLogger logs to the test output when COMMSEAL_VERBOSE is set, and nowhere otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("COMMSEAL_VERBOSE") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// fastOptions are source options with test timings against gateway g.
func fastOptions(t testing.TB, g *dingtalktest.Gateway) dingtalk.Options {
	return dingtalk.Options{
		ClientID: dingtalktest.DefaultClientID, ClientSecret: dingtalktest.DefaultClientSecret,
		OpenAPIHost:  g.URL,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		CheckInterval: 20 * time.Millisecond,
		KeepAlive:     3 * time.Second,
		Media:         dingtalk.MediaOptions{Disabled: true},
		Logger:        testLogger(t),
	}
}

// running starts src.Run in the background and returns a stop function that ends it and
// checks it returned nil.
func running(t testing.TB, src *dingtalk.Source, sink capture.Sink) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestSourceCapturesMessagesEventsAndErrors(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 200 * time.Millisecond})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	sink := capturetest.NewSink()
	src, err := dingtalk.NewSource(fastOptions(t, g))
	require.NoError(t, err)
	stop := running(t, src, sink)
	require.NoError(t, g.WaitConns(ctxT(t, 10*time.Second), 2))

	text := dingtalktest.BotMessage{MsgID: "m1", Text: "買入 0700", SenderNick: "陳大文"}.JSON()
	g.PushBotMessage(text)
	g.PushBotMessage(text) // DingTalk may push twice: stored once
	g.PushEvent("chat_add_member", "corp-test", []byte(`{"openConversationId":"cid-g1","userIds":["u9"]}`))
	// DingTalk may push an event again even after it was acked: same eventId, recorded once.
	again := dingtalktest.Frame{Type: dingtalktest.TypeEvent, Topic: dingtalktest.TopicAllEvents, Data: []byte(`{"chatId":"c7"}`),
		Headers: map[string]string{"eventId": "evt-fixed", "eventType": "chat_quit", "eventCorpId": "corp-test", "eventBornTime": "1700000000000"}}
	<-g.PushFrame(again).Done()
	<-g.PushFrame(again).Done()
	g.PushBotMessage(dingtalktest.QuotaPayload("q1"))
	g.PushBotMessage([]byte(`{"msgId":`))
	require.True(t, g.PushRaw([]byte(`not a frame`)))
	require.NoError(t, g.Wait(ctxT(t, 10*time.Second)))

	msgs := sink.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, string(text), string(msgs[0].Raw), "raw data kept byte for byte")
	require.Equal(t, "買入 0700", msgs[0].Text)
	require.False(t, msgs[0].CapturedAt.IsZero())

	ctxRecs := sink.Records(capture.RecordContext)
	require.Len(t, ctxRecs, 2)
	if ctxRecs[0].ID == "event:evt-fixed" { // the two pushes race; order them
		ctxRecs[0], ctxRecs[1] = ctxRecs[1], ctxRecs[0]
	}
	require.Equal(t, "event:evt-fixed", ctxRecs[1].ID)
	require.Equal(t, time.UnixMilli(1700000000000).UTC(), ctxRecs[1].At)
	require.Equal(t, `{"chatId":"c7"}`, string(ctxRecs[1].Raw))
	require.Equal(t, "cid-g1", ctxRecs[0].Conversation.ID)
	require.Equal(t, "corp-test", ctxRecs[0].Tenant)
	require.Contains(t, string(ctxRecs[0].Body), `"event_type":"chat_add_member"`)
	require.Contains(t, string(ctxRecs[0].Body), `"group_event":true`)

	errs := sink.Records(capture.RecordCaptureError)
	require.Len(t, errs, 2)
	var quota, malformed int
	for _, r := range errs {
		var b map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &b))
		if b["quota_exhausted"] == true {
			quota++
			require.EqualValues(t, 20001, b["err_code"])
			require.Equal(t, string(dingtalktest.QuotaPayload("q1"))[:20], string(r.Raw)[:20])
		} else {
			malformed++
			require.Equal(t, `{"msgId":`, string(r.Raw))
			require.Contains(t, b["reason"], "malformed")
		}
	}
	require.Equal(t, 1, quota)
	require.Equal(t, 1, malformed)

	h := src.Health()
	require.Equal(t, dingtalk.StateConnected, h.State)
	require.Len(t, h.Connections, 2)
	require.EqualValues(t, 2, h.Messages)
	require.EqualValues(t, 2, h.Duplicates)
	require.EqualValues(t, 2, h.CaptureErrors)
	require.EqualValues(t, 1, h.QuotaExhausted)
	require.EqualValues(t, 3, h.Events)
	require.EqualValues(t, 7, h.Acks["200"])

	stop()
	conns := g.Stats().Connections
	require.Equal(t, dingtalk.StateStopped, src.Health().State)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, conns, g.Stats().Connections, "no reconnect after stop")
	for _, c := range g.Conns() {
		require.Equal(t, dingtalktest.ConnClosed, c.State)
	}
}

// failingSink fails every call with a transient error.
func TestSourceSinkErrorIsPushedAgain(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 100 * time.Millisecond})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	sink := capturetest.NewSink()
	var mu sync.Mutex
	fails := map[string]int{}
	sink.Before = func(ctx context.Context, m *capture.Message, r *capture.Record) error {
		mu.Lock()
		defer mu.Unlock()
		id := "record"
		if m != nil {
			id = m.ID
		}
		if fails[id] < 2 {
			fails[id]++
			return errors.New("disk busy")
		}
		return nil
	}
	opts := fastOptions(t, g)
	opts.Connections = 1
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	running(t, src, sink)
	g.PushBotMessage(dingtalktest.TextMessage("m1", "x"))
	g.PushEvent("chat_update_title", "corp-test", []byte(`{"title":"t"}`))
	require.NoError(t, g.Wait(ctxT(t, 10*time.Second)))
	require.Len(t, sink.Messages(), 1)
	require.Len(t, sink.Records(capture.RecordContext), 1)

	var cb, ev []dingtalktest.Delivery
	for _, d := range g.Deliveries() {
		if d.Type == dingtalktest.TypeEvent {
			ev = append(ev, d)
		} else {
			cb = append(cb, d)
		}
	}
	require.Len(t, cb, 3)
	require.Equal(t, []int{500, 500, 200}, []int{cb[0].Code, cb[1].Code, cb[2].Code})
	require.Len(t, ev, 3)
	require.Equal(t, "LATER", ev[0].Status)
	require.Equal(t, "LATER", ev[1].Status)
	require.Equal(t, "SUCCESS", ev[2].Status)
	h := src.Health()
	require.EqualValues(t, 2, h.Later)
	require.EqualValues(t, 4, h.SinkErrors)
}

func TestSourceConfigErrors(t *testing.T) {
	_, err := dingtalk.NewSource(dingtalk.Options{})
	require.ErrorIs(t, err, dingtalk.ErrConfig)
	_, err = dingtalk.NewSource(dingtalk.Options{ClientID: "a", ClientSecret: "b"})
	require.ErrorIs(t, err, dingtalk.ErrConfig, "media needs a journal")
	src, err := dingtalk.NewSource(dingtalk.Options{ClientID: "a", ClientSecret: "b", Media: dingtalk.MediaOptions{Disabled: true}})
	require.NoError(t, err)
	onlyMessages := capture.SinkFunc(func(context.Context, *capture.Message) (capture.Receipt, error) { return capture.Receipt{}, nil })
	require.ErrorIs(t, src.Run(t.Context(), onlyMessages), dingtalk.ErrNoRecordSink)
	require.ErrorIs(t, src.Run(t.Context(), nil), dingtalk.ErrConfig)
}

func TestSourceBadCredentialsAndFailingOpens(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	opts := fastOptions(t, g)
	opts.Connections = 1
	opts.ClientSecret = "wrong"
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	stop := running(t, src, capturetest.NewSink())
	require.Eventually(t, func() bool { return src.Health().ConnectFail >= 2 }, 5*time.Second, 10*time.Millisecond)
	h := src.Health()
	require.Equal(t, dingtalk.StateConnecting, h.State)
	require.Contains(t, h.Connections[0].LastError, "InvalidAuthentication")
	stop()

	g.FailOpens(3)
	opts.ClientSecret = dingtalktest.DefaultClientSecret
	src, err = dingtalk.NewSource(opts)
	require.NoError(t, err)
	running(t, src, capturetest.NewSink())
	require.NoError(t, g.WaitConns(ctxT(t, 10*time.Second), 1))
	require.EqualValues(t, 3, src.Health().ConnectFail)
}

func TestSourceSilence(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	opts := fastOptions(t, g)
	opts.SilenceWindow = 100 * time.Millisecond
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	running(t, src, capturetest.NewSink())
	require.Eventually(t, func() bool { return src.Health().Silent }, 5*time.Second, 10*time.Millisecond)
	g.PushBotMessage(dingtalktest.TextMessage("m1", "x"))
	require.NoError(t, g.Wait(ctxT(t, 5*time.Second)))
	h := src.Health()
	require.False(t, h.Silent)
	require.EqualValues(t, 1, h.Silences)
}

var _ = io.Discard

// recordingHandler keeps slog records for assertions.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }
func (h *recordingHandler) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func TestSourceLogsHealthEvents(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	rec := &recordingHandler{}
	opts := fastOptions(t, g)
	opts.Logger = slog.New(rec)
	opts.SilenceWindow = 50 * time.Millisecond
	opts.Connections = 1
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	stop := running(t, src, capturetest.NewSink())
	require.Eventually(t, func() bool { return rec.has("WARN dingtalk: no bot message or event within the silence window") }, 5*time.Second, 5*time.Millisecond)
	require.True(t, rec.has("INFO dingtalk: connected"))
	require.NoError(t, g.WaitConns(ctxT(t, 5*time.Second), 1))
	g.DisconnectAll()
	require.Eventually(t, func() bool { return src.Health().Reconnects == 1 }, 5*time.Second, 5*time.Millisecond)
	require.True(t, rec.has("INFO dingtalk: gateway asked to disconnect"))
	stop()
	require.True(t, rec.has("INFO dingtalk: source stopped"))
}

// TestSourceFinishesInFlightAppendsOnStop: once ctx has ended, a new frame is refused (500) and
// not stored, while the append in flight finishes and is acknowledged before Run returns.
//
// The frame "late" is pushed only after cancel has returned: the stop begins there. (An earlier
// version pushed it from a require.Eventually that testify runs at once, concurrently with the
// goroutine that was to cancel, so "late" sometimes arrived before the stop began and was
// rightly stored: a race in the test.)
func TestSourceFinishesInFlightAppendsOnStop(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: time.Minute})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	sink := capturetest.NewSink()
	entered := make(chan struct{})
	release := make(chan struct{})
	sink.Before = func(ctx context.Context, m *capture.Message, r *capture.Record) error {
		if m != nil && m.ID == "slow" {
			close(entered)
			<-release
		}
		return nil
	}
	opts := fastOptions(t, g)
	opts.Connections = 1
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	require.NoError(t, g.WaitConns(ctxT(t, 10*time.Second), 1))
	p := g.PushBotMessage(dingtalktest.TextMessage("slow", "in flight when stopping"))
	<-entered
	cancel() // the stop begins

	late, err := g.PushBotMessage(dingtalktest.TextMessage("late", "x")).Answered(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.Equal(t, 500, late.Code, "a frame that arrives after ctx ended is refused so that DingTalk pushes it again")
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with an append in flight", err)
	default:
	}
	close(release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	d, err := p.Answered(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.Equal(t, 200, d.Code, "the in-flight append finished and was acknowledged before closing")
	msgs := sink.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "slow", msgs[0].ID)
}
