package dingtalk_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/stretchr/testify/require"
)

func mediaOptions(t testing.TB, g *dingtalktest.Gateway, dir string) dingtalk.Options {
	opts := fastOptions(t, g)
	j, err := dingtalk.NewDirJournal(dir)
	require.NoError(t, err)
	opts.Media = dingtalk.MediaOptions{
		Journal: j, QPS: 200, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		RetryRoundAfter: -1,
	}
	return opts
}

type mediaBody struct {
	Status       string `json:"status"`
	Attachment   int    `json:"attachment"`
	DownloadCode string `json:"download_code"`
	SHA256       string `json:"sha256"`
	Size         int    `json:"size"`
	Reason       string `json:"reason"`
	Round        int    `json:"round"`
	Attempts     int    `json:"attempts"`
}

func mediaRecords(t testing.TB, sink *dingtalktest.Sink) []mediaBody {
	var out []mediaBody
	for _, r := range sink.Records(capture.RecordMedia) {
		var b mediaBody
		require.NoError(t, json.Unmarshal(r.Body, &b))
		require.NotNil(t, r.About)
		out = append(out, b)
	}
	return out
}

func TestMediaFetchedHashedAndSealedAfterTheMessage(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: time.Second})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	served := map[string][]byte{}
	for _, code := range []string{"pic", "aud", "vid", "doc", "rt1", "rt2"} {
		b := make([]byte, 1000+len(served)*777)
		_, _ = rand.Read(b)
		served[code] = b
		g.AddFile(code, "application/octet-stream", b)
	}
	sink := dingtalktest.NewSink()
	dir := t.TempDir()
	src, err := dingtalk.NewSource(mediaOptions(t, g, dir))
	require.NoError(t, err)
	running(t, src, sink)

	push := func(id, typ string, content any) {
		g.PushBotMessage(dingtalktest.BotMessage{MsgID: id, MsgType: typ, Content: content}.JSON())
	}
	push("p1", "picture", map[string]any{"downloadCode": "pic"})
	push("a1", "audio", map[string]any{"downloadCode": "aud", "recognition": "收到"})
	push("v1", "video", map[string]any{"downloadCode": "vid", "duration": 3, "videoType": "mp4"})
	push("f1", "file", map[string]any{"downloadCode": "doc", "fileName": "order.xlsx"})
	push("r1", "richText", map[string]any{"richText": []map[string]any{{"text": "see"}, {"type": "picture", "downloadCode": "rt1"}, {"type": "picture", "downloadCode": "rt2"}}})
	require.NoError(t, g.Wait(ctxT(t, 10*time.Second)))
	require.Eventually(t, func() bool { return len(sink.Records(capture.RecordMedia)) == 6 }, 10*time.Second, 10*time.Millisecond)

	recs := sink.Records(capture.RecordMedia)
	for _, r := range recs {
		var b mediaBody
		require.NoError(t, json.Unmarshal(r.Body, &b))
		require.Equal(t, "stored", b.Status)
		want := sha256.Sum256(served[b.DownloadCode])
		require.Equal(t, hex.EncodeToString(want[:]), b.SHA256, "blob hash is the SHA-256 of the served bytes")
		require.Equal(t, len(served[b.DownloadCode]), b.Size)
		blob, err := sink.Blob(t.Context(), want)
		require.NoError(t, err)
		require.Equal(t, served[b.DownloadCode], blob)
		// The message was sealed before its media record.
		msgAt, ok := sink.Committed(*r.About)
		require.True(t, ok, "media record names a stored message: %v", r.About)
		require.False(t, msgAt.IsZero())
	}
	require.Equal(t, 1, g.TokenRequests(), "one token, cached")
	require.Eventually(t, func() bool { return src.Health().MediaStored == 6 }, 5*time.Second, 5*time.Millisecond)
	require.Zero(t, src.Health().PendingMedia)
	ents, _ := os.ReadDir(dir)
	require.Empty(t, ents, "journal is empty once every fetch is sealed")
}

func TestMediaFailureSealedThenRetriedAfterRestart(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: time.Second})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	g.AddFile("flaky", "image/png", []byte("PNG bytes"))
	g.FailDownloads("flaky", 3)
	sink := dingtalktest.NewSink()
	dir := t.TempDir()
	opts := mediaOptions(t, g, dir)
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	stop := running(t, src, sink)
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "p1", MsgType: "picture", Content: map[string]any{"downloadCode": "flaky"}}.JSON())
	require.NoError(t, g.Wait(ctxT(t, 10*time.Second)))
	require.Eventually(t, func() bool { return len(sink.Records(capture.RecordMedia)) == 1 }, 10*time.Second, 10*time.Millisecond)
	b := mediaRecords(t, sink)[0]
	require.Equal(t, "failed", b.Status)
	require.Equal(t, 3, b.Attempts)
	require.Contains(t, b.Reason, "system error")
	require.Len(t, sink.Messages(), 1, "the message is sealed whatever happens to its attachment")
	h := src.Health()
	require.Equal(t, 1, h.PendingMedia)
	require.EqualValues(t, 1, h.MediaFailed)
	stop()

	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "the failed fetch stays in the journal")

	// Restart: the pending fetch resumes and succeeds.
	src, err = dingtalk.NewSource(opts)
	require.NoError(t, err)
	running(t, src, sink)
	require.Eventually(t, func() bool { return len(sink.Records(capture.RecordMedia)) == 2 }, 10*time.Second, 10*time.Millisecond)
	b = mediaRecords(t, sink)[1]
	require.Equal(t, "stored", b.Status)
	sum := sha256.Sum256([]byte("PNG bytes"))
	require.Equal(t, hex.EncodeToString(sum[:]), b.SHA256)
	require.Eventually(t, func() bool { e, _ := os.ReadDir(dir); return len(e) == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestMediaThrottledDownloadsBackOff(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 5 * time.Second, DownloadQPS: 4})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	sink := dingtalktest.NewSink()
	opts := mediaOptions(t, g, t.TempDir())
	opts.Media.MaxAttempts = 1 // a throttled answer must not count as a failed attempt
	opts.Media.RetryMin = 100 * time.Millisecond
	opts.Media.RetryMax = 300 * time.Millisecond
	opts.Media.Workers = 4
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	running(t, src, sink)
	for i := range 12 {
		code := "c" + string(rune('a'+i))
		g.AddFile(code, "image/png", []byte(code))
		g.PushBotMessage(dingtalktest.BotMessage{MsgID: code, MsgType: "picture", Content: map[string]any{"downloadCode": code}}.JSON())
	}
	require.Eventually(t, func() bool { return len(sink.Records(capture.RecordMedia)) == 12 }, 20*time.Second, 10*time.Millisecond)
	for _, b := range mediaRecords(t, sink) {
		require.Equal(t, "stored", b.Status)
	}
	require.Positive(t, g.Stats().DownloadErrors, "the gateway throttled some calls")
}

func TestTokenCacheSharesOneRefreshAndRenewsBeforeExpiry(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{TokenTTL: 2 * time.Second})
	t.Cleanup(g.Close) // after the source has stopped (cleanups run last-in first-out)
	c := dingtalk.NewTokenCache(g.URL, dingtalktest.DefaultClientID, dingtalktest.DefaultClientSecret, nil)
	var wg sync.WaitGroup
	toks := make([]string, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := c.Token(t.Context())
			require.NoError(t, err)
			toks[i] = tok
		})
	}
	wg.Wait()
	require.Equal(t, 1, g.TokenRequests(), "concurrent callers share one refresh")
	for _, tok := range toks {
		require.Equal(t, toks[0], tok)
	}
	// Refreshed once within the last fifth of its 2 s life.
	time.Sleep(1700 * time.Millisecond)
	tok, err := c.Token(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, toks[0], tok)
	require.Equal(t, 2, g.TokenRequests())
	c.Invalidate(tok)
	_, err = c.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, c.Refreshes())

	bad := dingtalk.NewTokenCache(g.URL, "x", "y", nil)
	_, err = bad.Token(t.Context())
	var ae *dingtalk.APIError
	require.ErrorAs(t, err, &ae)
	require.ErrorIs(t, err, dingtalk.ErrAPI)
	require.Equal(t, "invalidClientIdOrSecret", ae.Code)
}

func TestDirJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := dingtalk.NewDirJournal(dir)
	require.NoError(t, err)
	ctx := context.Background()
	k := capture.Key{Platform: "dingtalk", Tenant: "corp", ID: "m1"}
	job := dingtalk.MediaJob{ID: dingtalk.JobID(k, 0, "dc"), Message: k, DownloadCode: "dc", RobotCode: "r"}
	require.NoError(t, j.Put(ctx, job))
	job.Rounds = 2
	require.NoError(t, j.Put(ctx, job))
	jobs, err := j.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []dingtalk.MediaJob{job}, jobs)

	require.ErrorIs(t, j.Put(ctx, dingtalk.MediaJob{ID: "../../etc/passwd"}), dingtalk.ErrBadJobID)
	require.ErrorIs(t, j.Delete(ctx, "ZZ"), dingtalk.ErrBadJobID)

	// A corrupt file is reported, left in place, and does not hide the good jobs.
	bad := filepath.Join(dir, "0123456789abcdef0123456789abcdef.json")
	require.NoError(t, os.WriteFile(bad, []byte("{not json"), 0o600))
	jobs, err = j.List(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "0123456789abcdef")
	require.Equal(t, []dingtalk.MediaJob{job}, jobs)
	_, statErr := os.Stat(bad)
	require.NoError(t, statErr)

	require.NoError(t, j.Delete(ctx, job.ID))
	require.NoError(t, j.Delete(ctx, job.ID), "deleting twice is fine")
}
