package console_test

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger/console"
	"github.com/stretchr/testify/require"
)

// TestSignIn: a wrong password and an unknown name are refused alike and seal nothing; the
// right one signs in with a new session id; the cookie is HttpOnly, Secure, SameSite=Strict.
func TestSignIn(t *testing.T) {
	e := newEnv(t, nil)
	size := e.l.Size()
	c := e.client(t)
	require.Equal(t, http.StatusUnauthorized, e.signin(t, c, "alice@compliance", "wrong"))
	require.Equal(t, http.StatusUnauthorized, e.signin(t, c, "nobody", "wrong"))
	require.Equal(t, http.StatusUnauthorized, e.signin(t, c, "sso-officer", ""), "a proxy-only account has no password")
	st, _ := e.get(t, c, "/search?q=x")
	require.Equal(t, http.StatusSeeOther, st, "not signed in: sent to sign in")
	require.Equal(t, size, e.l.Size(), "nothing sealed")

	u, _ := url.Parse(e.srv.URL)
	before := c.Jar.Cookies(u)
	tok := e.csrf(t, c, "/signin")
	resp, _ := e.post(t, c, "/signin", url.Values{"csrf": {tok}, "name": {"alice@compliance"}, "password": {officerPW}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-commseal" {
			sc = ck
		}
	}
	require.NotNil(t, sc)
	require.True(t, sc.HttpOnly)
	require.True(t, sc.Secure)
	require.Equal(t, http.SameSiteStrictMode, sc.SameSite)
	require.Equal(t, "/", sc.Path)
	require.NotEqual(t, before[0].Value, sc.Value, "a new session id at sign-in")
	require.Len(t, sc.Value, 43, "32 random bytes, base64url")
	st, body := e.get(t, c, "/integrity")
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, "alice@compliance (officer)")
}

// TestLockout: after AccountFailures wrong passwords the account is refused even with the right
// one, until the window has passed; AddressFailures failures from one address lock it for
// every name.
func TestLockout(t *testing.T) {
	e := newEnv(t, func(o *console.Options) { o.AccountFailures, o.AddressFailures = 3, 6 })
	c := e.client(t)
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, e.signin(t, c, "alice@compliance", "guess"))
	}
	require.Equal(t, http.StatusTooManyRequests, e.signin(t, c, "alice@compliance", officerPW), "locked")
	require.Equal(t, http.StatusSeeOther, e.signin(t, e.client(t), "root", "root pw"), "other accounts are not")
	e.clock.add(console.DefaultLockoutWindow + time.Second)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "alice@compliance", officerPW), "the lock expires")

	c2 := e.client(t)
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		require.Equal(t, http.StatusUnauthorized, e.signin(t, c2, n, "x"))
	}
	require.Equal(t, http.StatusTooManyRequests, e.signin(t, c2, "bob auditor", auditorPW), "the address is locked")
}

// TestCSRF: a form without the session's token, or with another one, is refused with 403 and
// seals nothing: the reason, a disposition, an export, a verification, sign-out.
func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	other := e.csrf(t, e.client(t), "/signin") // a real token of another session
	size := e.l.Size()
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/reason", url.Values{"why": {"forged"}}},
		{"/alerts/dispose", url.Values{"alert": {"10"}, "disposition": {"dismissed"}}},
		{"/export", url.Values{"q": {"微信"}}},
		{"/integrity/verify", url.Values{}},
		{"/signout", url.Values{}},
	} {
		for _, tok := range []string{"", "wrong", other} {
			f := url.Values{}
			for k, v := range tc.form {
				f[k] = v
			}
			if tok != "" {
				f.Set("csrf", tok)
			}
			resp, body := e.post(t, c, tc.path, f)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s with %q", tc.path, tok)
			require.Contains(t, body, "security token")
		}
	}
	require.Equal(t, size, e.l.Size(), "nothing sealed")
	st, body := e.get(t, c, "/integrity")
	require.Equal(t, http.StatusOK, st, "still signed in")
	require.Contains(t, body, "case 2026-117", "the reason was not changed")
	require.NotContains(t, body, `id="verification"><strong`, "no verification ran")
}

// TestAuditorNeverSeesContent: an auditor asking for any content page or attachment is refused
// with 403 and seals nothing; integrity and the access log are served.
func TestAuditorNeverSeesContent(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "bob auditor", auditorPW))
	size := e.l.Size()
	for _, p := range []string{"/search?q=" + url.QueryEscape("微信"), "/search", "/conversation?c=cid-1&at=1", "/alerts",
		"/export", "/export/download?id=x", "/blob/" + strings.Repeat("ab", 32)} {
		st, body := e.get(t, c, p)
		require.Equal(t, http.StatusForbidden, st, p)
		require.Contains(t, body, "may not read message content")
		require.NotContains(t, body, "加我微信")
	}
	tok := e.csrf(t, c, "/integrity")
	for _, p := range []string{"/export", "/alerts/dispose"} {
		resp, _ := e.post(t, c, p, url.Values{"csrf": {tok}, "q": {"微信"}, "alert": {"10"}, "disposition": {"dismissed"}, "why": {"x"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, p)
	}
	require.Equal(t, size, e.l.Size(), "nothing sealed")
	st, body := e.get(t, c, "/integrity")
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, strings.ReplaceAll(e.vkey, "+", "&#43;"))
	require.NotContains(t, body, `href="/search"`, "no content links for an auditor")
	st, body = e.get(t, c, "/access")
	require.Equal(t, http.StatusOK, st)
	acc := e.accessSince(t, size)
	require.Len(t, acc, 1, "viewing the access log is an access")
	require.True(t, contains(acc[0], `"who":"bob auditor"`, `"for":"access-log"`, `"why":"access log review"`), acc[0])
	_ = body
}

// TestSessionExpiry: a session unused for longer than the idle timeout, or older than the
// maximum age however used, is gone: content pages send to sign-in and seal nothing.
func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, func(o *console.Options) { o.IdleTimeout, o.MaxSessionAge = 10*time.Minute, time.Hour })
	c := e.officer(t)
	e.clock.add(9 * time.Minute)
	st, _ := e.get(t, c, "/integrity")
	require.Equal(t, http.StatusOK, st, "within the idle timeout")
	e.clock.add(11 * time.Minute)
	size := e.l.Size()
	st, _ = e.get(t, c, "/search?q=x")
	require.Equal(t, http.StatusSeeOther, st, "idle too long")
	resp, _ := e.post(t, c, "/alerts/dispose", url.Values{"csrf": {"x"}, "alert": {"10"}, "disposition": {"dismissed"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, size, e.l.Size())

	c = e.officer(t)
	for range 7 { // used every 9 minutes: never idle, but past the absolute age
		e.clock.add(9 * time.Minute)
		e.get(t, c, "/integrity")
	}
	st, _ = e.get(t, c, "/search?q=x")
	require.Equal(t, http.StatusSeeOther, st, "older than MaxSessionAge")
	require.Equal(t, size, e.l.Size())
}

// TestReasonRequired: an officer without a reason is asked for one before any content is read.
func TestReasonRequired(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "alice@compliance", officerPW))
	size := e.l.Size()
	resp, err := c.Get(e.srv.URL + "/search?q=x")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/reason?next="))
	require.Equal(t, size, e.l.Size())
}

// TestProxyIdentity: a trusted proxy's header names the user; the same header from anywhere
// else is ignored.
func TestProxyIdentity(t *testing.T) {
	e := newEnv(t, func(o *console.Options) {
		o.Proxy = &console.Proxy{Header: "X-Forwarded-User", Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	})
	c := e.client(t)
	req, _ := http.NewRequest("GET", e.srv.URL+"/integrity", nil)
	req.Header.Set("X-Forwarded-User", "sso-officer")
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	e2 := newEnv(t, func(o *console.Options) {
		o.Proxy = &console.Proxy{Header: "X-Forwarded-User", Trusted: []netip.Prefix{netip.MustParsePrefix("10.9.9.9/32")}}
	})
	req, _ = http.NewRequest("GET", e2.srv.URL+"/integrity", nil)
	req.Header.Set("X-Forwarded-User", "sso-officer")
	resp, err = e2.client(t).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "untrusted address: the header is ignored")
}

// TestAccountsFile: good lines parse; every bad one names its line and not its text.
func TestAccountsFile(t *testing.T) {
	h, err := console.HashPasswordParams("pw", 64, 1, 1)
	require.NoError(t, err)
	accts, err := console.ParseAccounts(strings.NewReader("# users\nAlice Wong officer "+h+"\n\nbob auditor -\n"), "accounts")
	require.NoError(t, err)
	require.Equal(t, "Alice Wong", accts[0].Name)
	require.Equal(t, "-", accts[1].Hash)
	for _, tc := range []struct{ text, want string }{
		{"alice officer", "want NAME ROLE HASH"},
		{"alice boss " + h, "unknown role"},
		{"alice officer $argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "PHC"},
		{"alice officer $argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "KiB"},
		{"alice officer $argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA", "salt"},
		{"alice officer " + h + "\nalice admin " + h, "listed twice"},
		{"# nothing", "no accounts"},
	} {
		_, err := console.ParseAccounts(strings.NewReader(tc.text), "accounts")
		require.ErrorContains(t, err, tc.want, tc.text)
		require.NotContains(t, err.Error(), "c2FsdHNhbHQ", "never the line's text")
	}
	_, err = console.ParseAccounts(strings.NewReader("alice officer "+h), "accounts")
	require.NoError(t, err)
	require.True(t, errors.Is(mustErr(console.HashPasswordParams("x", 1, 1, 1)), console.ErrBadHash))
}

func mustErr(_ string, err error) error { return err }
