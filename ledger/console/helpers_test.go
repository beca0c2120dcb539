package console_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// Hostile input carried by the test messages.
const (
	hostileText = `<img src=x onerror=alert(1)> 加我微信 "><script>alert(2)</script>`
	hostileName = `"><script>alert(3)</script>`
	hostileFile = `javascript:alert(4)<svg onload=alert(5)>.pdf`
)

// passwords of the test accounts.
const (
	officerPW = "correct horse battery staple"
	auditorPW = "auditor password 123"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// env is an encrypted ledger with messages, alerts and an index, served by the console over TLS.
type env struct {
	l     *ledger.Ledger
	st    *memstore.Store
	keys  *seal.SigningKey
	vkey  string
	ix    *search.Index
	srv   *httptest.Server
	clock *clock
	msgs  []uint64 // ledger indexes of the messages
	png   [32]byte // the picture's blob
}

// testAccounts are an officer, an auditor and an admin, with cheap Argon2id parameters.
func testAccounts(t testing.TB) []console.Account {
	t.Helper()
	h := func(pw string) string {
		s, err := console.HashPasswordParams(pw, 64, 1, 1)
		require.NoError(t, err)
		return s
	}
	return []console.Account{
		{Name: "alice@compliance", Role: "officer", Hash: h(officerPW)},
		{Name: "bob auditor", Role: "auditor", Hash: h(auditorPW)},
		{Name: "root", Role: "admin", Hash: h("root pw")},
		{Name: "sso-officer", Role: "officer", Hash: "-"},
	}
}

// chartPNG is a 160x90 picture (a rising line on a grid) for the picture message.
var chartPNG = func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 160, 90))
	for y := range 90 {
		for x := range 160 {
			c := color.RGBA{250, 250, 250, 255}
			if x%20 == 0 || y%15 == 0 {
				c = color.RGBA{220, 220, 220, 255}
			}
			if d := 80 - x/2 - y; d > -2 && d < 2 {
				c = color.RGBA{11, 92, 173, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}()

func newEnv(t testing.TB, mod func(*console.Options)) *env {
	t.Helper()
	ctx := context.Background()
	skey, vkey, err := seal.GenerateSigningKey("commseal.test/console")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	e := &env{st: memstore.New(), keys: keys, vkey: vkey, clock: &clock{t: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)}}
	e.l, err = ledger.Open(ctx, e.st, ledger.Options{Signing: keys, CheckpointEvery: 1 << 20, CheckpointInterval: time.Hour,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	require.NoError(t, err)
	t.Cleanup(func() { e.l.Close() })
	e.png, err = e.l.PutBlob(ctx, chartPNG)
	require.NoError(t, err)
	sent := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	texts := []string{"buy 100 0700.HK", "加我微信再講", "call me on WhatsApp tonight", "報價幾多", hostileText,
		"delete this chat", "sell 50 0005.HK", "noted", "lunch?", "微信 group tomorrow"}
	for i, text := range texts {
		m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: fmt.Sprint("m", i), Kind: capture.KindText,
			Conversation: capture.Conversation{ID: fmt.Sprint("cid-", i%2), Type: capture.ConversationGroup, Title: "Equities desk"},
			Sender:       capture.Party{ID: fmt.Sprint("u", i%3), Name: "Trader 黃"}, SentAt: sent.Add(time.Duration(i) * time.Minute),
			Text: text, Raw: []byte(fmt.Sprintf(`{"msgId":"m%d"}`, i))}
		if text == hostileText {
			m.Sender.Name = hostileName
			m.Attachments = []capture.Attachment{{Name: hostileFile, MediaType: "application/pdf"}}
		}
		if i == 3 {
			m.Kind = capture.KindPicture
			m.Attachments = []capture.Attachment{{Name: "chart.png", MediaType: "image/png", Size: int64(len(chartPNG)),
				SHA256: fmt.Sprintf("%x", e.png)}}
		}
		rc, err := e.l.Append(ctx, m)
		require.NoError(t, err)
		e.msgs = append(e.msgs, rc.Index)
	}
	lex, err := scan.ParseLexicon(scan.DefaultLexiconJSON())
	require.NoError(t, err)
	sc, err := scan.Compile(lex)
	require.NoError(t, err)
	lv, err := scan.NewLive(sc)
	require.NoError(t, err)
	mon, err := surveil.New(e.l, surveil.Options{Lexicon: lv})
	require.NoError(t, err)
	for {
		st, err := mon.Step(ctx)
		require.NoError(t, err)
		if st.To <= st.From {
			break
		}
	}
	_, _, err = e.l.SignCheckpoint(ctx)
	require.NoError(t, err)
	e.ix, err = search.Open(ctx, e.l, search.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { e.ix.Close() })
	opts := console.Options{Ledger: e.l, Index: e.ix, Signer: keys.Signer, Store: e.st, Accounts: testAccounts(t),
		Now: e.clock.now, Health: func() any { return map[string]any{"reconnects": 1, "note": hostileName} }}
	if mod != nil {
		mod(&opts)
	}
	h, err := console.New(opts)
	require.NoError(t, err)
	e.srv = httptest.NewTLSServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// client is a browser-like client: a cookie jar, no redirects followed.
func (e *env) client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	base := *e.srv.Client() // a copy: srv.Client returns one shared client
	c := &base
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// get fetches path and returns the status and body.
func (e *env) get(t testing.TB, c *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// post sends a form and returns the response (body read into the string).
func (e *env) post(t testing.TB, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(e.srv.URL+path, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the page at path.
func (e *env) csrf(t testing.TB, c *http.Client, path string) string {
	t.Helper()
	_, body := e.get(t, c, path)
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(t, m, "no csrf token on %s: %s", path, body)
	return m[1]
}

// signin signs c in and returns the status of the POST.
func (e *env) signin(t testing.TB, c *http.Client, name, password string) int {
	t.Helper()
	tok := e.csrf(t, c, "/signin")
	resp, _ := e.post(t, c, "/signin", url.Values{"csrf": {tok}, "name": {name}, "password": {password}, "next": {"/"}})
	return resp.StatusCode
}

// officer returns a signed-in officer's client with a reason set.
func (e *env) officer(t testing.TB) *http.Client {
	t.Helper()
	c := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "alice@compliance", officerPW))
	tok := e.csrf(t, c, "/reason")
	resp, _ := e.post(t, c, "/reason", url.Values{"csrf": {tok}, "why": {"case 2026-117"}, "next": {"/search"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	return c
}

// accessSince returns the access entries sealed at or after index from.
func (e *env) accessSince(t testing.TB, from uint64) []string {
	t.Helper()
	var out []string
	for i := from; i < e.l.Size(); i++ {
		got, err := e.l.Get(context.Background(), i)
		require.NotNil(t, got, "%v", err) // encrypted entries come back undecrypted, with an error
		if got.Leaf.Kind == seal.KindAccess {
			require.NoError(t, err)
			out = append(out, string(got.Body))
		}
	}
	return out
}

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
