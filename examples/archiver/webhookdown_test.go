package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/ledger/alert"
	"github.com/stretchr/testify/require"
)

// TestArchiverWebhookDownForAMinute: the alert webhook's receiver goes away (connections
// refused) for a minute with COMMSEAL_SLOW=1 (3 s otherwise) while flagged messages keep
// arriving; when it is back on the same address, every alert arrives, each attempt at one
// alert with the same idempotency key, through the archiver's default outbox backoff.
func TestArchiverWebhookDownForAMinute(t *testing.T) {
	outage, patience := 3*time.Second, 30*time.Second
	if os.Getenv("COMMSEAL_SLOW") == "1" {
		outage, patience = time.Minute, 3*time.Minute // the backoff doubles to 64 s by then
	}
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	secret := "down-for-a-minute-secret"
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret), 0o600))

	var mu sync.Mutex
	keys := map[string]string{} // msg_id -> idempotency key of its alert
	attempts := 0
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if alert.VerifySignature([]byte(secret), r.Header.Get(alert.HeaderTimestamp), r.Header.Get(alert.HeaderSignature), body, time.Now(), 0) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var a struct {
			MsgID string `json:"msg_id"`
		}
		if err := json.Unmarshal(body, &a); err != nil || a.MsgID == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		attempts++
		key := r.Header.Get(alert.HeaderIdempotencyKey)
		if k, ok := keys[a.MsgID]; ok && k != key {
			t.Errorf("alert of %s delivered with keys %s and %s", a.MsgID, k, key)
		}
		keys[a.MsgID] = key
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	delivered := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(keys) >= n }
	}

	stderr, stop := startArchiver(t, []string{"-dir", t.TempDir(), "-openapi-host", g.URL, "-alert-webhook", "http://" + addr, "-alert-secret-file", secretFile})
	push := func(from, to int) {
		for i := from; i < to; i++ {
			g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprint("f", i), Text: "call me on WhatsApp"}.JSON())
			g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprint("p", i), Text: "buy 100 0700.HK at market"}.JSON())
		}
	}
	push(0, 5)
	require.Eventually(t, delivered(5), 20*time.Second, 20*time.Millisecond, "before the outage: %s", stderr.String())

	require.NoError(t, srv.Close()) // the receiver is gone: connections are refused
	push(5, 15)
	time.Sleep(outage / 2)
	push(15, 25)
	require.NoError(t, g.Wait(context.Background()), "capture does not wait for alerts")
	time.Sleep(outage / 2)
	mu.Lock()
	require.Len(t, keys, 5, "nothing arrives while the receiver is down")
	mu.Unlock()

	ln, err = net.Listen("tcp", addr) // back, on the same address
	require.NoError(t, err)
	srv = &http.Server{Handler: handler}
	go srv.Serve(ln)
	defer srv.Close()
	require.Eventually(t, delivered(25), patience, 50*time.Millisecond, "after the outage: %s", stderr.String())
	require.Equal(t, 0, stop(), stderr.String())
	mu.Lock()
	defer mu.Unlock()
	for i := range 25 {
		require.Contains(t, keys, fmt.Sprint("f", i))
	}
	t.Logf("outage %v: 25 alerts delivered in %d attempts that reached the receiver", outage, attempts)
}
