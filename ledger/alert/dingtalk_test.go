package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	robotToken  = "robot-token-abc"
	robotSecret = "SEC0123456789abcdef0123456789abcdef"
)

// TestDingTalkSignMatchesPublishedVector checks DingTalkSign against a value computed without
// this package: Python's hmac, base64 and urllib.parse.quote_plus, the documented recipe
// (timestamp "1700000000000", secret "secret"); the Rust crate dingding's test publishes the same
// value.
func TestDingTalkSignMatchesPublishedVector(t *testing.T) {
	const want = "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
	if got := url.QueryEscape(DingTalkSign(1700000000000, "secret")); got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
}

type robotMsg struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
}

// robot is a fake DingTalk custom robot endpoint that checks the signature the documented way,
// computed here independently, and answers as reply says.
type robot struct {
	t     testing.TB
	mu    sync.Mutex
	reply func(n int) (status int, body string)
	n     int
	msgs  []robotMsg
}

func (rb *robot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path != "/robot/send" || q.Get("access_token") != robotToken {
		rb.t.Errorf("robot: %s", r.URL.Path)
	}
	ts := q.Get("timestamp")
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
		rb.t.Errorf("robot: timestamp %q is not now in milliseconds", ts)
	}
	m := hmac.New(sha256.New, []byte(robotSecret))
	m.Write([]byte(ts + "\n" + robotSecret))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if q.Get("sign") != want {
		rb.t.Errorf("robot: sign %q, want %q", q.Get("sign"), want)
	}
	// The sign is URL-encoded in the query: no raw + or / that a server would misread.
	if !strings.Contains(r.URL.RawQuery, "sign="+url.QueryEscape(want)) {
		rb.t.Errorf("robot: sign not URL-encoded in %q", r.URL.RawQuery)
	}
	body, _ := io.ReadAll(r.Body)
	var msg robotMsg
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil || msg.MsgType != "markdown" || msg.Markdown.Title == "" || msg.Markdown.Text == "" {
		rb.t.Errorf("robot: body %s: %v", body, err)
	}
	rb.mu.Lock()
	rb.n++
	n := rb.n
	reply := rb.reply
	rb.msgs = append(rb.msgs, msg)
	rb.mu.Unlock()
	status, out := http.StatusOK, `{"errcode":0,"errmsg":"ok"}`
	if reply != nil {
		status, out = reply(n)
	}
	if status >= 300 && status < 400 {
		w.Header().Set("Location", "/elsewhere") // following it would fail the path check above
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(out))
}

func (rb *robot) messages() []robotMsg {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return append([]robotMsg(nil), rb.msgs...)
}

func newDingTalk(t testing.TB, base string, excerpt bool) *DingTalk {
	d, err := NewDingTalk(DingTalkOptions{URL: base + "/robot/send?access_token=" + robotToken,
		Secret: robotSecret, IncludeExcerpt: excerpt})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDingTalkPostsSignedReferencesWithoutContent(t *testing.T) {
	rb := &robot{t: t}
	srv := httptest.NewServer(rb)
	defer srv.Close()
	a := sampleAlert(17)
	if err := newDingTalk(t, srv.URL, false).Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	msgs := rb.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0].Markdown
	if m.Title != `commseal alert: high guarantee.returns` {
		t.Errorf("title %q", m.Title)
	}
	for _, want := range []string{"`high`", "`guarantee.returns`", "`guarantee_of_returns`", "ledger index: `17`",
		"`dingtalk/ding-corp-1/" + a.MessageID + "`", "`cid-group-1`", "`staff-42`",
		"`desk-lexicon sha256:0123456789abcdef`", "`2026-11-02T09:30:00Z`", "`" + a.ID + "`"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %s:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text+m.Title, "CONTENT-7f3a") {
		t.Fatalf("message holds content without opt-in:\n%s", m.Text)
	}

	// Opted in, the excerpt is quoted.
	if err := newDingTalk(t, srv.URL, true).Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if m := rb.messages()[1].Markdown; !strings.Contains(m.Text, "> "+secretText) {
		t.Fatalf("opted-in excerpt missing:\n%s", m.Text)
	}
}

func TestDingTalkReplies(t *testing.T) {
	var mu sync.Mutex
	var status int
	var body string
	rb := &robot{t: t, reply: func(int) (int, string) { mu.Lock(); defer mu.Unlock(); return status, body }}
	srv := httptest.NewServer(rb)
	defer srv.Close()
	d := newDingTalk(t, srv.URL, false)
	for _, c := range []struct {
		status     int
		body       string
		ok, perm   bool
		code       int
		msg        string
		retryAfter time.Duration
	}{
		{200, `{"errcode":0,"errmsg":"ok"}`, true, false, 0, "", 0},
		{200, `{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`, false, true, 310000, "sign not match", 0},
		{200, `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, false, false, 130101, "send too fast", time.Minute},
		{200, `{"errcode":-1,"errmsg":"系统繁忙"}`, false, false, -1, "系统繁忙", 0},
		{200, `<html>proxy</html>`, false, false, 0, "not a DingTalk result", 0},
		{200, `{"errmsg":"ok"}`, false, false, 0, "not a DingTalk result", 0},
		{500, `oops`, false, false, 0, "oops", 0},
		{403, `forbidden`, false, true, 0, "forbidden", 0},
		{200, `{"errcode":90030,"errmsg":"webhook over limit"}`, false, false, 90030, "over limit", time.Hour},
		{302, `throttled`, false, false, 0, "HTTP 302", 0},
	} {
		mu.Lock()
		status, body = c.status, c.body
		mu.Unlock()
		err := d.Send(context.Background(), sampleAlert(1))
		if c.ok {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		var de *DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%s: %v, want a DeliveryError", c.body, err)
			continue
		}
		if de.Permanent != c.perm || errors.Is(err, ErrPermanent) != c.perm || de.Code != c.code ||
			!strings.Contains(err.Error(), c.msg) || de.RetryAfter != c.retryAfter {
			t.Errorf("%s: %#v (%v)", c.body, de, err)
		}
	}
}

// TestDingTalkRobotDownLosesNothing: the robot endpoint is down while alerts are queued; when it
// comes back every alert is posted; a configuration error becomes a dead letter with
// DingTalk's errmsg.
func TestDingTalkRobotDownLosesNothing(t *testing.T) {
	rb := &robot{t: t}
	rb.reply = func(n int) (int, string) {
		return http.StatusOK, `{"errcode":0,"errmsg":"ok"}`
	}
	rs := newRestartable(t, rb)
	rs.stop()
	d := newDingTalk(t, rs.URL(), false)
	dir := t.TempDir()
	opts := fastOptions(t)
	opts.MinInterval = time.Millisecond
	o := openOutbox(t, dir, d, opts)
	startRun(t, o)
	for i := range 10 {
		if err := o.Alert(context.Background(), sampleAlert(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // Run fails against the closed port meanwhile
	if s := o.Stats(); s.Pending != 10 {
		t.Fatalf("stats while down %+v", s)
	}
	rs.start()
	waitFor(t, "every message", func() bool { return o.Stats().Pending == 0 })
	seen := map[string]bool{}
	for _, m := range rb.messages() {
		for i := range 10 {
			if strings.Contains(m.Markdown.Text, "`"+sampleAlert(uint64(i)).ID+"`") {
				seen[sampleAlert(uint64(i)).ID] = true
			}
		}
	}
	if len(seen) != 10 {
		t.Fatalf("%d of 10 alerts posted", len(seen))
	}

	// A robot whose signature check fails: the alert is kept as a dead letter, with the reason.
	rb.mu.Lock()
	rb.reply = func(int) (int, string) { return http.StatusOK, `{"errcode":310000,"errmsg":"sign not match"}` }
	rb.mu.Unlock()
	if err := o.Alert(context.Background(), sampleAlert(99)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dead letter", func() bool { return o.Stats().Dead == 1 })
	dl, err := o.DeadLetters()
	if err != nil || len(dl) != 1 || !strings.Contains(dl[0].Reason, "errcode 310000") || !strings.Contains(dl[0].Reason, "sign not match") {
		t.Fatalf("dead letters %+v, %v", dl, err)
	}
	if strings.Contains(dl[0].Reason, robotToken) {
		t.Fatalf("reason shows the access token: %s", dl[0].Reason)
	}
}

func TestDingTalkMarkdownCannotBeRestructured(t *testing.T) {
	d := newDingTalk(t, "http://127.0.0.1:1", true)
	a := sampleAlert(1)
	a.Rule = "r`\n### forged heading"
	a.Sender = "x`\n- forged: line"
	a.Excerpt = "line one\n### forged [link](http://evil) **bold**"
	title, text := d.Markdown(&a)
	if title != "commseal alert: high r` ### forged heading" {
		t.Fatalf("title %q: want the rule on one line, as plain text", title)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "### forged") || strings.HasPrefix(l, "- forged") {
			t.Fatalf("a field started its own markdown line:\n%s", text)
		}
	}
	if !strings.Contains(text, `\[link\]\(http://evil\) \*\*bold\*\*`) {
		t.Fatalf("excerpt markdown not escaped:\n%s", text)
	}
}

func TestNewDingTalkChecksOptions(t *testing.T) {
	for _, o := range []DingTalkOptions{
		{URL: DingTalkRobotURL, Secret: robotSecret},
		{URL: DingTalkRobotURL + "?access_token=", Secret: robotSecret},
		{URL: DingTalkRobotURL + "?access_token=t"},
		{URL: "file:///robot/send?access_token=t", Secret: robotSecret},
		{URL: "%zz", Secret: robotSecret},
	} {
		if _, err := NewDingTalk(o); err == nil {
			t.Errorf("NewDingTalk(%+v) accepted", o)
		} else if strings.Contains(err.Error(), robotSecret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	if _, err := NewDingTalk(DingTalkOptions{URL: DingTalkRobotURL + "?access_token=t", Secret: robotSecret}); err != nil {
		t.Fatal(err)
	}
}
