package dingtalktest

import "github.com/commseal/commseal/capture/capturetest"

// Sink is capturetest.Sink, the in-memory deduplicating sink for tests; nothing in it is
// DingTalk's.
//
// Deprecated: use capturetest.Sink.
type Sink = capturetest.Sink

// NewSink returns an empty capturetest.Sink.
//
// Deprecated: use capturetest.NewSink.
func NewSink() *Sink { return capturetest.NewSink() }
