package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/stretchr/testify/require"
)

const soakChildEnv = "COMMSEAL_SOAK_CHILD"

// TestHelperSoakArchiver is the archiver process TestSoak measures: it runs the archiver with
// the arguments in the environment until SIGTERM.
func TestHelperSoakArchiver(t *testing.T) {
	args := os.Getenv(soakChildEnv)
	if args == "" {
		t.Skip("helper process for TestSoak")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	code := run(ctx, strings.Split(args, "\n"), env, os.Stdout, os.Stderr, func(h, _, _ string) { fmt.Println("health", h) })
	os.Exit(code)
}

// TestSoak runs the archiver (in a process of its own, so that the gateway's memory is not
// counted) under steady load with scanning and webhook alerts, reads its heap and goroutines
// from its health endpoint (the live heap as of the last collection), and checks that neither
// grows: after the first quarter (warm-up), the live heap stays within 1.5× and 32 MB of its
// level then, and the goroutines within 10.
// It runs for an hour with COMMSEAL_SLOW=1 (or for COMMSEAL_SOAK, e.g. 5m) and is skipped
// otherwise:
//
//	COMMSEAL_SLOW=1 go test ./examples/archiver -run '^TestSoak$' -timeout 2h -v
func TestSoak(t *testing.T) {
	d := time.Hour
	switch {
	case os.Getenv("COMMSEAL_SOAK") != "":
		var err error
		d, err = time.ParseDuration(os.Getenv("COMMSEAL_SOAK"))
		require.NoError(t, err)
	case os.Getenv("COMMSEAL_SLOW") != "1":
		t.Skip("an hour of steady load: COMMSEAL_SLOW=1 (or COMMSEAL_SOAK=5m) runs it")
	}
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 30 * time.Second})
	defer g.Close()
	var received atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
	}))
	defer hook.Close()
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("soak-secret-0123456789"), 0o600))
	args := []string{"-dir", t.TempDir(), "-openapi-host", g.URL, "-health-addr", "127.0.0.1:0",
		"-alert-webhook", hook.URL, "-alert-secret-file", secret}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSoakArchiver$")
	cmd.Env = append(os.Environ(), soakChildEnv+"="+strings.Join(args, "\n"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	var healthURL string
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "health "); ok {
			healthURL = h
			break
		}
	}
	require.NotEmpty(t, healthURL, "the archiver did not start")
	go func() {
		for sc.Scan() {
		}
	}()

	type sample struct {
		at               time.Duration
		heap             uint64
		goroutines, size int
	}
	read := func(at time.Duration) sample {
		resp, err := http.Get(healthURL)
		require.NoError(t, err)
		defer resp.Body.Close()
		var h struct {
			HeapBytes  uint64 `json:"heap_live_bytes"`
			Goroutines int    `json:"goroutines"`
			LedgerSize int    `json:"ledger_size"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
		return sample{at, h.HeapBytes, h.Goroutines, h.LedgerSize}
	}
	const rate = 500 // messages a second, 1 in 50 flagged
	var samples []sample
	start := time.Now()
	next := start
	i := 0
	for time.Since(start) < d {
		for ; time.Now().After(next); next = next.Add(time.Second / rate) {
			text := "buy 100 0700.HK at market"
			if i%50 == 0 {
				text = "call me on WhatsApp"
			}
			g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprint("soak-", i), Text: text, ConversationID: "cid-" + strconv.Itoa(i%100)}.JSON())
			i++
		}
		if len(samples) == 0 || time.Since(start)-samples[len(samples)-1].at >= d/40 {
			s := read(time.Since(start))
			samples = append(samples, s)
			t.Logf("%v: %d pushed, ledger %d, heap %d MB, %d goroutines, %d alerts delivered", s.at.Round(time.Second), i, s.size, s.heap>>20, s.goroutines, received.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, g.Wait(context.Background()))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "the archiver stops cleanly")

	warm := samples[len(samples)/4]
	for _, s := range samples[len(samples)/4:] {
		require.LessOrEqual(t, s.heap, max(warm.heap*3/2, warm.heap+32<<20), "heap at %v grew from %d MB to %d MB", s.at, warm.heap>>20, s.heap>>20)
		require.LessOrEqual(t, s.goroutines, warm.goroutines+10, "goroutines at %v grew from %d to %d", s.at, warm.goroutines, s.goroutines)
	}
	require.Positive(t, received.Load(), "alerts reached the webhook")
}
