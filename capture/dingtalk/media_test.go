package dingtalk_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/capturetest"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/stretchr/testify/require"
)

// journalKey returns a fresh random journal key.
func journalKey(t testing.TB) []byte {
	k := make([]byte, dingtalk.JournalKeySize)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func mediaOptions(t testing.TB, g *dingtalktest.Gateway, dir string) dingtalk.Options {
	opts := fastOptions(t, g)
	j, err := dingtalk.NewDirJournal(dir, journalKey(t))
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

func mediaRecords(t testing.TB, sink *capturetest.Sink) []mediaBody {
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
	sink := capturetest.NewSink()
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
	sink := capturetest.NewSink()
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
	sink := capturetest.NewSink()
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
	key := journalKey(t)
	j, err := dingtalk.NewDirJournal(dir, key)
	require.NoError(t, err)
	ctx := context.Background()
	k := capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: "m1"}
	job := dingtalk.MediaJob{ID: dingtalk.JobID(k, 0, "dc"), Message: k, DownloadCode: "dc", RobotCode: "r"}
	require.NoError(t, j.Put(ctx, job))
	job.Rounds = 2
	require.NoError(t, j.Put(ctx, job))
	jobs, err := j.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []dingtalk.MediaJob{job}, jobs)

	// A journal opened again with the same key reads it; the file and directory are private.
	again, err := dingtalk.NewDirJournal(dir, key)
	require.NoError(t, err)
	jobs, err = again.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []dingtalk.MediaJob{job}, jobs)
	fi, err := os.Stat(filepath.Join(dir, job.ID+".job"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	require.ErrorIs(t, j.Put(ctx, dingtalk.MediaJob{ID: "../../etc/passwd"}), dingtalk.ErrBadJobID)
	require.ErrorIs(t, j.Delete(ctx, "ZZ"), dingtalk.ErrBadJobID)

	require.NoError(t, j.Delete(ctx, job.ID))
	require.NoError(t, j.Delete(ctx, job.ID), "deleting twice is fine")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "no temporary files left behind")
}

func TestDirJournalRefusesKeysOfAnotherSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := dingtalk.NewDirJournal(t.TempDir(), make([]byte, n))
		require.ErrorIs(t, err, dingtalk.ErrConfig, "%d-byte key", n)
	}
}

// A job file that does not decrypt (garbage, another key, another job's file renamed, a cut
// file) is reported by List and left in place, and does not hide the good jobs.
func TestDirJournalReportsFilesThatDoNotDecrypt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, err := dingtalk.NewDirJournal(dir, journalKey(t))
	require.NoError(t, err)
	mk := func(id string) dingtalk.MediaJob {
		k := capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: id}
		return dingtalk.MediaJob{ID: dingtalk.JobID(k, 0, "dc-"+id), Message: k, DownloadCode: "dc-" + id}
	}
	good, moved, cutJob := mk("good"), mk("moved"), mk("cut")
	for _, job := range []dingtalk.MediaJob{good, moved, cutJob} {
		require.NoError(t, j.Put(ctx, job))
	}
	otherDir := t.TempDir()
	other, err := dingtalk.NewDirJournal(otherDir, journalKey(t))
	require.NoError(t, err)
	foreign := mk("foreign")
	require.NoError(t, other.Put(ctx, foreign))

	file := func(d string, job dingtalk.MediaJob) string { return filepath.Join(d, job.ID+".job") }
	b, err := os.ReadFile(file(otherDir, foreign))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file(dir, foreign), b, 0o600))                                       // another key
	require.NoError(t, os.Rename(file(dir, moved), filepath.Join(dir, strings.Repeat("ab", 16)+".job"))) // renamed
	b, err = os.ReadFile(file(dir, cutJob))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file(dir, cutJob), b[:len(b)-1], 0o600)) // cut
	require.NoError(t, os.WriteFile(filepath.Join(dir, strings.Repeat("cd", 16)+".job"), []byte("{not encrypted"), 0o600))

	before, err := os.ReadDir(dir)
	require.NoError(t, err)
	jobs, err := j.List(ctx)
	require.Equal(t, []dingtalk.MediaJob{good}, jobs)
	require.ErrorIs(t, err, dingtalk.ErrJournalCorrupt)
	for _, name := range []string{foreign.ID, strings.Repeat("ab", 16), cutJob.ID, strings.Repeat("cd", 16)} {
		require.Contains(t, err.Error(), name)
	}
	after, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Equal(t, len(before), len(after), "every file left in place")
}

// Jobs an earlier version wrote in plain JSON are read, rewritten encrypted and removed.
func TestDirJournalMigratesPlainTextJobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k := capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: "m-legacy"}
	job := dingtalk.MediaJob{ID: dingtalk.JobID(k, 0, "dc"), Message: k, DownloadCode: "dc", Name: "客戶名單.xlsx",
		Conversation: capture.Conversation{ID: "c1", Title: "大宗交易"}}
	b, err := json.Marshal(job)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, job.ID+".json"), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, strings.Repeat("ef", 16)+".json"), []byte("{broken"), 0o600))
	// An earlier version's write interrupted before its rename left its plain-text temp file.
	tmp := filepath.Join(dir, ".tmp-"+job.ID+"-4242")
	require.NoError(t, os.WriteFile(tmp, b, 0o600))

	j, err := dingtalk.NewDirJournal(dir, journalKey(t))
	require.NoError(t, err)
	jobs, err := j.List(ctx)
	require.ErrorIs(t, err, dingtalk.ErrJournalCorrupt, "the broken legacy file is reported")
	require.Equal(t, []dingtalk.MediaJob{job}, jobs)
	_, err = os.Stat(filepath.Join(dir, job.ID+".json"))
	require.ErrorIs(t, err, os.ErrNotExist, "the plain-text file is gone")
	_, err = os.Stat(tmp)
	require.ErrorIs(t, err, os.ErrNotExist, "the plain-text temp file is gone")
	assertNoPlaintext(t, dir, []string{job.Name, job.Conversation.Title})
	jobs, _ = j.List(ctx)
	require.Equal(t, []dingtalk.MediaJob{job}, jobs, "and the job is kept, encrypted")
}

// assertNoPlaintext fails if a file under dir holds one of secrets in any obvious encoding, and
// returns how many files it read.
func assertNoPlaintext(t testing.TB, dir string, secrets []string) int {
	t.Helper()
	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		require.NoError(t, err)
		files++
		if s, enc, found := leakcheck.Find(b, secrets); found {
			t.Fatalf("%s holds %q in plain text (as %q)", p, s, enc)
		}
		return nil
	}))
	return files
}

// TestMediaJournalHoldsNoPlaintextWhileFetchesPendAndFail greps the media journal while the
// download API keeps failing: each failed round rewrites the pending jobs, and at no moment
// (nor after a restart) may a file name, a conversation title or a download code be on disk in
// plain text. Then the downloads recover and the resumed jobs finish.
func TestMediaJournalHoldsNoPlaintextWhileFetchesPendAndFail(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{RedeliverAfter: 2 * time.Second})
	t.Cleanup(g.Close)
	const (
		fileName = "客戶名單_陳大文_私人持倉.xlsx"
		title    = "大宗交易 block desk 內幕"
		dcFile   = "dc-secret-file-7f3a9c"
		dcPic    = "dc-secret-picture-41b2e8"
	)
	secrets := []string{fileName, title, dcFile, dcPic}
	g.AddFile(dcFile, "application/vnd.ms-excel", []byte("xlsx bytes"))
	g.AddFile(dcPic, "image/png", []byte("png bytes"))
	g.FailDownloads(dcFile, -1)
	g.FailDownloads(dcPic, -1)

	dir := t.TempDir()
	sink := capturetest.NewSink()
	opts := mediaOptions(t, g, dir)
	opts.Media.MaxAttempts = 2
	opts.Media.RetryRoundAfter = 20 * time.Millisecond
	opts.Media.MaxRounds = 1000
	src, err := dingtalk.NewSource(opts)
	require.NoError(t, err)
	stop := running(t, src, sink)
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "f1", MsgType: "file", ConversationTitle: title,
		Content: map[string]any{"downloadCode": dcFile, "fileName": fileName}}.JSON())
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "p1", MsgType: "picture", ConversationType: "2", ConversationTitle: title,
		Content: map[string]any{"downloadCode": dcPic}}.JSON())
	require.NoError(t, g.Wait(ctxT(t, 10*time.Second)))

	// While the fetches fail round after round, the journal is rewritten each time: look at it
	// over and over until several failure rounds are sealed.
	// (A loop in the test's goroutine, not require.Eventually, whose condition runs in another
	// goroutine where a failed check cannot stop the test.)
	sawJobs := 0
	deadline := time.Now().Add(20 * time.Second)
	for src.Health().MediaFailed < 6 {
		if n := assertNoPlaintext(t, dir, secrets); n == 2 {
			sawJobs++
		}
		require.True(t, time.Now().Before(deadline), "only %d failure rounds sealed", src.Health().MediaFailed)
		time.Sleep(time.Millisecond)
	}
	require.Positive(t, sawJobs, "the check saw the pending jobs on disk")
	require.Equal(t, 2, src.Health().PendingMedia)
	stop()
	require.Equal(t, 2, assertNoPlaintext(t, dir, secrets), "both jobs wait on disk for the next run")

	// After a restart with the same journal the jobs resume and, once downloads work, finish.
	g.FailDownloads(dcFile, 0)
	g.FailDownloads(dcPic, 0)
	src, err = dingtalk.NewSource(opts)
	require.NoError(t, err)
	running(t, src, sink)
	require.Eventually(t, func() bool { return src.Health().MediaStored == 2 }, 10*time.Second, 5*time.Millisecond)
	for deadline = time.Now().Add(5 * time.Second); assertNoPlaintext(t, dir, secrets) > 0; time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the finished jobs are deleted from the journal")
	}
}
