package dingtalk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
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

var errTransient = errors.New("transient: storage busy")

// TestStreamSurvivesEverything pushes 10,000 bot messages through the real SDK while the
// gateway and the sink misbehave: every 10th message is held by a slow sink until the gateway,
// past its redelivery delay, has pushed it again while unacknowledged, a SYSTEM disconnect follows
// every 1,000, every connection is cut abruptly once, pings are swallowed for a window until
// the SDK gives the connections up (one of them a zombie), malformed frames and a quota payload arrive, and the sink
// fails 1% of calls. Afterwards every msgId is stored exactly once, no push was acknowledged
// before its message's append returned, and nothing was given up.
//
// COMMSEAL_SLOW=1 runs 50,000 messages.
func TestStreamSurvivesEverything(t *testing.T) {
	n := 10_000
	if os.Getenv("COMMSEAL_SLOW") != "" {
		n = 50_000
	}
	const redeliver = 300 * time.Millisecond
	g := dingtalktest.New(dingtalktest.Config{
		RedeliverAfter: redeliver, MaxRedeliveries: 1000, DisconnectGrace: 300 * time.Millisecond,
	})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)

	sink := capturetest.NewSink()
	var mu sync.Mutex
	seen := map[string]bool{}
	held := map[string]chan struct{}{} // every 10th message's first append, until its redelivery
	rnd := rand.New(rand.NewPCG(1, 2))
	transient := 0
	sink.Before = func(ctx context.Context, m *capture.Message, r *capture.Record) error {
		mu.Lock()
		fail := rnd.IntN(100) == 0
		first := m != nil && !seen[m.ID]
		if m != nil {
			seen[m.ID] = true
			if ch, ok := held[m.ID]; ok && !first {
				close(ch) // the redelivery has arrived: the held append may return
				delete(held, m.ID)
			}
		}
		if fail {
			transient++
		}
		var wait chan struct{}
		if !fail && first && strings.HasSuffix(m.ID, "0") {
			wait = make(chan struct{})
			held[m.ID] = wait
		}
		mu.Unlock()
		if fail {
			return errTransient
		}
		if wait != nil {
			// Every 10th is held until the gateway, finding it unacknowledged after its
			// redelivery delay, has pushed it again and the redelivery has reached the sink.
			// (Waiting for the redelivery itself, not for a fixed time past the delay, keeps
			// this true when timers run late on a loaded machine.)
			select {
			case <-wait:
			case <-time.After(30 * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}

	opts := fastOptions(t, g)
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	stop := running(t, src, sink)
	require.NoError(t, g.WaitConns(ctxT(t, 10*time.Second), 2))
	start := time.Now()

	msgID := func(i int) string { return fmt.Sprintf("m-%06d", i) }
	settle := func(what string) {
		t.Helper()
		require.NoError(t, g.Wait(ctxT(t, 60*time.Second)), what)
	}
	const batch = 1000
	for b := 0; b*batch < n; b++ {
		payloads := make([][]byte, 0, batch)
		for i := b * batch; i < (b+1)*batch && i < n; i++ {
			payloads = append(payloads, dingtalktest.BotMessage{MsgID: msgID(i), Text: "order " + strconv.Itoa(i), SenderStaffID: "staff-" + strconv.Itoa(i%37)}.JSON())
		}
		half := len(payloads) / 2
		g.PushBurst(payloads[:half])
		switch b {
		case 3:
			// Malformed frames: garbage, a numeric header (the SDK drops both before any
			// handler runs), and data that is not a bot message; then a quota payload.
			require.True(t, g.PushRaw([]byte("\x00garbage")))
			require.True(t, g.PushRaw([]byte(`{"specVersion":"1.0","type":"CALLBACK","headers":{"topic":"/v1.0/im/bot/messages/get","messageId":7},"data":"{}"}`)))
			g.PushBotMessage([]byte(`{"msgId":"broken","msgtype":"text","text":`))
			g.PushBotMessage(dingtalktest.QuotaPayload("quota-1"))
		case 5:
			require.Positive(t, g.AbruptCloseAll())
		case 6:
			// A zombie: the gateway keeps routing to a connection that delivers nothing. Its
			// pushes are redelivered (to either connection at random) until the swallowed-ping
			// window below makes the SDK give it up.
			for _, c := range g.Conns() {
				if c.State == dingtalktest.ConnLive {
					require.NoError(t, g.Zombie(c.ID))
					break
				}
			}
		}
		g.PushBurst(payloads[half:])
		settle(fmt.Sprintf("batch %d", b))
		// A SYSTEM disconnect every 1,000 messages.
		for _, c := range g.Conns() {
			if c.State == dingtalktest.ConnLive {
				require.NoError(t, g.Disconnect(c.ID))
				break
			}
		}
		if b == 6 {
			// A window of swallowed pings: idle connections ping after KeepAlive (3 s), get no
			// Pong within 5 s, are closed by the SDK and re-opened by the source.
			before := src.Health().Reconnects
			g.SwallowPings(true)
			require.Eventually(t, func() bool { return src.Health().Reconnects >= before+2 }, 30*time.Second, 50*time.Millisecond)
			g.SwallowPings(false)
			require.NoError(t, g.WaitConns(ctxT(t, 10*time.Second), 1))
		}
	}
	settle("all")
	elapsed := time.Since(start)
	require.Empty(t, g.GivenUp(), "no push was given up")

	// Every distinct msgId exactly once.
	msgs := sink.Messages()
	require.Len(t, msgs, n)
	ids := map[string]int{}
	for _, m := range msgs {
		ids[m.ID]++
	}
	for i := range n {
		require.Equal(t, 1, ids[msgID(i)], msgID(i))
	}

	// Every 10th message, held by the slow sink, was pushed again while unacknowledged.
	deliveries := map[string]int{}
	for _, d := range g.Deliveries() {
		var p struct{ MsgID string }
		if json.Unmarshal([]byte(d.Data), &p) == nil {
			deliveries[p.MsgID]++
		}
	}
	for i := 0; i < n; i += 10 {
		require.GreaterOrEqual(t, deliveries[msgID(i)], 2, "%s was not redelivered", msgID(i))
	}

	// No push acknowledged before its append returned.
	acked := 0
	for _, d := range g.Deliveries() {
		if !d.Acked || d.Code != 200 || d.Type != dingtalktest.TypeCallback {
			continue
		}
		var p struct{ MsgID string }
		if json.Unmarshal([]byte(d.Data), &p) != nil || !strings.HasPrefix(p.MsgID, "m-") {
			continue
		}
		committed, ok := sink.Committed(capture.Identity{Platform: capture.PlatformDingTalk, Tenant: "corp-test", ID: p.MsgID})
		require.True(t, ok, "%s acked but never stored", p.MsgID)
		require.True(t, committed.Before(d.AckedAt), "%s acked at %v before its commit at %v", p.MsgID, d.AckedAt, committed)
		acked++
	}
	require.GreaterOrEqual(t, acked, n)

	errs := sink.Records(capture.RecordCaptureError)
	require.Len(t, errs, 2, "the malformed bot payload and the quota payload are sealed")

	st := g.Stats()
	h := src.Health()
	t.Logf("%d messages in %v; gateway: %d frames, %d redeliveries, %d disconnects, acks %v, %d pings swallowed; source: %d reconnects, %d duplicates, %d sink errors (%d injected)",
		n, elapsed.Round(time.Millisecond), st.Frames, st.Redeliveries, st.Disconnects, st.Acks, st.PingsSwallowed,
		h.Reconnects, h.Duplicates, h.SinkErrors, transient)
	require.GreaterOrEqual(t, st.Redeliveries, n/10, "every 10th message was pushed again")
	require.GreaterOrEqual(t, st.Disconnects, n/batch)
	require.Positive(t, st.PingsSwallowed)
	require.Positive(t, h.Duplicates)
	require.Positive(t, h.SinkErrors)
	require.EqualValues(t, 1, h.QuotaExhausted)

	stop()
	before := runtime.NumGoroutine()
	require.Less(t, before, 200, "the source leaves no goroutines behind")
}
