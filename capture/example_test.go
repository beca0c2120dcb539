package capture_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/commseal/commseal/capture"
)

// A SinkFunc turns a function into a Sink: here one that deduplicates in memory, as a ledger
// does on the message's Identity.
func ExampleSinkFunc() {
	seen := map[capture.Identity]uint64{}
	sink := capture.SinkFunc(func(ctx context.Context, m *capture.Message) (capture.Receipt, error) {
		if err := m.Validate(); err != nil {
			return capture.Receipt{}, err
		}
		if i, ok := seen[m.Identity()]; ok {
			return capture.Receipt{Index: i, Duplicate: true}, nil
		}
		seen[m.Identity()] = uint64(len(seen))
		return capture.Receipt{Index: seen[m.Identity()]}, nil
	})
	m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: "msg-1", Kind: capture.KindText, Text: "buy 100 0700.HK"}
	for range 2 { // platforms deliver at least once
		rc, err := sink.Append(context.Background(), m)
		fmt.Println(rc.Index, rc.Duplicate, err)
	}
	// Output:
	// 0 false <nil>
	// 0 true <nil>
}

// A RecordSinkFunc turns a function into a RecordSink, e.g. to watch what a source seals
// beside the messages.
func ExampleRecordSinkFunc() {
	var kinds []string
	records := capture.RecordSinkFunc(func(ctx context.Context, r *capture.Record) (capture.Receipt, error) {
		if err := r.Validate(); err != nil {
			return capture.Receipt{}, err
		}
		kinds = append(kinds, r.Kind)
		return capture.Receipt{Index: uint64(len(kinds) - 1)}, nil
	})
	_, err := records.AppendRecord(context.Background(), &capture.Record{Kind: capture.RecordContext, Platform: capture.PlatformDingTalk, Tenant: "corp", ID: "event:e1"})
	fmt.Println(kinds, err)
	_, err = records.AppendRecord(context.Background(), &capture.Record{Kind: "gossip", Platform: capture.PlatformDingTalk})
	fmt.Println(errors.Is(err, capture.ErrInvalidMessage))
	// Output:
	// [context] <nil>
	// true
}

// Validate bounds every field; an oversize one is a permanent error (ErrInvalidMessage) that
// names the field.
func ExampleMessage_Validate() {
	m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: "msg-1",
		Sender: capture.Party{ID: "u1", Name: strings.Repeat("x", capture.MaxNameLen+1)}}
	err := m.Validate()
	fmt.Println(errors.Is(err, capture.ErrInvalidMessage))
	fmt.Println(err)
	// Output:
	// true
	// capture: invalid message: sender.name is 4097 bytes, over the limit of 4096
}

// A source that cannot store a payload as a message seals it as a capture error instead, with
// what it could still read of it, so that the gap is on the record.
func ExampleCaptureFailure_Record() {
	raw := []byte(`{"msgId":"msg-9","chatbotCorpId":"corp","text":{"content":"cut of`)
	f := capture.CaptureFailure{
		Platform: capture.PlatformDingTalk, Raw: raw, Cause: errors.New("unexpected end of JSON"),
		Tenant: "corp", MessageID: "msg-9",
	}
	r := f.Record()
	var body map[string]any
	_ = json.Unmarshal(r.Body, &body)
	fmt.Println(r.Kind, r.Tenant, r.About, string(r.Raw) == string(raw), r.Validate())
	fmt.Println(body["reason"], body["data_len"])
	// Output:
	// capture_error corp dingtalk/corp/msg-9 true <nil>
	// unexpected end of JSON 65
}
