package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/durable"
)

func queueFiles(t testing.TB, dir, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestOutboxDeliversConcurrentAlertsAndRemovesThem(t *testing.T) {
	rv := newReceiver(t)
	srv := httptest.NewServer(rv)
	defer srv.Close()
	dir := t.TempDir()
	o := openOutbox(t, dir, newWebhook(t, srv.URL), fastOptions(t))
	startRun(t, o)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.Alert(context.Background(), sampleAlert(uint64(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "40 deliveries", func() bool { return len(rv.delivered()) == 40 })
	waitFor(t, "empty queue", func() bool { return o.Stats().Pending == 0 })
	if s := o.Stats(); s.Delivered != 40 || s.Dead != 0 {
		t.Fatalf("stats %+v", s)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 0 {
		t.Fatalf("delivered alerts still on disk: %v", f)
	}
	for i := range 40 {
		if _, ok := rv.delivered()[NewID(uint64(i), "guarantee.returns", "sha256:0123456789abcdef")]; !ok {
			t.Fatalf("alert %d not delivered", i)
		}
	}
}

// TestReceiverDownLosesNothing: the receiver stops; alerts queued meanwhile stay on disk
// through a close and reopen of the outbox; when the receiver is back every alert arrives, with
// the same Idempotency-Key on every attempt.
func TestReceiverDownLosesNothing(t *testing.T) {
	rv := newReceiver(t)
	rs := newRestartable(t, rv)
	dir := t.TempDir()
	w := newWebhook(t, rs.URL())

	o, err := OpenOutbox(dir, w, fastOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, o)
	for i := range 5 {
		if err := o.Alert(context.Background(), sampleAlert(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "first deliveries", func() bool { return len(rv.delivered()) == 5 })

	rs.stop()
	for i := 5; i < 30; i++ {
		if err := o.Alert(context.Background(), sampleAlert(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	// Let Run fail against the stopped receiver for a while.
	time.Sleep(100 * time.Millisecond)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(queueFiles(t, dir, queueDir)); n != 25 {
		t.Fatalf("%d records on disk after close, want 25", n)
	}

	o2 := openOutbox(t, dir, w, fastOptions(t))
	if s := o2.Stats(); s.Pending != 25 {
		t.Fatalf("reopened with %+v, want 25 pending", s)
	}
	rs.start()
	startRun(t, o2)
	waitFor(t, "every alert", func() bool { return len(rv.delivered()) == 30 })
	waitFor(t, "empty queue", func() bool { return o2.Stats().Pending == 0 })
	for i := range 30 {
		id := NewID(uint64(i), "guarantee.returns", "sha256:0123456789abcdef")
		if got, ok := rv.delivered()[id]; !ok || got.Index != uint64(i) {
			t.Fatalf("alert %d: delivered %v (%+v)", i, ok, got)
		}
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 0 {
		t.Fatalf("records left: %v", f)
	}
}

func TestOutboxRetriesWithTheSameKeyUntilDelivered(t *testing.T) {
	rv := newReceiver(t)
	rv.setReply(func(n int, a Alert) (int, http.Header) {
		switch {
		case a.Index == 1 && n <= 3:
			return http.StatusServiceUnavailable, nil
		case a.Index == 1 && n == 4:
			return http.StatusRequestTimeout, nil
		}
		return http.StatusOK, nil
	})
	srv := httptest.NewServer(rv)
	defer srv.Close()
	o := openOutbox(t, t.TempDir(), newWebhook(t, srv.URL), fastOptions(t))
	startRun(t, o)
	a := sampleAlert(1)
	if err := o.Alert(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { return len(rv.delivered()) == 1 })
	if n := rv.attemptsOf(a.ID); n != 5 {
		t.Fatalf("%d attempts, want 5 (three 503s and a 408, then 200)", n)
	}
	waitFor(t, "empty queue", func() bool { return o.Stats().Pending == 0 })
	if s := o.Stats(); s.Dead != 0 || s.Delivered != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOutboxHonoursRetryAfter(t *testing.T) {
	rv := newReceiver(t)
	rv.setReply(func(n int, a Alert) (int, http.Header) {
		if a.Index == 1 && n == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	srv := httptest.NewServer(rv)
	defer srv.Close()
	o := openOutbox(t, t.TempDir(), newWebhook(t, srv.URL), fastOptions(t))
	// Queue both before Run, so the first attempt is alert 1's.
	for i := uint64(1); i <= 2; i++ {
		if err := o.Alert(context.Background(), sampleAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	startRun(t, o)
	waitFor(t, "both deliveries", func() bool { return len(rv.delivered()) == 2 })
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.times) != 3 {
		t.Fatalf("%d attempts, want 3", len(rv.times))
	}
	// Retry-After holds the whole queue: nothing reached the receiver within the second, and
	// then alert 1 went first again.
	if d := rv.times[1].Sub(rv.times[0]); d < time.Second {
		t.Fatalf("next request %s after a 429 with Retry-After: 1", d)
	}
	one, two := sampleAlert(1).ID, sampleAlert(2).ID
	if k := rv.keys; k[0] != one || k[1] != one || k[2] != two {
		t.Fatalf("attempt order %v, want [1 1 2]", k)
	}
}

// TestOutboxTooManyRequestsHoldsTheQueue: a 429 without Retry-After is about the client, so the
// other alerts wait too, and the refused one goes first when the backoff ends.
func TestOutboxTooManyRequestsHoldsTheQueue(t *testing.T) {
	rv := newReceiver(t)
	rv.setReply(func(n int, a Alert) (int, http.Header) {
		if a.Index == 1 && n == 1 {
			return http.StatusTooManyRequests, nil
		}
		return http.StatusOK, nil
	})
	srv := httptest.NewServer(rv)
	defer srv.Close()
	o := openOutbox(t, t.TempDir(), newWebhook(t, srv.URL), fastOptions(t))
	for i := uint64(1); i <= 3; i++ {
		if err := o.Alert(context.Background(), sampleAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	startRun(t, o)
	waitFor(t, "deliveries", func() bool { return len(rv.delivered()) == 3 })
	rv.mu.Lock()
	defer rv.mu.Unlock()
	want := []string{sampleAlert(1).ID, sampleAlert(1).ID, sampleAlert(2).ID, sampleAlert(3).ID}
	if fmt.Sprint(rv.keys) != fmt.Sprint(want) {
		t.Fatalf("attempt order %v, want %v", rv.keys, want)
	}
}

// TestOutboxServerErrorDelaysOnlyThatAlert: a 500 for one alert does not hold the others.
func TestOutboxServerErrorDelaysOnlyThatAlert(t *testing.T) {
	rv := newReceiver(t)
	rv.setReply(func(n int, a Alert) (int, http.Header) {
		if a.Index == 1 && n == 1 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	srv := httptest.NewServer(rv)
	defer srv.Close()
	opts := fastOptions(t)
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour // alert 1 would wait an hour
	o := openOutbox(t, t.TempDir(), newWebhook(t, srv.URL), opts)
	for i := uint64(1); i <= 3; i++ {
		if err := o.Alert(context.Background(), sampleAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	startRun(t, o)
	waitFor(t, "alerts 2 and 3", func() bool { return len(rv.delivered()) == 2 })
	if _, ok := rv.delivered()[sampleAlert(1).ID]; ok {
		t.Fatal("alert 1 delivered despite its backoff")
	}
	waitFor(t, "two settled", func() bool { s := o.Stats(); return s.Delivered == 2 && s.Pending == 1 })
}

func TestOutboxKeepsPermanentFailuresAsDeadLetters(t *testing.T) {
	rv := newReceiver(t)
	refuse := true
	var mu sync.Mutex
	rv.setReply(func(n int, a Alert) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if a.Index == 2 && refuse {
			return http.StatusUnprocessableEntity, nil
		}
		return http.StatusOK, nil
	})
	srv := httptest.NewServer(rv)
	defer srv.Close()
	dir := t.TempDir()
	var logs bytes.Buffer
	opts := fastOptions(t)
	opts.Logger = slogTo(&logs)
	w := newWebhook(t, srv.URL)
	o := openOutbox(t, dir, w, opts)
	stop := startRun(t, o)
	for i := uint64(1); i <= 3; i++ {
		if err := o.Alert(context.Background(), sampleAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The refused alert does not hold back the others.
	waitFor(t, "others delivered", func() bool { return len(rv.delivered()) == 2 })
	waitFor(t, "dead letter", func() bool { s := o.Stats(); return s.Dead == 1 && s.Pending == 0 })
	if n := rv.attemptsOf(sampleAlert(2).ID); n != 1 {
		t.Fatalf("a permanent failure was tried %d times", n)
	}
	dl, err := o.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Alert.Index != 2 || !strings.Contains(dl[0].Reason, "HTTP 422") || dl[0].Failed.IsZero() {
		t.Fatalf("dead letters %+v", dl)
	}
	if !strings.Contains(logs.String(), "dead letter") {
		t.Fatalf("dead letter not logged: %s", logs.String())
	}
	// Queuing it again does nothing: it is known.
	if err := o.Alert(context.Background(), sampleAlert(2)); err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); s.Pending != 0 || s.Dead != 1 {
		t.Fatalf("stats %+v", s)
	}

	// The dead letter survives a reopen.
	stop()
	o.Close()
	o2 := openOutbox(t, dir, w, opts)
	if s := o2.Stats(); s.Dead != 1 || s.Pending != 0 {
		t.Fatalf("reopened %+v", s)
	}
	// Mended receiver: Redrive queues it again and it is delivered.
	mu.Lock()
	refuse = false
	mu.Unlock()
	if n, err := o2.Redrive(context.Background()); err != nil || n != 1 {
		t.Fatalf("Redrive = %d, %v", n, err)
	}
	startRun(t, o2)
	waitFor(t, "redriven delivery", func() bool { return len(rv.delivered()) == 3 })
	waitFor(t, "empty outbox", func() bool { s := o2.Stats(); return s.Pending == 0 && s.Dead == 0 })
	if f := append(queueFiles(t, dir, queueDir), queueFiles(t, dir, deadDir)...); len(f) != 0 {
		t.Fatalf("files left: %v", f)
	}
}

func TestOutboxFullRefusesAndNeverDrops(t *testing.T) {
	dir := t.TempDir()
	w := newWebhook(t, "http://127.0.0.1:1/never")
	opts := fastOptions(t)
	opts.MaxRecords = 3
	o := openOutbox(t, dir, w, opts)
	for i := range 3 {
		if err := o.Alert(context.Background(), sampleAlert(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	err := o.Alert(context.Background(), sampleAlert(3))
	if !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("fourth alert: %v, want ErrOutboxFull", err)
	}
	// An alert already queued is not refused: it is already taken.
	if err := o.Alert(context.Background(), sampleAlert(1)); err != nil {
		t.Fatalf("duplicate of a queued alert: %v", err)
	}
	if n := len(queueFiles(t, dir, queueDir)); n != 3 {
		t.Fatalf("%d files, want 3", n)
	}
	o.Close()
	// The bound holds across a reopen, and dead letters count against it.
	o2 := openOutbox(t, dir, w, opts)
	if err := o2.Alert(context.Background(), sampleAlert(3)); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestOutboxRefusesInvalidAlertsAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	o := openOutbox(t, dir, newWebhook(t, "http://127.0.0.1:1/x"), fastOptions(t))
	bad := sampleAlert(1)
	bad.Severity = 0
	if err := o.Alert(context.Background(), bad); !errors.Is(err, ErrInvalidAlert) {
		t.Fatalf("Alert = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Alert(ctx, sampleAlert(2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Alert with a cancelled context = %v", err)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 0 {
		t.Fatalf("files: %v", f)
	}
}

// TestOutboxQuarantinesCorruptFiles: damaged files are moved aside with a logged error; the
// good records are still delivered; nothing panics.
func TestOutboxQuarantinesCorruptFiles(t *testing.T) {
	rv := newReceiver(t)
	srv := httptest.NewServer(rv)
	defer srv.Close()
	dir := t.TempDir()
	w := newWebhook(t, srv.URL)
	o := openOutbox(t, dir, w, fastOptions(t))
	for i := range 3 {
		if err := o.Alert(context.Background(), sampleAlert(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()
	q := filepath.Join(dir, queueDir)
	good := filepath.Join(q, fileName(sampleAlert(0).ID))
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// A torn copy of alert 1's record, a flipped bit in alert 2's, garbage, a record under a
	// name that is not its id's, a directory, and a leftover temporary file.
	torn := filepath.Join(q, fileName(sampleAlert(1).ID))
	if err := os.WriteFile(torn, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	flipped := filepath.Join(q, fileName(sampleAlert(2).ID))
	fb, _ := os.ReadFile(flipped)
	fb[20] ^= 1
	os.WriteFile(flipped, fb, 0o600)
	os.WriteFile(filepath.Join(q, "garbage.alert"), []byte("not a record, though long enough to be read as one: ........"), 0o600)
	os.WriteFile(filepath.Join(q, fileName("another-id")), data, 0o600)
	os.Mkdir(filepath.Join(q, "subdir"), 0o700)
	os.WriteFile(filepath.Join(q, "."+fileName("x")+".tmp123"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dir, deadDir, "junk.alert"), nil, 0o600)

	var logs bytes.Buffer
	opts := fastOptions(t)
	opts.Logger = slogTo(&logs)
	o2 := openOutbox(t, dir, w, opts)
	s := o2.Stats()
	if s.Pending != 1 || s.Quarantined != 6 || s.Dead != 0 {
		t.Fatalf("stats %+v, want 1 pending, 6 quarantined", s)
	}
	if n := len(queueFiles(t, dir, quarantineDir)); n != 6 {
		t.Fatalf("%d files in quarantine, want 6", n)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 1 || f[0] != filepath.Base(good) {
		t.Fatalf("queue holds %v", f)
	}
	for _, want := range []string{"checksum mismatch", "shorter than a record", "bad magic", "file name does not match", "not a regular file"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q: %s", want, logs.String())
		}
	}
	startRun(t, o2)
	waitFor(t, "the good record", func() bool { return len(rv.delivered()) == 1 })
}

func TestOutboxLifecycle(t *testing.T) {
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices a closed connection once the body is read
		entered <- struct{}{}
		<-r.Context().Done() // hangs until the client gives up
	}))
	defer srv.Close()
	dir := t.TempDir()
	w := newWebhook(t, srv.URL)
	o, err := OpenOutbox(dir, w, fastOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenOutbox(dir, w, fastOptions(t)); !errors.Is(err, ErrOutboxInUse) {
		t.Fatalf("second open: %v, want ErrOutboxInUse", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- o.Run(context.Background()) }()
	if err := o.Alert(context.Background(), sampleAlert(1)); err != nil {
		t.Fatal(err)
	}
	<-entered // a send is in progress
	// A send is in progress, so Run is active: a second one is refused.
	if err := o.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	// Run returns nil when stopped by Close.
	if err := <-runErr; err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := o.Alert(context.Background(), sampleAlert(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Alert after Close = %v", err)
	}
	if err := o.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v", err)
	}
	if _, err := o.DeadLetters(); !errors.Is(err, ErrClosed) {
		t.Fatalf("DeadLetters after Close = %v", err)
	}
	// The interrupted alert is still queued, and the directory is free again.
	o2 := openOutbox(t, dir, w, fastOptions(t))
	if s := o2.Stats(); s.Pending != 1 {
		t.Fatalf("after reopen %+v", s)
	}
	// Run stopped by its context returns the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o2.Run(ctx) }()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestOpenOutboxErrors(t *testing.T) {
	if _, err := OpenOutbox(t.TempDir(), nil, OutboxOptions{}); err == nil {
		t.Fatal("nil sender accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := OpenOutbox(f, newWebhook(t, "http://127.0.0.1:1/"), OutboxOptions{}); err == nil {
		t.Fatal("a file as directory accepted")
	}
}

// TestNoContentAtRestWithoutOptIn: without IncludeExcerpt, the outbox's files never hold the
// excerpt; with it, they do until delivery, and the file is gone after.
func TestNoContentAtRestWithoutOptIn(t *testing.T) {
	for _, optIn := range []bool{false, true} {
		t.Run(fmt.Sprint("optIn=", optIn), func(t *testing.T) {
			dir := t.TempDir()
			opts := fastOptions(t)
			opts.IncludeExcerpt = optIn
			o := openOutbox(t, dir, newWebhook(t, "http://127.0.0.1:1/x"), opts)
			if err := o.Alert(context.Background(), sampleAlert(1)); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, queueDir, fileName(sampleAlert(1).ID)))
			if err != nil {
				t.Fatal(err)
			}
			if has := bytes.Contains(data, []byte("CONTENT-7f3a")); has != optIn {
				t.Fatalf("record holds the excerpt: %v, opted in: %v", has, optIn)
			}
			fi, err := os.Stat(filepath.Join(dir, queueDir, fileName(sampleAlert(1).ID)))
			if err != nil || fi.Mode().Perm() != durable.FileMode {
				t.Fatalf("record mode %v, %v", fi.Mode(), err)
			}
		})
	}
}

// TestExcerptNeedsBothOptIns: the excerpt reaches the receiver only when the outbox and the
// sender are both configured for it; in every other case neither the disk nor the wire sees it.
func TestExcerptNeedsBothOptIns(t *testing.T) {
	for _, c := range []struct{ outbox, sender bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("outbox=%v,sender=%v", c.outbox, c.sender), func(t *testing.T) {
			rv := newReceiver(t)
			srv := httptest.NewServer(rv)
			defer srv.Close()
			w, err := NewWebhook(WebhookOptions{URL: srv.URL, Secret: testSecret, IncludeExcerpt: c.sender})
			if err != nil {
				t.Fatal(err)
			}
			opts := fastOptions(t)
			opts.IncludeExcerpt = c.outbox
			o := openOutbox(t, t.TempDir(), w, opts)
			startRun(t, o)
			a := sampleAlert(1)
			if err := o.Alert(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "delivery", func() bool { return o.Stats().Delivered == 1 })
			got := rv.delivered()[a.ID]
			has := bytes.Contains(rv.allBodies(), []byte("CONTENT-7f3a"))
			if want := c.outbox && c.sender; has != want || (got.Excerpt == secretText) != want {
				t.Fatalf("excerpt delivered: %v (%q), want %v", has, got.Excerpt, want)
			}
		})
	}
}

// senderFunc adapts a function to Sender.
type senderFunc func(ctx context.Context, a Alert) error

func (f senderFunc) Send(ctx context.Context, a Alert) error { return f(ctx, a) }

// TestOutboxSettlesADeliveryThatRacedCancellation: a send that succeeded as Run was being
// stopped is still settled: its file is removed, so it is not sent again after a reopen.
func TestOutboxSettlesADeliveryThatRacedCancellation(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	sent := 0
	s := senderFunc(func(_ context.Context, a Alert) error {
		sent++
		cancel() // Run is stopped while the receiver takes the alert
		return nil
	})
	o := openOutbox(t, dir, s, fastOptions(t))
	if err := o.Alert(context.Background(), sampleAlert(1)); err != nil {
		t.Fatal(err)
	}
	if err := o.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if st := o.Stats(); sent != 1 || st.Delivered != 1 || st.Pending != 0 {
		t.Fatalf("sent %d, stats %+v", sent, st)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 0 {
		t.Fatalf("delivered alert left on disk: %v", f)
	}
}

// TestOutboxDeadLettersAnAlertTheSenderCallsInvalid: a Sender's ErrInvalidAlert cannot get
// better with retries.
func TestOutboxDeadLettersAnAlertTheSenderCallsInvalid(t *testing.T) {
	calls := 0
	s := senderFunc(func(_ context.Context, a Alert) error {
		calls++
		return fmt.Errorf("%w: receiver schema", ErrInvalidAlert)
	})
	o := openOutbox(t, t.TempDir(), s, fastOptions(t))
	if err := o.Alert(context.Background(), sampleAlert(1)); err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, o)
	waitFor(t, "dead letter", func() bool { return o.Stats().Dead == 1 })
	stop()
	if calls != 1 {
		t.Fatalf("%d calls", calls)
	}
}

// TestOutboxConcurrentDuplicatesWriteOnce: many callers raising the same alerts at once all
// get nil, each alert is written once, and Close waits for writes in progress.
func TestOutboxConcurrentDuplicatesWriteOnce(t *testing.T) {
	dir := t.TempDir()
	o := openOutbox(t, dir, newWebhook(t, "http://127.0.0.1:1/never"), fastOptions(t))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				if err := o.Alert(context.Background(), sampleAlert(uint64((i+g)%8))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if s := o.Stats(); s.Pending != 8 {
		t.Fatalf("stats %+v, want 8 pending", s)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 8 {
		t.Fatalf("%d files, want 8", len(f))
	}
	// Alerts racing Close either are queued durably or get ErrClosed.
	var queued sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := sampleAlert(uint64(100 + g))
			switch err := o.Alert(context.Background(), a); {
			case err == nil:
				queued.Store(a.ID, true)
			case !errors.Is(err, ErrClosed):
				t.Error(err)
			}
		}()
	}
	o.Close()
	wg.Wait()
	o2 := openOutbox(t, dir, newWebhook(t, "http://127.0.0.1:1/never"), fastOptions(t))
	queued.Range(func(k, _ any) bool {
		o2.mu.Lock()
		defer o2.mu.Unlock()
		if o2.pending[k.(string)] == nil {
			t.Errorf("alert %s queued before Close is lost", k)
		}
		return true
	})
}

// TestOutboxWriteFailureQueuesNothing: when the record cannot be written the caller gets the
// error (as does a concurrent duplicate), nothing is counted, and a later attempt works.
func TestOutboxWriteFailureQueuesNothing(t *testing.T) {
	dir := t.TempDir()
	o := openOutbox(t, dir, newWebhook(t, "http://127.0.0.1:1/never"), fastOptions(t))
	q := filepath.Join(dir, queueDir)
	if err := os.Rename(q, q+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(q, nil, 0o600); err != nil { // a file where the directory was
		t.Fatal(err)
	}
	err := o.Alert(context.Background(), sampleAlert(1))
	if err == nil || !strings.Contains(err.Error(), "queuing") {
		t.Fatalf("Alert = %v, want a write error", err)
	}
	if s := o.Stats(); s.Pending != 0 {
		t.Fatalf("a failed write is counted: %+v", s)
	}
	os.Remove(q)
	if err := os.Rename(q+".away", q); err != nil {
		t.Fatal(err)
	}
	if err := o.Alert(context.Background(), sampleAlert(1)); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 1 {
		t.Fatalf("files %v", f)
	}
}

// TestOpenResolvesARecordInBothDirectories: a crash while a dead letter was written (or while
// Redrive ran) can leave one alert pending and dead; Open keeps the dead letter only.
func TestOpenResolvesARecordInBothDirectories(t *testing.T) {
	dir := t.TempDir()
	w := newWebhook(t, "http://127.0.0.1:1/never")
	o := openOutbox(t, dir, w, fastOptions(t))
	a := sampleAlert(1)
	if err := o.Alert(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	o.Close()
	rec := Record{Seq: 1, Queued: time.Now().UTC(), Alert: a, Failed: time.Now().UTC(), Reason: "HTTP 400"}
	rec.Alert.Excerpt = ""
	data, err := EncodeRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, deadDir, fileName(a.ID)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	o2 := openOutbox(t, dir, w, fastOptions(t))
	if s := o2.Stats(); s.Pending != 0 || s.Dead != 1 || s.Quarantined != 0 {
		t.Fatalf("stats %+v", s)
	}
	if f := queueFiles(t, dir, queueDir); len(f) != 0 {
		t.Fatalf("pending copy left: %v", f)
	}
	// A new alert is numbered after both.
	if err := o2.Alert(context.Background(), sampleAlert(2)); err != nil {
		t.Fatal(err)
	}
	o2.mu.Lock()
	seq := o2.pending[sampleAlert(2).ID].rec.Seq
	o2.mu.Unlock()
	if seq != 2 {
		t.Fatalf("next seq %d, want 2", seq)
	}
}
