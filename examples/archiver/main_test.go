package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/testio"

	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/alert"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// syncBuffer is written by the program or server under test while the test reads it.
type syncBuffer = testio.Buffer

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startArchiver runs the archiver with args (and the gateway's test credentials) until it is
// ready. stop cancels it and returns its exit code; stderr is its log.
func startArchiver(t *testing.T, args []string) (stderr *syncBuffer, stop func() int) {
	t.Helper()
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	started := make(chan struct{}, 1)
	done := make(chan int, 1)
	var stdout syncBuffer
	stderr = &syncBuffer{}
	go func() {
		done <- run(ctx, args, env, &stdout, stderr, func(string, string, string) { started <- struct{}{} })
	}()
	select {
	case <-started:
	case code := <-done:
		t.Fatalf("the archiver exited %d before it was ready: %s", code, stderr.String())
	}
	return stderr, func() int { cancel(); return <-done }
}

// pushWindowed pushes payloads through g with at most window of them unacknowledged at once,
// and returns when every one is acknowledged.
func pushWindowed(b *testing.B, g *dingtalktest.Gateway, payloads [][]byte, window int) {
	sem := make(chan struct{}, window)
	for _, p := range payloads {
		sem <- struct{}{}
		d := g.PushBotMessage(p)
		go func() { <-d.Done(); <-sem }()
	}
	require.NoError(b, g.Wait(context.Background()))
}

func TestUsageErrorsExit2(t *testing.T) {
	creds := map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "secret"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no credentials", []string{"-dir", t.TempDir()}, nil, "DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET must be set"},
		{"no dir", nil, creds, "-dir is required"},
		{"callback without its keys", []string{"-dir", t.TempDir(), "-callback-addr", "127.0.0.1:0"}, creds, "DINGTALK_CALLBACK_TOKEN"},
		{"bad flag", []string{"-nope"}, creds, "flag provided but not defined"},
		{"too many connections", []string{"-dir", t.TempDir(), "-connections", "51"}, creds, "between 1 and 50"},
		{"api without authentication", []string{"-dir", t.TempDir(), "-api-addr", "127.0.0.1:0"}, creds, "needs -api-tokens or -api-client-ca"},
		{"api options without an address", []string{"-dir", t.TempDir(), "-api-tokens", "x"}, creds, "need -api-addr"},
		{"api key without a certificate", []string{"-dir", t.TempDir(), "-api-addr", "127.0.0.1:0", "-api-tokens", "x", "-api-tls-key", "k"}, creds, "go together"},
		{"client CA without TLS", []string{"-dir", t.TempDir(), "-api-addr", "127.0.0.1:0", "-api-client-ca", "ca", "-api-cert-roles", "r"}, creds, "needs -api-tls-cert"},
		{"client CA without roles", []string{"-dir", t.TempDir(), "-api-addr", "127.0.0.1:0", "-api-client-ca", "ca", "-api-tls-cert", "c", "-api-tls-key", "k"}, creds, "-api-cert-roles go together"},
		{"missing token file", []string{"-dir", t.TempDir(), "-api-addr", "127.0.0.1:0", "-api-tokens", "/nonexistent/tokens"}, creds, "no such file"},
		{"bad token file", []string{"-dir", t.TempDir(), "-api-addr", "127.0.0.1:0", "-api-tokens", badTokens(t)}, creds, "line 2: unknown role"},
		{"tsa without roots", []string{"-dir", t.TempDir(), "-tsa", "a=http://x"}, creds, "-tsa needs -tsa-roots"},
		{"tsa not NAME=URL", []string{"-dir", t.TempDir(), "-tsa", "http://x", "-tsa-roots", "/dev/null"}, creds, "no PEM certificate"},
		{"witness not URL=VKEY", []string{"-dir", t.TempDir(), "-witness", "http://x"}, creds, "want URL=VKEY"},
		{"witness bad key", []string{"-dir", t.TempDir(), "-witness", "http://x=nokey"}, creds, "-witness"},
		{"roots without tsa", []string{"-dir", t.TempDir(), "-tsa-roots", "/dev/null"}, creds, "-tsa-roots needs -tsa"},
		{"lease every zero", []string{"-dir", t.TempDir(), "-lease-every", "0s"}, creds, "-lease-every 0s: want a positive duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			code := run(t.Context(), tc.args, envOf(tc.env), &stdout, &stderr, nil)
			require.Equal(t, 2, code)
			require.Contains(t, stderr.String(), tc.want)
		})
	}
}

// badTokens writes a token file whose second line has a bad role.
func badTokens(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(p, []byte("# tokens\n"+api.HashToken("x")+" alice superuser\n"), 0o600))
	return p
}

const (
	cbToken = "123456"
	cbKey   = "1234567890123456789012345678901234567890123"
	cbOwner = "dingsnotzck6pm5veliw"
)

func TestArchiverCapturesIntoAVerifiedLedger(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 2 * time.Second})
	defer g.Close()
	dir := t.TempDir()
	env := envOf(map[string]string{
		"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret,
		"DINGTALK_CALLBACK_TOKEN": cbToken, "DINGTALK_CALLBACK_AES_KEY": cbKey, "DINGTALK_CALLBACK_OWNER_KEY": cbOwner,
	})
	args := []string{"-dir", dir, "-openapi-host", g.URL, "-health-addr", "127.0.0.1:0", "-callback-addr", "127.0.0.1:0"}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	urls := make(chan [2]string, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, env, &stdout, &stderr, func(h, c, _ string) { urls <- [2]string{h, c} })
	}()
	var healthURL, callbackURL string
	select {
	case u := <-urls:
		healthURL, callbackURL = u[0], u[1]
	case code := <-done:
		t.Fatalf("archiver exited %d: %s", code, stderr.String())
	}

	const n = 50
	for i := range n {
		g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprintf("m%d", i), Text: "賣出 " + strconv.Itoa(i)}.JSON())
	}
	g.PushBotMessage(dingtalktest.TextMessage("m0", "redelivered")) // same msgId: dropped
	g.AddFile("pic", "image/png", []byte("\x89PNG picture bytes"))
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "p1", MsgType: "picture", Content: map[string]any{"downloadCode": "pic"}}.JSON())
	g.PushEvent("chat_update_title", "corp-test", []byte(`{"openConversationId":"cid-g","title":"desk"}`))
	require.NoError(t, g.Wait(context.Background()))

	// HTTP callback mode beside Stream mode.
	c, err := dingtalk.NewCallbackCrypto(cbToken, cbKey, cbOwner)
	require.NoError(t, err)
	enc, err := c.Encrypt([]byte(`{"EventType":"chat_add_member","ChatId":"chat9","CorpId":"corp-test"}`))
	require.NoError(t, err)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := url.Values{"msg_signature": {c.Sign(ts, "nonce-1", enc)}, "timestamp": {ts}, "nonce": {"nonce-1"}}
	resp, err := http.Post(callbackURL+"?"+q.Encode(), "application/json", strings.NewReader(`{"encrypt":"`+enc+`"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	var h struct {
		dingtalk.Health
		LedgerSize uint64 `json:"ledger_size"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(healthURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&h) == nil && h.MediaStored == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, dingtalk.StateConnected, h.State)
	require.EqualValues(t, 1, h.Duplicates)

	stop() // as SIGTERM does
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("archiver did not stop")
	}
	require.Contains(t, stdout.String(), "archiver: stopped: 52 messages")

	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed, "every directory 0700, every file 0600")

	// The ledger verifies with nothing but its verifier key.
	keys, err := ledgerdir.SigningKey(dir, layout.DefaultOrigin, false)
	require.NoError(t, err)
	st, err := layout.OpenStore(context.Background(), dir, true, nil)
	require.NoError(t, err)
	defer st.Close()
	rep, err := verify.Ledger(context.Background(), st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	// 51 messages, 1 Stream event, 1 HTTP event, 1 media record; the final checkpoint covers all.
	require.EqualValues(t, 54, rep.Entries, "kinds: %v", rep.Kinds)
	require.Zero(t, rep.Uncovered, "Close signed a final checkpoint")
}

// BenchmarkArchiverPushToAck measures the whole capture path of the archiver: the real SDK
// against dingtalktest, into a ledger on the embedded file store (fsync'd group commits), with
// window pushes outstanding. It reports messages/s and push-to-ack latency percentiles.
//
//	go test -run XXX -bench ArchiverPushToAck -benchtime 20000x ./examples/archiver/
func BenchmarkArchiverPushToAck(b *testing.B) {
	for _, window := range []int{1, 32, 64, 128} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 30 * time.Second})
			defer g.Close()
			l, err := ledgerdir.Open(context.Background(), b.TempDir(), layout.DefaultOrigin, ledger.Options{})
			require.NoError(b, err)
			defer l.Close()
			src, err := dingtalk.NewSource(dingtalk.Options{
				ClientID: dingtalktest.DefaultClientID, ClientSecret: dingtalktest.DefaultClientSecret,
				OpenAPIHost: g.URL, Media: dingtalk.MediaOptions{Disabled: true},
				MaxInFlight: 256, // pushes pick a connection at random: keep any window below the cap
			})
			require.NoError(b, err)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, l) }()
			defer func() { stop(); <-done }()
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(b, g.WaitConns(wctx, 2))
			payloads := make([][]byte, b.N)
			for i := range payloads {
				payloads[i] = dingtalktest.BotMessage{MsgID: fmt.Sprintf("bench-%d", i), Text: "buy 100 0700.HK at market",
					ConversationID: "cid-" + strconv.Itoa(i%50)}.JSON()
			}
			b.ResetTimer()
			start := time.Now()
			pushWindowed(b, g, payloads, window)
			elapsed := time.Since(start)
			b.StopTimer()
			var lat []time.Duration
			for _, d := range g.Deliveries() {
				if d.Attempt == 1 && d.Acked {
					lat = append(lat, d.AckedAt.Sub(d.SentAt))
				}
			}
			slices.Sort(lat)
			require.Len(b, lat, b.N)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func TestArchiverServesTheAPI(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 2 * time.Second})
	defer g.Close()
	dir := t.TempDir()
	tokens := filepath.Join(t.TempDir(), "api-tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("# who may ask\n"+
		api.HashToken("officer-secret")+" alice@compliance officer\n"+
		api.HashToken("auditor-secret")+" bob@audit auditor\n"), 0o600))
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	args := []string{"-dir", dir, "-openapi-host", g.URL, "-api-addr", "127.0.0.1:0", "-api-tokens", tokens}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	urls := make(chan string, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, env, &stdout, &stderr, func(_, _, a string) { urls <- a }) }()
	var apiURL string
	select {
	case apiURL = <-urls:
	case code := <-done:
		t.Fatalf("archiver exited %d: %s", code, stderr.String())
	}
	require.NotEmpty(t, apiURL)

	for i, text := range []string{"call me on WhatsApp", "賣出 0700", "lunch?", "whatsapp later"} {
		g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprintf("m%d", i), Text: text}.JSON())
	}
	require.NoError(t, g.Wait(context.Background()))

	call := func(method, path, token, why, body string) (int, []byte) {
		req, err := http.NewRequest(method, apiURL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		if why != "" {
			req.Header.Set(api.WhyHeader, why)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	// The index follows the ledger: a search finds what was just captured (Search brings the
	// index up to date first).
	var res struct {
		Hits []struct {
			Index uint64 `json:"index"`
		} `json:"hits"`
		Total int    `json:"total"`
		Size  uint64 `json:"size"`
	}
	status, body := call("POST", "/v1/search", "officer-secret", "SFC request 17", `{"text":"whatsapp"}`)
	require.Equal(t, 200, status, "body %s", body)
	require.NoError(t, json.Unmarshal(body, &res))
	require.Equal(t, 2, res.Total)
	require.EqualValues(t, 4, res.Size)

	status, body = call("GET", fmt.Sprintf("/v1/entries/%d", res.Hits[0].Index), "officer-secret", "SFC request 17", "")
	require.Equal(t, 200, status, "body %s", body)
	require.Contains(t, strings.ToLower(string(body)), "whatsapp", "either hit: captures arrive in any order")

	// Refusals: a wrong token, an auditor asking for content, no reason. Nothing is sealed.
	var st struct {
		TreeSize uint64 `json:"tree_size"`
		Index    struct {
			Size   uint64 `json:"size"`
			OnDisk bool   `json:"on_disk"`
		} `json:"index"`
	}
	status, body = call("GET", "/v1/status", "auditor-secret", "", "")
	require.Equal(t, 200, status, "body %s", body)
	require.NoError(t, json.Unmarshal(body, &st))
	size := st.TreeSize
	require.EqualValues(t, 6, size, "4 messages and 2 access entries")
	require.True(t, st.Index.OnDisk, "the index is kept, encrypted, in DIR/index")
	for _, c := range []struct {
		token, why string
		status     int
	}{{"wrong", "x", 401}, {"auditor-secret", "x", 403}, {"officer-secret", "", 400}} {
		status, body := call("GET", "/v1/entries/0", c.token, c.why, "")
		require.Equal(t, c.status, status, "body %s", body)
	}
	status, body = call("GET", "/v1/status", "auditor-secret", "", "")
	require.Equal(t, 200, status)
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, size, st.TreeSize, "refusals sealed nothing")

	status, body = call("POST", "/v1/verify", "auditor-secret", "", "")
	require.Equal(t, 200, status, "body %s", body)
	require.Contains(t, string(body), `"ok": true`)

	stop()
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("archiver did not stop")
	}
	require.NotContains(t, stderr.String(), "officer-secret", "tokens are never logged")
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed, "every directory 0700, every file 0600, the index's too")
	_, err = os.Stat(filepath.Join(dir, layout.IndexDir, "docs.log"))
	require.NoError(t, err)

	// The next run opens the kept index and still answers.
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	go func() { done <- run(ctx2, args, env, &stdout, &stderr, func(_, _, a string) { urls <- a }) }()
	select {
	case apiURL = <-urls:
	case code := <-done:
		t.Fatalf("archiver exited %d: %s", code, stderr.String())
	}
	status, body = call("POST", "/v1/search", "officer-secret", "SFC request 17", `{"text":"0700"}`)
	require.Equal(t, 200, status, "body %s", body)
	require.NoError(t, json.Unmarshal(body, &res))
	require.Equal(t, 1, res.Total)
	stop2()
	require.Equal(t, 0, <-done, stderr.String())
}

// TestArchiverSealsFindings: a captured message that trips the lexicon gets an annotation entry
// while the archiver runs, the log names the rule and never the text, and a bad lexicon file
// is a usage error before anything is opened.
func TestArchiverSealsFindings(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	dir := t.TempDir()
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	bad := filepath.Join(t.TempDir(), "lex.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"name":"x"}`), 0o600))
	var out, errb syncBuffer
	require.Equal(t, 2, run(context.Background(), []string{"-dir", filepath.Join(t.TempDir(), "x"), "-openapi-host", g.URL, "-lexicon", bad}, env, &out, &errb, nil))
	require.Contains(t, errb.String(), "-lexicon")

	require.Equal(t, 2, run(context.Background(), []string{"-dir", dir, "-openapi-host", g.URL, "-alert-webhook", "http://x"}, env, &out, &errb, nil))
	require.Contains(t, errb.String(), "go together")

	secret := "0123456789abcdef-secret"
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))
	delivered := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if alert.VerifySignature([]byte(secret), r.Header.Get(alert.HeaderTimestamp), r.Header.Get(alert.HeaderSignature), body, time.Now(), 0) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		delivered <- string(body)
	}))
	defer receiver.Close()

	stderr, stop := startArchiver(t, []string{"-dir", dir, "-openapi-host", g.URL, "-alert-webhook", receiver.URL, "-alert-secret-file", secretFile})
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "w1", Text: "call me on WhatsApp tonight"}.JSON())
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "w2", Text: "noted"}.JSON())
	require.NoError(t, g.Wait(context.Background()))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "msg=alert") }, 10*time.Second, 20*time.Millisecond)
	select {
	case body := <-delivered:
		require.Contains(t, body, `"rule":"off-channel.move"`)
		require.Contains(t, body, `"msg_id":"w1"`)
		require.NotContains(t, body, "WhatsApp", "references, not content")
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook received no alert")
	}
	require.Equal(t, 0, stop(), stderr.String())
	require.Contains(t, stderr.String(), "rule=off-channel.move")
	require.NotContains(t, stderr.String(), "WhatsApp")

	st, err := layout.OpenStore(context.Background(), dir, true, nil)
	require.NoError(t, err)
	defer st.Close()
	keys, err := ledgerdir.SigningKey(dir, layout.DefaultOrigin, false)
	require.NoError(t, err)
	rep, err := verify.Ledger(context.Background(), st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.Kinds["annotation"], "%v", rep.Kinds)
	_, err = os.Stat(filepath.Join(dir, layout.CursorFile))
	require.NoError(t, err, "the cursor is kept")
}

// TestArchiverReloadsAChangedLexicon: a change to the -lexicon file is picked up while the
// archiver runs (a bad file keeps the lexicon in force), and the new version flags what the
// old one did not.
func TestArchiverReloadsAChangedLexicon(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	dir := t.TempDir()
	lex := filepath.Join(t.TempDir(), "lexicon.json")
	write := func(name, term string) {
		require.NoError(t, os.WriteFile(lex, []byte(`{"name":"`+name+`","rules":[{"id":"r","category":"c","severity":"high","terms":["`+term+`"]}]}`), 0o600))
	}
	write("v1", "alphaword")
	stderr, stop := startArchiver(t, []string{"-dir", dir, "-openapi-host", g.URL, "-lexicon", lex})
	alerted := func(msgID string) bool { return strings.Contains(stderr.String(), "msg_id="+msgID+" ") }
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "x1", Text: "alphaword bravoword"}.JSON())
	require.Eventually(t, func() bool { return alerted("x1") }, 10*time.Second, 20*time.Millisecond)

	require.NoError(t, os.WriteFile(lex, []byte(`{"name":`), 0o600)) // broken: the lexicon in force stays
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "lexicon reload failed") }, 10*time.Second, 20*time.Millisecond)
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "x2", Text: "alphaword"}.JSON())
	require.Eventually(t, func() bool { return alerted("x2") }, 10*time.Second, 20*time.Millisecond)

	write("v2", "bravoword")
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "lexicon reloaded") }, 10*time.Second, 20*time.Millisecond)
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "x3", Text: "bravoword only"}.JSON())
	require.Eventually(t, func() bool { return alerted("x3") }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, stop(), stderr.String())
	require.Contains(t, stderr.String(), "lexicon_name=v2")
}
