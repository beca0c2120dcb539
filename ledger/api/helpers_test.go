package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// The tokens of the test principals.
const (
	officerToken = "officer-token-0123456789"
	auditorToken = "auditor-token-0123456789"
	adminToken   = "admin-token-0123456789"
)

// tokenFile lists the test principals.
var tokenFile = fmt.Sprintf(`# commseal API tokens
%s alice@compliance officer
%s Bob Auditor auditor

%s root admin
`, api.HashToken(officerToken), api.HashToken(auditorToken), api.HashToken(adminToken))

// env is an encrypted ledger on memstore with a search index, served by the API.
type env struct {
	l    *ledger.Ledger
	st   *memstore.Store
	keys *seal.SigningKey
	vkey string
	ix   *search.Index
	srv  *httptest.Server
	tmp  string // the process's temporary directory (TMPDIR), which exports must leave untouched
	sent time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	skey, vkey, err := seal.GenerateSigningKey("commseal.test/api")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	e := &env{st: memstore.New(), keys: keys, vkey: vkey, tmp: t.TempDir(), sent: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	t.Setenv("TMPDIR", e.tmp)
	e.l, err = ledger.Open(context.Background(), e.st, ledger.Options{Signing: keys, CheckpointEvery: 1 << 20, CheckpointInterval: time.Hour,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.l.Close()) })
	for i, text := range []string{"buy 100 0700.HK", "lunch?", "call me on WhatsApp 微信", "sell 50 0005.HK", "報價 tomorrow"} {
		e.append(t, i, text)
	}
	_, _, err = e.l.SignCheckpoint(context.Background())
	require.NoError(t, err)
	e.ix, err = search.Open(context.Background(), e.l, search.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { e.ix.Close() })
	tokens, err := api.ParseTokens(strings.NewReader(tokenFile), "tokens")
	require.NoError(t, err)
	e.srv = httptest.NewServer(api.New(api.Options{Ledger: e.l, Index: e.ix, Auth: tokens, Signer: keys.Signer,
		Store: e.st}))
	t.Cleanup(e.srv.Close)
	return e
}

// append appends message i with text.
func (e *env) append(t testing.TB, i int, text string) uint64 {
	t.Helper()
	rc, err := e.l.Append(context.Background(), &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: fmt.Sprint("m", i),
		Kind: capture.KindText, Conversation: capture.Conversation{ID: "cid-desk", Type: capture.ConversationGroup, Title: "Equities"},
		Sender: capture.Party{ID: fmt.Sprint("u", i%2), Name: "Trader"}, SentAt: e.sent.Add(time.Duration(i) * time.Minute),
		Text: text, Raw: []byte(fmt.Sprintf(`{"msgId":"m%d"}`, i))})
	require.NoError(t, err)
	return rc.Index
}

// call makes a request with token (none if ""), the reason why (none if ""), and body (JSON
// of it unless a string or nil), and returns the status and the body read.
func (e *env) call(t testing.TB, method, path, token, why string, body any) (int, []byte) {
	t.Helper()
	resp := e.do(t, e.srv.Client(), method, path, token, why, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func (e *env) do(t testing.TB, c *http.Client, method, path, token, why string, body any) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if why != "" {
		req.Header.Set(api.WhyHeader, why)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	return resp
}

// errorOf decodes an {"error": ...} body.
func errorOf(t testing.TB, b []byte) string {
	t.Helper()
	var v struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(b, &v), "body %s", b)
	require.NotEmpty(t, v.Error)
	return v.Error
}

// lastAccess returns the body of the ledger's last entry, which must be an access entry.
func (e *env) lastAccess(t testing.TB) map[string]any {
	t.Helper()
	got, err := e.l.Get(context.Background(), e.l.Size()-1)
	require.NoError(t, err)
	require.Equal(t, seal.KindAccess, got.Leaf.Kind)
	var m map[string]any
	require.NoError(t, json.Unmarshal(got.Body, &m))
	return m
}
