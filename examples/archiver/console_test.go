package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/ledger/console"
	"github.com/stretchr/testify/require"
)

// TestArchiverServesTheConsole: with -console-addr the archiver serves the compliance console
// on its own ledger and index: an officer finds what was just captured, and the integrity
// page shows the capture health.
func TestArchiverServesTheConsole(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 2 * time.Second})
	defer g.Close()
	dir := t.TempDir()
	h, err := console.HashPasswordParams("pw", 64, 1, 1)
	require.NoError(t, err)
	accounts := filepath.Join(t.TempDir(), "accounts")
	require.NoError(t, os.WriteFile(accounts, []byte("alice officer "+h+"\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port: ready reports only the first three servers
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	args := []string{"-dir", dir, "-openapi-host", g.URL, "-console-addr", addr, "-console-accounts", accounts, "-console-insecure-http"}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan struct{}, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, env, &stdout, &stderr, func(_, _, _ string) { ready <- struct{}{} }) }()
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("archiver exited %d: %s", code, stderr.String())
	}
	require.Contains(t, stdout.String(), "archiver: console at http://"+addr)
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "m1", Text: "加我微信"}.JSON())
	require.NoError(t, g.Wait(context.Background()))

	base := "http://" + addr
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
	resp, err := c.PostForm(base+"/signin", url.Values{"csrf": {tok.FindStringSubmatch(get("/signin"))[1]}, "name": {"alice"}, "password": {"pw"}})
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = c.PostForm(base+"/reason", url.Values{"csrf": {tok.FindStringSubmatch(get("/reason"))[1]}, "why": {"drill"},
		"next": {"/search?q=" + url.QueryEscape("微信")}})
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `<span id="total">1</span>`)
	integrity := get("/integrity")
	require.True(t, strings.Contains(integrity, `<pre id="health">`), "capture health on the integrity page")
	require.Contains(t, integrity, "Capture health over time", "sampled from the start")
	stop()
	require.Equal(t, 0, <-done, stderr.String())
}

// TestConsoleFlags: the console needs accounts and TLS, or plain HTTP on loopback.
func TestConsoleFlags(t *testing.T) {
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": "id", "DINGTALK_CLIENT_SECRET": "s"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-console-accounts", "a"}, "need -console-addr"},
		{[]string{"-console-addr", "127.0.0.1:0"}, "needs -console-accounts"},
		{[]string{"-console-addr", "127.0.0.1:0", "-console-accounts", "a"}, "-console-tls-cert"},
		{[]string{"-console-addr", "0.0.0.0:8080", "-console-accounts", "a", "-console-insecure-http"}, "only a loopback"},
	} {
		_, err := parse(append([]string{"-dir", "d"}, tc.args...), env, io.Discard)
		require.ErrorContains(t, err, tc.want, tc.args)
	}
}
