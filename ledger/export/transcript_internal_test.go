package export

import (
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
)

// A shredded entry of a conversation that is exported too joins its transcript (matched by the
// conversation digest in its leaf); one of a conversation not exported gets its own, named
// after the digest. Records are not in transcripts; events are in time order.
func TestTranscriptsPlaceShreddedEntries(t *testing.T) {
	day := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m1", Kind: capture.KindText, Text: "hello",
		Conversation: capture.Conversation{ID: "cid-a", Title: "Desk"}, Sender: capture.Party{ID: "u1"}, SentAt: day.Add(time.Hour)}
	digest := seal.ConversationDigest("dingtalk", "corp", "cid-a")
	other := seal.ConversationDigest("dingtalk", "corp", "cid-gone")
	entries := []*exported{
		{e: &ledger.Entry{Index: 1, Message: m}},
		{e: &ledger.Entry{Index: 2, Leaf: seal.Leaf{Kind: seal.KindMessage, Conversation: digest, Time: day, KeyID: "dk1"}}, shredded: true},
		{e: &ledger.Entry{Index: 3, Leaf: seal.Leaf{Kind: seal.KindMessage, Conversation: other, Time: day, KeyID: "dk2"}}, shredded: true},
		{e: &ledger.Entry{Index: 4, Record: &capture.Record{Kind: capture.RecordContext}}},
	}
	ts := transcripts(entries, nil, fetched(entries))
	require.Len(t, ts, 2)
	require.Equal(t, "cid-a", ts[0].conv.id)
	require.Len(t, ts[0].events, 2)
	require.True(t, ts[0].events[0].shredded, "the earlier event first")
	require.Equal(t, uint64(2), ts[0].events[0].index)
	require.Equal(t, "hello", ts[0].events[1].text)
	require.Contains(t, ts[1].conv.id, "destroyed-")
	require.Contains(t, ts[0].events[0].notice(), "ledger entry 2, data key dk1")
	lines := textLines(ts[0].events)
	require.Len(t, lines, 2)
	require.NotContains(t, lines[0], "hello")
}

// A message with no conversation id, no sender and no sent time still makes a valid RSMF file
// and EML message (the schema wants non-empty ids).
func TestTranscriptsOfBareMessages(t *testing.T) {
	bare := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m1", Kind: capture.KindUnknown}
	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	ts := transcripts([]*exported{{e: &ledger.Entry{Index: 7, Message: bare, Leaf: seal.Leaf{Time: at}}}}, nil, nil)
	require.Len(t, ts, 1)
	require.Equal(t, noConversation, ts[0].conv.id)
	require.Equal(t, at, ts[0].events[0].at, "the capture time stands in for a missing sent time")
	files, err := renderRSMF(ts, rsmfContext{origin: "o.test/l", treeSize: 8, maxEvents: MaxRSMFEvents})
	require.NoError(t, err)
	for _, b := range files {
		CheckRSMF(t, b)
	}
	files, err = renderEML(ts, emlContext{origin: "o.test/l", treeSize: 8})
	require.NoError(t, err)
	require.Len(t, files, 1)
}
