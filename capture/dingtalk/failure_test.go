package dingtalk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/capturetest"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/stretchr/testify/require"
)

// hugeNick is a sender name 2 MiB over capture.MaxNameLen.
var hugeNick = strings.Repeat("陳", (capture.MaxNameLen+2<<20)/3+1)

// badPayloads are bot payloads that cannot be stored as messages, each with what a capture
// error must still say about them.
var badPayloads = []struct {
	name, payload                   string
	tenant, conversation, messageID string
}{
	{"msgId over the id limit",
		string(dingtalktest.BotMessage{MsgID: strings.Repeat("m", capture.MaxIDLen+1), Text: "買入 0700", CorpID: "corp-hold", ConversationID: "cid-hold"}.JSON()),
		"corp-hold", "cid-hold", ""},
	{"sender name over the name limit",
		string(dingtalktest.BotMessage{MsgID: "m-huge-nick", Text: "賣出", SenderNick: hugeNick, CorpID: "corp-hold", ConversationID: "cid-hold"}.JSON()),
		"corp-hold", "cid-hold", "m-huge-nick"},
	{"cut off mid-way",
		`{"chatbotCorpId":"corp-hold","conversationId":"cid-hold","msgId":"m-cut","msgtype":"text","text":{"content":"cut her`,
		"corp-hold", "cid-hold", "m-cut"},
	{"msgId is a number",
		`{"msgId":12345,"msgtype":"text","text":{"content":"x"},"senderCorpId":"corp-hold","conversationId":"cid-hold"}`,
		"corp-hold", "cid-hold", "12345"},
	{"quota exhausted",
		string(dingtalktest.QuotaPayload("m-quota")), "corp-test", "cid-test", "m-quota"},
}

// TestCaptureErrorsAreTheSameByStreamAndByHTTP pushes the same bad payloads through the Stream
// source (real SDK, local gateway) and through a signed HTTP callback: both seal the same
// capture error record, with the tenant, conversation and message id the payload names, so the
// record falls under the corp's legal hold whichever way it came.
func TestCaptureErrorsAreTheSameByStreamAndByHTTP(t *testing.T) {
	now := time.Unix(1614767836, 0)
	clock := func() time.Time { return now }

	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: time.Minute})
	t.Cleanup(g.Close)
	viaStream := capturetest.NewSink()
	opts := fastOptions(t, g)
	opts.Now = clock
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	stop := running(t, src, viaStream)
	for _, p := range badPayloads {
		g.PushBotMessage([]byte(p.payload))
	}
	require.NoError(t, g.Wait(ctxT(t, 20*time.Second)))
	stop()
	for _, d := range g.Deliveries() {
		require.Equal(t, 200, d.Code, "acknowledged: %.60s", d.Data)
	}

	viaHTTP := capturetest.NewSink()
	h, err := dingtalk.NewCallbackHandler(dingtalk.CallbackOptions{
		Token: vecToken, AESKey: vecAESKey, OwnerKey: vecOwner, Sink: viaHTTP, Records: viaHTTP, Now: clock,
	})
	require.NoError(t, err)
	rig := &callbackRig{h: h, sink: viaHTTP, now: now}
	for i, p := range badPayloads {
		w := rig.serve(rig.request(t, h.Crypto(), p.payload, strconv.FormatInt(now.Unix(), 10), "n"+strconv.Itoa(i)))
		checkReply(t, h.Crypto(), w)
	}

	require.Empty(t, viaStream.Messages())
	require.Empty(t, viaHTTP.Messages())
	for _, p := range badPayloads {
		t.Run(p.name, func(t *testing.T) {
			s, hr := holding(t, viaStream, p.payload), holding(t, viaHTTP, p.payload)
			require.Equal(t, s, hr, "the same record by either path")
			require.Equal(t, p.tenant, s.Tenant)
			require.Equal(t, p.conversation, s.Conversation.ID)
			var body map[string]any
			require.NoError(t, json.Unmarshal(s.Body, &body))
			if p.messageID != "" {
				require.Equal(t, &capture.Identity{Platform: capture.PlatformDingTalk, Tenant: p.tenant, ID: p.messageID}, s.About)
				require.Equal(t, p.messageID, body["message_id"])
			} else {
				require.Nil(t, s.About)
				require.EqualValues(t, capture.MaxIDLen+1, body["message_id_len"], "an unusable msgId is recorded by its length and hash")
				sum := sha256.Sum256([]byte(strings.Repeat("m", capture.MaxIDLen+1)))
				require.Equal(t, hex.EncodeToString(sum[:]), body["message_id_sha256"])
			}
			require.NoError(t, s.Validate())
		})
	}
}

// holding returns the one capture error record of sink whose Raw is payload.
func holding(t *testing.T, sink *capturetest.Sink, payload string) capture.Record {
	t.Helper()
	var found []capture.Record
	for _, r := range sink.Records(capture.RecordCaptureError) {
		if string(r.Raw) == payload {
			found = append(found, r)
		}
	}
	require.Len(t, found, 1, "capture errors holding %.60s", payload)
	return found[0]
}

// TestOversizeSenderNameIsSealedNotRedelivered: a sender name 2 MiB over the limit, through the
// real SDK, is acknowledged on its first delivery and sealed as a capture error holding the
// whole payload; the message is not stored and DingTalk has nothing to push again.
func TestOversizeSenderNameIsSealedNotRedelivered(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 200 * time.Millisecond})
	t.Cleanup(g.Close)
	sink := capturetest.NewSink()
	src, err := dingtalk.NewSource(fastOptions(t, g))
	require.NoError(t, err)
	running(t, src, sink)
	payload := dingtalktest.BotMessage{MsgID: "m-huge", Text: "hi", SenderNick: hugeNick}.JSON()
	p := g.PushBotMessage(payload)
	d, err := p.Answered(ctxT(t, 20*time.Second))
	require.NoError(t, err)
	require.Equal(t, 200, d.Code)
	require.Equal(t, 1, d.Attempt, "acknowledged on its first delivery")
	<-p.Done()
	require.Empty(t, g.Unsettled(), "settled: never pushed again")
	require.Empty(t, sink.Messages())
	rec := holding(t, sink, string(payload))
	require.Equal(t, "corp-test", rec.Tenant)
	require.Contains(t, string(rec.Body), "sender.name is ")
	require.Contains(t, string(rec.Body), "over the limit of 4096")
	require.EqualValues(t, 1, src.Health().CaptureErrors)
}

// The same through the HTTP callback handler, with its default body limit. (The reply budget is
// raised: decrypting and sealing a payload of megabytes under the race detector on a loaded
// machine can take longer than DingTalk's 2.5 s, which would be a 503 and a redelivery, not
// what this test is about; TestCallbackHandlerSinkFailureAndBudget tests the budget.)
func TestCallbackOversizeSenderNameIsSealed(t *testing.T) {
	rig := newRig(t, func(o *dingtalk.CallbackOptions) { o.Budget = time.Minute })
	c := rig.h.Crypto()
	payload := string(dingtalktest.BotMessage{MsgID: "m-huge", Text: "hi", SenderNick: hugeNick}.JSON())
	w := rig.serve(rig.request(t, c, payload, strconv.FormatInt(rig.now.Unix(), 10), "n-huge"))
	checkReply(t, c, w)
	require.Empty(t, rig.sink.Messages())
	rec := holding(t, rig.sink, payload)
	require.Equal(t, "corp-test", rec.Tenant)
	require.Contains(t, string(rec.Body), "sender.name is ")
}

// A sink (a ledger whose store has its own limits) that refuses a message or an event with
// capture.ErrInvalidMessage gets a capture error instead, and the callback is answered success:
// DingTalk must not keep a permanent failure as a failed push.
func TestCallbackSinkRefusalIsSealedAsACaptureError(t *testing.T) {
	rig := newRig(t)
	c := rig.h.Crypto()
	rig.sink.Before = func(ctx context.Context, m *capture.Message, r *capture.Record) error {
		if m != nil || (r != nil && r.Kind == capture.RecordContext) {
			return fmt.Errorf("%w: refused by the store", capture.ErrInvalidMessage)
		}
		return nil
	}
	ts := strconv.FormatInt(rig.now.Unix(), 10)
	bot := string(dingtalktest.TextMessage("m-refused", "x"))
	ev := `{"EventType":"chat_update_title","ChatId":"chat1","CorpId":"corp-x"}`
	checkReply(t, c, rig.serve(rig.request(t, c, bot, ts, "n1")))
	checkReply(t, c, rig.serve(rig.request(t, c, ev, ts, "n2")))
	require.Empty(t, rig.sink.Messages())
	require.Empty(t, rig.sink.Records(capture.RecordContext))
	require.Equal(t, "corp-test", holding(t, rig.sink, bot).Tenant)
	evRec := holding(t, rig.sink, ev)
	require.Equal(t, "corp-x", evRec.Tenant)
	require.Equal(t, "chat1", evRec.Conversation.ID)
}

func TestCaptureErrorRecordReadsWhatItCan(t *testing.T) {
	at := time.Unix(1700000000, 0).UTC()
	for _, c := range []struct {
		name, raw           string
		tenant, conv, msgID string
		unread              bool
	}{
		{"valid", `{"msgId":"a","chatbotCorpId":"t1","senderCorpId":"t2","conversationId":"c"}`, "t1", "c", "a", false},
		{"sender corp when no bot corp", `{"msgId":"a","senderCorpId":"t2"}`, "t2", "", "a", false},
		{"event keys", `{"EventType":"chat_quit","CorpId":"t3","ChatId":"c3"}`, "t3", "c3", "", false},
		{"last wins", `{"msgId":"a","msgId":"b"}`, "", "", "b", false},
		{"skips nested values", `{"text":{"msgId":"inner","x":[1,{"y":"}"}]},"msgId":"outer"}`, "", "", "outer", false},
		{"escaped key", `{"msg\u0049d":"esc"}`, "", "", "esc", false},
		{"cut in a later value", `{"msgId":"a","chatbotCorpId":"t","text":{"content":"ab`, "t", "", "a", false},
		{"cut in a key", `{"msgId":"a","chatbotCo`, "", "", "a", false},
		{"not an object", `["msgId","a"]`, "", "", "", false},
		{"not json", `success`, "", "", "", false},
		{"empty", ``, "", "", "", false},
		{"a wrong type is ignored", `{"msgId":{"a":1},"chatbotCorpId":true}`, "", "", "", false},
		{"value too long to read", `{"chatbotCorpId":"t","msgId":"` + strings.Repeat("x", 70<<10) + `"}`, "t", "", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := dingtalk.CaptureErrorRecord([]byte(c.raw), errors.New("cause"), at)
			require.NoError(t, rec.Validate())
			require.Equal(t, capture.RecordCaptureError, rec.Kind)
			require.Equal(t, c.raw, string(rec.Raw))
			require.Equal(t, c.tenant, rec.Tenant)
			require.Equal(t, c.conv, rec.Conversation.ID)
			require.Equal(t, at, rec.At)
			if c.msgID == "" {
				require.Nil(t, rec.About)
			} else {
				require.Equal(t, c.msgID, rec.About.ID)
			}
			require.Equal(t, c.unread, strings.Contains(string(rec.Body), `"unread_fields":["msgId"]`), "%s", rec.Body)
		})
	}
}

// FuzzCaptureErrorRecord: whatever the payload, the record validates, keeps the payload, and
// for a payload that is a JSON object reads the msgId and tenant that encoding/json reads.
func FuzzCaptureErrorRecord(f *testing.F) {
	for _, p := range badPayloads {
		if len(p.payload) < 4096 {
			f.Add([]byte(p.payload))
		}
	}
	f.Add([]byte(`{"msgId":"a","chatbotCorpId":"c","x":[{"y":"\""}]}`))
	f.Add([]byte(`{"msgId":"\ud800","senderCorpId":"\xff"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec := dingtalk.CaptureErrorRecord(raw, errors.New("fuzz"), time.Time{})
		if err := rec.Validate(); err != nil {
			t.Fatalf("the capture error does not validate: %v", err)
		}
		if !bytes.Equal(rec.Raw, raw) {
			t.Fatal("raw not kept")
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return
		}
		str := func(k string) string {
			var s string
			if v, ok := obj[k]; ok && len(v) < 64<<10 && json.Unmarshal(v, &s) == nil && len(s) <= capture.MaxIDLen {
				return s
			}
			return ""
		}
		if want := str("msgId"); want != "" && (rec.About == nil || rec.About.ID != want) {
			t.Fatalf("msgId %q not read (about %v)", want, rec.About)
		}
		if want := str("chatbotCorpId"); want != "" && rec.Tenant != want {
			t.Fatalf("chatbotCorpId %q read as tenant %q", want, rec.Tenant)
		}
	})
}

// TestAnEventAndItsCaptureErrorShareTheConversation: an event payload naming two conversation
// keys is filed under the same conversation whether it is sealed as an event or, refused, as a
// capture error, so that a hold on that conversation covers both.
func TestAnEventAndItsCaptureErrorShareTheConversation(t *testing.T) {
	at := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	for _, data := range []string{
		`{"openConversationId":"cid-open","conversationId":"cid-plain"}`,
		`{"conversationId":"cid-plain","ChatId":"chat-9"}`,
		`{"ChatId":"chat-9"}`,
	} {
		ev := dingtalk.EventRecord(map[string]string{"eventType": "chat_update_title", "eventCorpId": "corp"}, []byte(data), at)
		ce := dingtalk.CaptureErrorRecord([]byte(data), errors.New("refused"), at)
		require.NotEmpty(t, ev.Conversation.ID, data)
		require.Equal(t, ev.Conversation.ID, ce.Conversation.ID, data)
	}
	ev := dingtalk.EventRecord(map[string]string{"eventType": "x", "eventCorpId": "corp"}, []byte(`["not an object"]`), at)
	require.Contains(t, string(ev.Body), `"data_not_json":true`)
}
