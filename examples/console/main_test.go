package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/console"
	"github.com/stretchr/testify/require"
)

// TestHashPassword: the printed line is an accounts line whose hash checks the password.
func TestHashPassword(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-hash-password", "-name", "Alice Wong", "-role", "officer"},
		strings.NewReader("s3cret pass\n"), &out, &errb, nil)
	require.Equal(t, 0, code, errb.String())
	accts, err := console.ParseAccounts(&out, "out")
	require.NoError(t, err)
	require.Equal(t, "Alice Wong", accts[0].Name)
	require.True(t, strings.HasPrefix(accts[0].Hash, "$argon2id$v=19$m=65536,t=3,p=4$"))
	require.Equal(t, 2, run(context.Background(), []string{"-hash-password", "-name", "x"}, strings.NewReader("p\n"), &out, &errb, nil))
}

// TestFlags: TLS is required unless a loopback demo asks for plain HTTP.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-accounts", "a"}, "-dir is required"},
		{[]string{"-dir", "d"}, "-accounts is required"},
		{[]string{"-dir", "d", "-accounts", "a"}, "-tls-cert and -tls-key are required"},
		{[]string{"-dir", "d", "-accounts", "a", "-insecure-http", "-addr", "0.0.0.0:80"}, "only a loopback"},
		{[]string{"-dir", "d", "-accounts", "a", "-tls-cert", "c"}, "go together"},
	} {
		var errb bytes.Buffer
		require.Equal(t, 2, run(context.Background(), tc.args, nil, io.Discard, &errb, nil), tc.args)
		require.Contains(t, errb.String(), tc.want)
	}
}

// TestServesALedgerDirectory: the console opens a ledger directory, an officer signs in and
// finds a message; the access entries are in the ledger after it stops.
func TestServesALedgerDirectory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, ledger.Options{})
	require.NoError(t, err)
	_, err = l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m1", Kind: capture.KindText,
		Conversation: capture.Conversation{ID: "cid", Type: capture.ConversationGroup}, SentAt: time.Now().UTC(),
		Text: "加我微信", Raw: []byte(`{}`)})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	h, err := console.HashPasswordParams("pw", 64, 1, 1)
	require.NoError(t, err)
	acc := t.TempDir() + "/accounts"
	require.NoError(t, writeFile(acc, "alice officer "+h+"\n"))

	runCtx, stop := context.WithCancel(ctx)
	urls := make(chan string, 1)
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(runCtx, []string{"-dir", dir, "-accounts", acc, "-insecure-http", "-addr", "127.0.0.1:0"}, nil, &out, &errb,
			func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(p string) string {
		resp, err := c.Get(base + p)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tok := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	body := get("/signin")
	resp, err := c.PostForm(base+"/signin", url.Values{"csrf": {tok.FindStringSubmatch(body)[1]}, "name": {"alice"}, "password": {"pw"}, "next": {"/"}})
	require.NoError(t, err)
	resp.Body.Close()
	body = get("/reason")
	resp, err = c.PostForm(base+"/reason", url.Values{"csrf": {tok.FindStringSubmatch(body)[1]}, "why": {"drill"}, "next": {"/search?q=" + url.QueryEscape("微信")}})
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `<p class="text">加我微信</p>`, "the search page after the reason")
	stop()
	require.Equal(t, 0, <-done, errb.String())

	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	defer l.Close()
	var who []string
	for i := range l.Size() {
		e, _ := l.Get(ctx, i)
		if e != nil && e.Leaf.Kind.String() == "access" {
			who = append(who, string(e.Body))
		}
	}
	require.Len(t, who, 2, "the query and the reading")
	require.Contains(t, who[0], `"who":"alice"`)
	require.Contains(t, fmt.Sprint(who), `"why":"drill"`)
}

// TestServesTLS: with -tls-cert and -tls-key the console serves HTTPS and its session cookie
// is Secure with the __Host- prefix.
func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, layout.DefaultOrigin, ledger.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	h, err := console.HashPasswordParams("pw", 64, 1, 1)
	require.NoError(t, err)
	tmp := t.TempDir()
	require.NoError(t, writeFile(tmp+"/accounts", "alice officer "+h+"\n"))
	srv := httptest.NewUnstartedServer(nil) // only for its certificate
	srv.StartTLS()
	cert := srv.TLS.Certificates[0]
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, writeFile(tmp+"/cert.pem", string(certPEM)))
	require.NoError(t, writeFile(tmp+"/key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))))
	client := srv.Client()
	srv.Close()

	runCtx, stop := context.WithCancel(ctx)
	urls := make(chan string, 1)
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(runCtx, []string{"-dir", dir, "-accounts", tmp + "/accounts", "-tls-cert", tmp + "/cert.pem", "-tls-key", tmp + "/key.pem",
			"-addr", "127.0.0.1:0"}, nil, io.Discard, &errb, func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, errb.String())
	}
	require.True(t, strings.HasPrefix(base, "https://"), base)
	resp, err := client.Get(base + "/signin")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ck := resp.Cookies()
	require.Len(t, ck, 1)
	require.Equal(t, "__Host-commseal", ck[0].Name)
	require.True(t, ck[0].Secure)
	require.Equal(t, "max-age=31536000", resp.Header.Get("Strict-Transport-Security"))
	stop()
	require.Equal(t, 0, <-done, errb.String())
}
