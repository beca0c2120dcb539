package dingtalk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// DingTalk's published vector (reference/dingtalk.md).
const (
	vecToken     = "123456"
	vecAESKey    = "1234567890123456789012345678901234567890123"
	vecOwner     = "dingsnotzck6pm5veliw"
	vecTimestamp = "1614767836"
	vecNonce     = "A7Co0cJLMzIDtMMI"
	vecEncrypt   = "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA=="
	vecSignature = "9a95a004dd16f5c307e849b994173f76aa26e5eb"
)

func TestCallbackPublishedVector(t *testing.T) {
	c, err := dingtalk.NewCallbackCrypto(vecToken, vecAESKey, vecOwner)
	require.NoError(t, err)
	require.Equal(t, vecSignature, c.Sign(vecTimestamp, vecNonce, vecEncrypt))
	require.NoError(t, c.Verify(vecSignature, vecTimestamp, vecNonce, vecEncrypt))
	pt, err := c.Decrypt(vecEncrypt)
	require.NoError(t, err)
	require.Equal(t, "success", string(pt))

	other, err := dingtalk.NewCallbackCrypto(vecToken, vecAESKey, "dingotherowner")
	require.NoError(t, err)
	_, err = other.Decrypt(vecEncrypt)
	require.ErrorIs(t, err, dingtalk.ErrOwnerKey)

	for _, bad := range []string{"short", strings.Repeat("1", 44)} {
		_, err := dingtalk.NewCallbackCrypto(vecToken, bad, vecOwner)
		require.ErrorIs(t, err, dingtalk.ErrConfig)
	}
}

type callbackRig struct {
	h    *dingtalk.CallbackHandler
	sink *capturetest.Sink
	now  time.Time
}

func newRig(t *testing.T, with ...func(*dingtalk.CallbackOptions)) *callbackRig {
	rig := &callbackRig{sink: capturetest.NewSink(), now: time.Unix(1614767836, 0)}
	opts := dingtalk.CallbackOptions{
		Token: vecToken, AESKey: vecAESKey, OwnerKey: vecOwner,
		Sink: rig.sink, Records: rig.sink, Now: func() time.Time { return rig.now },
	}
	for _, f := range with {
		f(&opts)
	}
	h, err := dingtalk.NewCallbackHandler(opts)
	require.NoError(t, err)
	rig.h = h
	return rig
}

// request builds a signed callback request for payload.
func (rig *callbackRig) request(t *testing.T, c *dingtalk.CallbackCrypto, payload, ts, nonce string) *http.Request {
	enc, err := c.Encrypt([]byte(payload))
	require.NoError(t, err)
	return rig.raw(c.Sign(ts, nonce, enc), ts, nonce, `{"encrypt":"`+enc+`"}`)
}

func (rig *callbackRig) raw(sig, ts, nonce, body string) *http.Request {
	q := url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
	return httptest.NewRequest(http.MethodPost, "/dingtalk/callback?"+q.Encode(), strings.NewReader(body))
}

func (rig *callbackRig) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	rig.h.ServeHTTP(w, r)
	return w
}

// checkReply verifies the encrypted "success" reply.
func checkReply(t *testing.T, c *dingtalk.CallbackCrypto, w *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var rep struct {
		Sig   string `json:"msg_signature"`
		TS    string `json:"timeStamp"`
		Nonce string `json:"nonce"`
		Enc   string `json:"encrypt"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rep))
	require.NoError(t, c.Verify(rep.Sig, rep.TS, rep.Nonce, rep.Enc))
	pt, err := c.Decrypt(rep.Enc)
	require.NoError(t, err)
	require.Equal(t, "success", string(pt))
}

func TestCallbackHandlerRoundTrips(t *testing.T) {
	rig := newRig(t)
	c := rig.h.Crypto()

	// The published vector itself is a valid request (at its own time). Its plaintext, success,
	// is authentic but not a JSON payload: sealed as a capture error, not refused.
	w := rig.serve(rig.raw(vecSignature, vecTimestamp, vecNonce, `{"encrypt":"`+vecEncrypt+`"}`))
	checkReply(t, c, w)
	errs := rig.sink.Records(capture.RecordCaptureError)
	require.Len(t, errs, 1)
	require.Equal(t, "success", string(errs[0].Raw))
	require.Contains(t, string(errs[0].Body), "malformed bot message")
	calls := rig.sink.Calls()

	ts := strconv.FormatInt(rig.now.UnixMilli(), 10)
	w = rig.serve(rig.request(t, c, `{"EventType":"check_url"}`, ts, "n1"))
	checkReply(t, c, w)
	require.Equal(t, calls, rig.sink.Calls(), "check_url stores nothing")

	ev := `{"EventType":"chat_add_member","ChatId":"chat1","CorpId":"corp-x","UserId":["u1"],"TimeStamp":"1614767836000"}`
	w = rig.serve(rig.request(t, c, ev, ts, "n2"))
	checkReply(t, c, w)
	recs := rig.sink.Records(capture.RecordContext)
	require.Len(t, recs, 1)
	require.Equal(t, ev, string(recs[0].Raw))
	require.Equal(t, "corp-x", recs[0].Tenant)
	require.Equal(t, "chat1", recs[0].Conversation.ID)

	bot := string(dingtalktest.TextMessage("hm1", "via http"))
	w = rig.serve(rig.request(t, c, bot, vecTimestamp, "n3")) // seconds also accepted
	checkReply(t, c, w)
	msgs := rig.sink.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, bot, string(msgs[0].Raw))
}

func TestCallbackHandlerRejections(t *testing.T) {
	rig := newRig(t)
	c := rig.h.Crypto()
	ts := strconv.FormatInt(rig.now.Unix(), 10)
	ev := `{"EventType":"chat_quit","ChatId":"c1"}`
	wrongOwner, err := dingtalk.NewCallbackCrypto(vecToken, vecAESKey, "ding-other-app")
	require.NoError(t, err)
	enc, err := c.Encrypt([]byte(ev))
	require.NoError(t, err)

	w := rig.serve(rig.request(t, c, ev, ts, "ok-1"))
	checkReply(t, c, w)
	calls := rig.sink.Calls()

	cases := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"bad signature", rig.raw(strings.Repeat("0", 40), ts, "n", `{"encrypt":"`+enc+`"}`), 401},
		{"signature of other data", rig.raw(c.Sign(ts, "other", enc), ts, "n", `{"encrypt":"`+enc+`"}`), 401},
		{"stale timestamp", rig.request(t, c, ev, strconv.FormatInt(rig.now.Add(-10*time.Minute).Unix(), 10), "n"), 403},
		{"future timestamp", rig.request(t, c, ev, strconv.FormatInt(rig.now.Add(10*time.Minute).UnixMilli(), 10), "n"), 403},
		{"replayed nonce", rig.request(t, c, ev, ts, "ok-1"), 409},
		{"wrong owner key", rig.request(t, wrongOwner, ev, ts, "n4"), 403},
		{"not json body", rig.raw(c.Sign(ts, "n", "x"), ts, "n", `encrypt=x`), 400},
		{"empty encrypt", rig.raw(c.Sign(ts, "n", ""), ts, "n", `{"encrypt":""}`), 400},
		{"encrypt not base64", rig.raw(c.Sign(ts, "n", "%%%"), ts, "n", `{"encrypt":"%%%"}`), 400},
		{"encrypt wrong length", rig.raw(c.Sign(ts, "n", "AAAA"), ts, "n", `{"encrypt":"AAAA"}`), 400},
		{"missing query", httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(`{"encrypt":"x"}`)), 400},
		{"timestamp not a number", rig.request(t, c, ev, "yesterday", "n6"), 400},
		{"GET", httptest.NewRequest(http.MethodGet, "/cb", nil), 405},
		{"huge body", rig.raw("s", ts, "n", `{"encrypt":"`+strings.Repeat("A", 24<<20)+`"}`), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := rig.serve(tc.req)
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Equal(t, calls, rig.sink.Calls(), "nothing stored")
		})
	}
	require.Len(t, rig.sink.Records(""), 1)
}

func TestCallbackHandlerSinkFailureAndBudget(t *testing.T) {
	rig := newRig(t)
	c := rig.h.Crypto()
	ts := strconv.FormatInt(rig.now.Unix(), 10)
	fail := true
	var deadline time.Time
	rig.sink.Before = func(ctx context.Context, m *capture.Message, r *capture.Record) error {
		if fail {
			deadline, _ = ctx.Deadline()
			<-ctx.Done() // slower than the reply budget
			return ctx.Err()
		}
		return nil
	}
	ev := `{"EventType":"chat_disband","ChatId":"c1"}`
	req := rig.request(t, c, ev, ts, "same")
	start := time.Now()
	w := rig.serve(req)
	// The sink is given less than DingTalk's 2,500 ms budget, with a margin to answer in. (The
	// deadline is checked rather than the elapsed time, which a loaded machine stretches.)
	require.False(t, deadline.IsZero(), "the sink's context has a deadline")
	require.Less(t, deadline.Sub(start), 2300*time.Millisecond, "the sink's deadline leaves a margin within the budget")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Empty(t, rig.sink.Records(""))
	// A failed callback may come again with the same nonce: it is not a replay.
	fail = false
	w = rig.serve(rig.request(t, c, ev, ts, "same"))
	checkReply(t, c, w)
	require.Len(t, rig.sink.Records(capture.RecordContext), 1)
}

func FuzzCallbackDecrypt(f *testing.F) {
	c, err := dingtalk.NewCallbackCrypto(vecToken, vecAESKey, vecOwner)
	require.NoError(f, err)
	f.Add(vecEncrypt)
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Fuzz(func(t *testing.T, enc string) {
		msg, err := c.Decrypt(enc)
		if err == nil {
			// Whatever decrypts must re-encrypt and decrypt to the same message.
			enc2, err := c.Encrypt(msg)
			require.NoError(t, err)
			back, err := c.Decrypt(enc2)
			require.NoError(t, err)
			require.Equal(t, msg, back)
		}
	})
}

func FuzzCallbackHandler(f *testing.F) {
	f.Add(`{"EventType":"check_url"}`, "1614767836", "n", true)
	f.Add(`{"msgId":"a","msgtype":"text"}`, "1614767836000", "n2", true)
	f.Add(`{"encrypt":"x"}`, "1", "", false)
	f.Fuzz(func(t *testing.T, payload, ts, nonce string, sign bool) {
		rig := newRig(t)
		c := rig.h.Crypto()
		var req *http.Request
		if sign {
			req = rig.request(t, c, payload, ts, nonce)
		} else {
			req = rig.raw("sig", ts, nonce, payload)
		}
		w := rig.serve(req)
		switch {
		case w.Code == http.StatusOK:
			checkReply(t, c, w)
		case w.Code >= 400 && w.Code < 500:
			require.Zero(t, rig.sink.Calls(), "a refused callback stores nothing")
		default:
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body)
		}
	})
}
