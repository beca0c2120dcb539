package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

// twoDirectories lays out a ledger directory on the PostgreSQL ledger at pgURL and copies it
// (cp -a), as an operator makes one per machine: it returns both, the spec and the verifier.
func twoDirectories(t *testing.T, pgURL string) (a, b string, spec backend.Spec, vkey note.Verifier) {
	t.Helper()
	a = filepath.Join(t.TempDir(), "desk-a")
	spec, err := backend.Parse(a, pgURL, "")
	require.NoError(t, err)
	l, err := ledgerdir.OpenOn(context.Background(), a, layout.DefaultOrigin, spec, ledger.Options{})
	require.NoError(t, err)
	vkey = l.Signing.Verifier
	require.NoError(t, l.Close())
	b = filepath.Join(t.TempDir(), "desk-b")
	out, err := exec.Command("cp", "-a", a, b).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return a, b, spec, vkey
}

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
	a, b, spec, vkey := twoDirectories(t, pgURL)

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

// With attachments on S3 (-blobs), an endpoint that is down holds the attachment's fetch in the
// media journal, the message sealed meanwhile; once the endpoint is back, the fetch resumes and
// the attachment is stored, in the bucket, encrypted.
func TestArchiverMediaWaitsForS3(t *testing.T) {
	ctx := context.Background()
	srv, blobs := backendtest.S3(t, "media")
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 5 * time.Second})
	defer g.Close()
	dir := filepath.Join(t.TempDir(), "desk")
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr syncBuffer
	urls := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"-dir", dir, "-blobs", blobs, "-openapi-host", g.URL, "-health-addr", "127.0.0.1:0", "-no-scan"}, env, &stdout, &stderr,
			func(h, _, _ string) { urls <- h })
	}()
	var healthURL string
	select {
	case healthURL = <-urls:
	case code := <-done:
		t.Fatalf("archiver exited %d: %s", code, stderr.String())
	}
	health := func() (pending int, stored int64) {
		var h struct {
			PendingMedia int   `json:"pending_media"`
			MediaStored  int64 `json:"media_stored"`
		}
		resp, err := http.Get(healthURL)
		if err != nil {
			return -1, -1
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&h) != nil {
			return -1, -1
		}
		return h.PendingMedia, h.MediaStored
	}

	srv.Stop()
	g.AddFile("pic", "image/png", []byte("\x89PNG the order ticket"))
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "p1", MsgType: "picture", Content: map[string]any{"downloadCode": "pic"}}.JSON())
	require.NoError(t, g.Wait(ctx), "the message is acknowledged: sealed, its attachment pending")
	require.Eventually(t, func() bool { p, _ := health(); return p == 1 }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(2 * time.Second) // fetches fail against the stopped endpoint
	p, s := health()
	require.Equal(t, 1, p, "the fetch waits in the journal")
	require.Zero(t, s)

	srv.Start()
	require.Eventually(t, func() bool { _, s := health(); return s == 1 }, 90*time.Second, 100*time.Millisecond, "the fetch resumes once the endpoint is back")
	objects, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	require.NoError(t, err)
	require.Len(t, objects.Contents, 1)
	stop()
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("archiver did not stop")
	}
}

// Two archivers on one shared ledger, both scanning: one at a time holds the surveillance lease
// and scans the whole ledger; when it stops, the other takes over, scans from its own cursor,
// seals the findings of what was captured since, and alerts on those alone (the findings sealed
// before are duplicates to it). Every flagged message has one finding.
func TestSharedArchiversTakeTurnsToScan(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	a, b, spec, vkey := twoDirectories(t, pgURL)

	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	type archiver struct {
		stdout, stderr syncBuffer
		stop           context.CancelFunc
		done           chan int
	}
	start := func(dir string) *archiver {
		rctx, stop := context.WithCancel(ctx)
		ar := &archiver{stop: stop, done: make(chan int, 1)}
		args := []string{"-dir", dir, "-store", pgURL, "-shared", "-v", "-lease-every", "200ms", "-openapi-host", g.URL, "-connections", "1"}
		go func() { ar.done <- run(rctx, args, env, &ar.stdout, &ar.stderr, nil) }()
		return ar
	}
	const scans = "holds the lease and scans the ledger"
	stopped := func(ar *archiver) {
		t.Helper()
		ar.stop()
		select {
		case code := <-ar.done:
			require.Equal(t, 0, code, ar.stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatal("an archiver did not stop")
		}
	}
	alerts := func(ar *archiver) int { return strings.Count(ar.stderr.String(), "msg=alert") }
	ars := []*archiver{start(a), start(b)}
	require.NoError(t, g.WaitConns(ctx, 2))
	var holder, other *archiver
	require.Eventually(t, func() bool {
		for k, ar := range ars {
			if strings.Contains(ar.stderr.String(), scans) {
				holder, other = ar, ars[1-k]
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond)
	push := func(from int) {
		for i := from; i < from+4; i++ {
			g.PushBotMessage(dingtalktest.BotMessage{MsgID: fmt.Sprintf("w%d", i), Text: "call me on WhatsApp tonight, lot " + strconv.Itoa(i)}.JSON())
		}
		require.NoError(t, g.Wait(ctx))
	}
	push(0)
	require.Eventually(t, func() bool { return alerts(holder) == 4 }, 20*time.Second, 20*time.Millisecond, "the holder alerts on the 4 flagged messages")
	time.Sleep(time.Second) // several lease periods
	require.NotContains(t, other.stderr.String(), scans, "one archiver scans at a time")
	require.Zero(t, alerts(other))

	stopped(holder)
	require.Eventually(t, func() bool { return strings.Contains(other.stderr.String(), scans) }, 20*time.Second, 20*time.Millisecond,
		"the other archiver takes the lease over")
	push(4)
	require.Eventually(t, func() bool { return alerts(other) == 4 }, 20*time.Second, 20*time.Millisecond, "it alerts on what was captured since, alone")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 4, alerts(other), "findings sealed before the takeover are not alerted again")
	stopped(other)

	st, err := backend.OpenReader(ctx, a, spec, nil)
	require.NoError(t, err)
	defer st.Close()
	rep, err := verify.Ledger(ctx, st, vkey, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 8, rep.Kinds[seal.KindMessage.String()], "%v", rep.Kinds)
	require.EqualValues(t, 8, rep.Kinds["annotation"], "one finding per flagged message: %v", rep.Kinds)
}

// A shared archiver whose monitor cannot be made (here a damaged cursor file) fails at its start,
// as an unshared one does, not when it takes the surveillance lease, hours later perhaps, and
// holds it without scanning.
func TestSharedArchiverWithABadCursorFailsAtTheStart(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	dir, _, _, _ := twoDirectories(t, pgURL)
	require.NoError(t, os.WriteFile(filepath.Join(dir, layout.CursorFile), []byte("not a cursor"), 0o600))
	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-store", pgURL, "-shared", "-openapi-host", g.URL}, env, &stdout, &stderr, nil)
	}()
	select {
	case code := <-done:
		require.NotZero(t, code)
		require.Contains(t, stderr.String(), "surveillance")
		require.Contains(t, stderr.String(), "cursor")
	case <-time.After(30 * time.Second):
		t.Fatal("the archiver ran with a monitor it could not make")
	}
}
