package capturetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
)

// fakeSource is a Source over an in-memory platform. With flaw "" it keeps the contract; each
// flaw breaks one rule, to show that the suite notices.
type fakeSource struct {
	flaw     string
	in       chan fakeDelivery
	ready    chan struct{}
	once     sync.Once
	inflight atomic.Int32
}

type fakeDelivery struct {
	payload []byte
	answer  chan Answer
}

// fakeUpstream is the platform side of a fakeSource.
type fakeUpstream struct{ s *fakeSource }

func (u fakeUpstream) Ready(ctx context.Context) error {
	select {
	case <-u.s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (u fakeUpstream) Deliver(payload []byte) <-chan Answer {
	ch := make(chan Answer, 1)
	u.s.in <- fakeDelivery{payload: slices.Clone(payload), answer: ch}
	return ch
}

func (u fakeUpstream) Message(id, text string) []byte {
	return fmt.Appendf(nil, `{"id": %q, "text": %q}`, id, text)
}

func (u fakeUpstream) Malformed(id string) []byte { return []byte("malformed " + id) }

func fakeFactory(flaw string) NewSourceFunc {
	return func(t *testing.T) (capture.Source, Upstream) {
		s := &fakeSource{flaw: flaw, in: make(chan fakeDelivery, 1024), ready: make(chan struct{})}
		return s, fakeUpstream{s}
	}
}

func (s *fakeSource) Run(ctx context.Context, sink capture.Sink) error {
	records, ok := sink.(capture.RecordSink)
	if !ok {
		return errors.New("fake: the sink is no RecordSink")
	}
	work := context.WithoutCancel(ctx) // in-flight appends finish after ctx ends
	var wg sync.WaitGroup
	handle := func(d fakeDelivery) {
		s.inflight.Add(1)
		wg.Go(func() {
			defer s.inflight.Add(-1)
			d.answer <- s.handle(work, sink, records, d.payload)
		})
	}
	s.once.Do(func() { close(s.ready) })
	for {
		select {
		case <-ctx.Done():
			if s.flaw == "takes-late" {
				for late := time.After(time.Second); ; {
					select {
					case d := <-s.in:
						handle(d)
						continue
					case <-late:
					}
					break
				}
			}
			if s.flaw != "abandons-in-flight" {
				wg.Wait()
			}
			if s.flaw == "returns-ctx-err" {
				return ctx.Err()
			}
			return nil
		case d := <-s.in:
			if ctx.Err() != nil && s.flaw != "takes-late" {
				d.answer <- Nacked // select chose this case although ctx had ended
				continue
			}
			handle(d)
		}
	}
}

func (s *fakeSource) handle(ctx context.Context, sink capture.Sink, records capture.RecordSink, payload []byte) Answer {
	if s.flaw == "nacks-when-busy" {
		time.Sleep(10 * time.Millisecond)
		if s.inflight.Load() > 1 {
			return Nacked
		}
	}
	var v struct{ ID, Text string }
	if err := json.Unmarshal(payload, &v); err != nil || v.ID == "" {
		return s.captureError(ctx, records, payload, fmt.Errorf("fake: not a message: %v", err))
	}
	m := &capture.Message{Platform: "fake", Tenant: "t", ID: v.ID, Kind: capture.KindText, Text: v.Text, Raw: slices.Clone(payload)}
	if s.flaw == "raw-not-kept" {
		m.Raw, _ = json.Marshal(v)
	}
	if s.flaw == "ack-before-append" {
		go func() { _, _ = sink.Append(ctx, m) }()
		return Acked
	}
	rc, err := sink.Append(ctx, m)
	switch {
	case errors.Is(err, capture.ErrInvalidMessage):
		if s.flaw == "nacks-invalid" {
			return Nacked
		}
		return s.captureError(ctx, records, payload, err)
	case err != nil:
		if s.flaw == "acks-on-error" {
			return Acked
		}
		return Nacked
	case rc.Duplicate && s.flaw == "nacks-duplicates":
		return Nacked
	}
	return Acked
}

func (s *fakeSource) captureError(ctx context.Context, records capture.RecordSink, payload []byte, cause error) Answer {
	if s.flaw == "drops-capture-errors" {
		return Acked
	}
	rec := (&capture.CaptureFailure{Platform: "fake", Raw: payload, Cause: cause}).Record()
	if _, err := records.AppendRecord(ctx, rec); err != nil && s.flaw != "acks-unsealed" {
		return Nacked
	}
	return Acked
}

func TestRunSourcePassesASourceThatKeepsTheContract(t *testing.T) {
	RunSource(t, fakeFactory(""))
}

// TestSourceChecksCatchBrokenSources shows that each check can fail: a source with one flaw
// fails the check of the rule it breaks, with that rule in the message.
func TestSourceChecksCatchBrokenSources(t *testing.T) {
	cases := []struct {
		flaw  string
		check func(*testing.T, NewSourceFunc) error
		rule  string
	}{
		{"ack-before-append", checkAckAfterDurable, RuleAckAfterDurable},
		{"raw-not-kept", checkAckAfterDurable, RuleRawKept},
		{"acks-on-error", checkNackOnSinkError, RuleNackOnSinkError},
		{"nacks-duplicates", checkDuplicateAcked, RuleDuplicateAcked},
		{"drops-capture-errors", checkCaptureError, RuleCaptureError},
		{"acks-unsealed", checkCaptureErrorNotDurable, RuleCaptureErrorNack},
		{"nacks-invalid", checkInvalidMessage, RuleInvalidMessage},
		{"nacks-when-busy", checkConcurrent, RuleConcurrent},
		{"abandons-in-flight", checkDrainOnStop, RuleDrainOnStop},
		{"takes-late", checkDrainOnStop, RuleNoDeliveryAfterCtx},
		{"returns-ctx-err", checkDuplicateAcked, RuleRunReturnsNil},
	}
	for _, c := range cases {
		t.Run(c.flaw, func(t *testing.T) {
			err := c.check(t, fakeFactory(c.flaw))
			if err == nil {
				t.Fatalf("the check passed a source that breaks %q", c.rule)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("rule %q broken", c.rule)) {
				t.Fatalf("the check failed for another reason than %q: %v", c.rule, err)
			}
			t.Log(err)
		})
	}
}

// A Run that cannot start is reported, not waited for.
func TestRunSourceReportsASourceThatCannotStart(t *testing.T) {
	bad := func(t *testing.T) (capture.Source, Upstream) {
		s := &fakeSource{in: make(chan fakeDelivery, 1), ready: make(chan struct{})}
		src := sourceFunc(func(ctx context.Context, sink capture.Sink) error { return errors.New("no credentials") })
		return src, fakeUpstream{s}
	}
	start := time.Now()
	err := checkDuplicateAcked(t, bad)
	if err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > AnswerTimeout/2 {
		t.Fatalf("took %v", time.Since(start))
	}
}

type sourceFunc func(ctx context.Context, sink capture.Sink) error

func (f sourceFunc) Run(ctx context.Context, sink capture.Sink) error { return f(ctx, sink) }
