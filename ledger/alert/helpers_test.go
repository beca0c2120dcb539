package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef-test-secret")

// receiver is a webhook receiver as a user would write one: it checks the signature with an
// independent HMAC computation, deduplicates on the Idempotency-Key, and answers as reply says.
type receiver struct {
	t      testing.TB
	secret []byte

	mu       sync.Mutex
	reply    func(n int, a Alert) (status int, hdr http.Header) // n counts attempts of this key, from 1
	attempts map[string]int
	got      map[string]Alert // delivered, by key
	order    []string         // keys in delivery order (first delivery)
	bodies   [][]byte
	times    []time.Time // arrival of every attempt
	keys     []string    // key of every attempt
}

func newReceiver(t testing.TB) *receiver {
	return &receiver{t: t, secret: testSecret, attempts: map[string]int{}, got: map[string]Alert{}}
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rv.t.Errorf("receiver: %v", err)
		return
	}
	ts := r.Header.Get(HeaderTimestamp)
	// Independent check of the signature: HMAC-SHA256(secret, ts "." body), hex.
	m := hmac.New(sha256.New, rv.secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); r.Header.Get(HeaderSignature) != want {
		rv.t.Errorf("receiver: signature %q, want %q", r.Header.Get(HeaderSignature), want)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		rv.t.Errorf("receiver: timestamp %q is not now", ts)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rv.t.Errorf("receiver: %s with %q", r.Method, r.Header.Get("Content-Type"))
	}
	var a Alert
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		rv.t.Errorf("receiver: body %s: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" || key != a.ID {
		rv.t.Errorf("receiver: Idempotency-Key %q, alert id %q", key, a.ID)
	}
	rv.mu.Lock()
	rv.attempts[key]++
	n := rv.attempts[key]
	rv.bodies = append(rv.bodies, body)
	rv.times = append(rv.times, time.Now())
	rv.keys = append(rv.keys, key)
	reply := rv.reply
	rv.mu.Unlock()
	status := http.StatusOK
	var hdr http.Header
	if reply != nil {
		status, hdr = reply(n, a)
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	if status >= 200 && status < 300 {
		rv.mu.Lock()
		if _, dup := rv.got[key]; !dup {
			rv.got[key] = a
			rv.order = append(rv.order, key)
		}
		rv.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (rv *receiver) setReply(f func(n int, a Alert) (int, http.Header)) {
	rv.mu.Lock()
	rv.reply = f
	rv.mu.Unlock()
}

func (rv *receiver) delivered() map[string]Alert {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	out := make(map[string]Alert, len(rv.got))
	for k, v := range rv.got {
		out[k] = v
	}
	return out
}

func (rv *receiver) attemptsOf(key string) int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.attempts[key]
}

func (rv *receiver) allBodies() []byte {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return bytes.Join(rv.bodies, []byte("\n"))
}

// restartable is an HTTP server on a fixed loopback address that can be stopped and started
// again, like a receiver that goes down and comes back.
type restartable struct {
	t    testing.TB
	h    http.Handler
	addr string
	srv  *httptest.Server
}

func newRestartable(t testing.TB, h http.Handler) *restartable {
	s := httptest.NewServer(h)
	r := &restartable{t: t, h: h, addr: s.Listener.Addr().String(), srv: s}
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) URL() string { return "http://" + r.addr }

func (r *restartable) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *restartable) start() {
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l, err = net.Listen("tcp", r.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		r.t.Fatalf("cannot listen on %s again: %v", r.addr, err)
	}
	s := httptest.NewUnstartedServer(r.h)
	s.Listener.Close()
	s.Listener = l
	s.Start()
	r.srv = s
}

// waitFor polls cond until it holds, failing the test after a generous bound (a liveness
// check, not a timing assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// fastOptions are outbox options with short backoffs for tests.
func fastOptions(t testing.TB) OutboxOptions {
	return OutboxOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func newWebhook(t testing.TB, url string) *Webhook {
	w, err := NewWebhook(WebhookOptions{URL: url, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// startRun runs o.Run in a goroutine and returns a function that cancels its context and
// returns Run's error; the test's cleanup calls it too.
func startRun(t testing.TB, o *Outbox) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func openOutbox(t testing.TB, dir string, s Sender, opts OutboxOptions) *Outbox {
	t.Helper()
	o, err := OpenOutbox(dir, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// slogTo logs as text to a buffer (safe for concurrent use).
func slogTo(b *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: b}, nil))
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
