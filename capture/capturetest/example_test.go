package capturetest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/capturetest"
)

// The Sink deduplicates like a ledger and fails on demand: here the first append of each
// message fails, as a busy store would, and the retry is stored once.
func ExampleSink() {
	sink := capturetest.NewSink()
	failed := map[string]bool{}
	sink.Before = func(ctx context.Context, m *capture.Message, r *capture.Record) error {
		if m != nil && !failed[m.ID] {
			failed[m.ID] = true
			return errors.New("store busy")
		}
		return nil
	}
	m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: "msg-1", Kind: capture.KindText}
	for range 3 {
		rc, err := sink.Append(context.Background(), m)
		fmt.Println(rc.Index, rc.Duplicate, err)
	}
	fmt.Println(len(sink.Messages()), sink.Calls())
	// Output:
	// 0 false store busy
	// 0 false <nil>
	// 0 true <nil>
	// 1 2
}
