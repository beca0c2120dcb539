package capturetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
)

// Answer is how a source answered one delivery.
type Answer int

// Answers a source can give.
const (
	// Acked: the source acknowledged the delivery; the platform will not deliver it again.
	Acked Answer = iota + 1
	// Nacked: the source answered so that the platform delivers again (a negative ack, a 5xx,
	// DingTalk's LATER).
	Nacked
)

// String names the answer.
func (a Answer) String() string {
	switch a {
	case Acked:
		return "acked"
	case Nacked:
		return "nacked"
	}
	return "Answer(" + strconv.Itoa(int(a)) + ")"
}

// Upstream is the platform side of a source under test: what RunSource pushes deliveries
// through and watches the answers on. An adapter for a platform's test gateway implements it
// (dingtalktest.NewUpstream does for DingTalk's Stream mode).
type Upstream interface {
	// Ready returns nil once the source takes deliveries (it has connected), or ctx's error.
	Ready(ctx context.Context) error
	// Deliver hands payload to the source once, as the platform pushes a message, and returns
	// without waiting. The channel receives the source's answer once, when it arrives, and
	// nothing if the source never answers. The upstream must not deliver the payload again on
	// its own: the suite redelivers when it means to.
	Deliver(payload []byte) <-chan Answer
	// Message returns the platform's payload of a valid text message with the given id (at
	// most 40 bytes of [a-z0-9-]) and text. The source must turn it into a capture.Message with
	// that ID and the payload, byte for byte, as Raw.
	Message(id, text string) []byte
	// Malformed returns a payload, distinct for each id, that the source cannot turn into a
	// message and must seal as a capture error.
	Malformed(id string) []byte
}

// NewSourceFunc returns a new source under test, not yet running, and the Upstream connected to
// it. RunSource calls it once per check, runs the source with a Sink of its own (which also
// implements capture.RecordSink and capture.BlobStore; the source must send capture errors to
// it) and stops it before t ends, so cleanups registered with t.Cleanup run after the source
// has stopped. The source should have media fetching and other background appends off.
type NewSourceFunc func(t *testing.T) (capture.Source, Upstream)

// Rules the Source conformance suite checks. A failure message starts with the rule it broke.
const (
	RuleAckAfterDurable    = "acknowledge only after Sink.Append returned nil"
	RuleRawKept            = "the stored message has the delivered id and the payload as Raw, byte for byte"
	RuleNackOnSinkError    = "a delivery whose append failed is not acknowledged, so the platform delivers it again"
	RuleDuplicateAcked     = "a redelivered message is acknowledged and stored once"
	RuleCaptureError       = "a payload that cannot become a message is sealed as a capture_error record holding it, then acknowledged"
	RuleCaptureErrorNack   = "a capture error that could not be sealed is not acknowledged"
	RuleInvalidMessage     = "a message the sink refuses with capture.ErrInvalidMessage is sealed as a capture error and acknowledged, not refused forever"
	RuleConcurrent         = "concurrent deliveries are each answered, and each message stored once"
	RuleDrainOnStop        = "after ctx ends, Run returns only once the appends in flight have returned, and a stored message is not nacked"
	RuleNoDeliveryAfterCtx = "after ctx ends, no new delivery is acknowledged or stored"
	RuleRunReturnsNil      = "Run returns nil after ctx ends"
)

// Timeouts of the suite. They bound waits for a source that misbehaves; a correct source never
// gets near them.
const (
	// AnswerTimeout bounds the wait for a source's answer, its Ready and its Run to return.
	AnswerTimeout = 30 * time.Second
	// holdWindow is how long the suite holds an append and watches for a premature answer.
	holdWindow = 300 * time.Millisecond
)

// RunSource runs the conformance suite for capture.Source implementations as subtests of t,
// in the manner of testing/fstest.TestFS: each subtest starts a fresh source with newSource
// and checks one part of the Source contract through the Upstream, against a Sink the suite
// controls (holding appends, failing them transiently or with capture.ErrInvalidMessage):
//
//   - AckAfterDurable (RuleAckAfterDurable, RuleRawKept): while an append is held, the delivery
//     gets no answer; once it returns, the delivery is acknowledged and the message is stored
//     with its id and the payload as Raw.
//   - NackOnSinkError (RuleNackOnSinkError): a failing append is answered Nacked and stores
//     nothing; delivered again with the sink working, it is acknowledged and stored.
//   - DuplicateAcked (RuleDuplicateAcked): the same payload twice: acknowledged twice, stored
//     once.
//   - CaptureError (RuleCaptureError): a malformed payload is sealed as a
//     capture.RecordCaptureError whose Raw is the payload, then acknowledged.
//   - CaptureErrorNotDurable (RuleCaptureErrorNack): when that record cannot be appended, the
//     delivery is Nacked; delivered again, it is sealed once and acknowledged.
//   - InvalidMessage (RuleInvalidMessage): an append refused with capture.ErrInvalidMessage
//     ends in a capture error holding the payload, and the delivery is acknowledged.
//   - Concurrent (RuleConcurrent): 32 messages, each delivered twice at once: all answered
//     Acked, each stored once.
//   - DrainOnStop (RuleDrainOnStop, RuleNoDeliveryAfterCtx, RuleRunReturnsNil): ctx ends
//     while an append is held; Run does not return until it is released; a delivery pushed
//     after ctx ended is not acknowledged and not stored; Run then returns nil and the held
//     message is stored and not Nacked.
//
// Every subtest also stops its source by ending ctx and checks RuleRunReturnsNil. Run it with
// -race. A failure message starts with the rule that was broken.
func RunSource(t *testing.T, newSource NewSourceFunc) {
	t.Helper()
	for _, c := range sourceChecks {
		t.Run(c.name, func(t *testing.T) {
			if err := c.fn(t, newSource); err != nil {
				t.Error(err)
			}
		})
	}
}

var sourceChecks = []struct {
	name string
	fn   func(t *testing.T, newSource NewSourceFunc) error
}{
	{"AckAfterDurable", checkAckAfterDurable},
	{"NackOnSinkError", checkNackOnSinkError},
	{"DuplicateAcked", checkDuplicateAcked},
	{"CaptureError", checkCaptureError},
	{"CaptureErrorNotDurable", checkCaptureErrorNotDurable},
	{"InvalidMessage", checkInvalidMessage},
	{"Concurrent", checkConcurrent},
	{"DrainOnStop", checkDrainOnStop},
}

// broken reports a violation of rule.
func broken(rule, format string, args ...any) error {
	return fmt.Errorf("rule %q broken: %s", rule, fmt.Sprintf(format, args...))
}

// running is one source under test, running against the suite's sink.
type running struct {
	src    capture.Source
	up     Upstream
	sink   *Sink
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs a new source against sink (configured by the caller before) and waits until it is
// ready. The source is stopped when t ends, if the check has not stopped it.
func start(t *testing.T, newSource NewSourceFunc, sink *Sink) (*running, error) {
	src, up := newSource(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, up: up, sink: sink, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx, sink) }()
	t.Cleanup(func() { _ = r.stop() })
	rctx, rcancel := context.WithTimeout(context.Background(), AnswerTimeout)
	defer rcancel()
	ready := make(chan error, 1)
	go func() { ready <- up.Ready(rctx) }()
	select {
	case err := <-r.done:
		r.done <- err // for stop
		return r, fmt.Errorf("capturetest: Run returned before the source was ready: %v", err)
	case err := <-ready:
		if err != nil {
			return r, fmt.Errorf("capturetest: the source did not become ready: %w", err)
		}
	}
	return r, nil
}

// stop ends the source's ctx and checks that Run returns nil.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				r.err = broken(RuleRunReturnsNil, "Run returned %v", err)
			}
		case <-time.After(AnswerTimeout):
			r.err = broken(RuleRunReturnsNil, "Run did not return within %v after ctx ended", AnswerTimeout)
		}
	})
	return r.err
}

// answer waits for the answer on ch.
func answer(ch <-chan Answer, d time.Duration) (Answer, bool) {
	select {
	case a := <-ch:
		return a, true
	case <-time.After(d):
		return 0, false
	}
}

// hold makes the sink hold the append of the message with id until release is closed, and
// signals entered when it starts.
type hold struct {
	id      string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHold(id string) *hold {
	return &hold{id: id, entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *hold) before(ctx context.Context, m *capture.Message, _ *capture.Record) error {
	if m == nil || m.ID != h.id {
		return nil
	}
	h.once.Do(func() { close(h.entered) })
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storedOnce checks that the sink holds exactly one message with id, with payload as Raw.
func storedOnce(sink *Sink, rule, id string, payload []byte) error {
	var found []capture.Message
	for _, m := range sink.Messages() {
		if m.ID == id {
			found = append(found, m)
		}
	}
	switch {
	case len(found) == 0:
		return broken(rule, "message %q is not stored", id)
	case len(found) > 1:
		return broken(rule, "message %q is stored %d times", id, len(found))
	case !bytes.Equal(found[0].Raw, payload):
		return broken(RuleRawKept, "message %q has Raw %.80q, want the payload %.80q", id, found[0].Raw, payload)
	}
	return nil
}

func notStored(sink *Sink, rule, id string) error {
	for _, m := range sink.Messages() {
		if m.ID == id {
			return broken(rule, "message %q is stored", id)
		}
	}
	return nil
}

// captureErrorsHolding returns the capture error records whose Raw is payload.
func captureErrorsHolding(sink *Sink, payload []byte) int {
	n := 0
	for _, r := range sink.Records(capture.RecordCaptureError) {
		if bytes.Equal(r.Raw, payload) {
			n++
		}
	}
	return n
}

// deliverAndWait delivers payload and waits for the answer.
func deliverAndWait(up Upstream, rule string, payload []byte) (Answer, error) {
	a, ok := answer(up.Deliver(payload), AnswerTimeout)
	if !ok {
		return 0, broken(rule, "no answer to a delivery within %v", AnswerTimeout)
	}
	return a, nil
}

func checkAckAfterDurable(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	h := newHold("ack-after-durable")
	sink.Before = h.before
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Message(h.id, "buy 100 0700.HK")
	ch := r.up.Deliver(payload)
	select {
	case <-h.entered:
	case a := <-ch:
		return broken(RuleAckAfterDurable, "the delivery was %v before Append was called", a)
	case <-time.After(AnswerTimeout):
		return broken(RuleAckAfterDurable, "Append was not called within %v of the delivery", AnswerTimeout)
	}
	if a, ok := answer(ch, holdWindow); ok {
		close(h.release)
		return broken(RuleAckAfterDurable, "the delivery was %v while Append had not returned", a)
	}
	close(h.release)
	a, ok := answer(ch, AnswerTimeout)
	switch {
	case !ok:
		return broken(RuleAckAfterDurable, "no answer within %v after Append returned nil", AnswerTimeout)
	case a != Acked:
		return broken(RuleAckAfterDurable, "the delivery was %v after Append returned nil", a)
	}
	if err := storedOnce(sink, RuleAckAfterDurable, h.id, payload); err != nil {
		return err
	}
	return r.stop()
}

func checkNackOnSinkError(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	var mu sync.Mutex
	failing := true
	sink.Before = func(ctx context.Context, m *capture.Message, _ *capture.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if m != nil && failing {
			return errors.New("capturetest: injected transient failure")
		}
		return nil
	}
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Message("nack-on-error", "sell 200 0005.HK")
	a, err := deliverAndWait(r.up, RuleNackOnSinkError, payload)
	if err != nil {
		return err
	}
	if a != Nacked {
		return broken(RuleNackOnSinkError, "the delivery was %v though Append failed", a)
	}
	if err := notStored(sink, RuleNackOnSinkError, "nack-on-error"); err != nil {
		return err
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if a, err = deliverAndWait(r.up, RuleNackOnSinkError, payload); err != nil {
		return err
	}
	if a != Acked {
		return broken(RuleNackOnSinkError, "the redelivery was %v though Append now succeeds", a)
	}
	if err := storedOnce(sink, RuleNackOnSinkError, "nack-on-error", payload); err != nil {
		return err
	}
	return r.stop()
}

func checkDuplicateAcked(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Message("duplicate", "delivered twice")
	for i := range 2 {
		a, err := deliverAndWait(r.up, RuleDuplicateAcked, payload)
		if err != nil {
			return err
		}
		if a != Acked {
			return broken(RuleDuplicateAcked, "delivery %d of the same message was %v", i+1, a)
		}
	}
	if err := storedOnce(sink, RuleDuplicateAcked, "duplicate", payload); err != nil {
		return err
	}
	return r.stop()
}

func checkCaptureError(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Malformed("malformed")
	a, err := deliverAndWait(r.up, RuleCaptureError, payload)
	if err != nil {
		return err
	}
	if a != Acked {
		return broken(RuleCaptureError, "a malformed payload was %v", a)
	}
	if n := captureErrorsHolding(sink, payload); n != 1 {
		return broken(RuleCaptureError, "%d capture_error records hold the malformed payload, want 1 (records: %d, messages: %d)",
			n, len(sink.Records("")), len(sink.Messages()))
	}
	if n := len(sink.Messages()); n != 0 {
		return broken(RuleCaptureError, "a malformed payload was stored as %d messages", n)
	}
	return r.stop()
}

func checkCaptureErrorNotDurable(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	var mu sync.Mutex
	failing := true
	sink.Before = func(ctx context.Context, _ *capture.Message, rec *capture.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if rec != nil && failing {
			return errors.New("capturetest: injected transient failure")
		}
		return nil
	}
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Malformed("not-durable")
	a, err := deliverAndWait(r.up, RuleCaptureErrorNack, payload)
	if err != nil {
		return err
	}
	if a != Nacked {
		return broken(RuleCaptureErrorNack, "the delivery was %v though its capture error could not be appended", a)
	}
	if n := len(sink.Records("")); n != 0 {
		return broken(RuleCaptureErrorNack, "%d records stored though every AppendRecord failed", n)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if a, err = deliverAndWait(r.up, RuleCaptureErrorNack, payload); err != nil {
		return err
	}
	if a != Acked {
		return broken(RuleCaptureError, "the redelivery was %v though the sink now works", a)
	}
	if n := captureErrorsHolding(sink, payload); n != 1 {
		return broken(RuleCaptureError, "%d capture_error records hold the payload, want 1", n)
	}
	return r.stop()
}

func checkInvalidMessage(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	sink.Before = func(ctx context.Context, m *capture.Message, _ *capture.Record) error {
		if m != nil && m.ID == "refused" {
			return fmt.Errorf("%w: capturetest: refused as if over a limit", capture.ErrInvalidMessage)
		}
		return nil
	}
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Message("refused", "the sink refuses this one for good")
	a, err := deliverAndWait(r.up, RuleInvalidMessage, payload)
	if err != nil {
		return err
	}
	if a != Acked {
		return broken(RuleInvalidMessage, "the delivery was %v: the platform would deliver it again forever", a)
	}
	if n := captureErrorsHolding(sink, payload); n != 1 {
		return broken(RuleInvalidMessage, "%d capture_error records hold the payload, want 1", n)
	}
	if err := notStored(sink, RuleInvalidMessage, "refused"); err != nil {
		return err
	}
	return r.stop()
}

func checkConcurrent(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	const n = 32
	payloads := make([][]byte, n)
	chans := make([]<-chan Answer, 0, 2*n)
	for i := range n {
		payloads[i] = r.up.Message("concurrent-"+strconv.Itoa(i), "message "+strconv.Itoa(i))
	}
	for range 2 {
		for i := range n {
			chans = append(chans, r.up.Deliver(payloads[i]))
		}
	}
	for i, ch := range chans {
		a, ok := answer(ch, AnswerTimeout)
		if !ok {
			return broken(RuleConcurrent, "delivery %d of %d got no answer within %v", i+1, len(chans), AnswerTimeout)
		}
		if a != Acked {
			return broken(RuleConcurrent, "delivery %d of %d was %v", i+1, len(chans), a)
		}
	}
	for i := range n {
		if err := storedOnce(sink, RuleConcurrent, "concurrent-"+strconv.Itoa(i), payloads[i]); err != nil {
			return err
		}
	}
	return r.stop()
}

func checkDrainOnStop(t *testing.T, newSource NewSourceFunc) error {
	sink := NewSink()
	h := newHold("in-flight")
	sink.Before = h.before
	r, err := start(t, newSource, sink)
	if err != nil {
		return err
	}
	payload := r.up.Message(h.id, "in flight when the source stops")
	ch := r.up.Deliver(payload)
	select {
	case <-h.entered:
	case <-time.After(AnswerTimeout):
		return broken(RuleDrainOnStop, "Append was not called within %v of the delivery", AnswerTimeout)
	}
	r.cancel() // the stop begins here: ctx has ended when cancel returns
	late := r.up.Message("after-ctx", "delivered after ctx ended")
	lateCh := r.up.Deliver(late)
	var lateAnswer Answer
	watch := lateCh
	for window := time.After(holdWindow); window != nil; {
		select {
		case err := <-r.done:
			r.done <- err
			close(h.release)
			return broken(RuleDrainOnStop, "Run returned (%v) while an append was in flight", err)
		case lateAnswer = <-watch:
			watch = nil
		case <-window:
			window = nil
		}
	}
	if lateAnswer == Acked {
		close(h.release)
		return broken(RuleNoDeliveryAfterCtx, "a delivery made after ctx ended was acknowledged")
	}
	close(h.release)
	if err := r.stop(); err != nil {
		return err
	}
	if err := storedOnce(sink, RuleDrainOnStop, h.id, payload); err != nil {
		return err
	}
	if err := notStored(sink, RuleNoDeliveryAfterCtx, "after-ctx"); err != nil {
		return err
	}
	if a, ok := answer(ch, time.Second); ok && a != Acked {
		return broken(RuleDrainOnStop, "the message stored while stopping was %v", a)
	}
	if lateAnswer == 0 {
		if a, ok := answer(lateCh, 0); ok && a == Acked {
			return broken(RuleNoDeliveryAfterCtx, "a delivery made after ctx ended was acknowledged")
		}
	}
	return nil
}
