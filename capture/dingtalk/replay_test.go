package dingtalk_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// TestCallbackReplayAfterRestartStoresNothing: the handler keeps the nonces of its freshness
// window in memory only, so a signed request replayed after a restart passes every check again.
// This test shows that it then stores nothing: each kind of callback (a bot message, an event,
// a payload sealed as a capture error) is captured into a real ledger, the handler is replaced
// by a new one (a restart), and the very same requests are replayed within the window. The
// ledger's size does not change, each replay is answered with the encrypted "success", and
// logged as already stored. A replay to the same handler is refused with 409.
func TestCallbackReplayAfterRestartStoresNothing(t *testing.T) {
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey("commseal.test/replay")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	now := time.Unix(1700000000, 0)
	logs := &recordingHandler{}
	newHandler := func() *dingtalk.CallbackHandler {
		h, err := dingtalk.NewCallbackHandler(dingtalk.CallbackOptions{
			Token: vecToken, AESKey: vecAESKey, OwnerKey: vecOwner, Sink: l, Records: l,
			Now: func() time.Time { return now }, Logger: slog.New(logs),
		})
		require.NoError(t, err)
		return h
	}
	h := newHandler()
	c := h.Crypto()
	rig := &callbackRig{h: h, now: now}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	payloads := []string{
		string(dingtalktest.TextMessage("m-replayed", "buy 100 0700.HK")),
		`{"EventType":"chat_add_member","ChatId":"chat1","CorpId":"corp-test","UserId":["u1"]}`,
		`{"msgId":"m-broken","chatbotCorpId":"corp-test","text":{"content":`,
	}
	// The requests as DingTalk sent them: kept whole, to be replayed byte for byte.
	type sent struct{ url, body string }
	var reqs []sent
	for i, p := range payloads {
		r := rig.request(t, c, p, ts, "nonce-"+strconv.Itoa(i))
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		reqs = append(reqs, sent{r.URL.String(), string(b)})
	}
	send := func(h *dingtalk.CallbackHandler, s sent) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, s.url, strings.NewReader(s.body)))
		return w
	}
	for _, s := range reqs {
		checkReply(t, c, send(h, s))
	}
	size := l.Size()
	require.EqualValues(t, 3, size, "a message, an event and a capture error")
	for _, s := range reqs {
		require.Equal(t, http.StatusConflict, send(h, s).Code, "the same process refuses a replayed nonce")
	}

	// Restart: a new handler, with an empty nonce cache, a minute later (within the window).
	now = now.Add(time.Minute)
	h = newHandler()
	for _, s := range reqs {
		checkReply(t, c, send(h, s))
	}
	require.Equal(t, size, l.Size(), "the replays stored nothing")
	require.True(t, logs.has("already stored (a redelivery or a replay)"))

	// Past the window, the same requests are refused as stale.
	now = now.Add(10 * time.Minute)
	for _, s := range reqs {
		require.Equal(t, http.StatusForbidden, send(h, s).Code)
	}
	require.Equal(t, size, l.Size())
}
