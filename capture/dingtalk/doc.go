// Package dingtalk captures DingTalk messages as evidence: bot messages and group events, over
// Stream mode (Source, on the official Go SDK github.com/open-dingtalk/dingtalk-stream-sdk-go,
// pinned at v0.9.2-beta.1) or over HTTP callbacks (CallbackHandler), with attachments fetched
// and stored as blobs. Every raw payload is kept byte for byte; ParseBotMessage normalizes it
// into a capture.Message.
//
// # Acknowledge after seal
//
// A frame is acknowledged only after the sink returned nil for it. A sink error is answered so
// that DingTalk pushes the frame again (code 500 for bot callbacks, LATER for events); since
// DingTalk delivers at least once, the sink deduplicates. Payloads that cannot become messages
// (malformed data, fields over the capture limits, quota-exhausted payloads without content,
// messages the sink refuses with capture.ErrInvalidMessage) are sealed as
// capture.RecordCaptureError records made by CaptureErrorRecord, the same record whether they
// came over Stream or HTTP, and acknowledged: a gap is recorded instead of silent, and a
// permanent failure is never pushed again forever. Source passes capturetest.RunSource, the
// conformance suite of capture.Source.
//
// # What DingTalk lets a bot see
//
// Every message of a one-to-one chat with the bot (all types); group messages that @-mention
// the bot (text, richText and picture only: no audio, video or file in groups); what the bot
// itself sends; and group events (members added or removed, quit, title, owner, disband), which
// are recorded as context. Human-to-human chats are never delivered; DingTalk has no archive
// API and no recall or edit event; what DingTalk pushes while no connection is live appears to
// be lost (Source keeps two connections by default). A firm that routes regulated conversations
// through a bot by policy must therefore watch for gaps: Source.Health reports connection
// state, reconnects, acks by code, duplicates, capture errors, pending media and silence beyond
// Options.SilenceWindow.
//
// # Media
//
// Attachments are fetched after their message is sealed, through the access-token API
// (TokenCache) and the robot messageFiles download API, hashed and stored with
// capture.BlobStore; the outcome is sealed as a capture.RecordMedia record that names the
// message. Pending fetches live in a MediaJournal (NewDirJournal, encrypted under a key the
// caller gives, or the caller's own) written before the message is acknowledged, so they
// resume after a restart. See MediaOptions.
//
// # Testing
//
// Package dingtalktest provides a local gateway that the real SDK connects to, with fault
// injection, and NewUpstream, which adapts it to capturetest.RunSource. The in-memory sink for
// tests is capturetest.Sink.
package dingtalk
