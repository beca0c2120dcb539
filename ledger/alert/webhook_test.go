package alert

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWebhookSendsSignedReferences(t *testing.T) {
	rv := newReceiver(t)
	srv := httptest.NewServer(rv)
	defer srv.Close()
	w := newWebhook(t, srv.URL)
	a := sampleAlert(1)
	if err := w.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	got := rv.delivered()[a.ID]
	want := a
	want.Excerpt = ""
	if got != want {
		t.Fatalf("receiver got %+v\nwant %+v", got, want)
	}
	if b := string(rv.allBodies()); strings.Contains(b, "CONTENT-7f3a") || strings.Contains(b, "excerpt") {
		t.Fatalf("body holds content without opt-in: %s", b)
	}

	// With the sender's opt-in the excerpt travels.
	w2, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: testSecret, IncludeExcerpt: true})
	if err != nil {
		t.Fatal(err)
	}
	b := sampleAlert(2)
	if err := w2.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := rv.delivered()[b.ID]; got.Excerpt != secretText {
		t.Fatalf("opted-in excerpt = %q", got.Excerpt)
	}
}

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"a-1"}`)
	ts := "1800000000"
	sig := Sign(testSecret, ts, body)
	if err := VerifySignature(testSecret, ts, sig, body, now, 0); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	for _, c := range []struct {
		name          string
		secret        []byte
		ts, sig, body string
		now           time.Time
		want          error
	}{
		{"wrong secret", []byte("another-secret-0123"), ts, sig, string(body), now, ErrBadSignature},
		{"body changed", testSecret, ts, sig, `{"id":"a-2"}`, now, ErrBadSignature},
		{"timestamp changed", testSecret, "1800000001", sig, string(body), now, ErrBadSignature},
		{"no prefix", testSecret, ts, strings.TrimPrefix(sig, "sha256="), string(body), now, ErrBadSignature},
		{"short", testSecret, ts, sig[:20], string(body), now, ErrBadSignature},
		{"not hex", testSecret, ts, "sha256=" + strings.Repeat("zz", 32), string(body), now, ErrBadSignature},
		{"timestamp not a number", testSecret, "soon", Sign(testSecret, "soon", body), string(body), now, ErrBadSignature},
		{"replayed later", testSecret, ts, sig, string(body), now.Add(DefaultMaxSkew + time.Second), ErrStaleTimestamp},
		{"from the future", testSecret, ts, sig, string(body), now.Add(-DefaultMaxSkew - time.Second), ErrStaleTimestamp},
	} {
		err := VerifySignature(c.secret, c.ts, c.sig, []byte(c.body), c.now, 0)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := VerifySignature(testSecret, ts, sig, body, now.Add(time.Hour), 2*time.Hour); err != nil {
		t.Errorf("custom skew: %v", err)
	}
}

func TestWebhookClassifiesReplies(t *testing.T) {
	status := make(chan int, 1)
	hdr := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range <-hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(<-status)
		w.Write([]byte("receiver says no"))
	}))
	defer srv.Close()
	w := newWebhook(t, srv.URL)
	for _, c := range []struct {
		status     int
		hdr        http.Header
		ok, perm   bool
		retryAfter time.Duration
	}{
		{200, nil, true, false, 0},
		{202, nil, true, false, 0},
		{204, nil, true, false, 0},
		{400, nil, false, true, 0},
		{401, nil, false, true, 0},
		{404, nil, false, true, 0},
		{410, nil, false, true, 0},
		{422, nil, false, true, 0},
		{408, nil, false, false, 0},
		{429, http.Header{"Retry-After": {"7"}}, false, false, 7 * time.Second},
		{503, http.Header{"Retry-After": {time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, false, false, 89 * time.Second},
		{500, nil, false, false, 0},
		{502, nil, false, false, 0},
		{301, nil, false, false, 0},
	} {
		status <- c.status
		hdr <- c.hdr
		err := w.Send(context.Background(), sampleAlert(1))
		if c.ok {
			if err != nil {
				t.Errorf("%d: %v", c.status, err)
			}
			continue
		}
		var de *DeliveryError
		if !errors.As(err, &de) || de.StatusCode != c.status {
			t.Errorf("%d: %v, want a DeliveryError", c.status, err)
			continue
		}
		if errors.Is(err, ErrPermanent) != c.perm || de.Permanent != c.perm {
			t.Errorf("%d: permanent = %v, want %v", c.status, de.Permanent, c.perm)
		}
		if de.Msg != "receiver says no" {
			t.Errorf("%d: message %q", c.status, de.Msg)
		}
		// An HTTP date is rounded to seconds: accept one second less.
		if de.RetryAfter < c.retryAfter || de.RetryAfter > c.retryAfter+2*time.Second {
			t.Errorf("%d: RetryAfter %s, want %s", c.status, de.RetryAfter, c.retryAfter)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-5":                            0,
		"120":                           2 * time.Minute,
		" 3 ":                           3 * time.Second,
		"99999999999999":                maxRetryAfter,
		"Mon, 02 Nov 2026 09:01:00 GMT": time.Minute,
		"Mon, 02 Nov 2026 08:59:00 GMT": 0,
		"Tue, 02 Nov 2027 09:00:00 GMT": maxRetryAfter,
		"soon":                          0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestWebhookErrorsDoNotLeakTheURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	w := newWebhook(t, "http://"+addr+"/hook?token=TOPSECRET-TOKEN")
	err = w.Send(context.Background(), sampleAlert(1))
	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if errors.Is(err, ErrPermanent) {
		t.Fatalf("a refused connection is permanent: %v", err)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("error shows the URL's token: %v", err)
	}
}

func TestNewWebhookChecksOptions(t *testing.T) {
	for _, o := range []WebhookOptions{
		{URL: "", Secret: testSecret},
		{URL: "ftp://example.com/x", Secret: testSecret},
		{URL: "http:///nohost", Secret: testSecret},
		{URL: "http://example.com/x", Secret: []byte("short")},
	} {
		if _, err := NewWebhook(o); err == nil {
			t.Errorf("NewWebhook(%q, %d-byte secret) accepted", o.URL, len(o.Secret))
		}
	}
	// An invalid alert is refused before anything is sent.
	w := newWebhook(t, "http://127.0.0.1:1/x")
	bad := sampleAlert(1)
	bad.Platform = ""
	if err := w.Send(context.Background(), bad); !errors.Is(err, ErrInvalidAlert) {
		t.Fatalf("invalid alert: %v", err)
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	var mu sync.Mutex
	moved := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			mu.Lock()
			moved++
			mu.Unlock()
			return
		}
		http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	err := newWebhook(t, srv.URL+"/hook").Send(context.Background(), sampleAlert(1))
	var de *DeliveryError
	if !errors.As(err, &de) || de.StatusCode != http.StatusTemporaryRedirect || de.Permanent {
		t.Fatalf("Send = %v, want a retryable 307", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if moved != 0 {
		t.Fatalf("the redirect was followed %d times", moved)
	}
}
