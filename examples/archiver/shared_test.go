package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// Two archivers capture one DingTalk app into one PostgreSQL ledger, as an operator runs them on
// two machines: the first directory is made once and copied (cp -a) to the second, both run with
// the same -store and -shared, and only the first scans. The gateway spreads its pushes, and its
// redeliveries, over the four connections of the two; every message is sealed once, both
// archivers capture, and the ledger verifies.
func TestTwoArchiversOnOnePostgresLedger(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 2 * time.Second})
	defer g.Close()
	a := filepath.Join(t.TempDir(), "desk-a")
	spec, err := backend.Parse(a, pgURL, "")
	require.NoError(t, err)
	l, err := ledgerdir.OpenOn(ctx, a, layout.DefaultOrigin, spec, ledger.Options{})
	require.NoError(t, err)
	vkey := l.Signing.Verifier
	require.NoError(t, l.Close())
	b := filepath.Join(t.TempDir(), "desk-b")
	out, err := exec.Command("cp", "-a", a, b).CombinedOutput()
	require.NoError(t, err, "%s", out)

	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	type archiver struct {
		stdout, stderr syncBuffer
		done           chan int
	}
	start := func(dir string, extra ...string) *archiver {
		ar := &archiver{done: make(chan int, 1)}
		args := append([]string{"-dir", dir, "-store", pgURL, "-shared", "-openapi-host", g.URL, "-connections", "2"}, extra...)
		go func() { ar.done <- run(runCtx, args, env, &ar.stdout, &ar.stderr, nil) }()
		return ar
	}
	first, second := start(a), start(b, "-no-scan")
	require.NoError(t, g.WaitConns(ctx, 4))

	const n = 300
	for i := range n {
		g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprintf("m%d", i), Text: "buy " + strconv.Itoa(i) + " lots"}.JSON())
		if i%10 == 0 {
			g.PushBotMessage(dingtalktest.TextMessage(fmt.Sprintf("m%d", i), "redelivered")) // same msgId
		}
	}
	require.NoError(t, g.Wait(ctx))
	stop()
	captured := regexp.MustCompile(`archiver: stopped: (\d+) messages`)
	total := 0
	for _, ar := range []*archiver{first, second} {
		select {
		case code := <-ar.done:
			require.Equal(t, 0, code, ar.stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatal("an archiver did not stop")
		}
		m := captured.FindStringSubmatch(ar.stdout.String())
		require.NotNil(t, m, ar.stdout.String())
		k, _ := strconv.Atoi(m[1])
		require.Positive(t, k, "both archivers capture: the gateway spreads its pushes")
		total += k
	}
	require.GreaterOrEqual(t, total, n)

	st, err := backend.OpenReader(ctx, a, spec, nil)
	require.NoError(t, err)
	defer st.Close()
	rep, err := verify.Ledger(ctx, st, vkey, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, n, rep.Kinds[seal.KindMessage.String()], "every message once: %v", rep.Kinds)
	require.Zero(t, rep.Uncovered, "the last to stop signed the whole log")
}
