package console_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestHostileTextIsEscaped: script in a message's text, its sender's name and an attachment's
// name reaches the page only as text; every page carries the CSP, DENY framing and no-store.
func TestHostileTextIsEscaped(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	for _, p := range []string{"/search?q=" + url.QueryEscape("加我微信"), "/conversation?c=cid-0&at=4", "/alerts", "/integrity"} {
		resp, err := c.Get(e.srv.URL + p)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.Equal(t, console.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
		require.NotContains(t, console.ContentSecurityPolicy, "unsafe-inline")
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", `href="javascript:`, "onerror=alert(1)>"} {
			require.NotContains(t, body, bad, p)
		}
		// The only script element is the console's own.
		require.Equal(t, 1, strings.Count(body, "<script"), p)
		if strings.HasPrefix(p, "/search") || strings.HasPrefix(p, "/conversation") {
			require.Contains(t, body, "&lt;img src=x onerror=alert(1)&gt;", p)
			require.Contains(t, body, "&#34;&gt;&lt;script&gt;alert(3)&lt;/script&gt;", p)
			require.Contains(t, body, "javascript:alert(4)&lt;svg onload=alert(5)&gt;.pdf", p)
		}
	}
}

// TestSearchSealsBeforeShowing: a search seals the query and then the reading of its hits,
// with the user's name and reason, before the page shows the findings highlighted.
func TestSearchSealsBeforeShowing(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	size := e.l.Size()
	st, body := e.get(t, c, "/search?q="+url.QueryEscape("微信"))
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, `<mark title="off-channel.move">加我微信</mark>再講`)
	require.Contains(t, body, `<mark title="off-channel.move">微信</mark> group tomorrow`)
	require.Contains(t, body, `<span id="total">3</span>`)
	acc := e.accessSince(t, size)
	require.Len(t, acc, 2)
	require.True(t, contains(acc[0], `"who":"alice@compliance"`, `"why":"case 2026-117"`, `"op":"query"`, `"for":"query"`), acc[0])
	require.True(t, contains(acc[1], `"op":"read"`, `"for":"read"`, `"entries":"1`), acc[1])

	size = e.l.Size()
	st, body = e.get(t, c, "/search?q="+url.QueryEscape(`"call me on WhatsApp"`)+"&severity=medium")
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, `call me on <mark title="off-channel.move">WhatsApp</mark> tonight`)
	require.Len(t, e.accessSince(t, size), 2)

	size = e.l.Size()
	st, body = e.get(t, c, "/search?q="+url.QueryEscape(`(unbalanced`))
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, body, "not understood")
	require.Equal(t, size, e.l.Size(), "a bad query seals nothing")
	st, _ = e.get(t, c, "/search?rule="+url.QueryEscape(`x" OR "y`))
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, size, e.l.Size())
}

// TestConversationAndAttachments: the thread in time order, the picture served inline through
// an audited blob read, a file of other bytes as a download.
func TestConversationAndAttachments(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	size := e.l.Size()
	st, body := e.get(t, c, "/conversation?c=cid-1&at=5")
	require.Equal(t, http.StatusOK, st)
	ids := regexp.MustCompile(`<article class="msg[^"]*" id="m(\d+)"`).FindAllStringSubmatch(body, -1)
	var order []string
	for _, m := range ids {
		order = append(order, m[1])
	}
	require.Equal(t, []string{"1", "3", "5", "7", "9"}, order, "the conversation's messages in time order")
	require.Contains(t, body, `class="msg current" id="m5"`)
	require.Len(t, e.accessSince(t, size), 2, "the conversation's query and its reading")

	blob := regexp.MustCompile(`<img src="(/blob/[0-9a-f]{64}\?name=chart.png)"`).FindStringSubmatch(body)
	require.NotNil(t, blob)
	size = e.l.Size()
	resp, err := c.Get(e.srv.URL + blob[1])
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "sandbox")
	require.Equal(t, chartPNG, b)
	acc := e.accessSince(t, size)
	require.Len(t, acc, 1)
	require.True(t, contains(acc[0], `"op":"blob"`, `"who":"alice@compliance"`), acc[0])

	// Bytes that are not a picture are a download, whatever the name says.
	sum, err := e.l.PutBlob(context.Background(), []byte("<html><script>alert(1)</script></html>"))
	require.NoError(t, err)
	resp, err = c.Get(e.srv.URL + fmt.Sprintf("/blob/%x?name=%s", sum, url.QueryEscape(`evil".png`)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment"))
	require.NotContains(t, resp.Header.Get("Content-Disposition"), `evil".png`)
}

// TestAlertsDispose: the queue by severity, a dismissal sealed through surveil with the
// user's name and reason, the alert out of the queue, the rule's precision from it.
func TestAlertsDispose(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	st, body := e.get(t, c, "/alerts")
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, `<span id="opencount">5</span>`)
	first := regexp.MustCompile(`<tr id="a(\d+)" class="sev-(\w+)">`).FindAllStringSubmatch(body, -1)
	require.Equal(t, "high", first[0][2], "the most severe first")
	target := first[1][1]
	tok := csrfRE.FindStringSubmatch(body)[1]
	size := e.l.Size()
	resp, _ := e.post(t, c, "/alerts/dispose", url.Values{"csrf": {tok}, "alert": {target}, "disposition": {"dismissed"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	acc := e.accessSince(t, size)
	require.Len(t, acc, 1, "reading the alert to dispose of it")
	q, err := surveil.Alerts(context.Background(), e.l, e.l.Access("test", "check"))
	require.NoError(t, err)
	var found bool
	for _, a := range q {
		if fmt.Sprint(a.Index) == target {
			found = true
			require.False(t, a.Open())
			require.Equal(t, "alice@compliance", a.Dispositions[0].Who)
			require.Equal(t, "case 2026-117", a.Dispositions[0].Why)
		}
	}
	require.True(t, found)
	_, body = e.get(t, c, "/alerts")
	require.Contains(t, body, `<span id="opencount">4</span>`)
	require.Contains(t, body, `<th scope="row">off-channel.move</th><td>4</td><td>3</td><td>1</td><td>1</td><td>0</td><td>0.00</td>`)

	size = e.l.Size()
	for _, f := range []url.Values{
		{"alert": {target}, "disposition": {"ignored"}},
		{"alert": {target}, "disposition": {"note"}},
		{"alert": {"1"}, "disposition": {"dismissed"}},
		{"alert": {"99999"}, "disposition": {"dismissed"}},
	} {
		f.Set("csrf", tok)
		resp, _ := e.post(t, c, "/alerts/dispose", f)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, f)
	}
	// Only the refused "not an alert" reads (and so seals) the entry it checks.
	require.LessOrEqual(t, e.l.Size(), size+1)
}

// TestExportDownloadVerifies: the filters to a bundle built in memory, downloaded once as a
// zip that verify.Bundle accepts; the export is sealed before it is built.
func TestExportDownloadVerifies(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	tok := e.csrf(t, c, "/export")
	size := e.l.Size()
	resp, body := e.post(t, c, "/export", url.Values{"csrf": {tok}, "q": {"微信 OR whatsapp"}, "format": {"rsmf", "eml"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	status := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(status, "/export/status?id="), status)
	body = waitExport(t, e, c, status)
	require.Contains(t, body, `<dd id="matched">4</dd>`)
	acc := e.accessSince(t, size)
	require.GreaterOrEqual(t, len(acc), 2)
	require.True(t, contains(acc[0], `"for":"export"`, `"op":"query"`), acc[0])
	link := regexp.MustCompile(`href="(/export/download\?id=[^"]+)"`).FindStringSubmatch(body)
	require.NotNil(t, link)
	resp, err := c.Get(e.srv.URL + strings.ReplaceAll(link[1], "&amp;", "&"))
	require.NoError(t, err)
	zb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/zip", resp.Header.Get("Content-Type"))
	dir := unzip(t, zb)
	rep, err := verify.Bundle(dir, e.vkey)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(rep.Entries), 4)
	st, _ := e.get(t, c, strings.ReplaceAll(link[1], "&amp;", "&"))
	require.Equal(t, http.StatusNotFound, st, "one download")

	size = e.l.Size()
	resp, _ = e.post(t, c, "/export", url.Values{"csrf": {tok}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no filter: nothing exported")
	require.Equal(t, size, e.l.Size())
}

// waitExport polls the export's status page until the bundle is ready, and returns the page.
// While it is built the page reloads itself every second and shows the progress.
func waitExport(t testing.TB, e *env, c *http.Client, status string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, body := e.get(t, c, status)
		require.Equal(t, http.StatusOK, st, body)
		if strings.Contains(body, `id="download"`) {
			require.NotContains(t, body, `http-equiv="refresh"`)
			return body
		}
		require.Contains(t, body, `<meta http-equiv="refresh" content="1">`)
		require.Contains(t, body, `<progress`)
		require.True(t, time.Now().Before(deadline), "the export did not finish: %s", body)
		time.Sleep(20 * time.Millisecond)
	}
}

// unzip writes a zip into a temporary directory.
func unzip(t testing.TB, b []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	dir := t.TempDir()
	for _, f := range zr.File {
		require.False(t, strings.Contains(f.Name, ".."))
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		r, err := f.Open()
		require.NoError(t, err)
		data, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, data, 0o600))
	}
	return dir
}

// TestIntegrityVerify: an auditor runs a full verification from the page; the result stays.
func TestIntegrityVerify(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "bob auditor", auditorPW))
	tok := e.csrf(t, c, "/integrity")
	resp, _ := e.post(t, c, "/integrity/verify", url.Values{"csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body := e.get(t, c, "/integrity")
	require.Contains(t, body, `<dd id="verification"><strong class="ok">intact</strong>`)

	// An inclusion proof of entry 4 that seal.VerifyProof accepts with the verifier key.
	size := e.l.Size()
	_, body = e.get(t, c, "/integrity?proof=4")
	m := regexp.MustCompile(`(?s)<pre id="prooftext">(.*?)</pre>`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	pr, err := seal.ParseProof([]byte(html.UnescapeString(m[1])))
	require.NoError(t, err)
	v, err := seal.NewVerifier(e.vkey)
	require.NoError(t, err)
	_, leaf, err := seal.VerifyProof(&pr, v)
	require.NoError(t, err)
	require.Equal(t, seal.KindMessage, leaf.Kind)
	require.Equal(t, size, e.l.Size(), "proofs decrypt and seal nothing")
	_, body = e.get(t, c, "/integrity?proof=99999")
	require.Contains(t, body, "No such entry")
}

// TestLanguage: Accept-Language picks Traditional Chinese; the switch sets it.
func TestLanguage(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	req, _ := http.NewRequest("GET", e.srv.URL+"/signin", nil)
	req.Header.Set("Accept-Language", "zh-HK,zh;q=0.9,en;q=0.8")
	resp, err := c.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `<html lang="zh-Hant">`)
	require.Contains(t, string(b), "登入")
	resp, err = c.Get(e.srv.URL + "/lang?to=zh-Hant&next=" + url.QueryEscape("//evil.example/"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "/", resp.Header.Get("Location"), "only local redirects")
	_, body := e.get(t, c, "/signin")
	require.Contains(t, body, "密碼")
}

// TestAccessLog: an auditor sees who read what and why, newest first, the reason escaped;
// the view is sealed first, so the next view lists it.
func TestAccessLog(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	tok := e.csrf(t, c, "/reason")
	resp, _ := e.post(t, c, "/reason", url.Values{"csrf": {tok}, "why": {`<script>alert(9)</script> case 7`}, "next": {"/"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	st, _ := e.get(t, c, "/search?q="+url.QueryEscape("微信"))
	require.Equal(t, http.StatusOK, st)

	a := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, a, "bob auditor", auditorPW))
	_, body := e.get(t, a, "/access")
	rows := regexp.MustCompile(`<tr><td>(\d+)</td><td>[^<]*</td><td class="who">([^<]*)</td><td class="why">([^<]*)</td><td>([^<]*)</td><td class="what">([^<]*)</td></tr>`).FindAllStringSubmatch(body, -1)
	require.Len(t, rows, 2, body)
	require.Equal(t, "read (read)", rows[0][4], "newest first")
	require.True(t, strings.HasPrefix(rows[0][5], "6: 1,4,9"), "three messages (1, 4, 9) and their three findings annotations (sealed in any order): %s", rows[0][5])
	require.Equal(t, "query (query)", rows[1][4])
	require.Equal(t, "&lt;script&gt;alert(9)&lt;/script&gt; case 7", rows[0][3])
	require.NotContains(t, body, "<script>alert(9)")
	_, body = e.get(t, a, "/access")
	require.Contains(t, body, `<td class="who">bob auditor</td><td class="why">access log review</td><td>query (access-log)</td>`)
}

// TestSearchFilters: each filter of the form narrows the hits as the index's fields do.
func TestSearchFilters(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	for _, tc := range []struct {
		query string
		total int
	}{
		{"kind=picture", 1},
		{"sender=u0", 4},
		{"sender=" + url.QueryEscape("黃"), 9}, // part of a name (the hostile message's sender has another)
		{"conversation=cid-1", 5},
		{"conversation=" + url.QueryEscape("Equities"), 10},
		{"from=2026-11-02T09:05&to=2026-11-02T09:07", 2},
		{"to=2026-11-01", 0},
		{"to=2026-11-02", 10}, // a date "to" includes the day
		{"rule=off-channel.move", 4},
		{"severity=high", 1},
		{"disposition=open", 5},
		{"q=" + url.QueryEscape("微信") + "&sender=u1", 2},
	} {
		st, body := e.get(t, c, "/search?"+tc.query)
		require.Equal(t, http.StatusOK, st, tc.query)
		require.Contains(t, body, fmt.Sprintf(`<span id="total">%d</span>`, tc.total), tc.query)
	}
	st, body := e.get(t, c, "/search?from=yesterday")
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, body, "yesterday")
}

// TestConversationWindow: a long conversation shows the message asked for with its
// neighbours, and links to the earlier and later ones.
func TestConversationWindow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	var idx []uint64
	for i := range 80 {
		rc, err := e.l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("long", i), Kind: capture.KindText,
			Conversation: capture.Conversation{ID: "cid-long", Type: capture.ConversationDirect},
			Sender:       capture.Party{ID: "u9", Name: "Client"}, SentAt: time.Date(2026, 11, 3, 9, 0, 80-i, 0, time.UTC), // sent in reverse
			Text: fmt.Sprint("line ", i), Raw: []byte(`{}`)})
		require.NoError(t, err)
		idx = append(idx, rc.Index)
	}
	c := e.officer(t)
	st, body := e.get(t, c, fmt.Sprintf("/conversation?c=cid-long&at=%d", idx[40]))
	require.Equal(t, http.StatusOK, st)
	arts := regexp.MustCompile(`<article class="msg[^"]*" id="m(\d+)"`).FindAllStringSubmatch(body, -1)
	require.Len(t, arts, 2*console.ContextMessages+1)
	require.Equal(t, fmt.Sprint(idx[40]), arts[console.ContextMessages][1], "the message asked for in the middle")
	require.Equal(t, fmt.Sprint(idx[40+console.ContextMessages]), arts[0][1], "in time order: sent in reverse")
	require.Contains(t, body, `class="msg current" id="m`+fmt.Sprint(idx[40]))
	require.Contains(t, body, "Earlier messages")
	require.Contains(t, body, "Later messages")
}

// TestConversationBeyondOnePage: a message past the first search.MaxLimit messages of its
// conversation is found on a later page.
func TestConversationBeyondOnePage(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 10,040 messages")
	}
	e := newEnv(t, nil)
	ctx := context.Background()
	var last uint64
	for i := range search.MaxLimit + 40 {
		rc, err := e.l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("big", i), Kind: capture.KindText,
			Conversation: capture.Conversation{ID: "cid-big", Type: capture.ConversationGroup},
			SentAt:       time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second), Text: "x", Raw: []byte(`{}`)})
		require.NoError(t, err)
		last = rc.Index
	}
	c := e.officer(t)
	size := e.l.Size()
	st, body := e.get(t, c, fmt.Sprintf("/conversation?c=cid-big&at=%d", last))
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, body, fmt.Sprintf(`class="msg current" id="m%d"`, last))
	require.NotContains(t, body, "not among the first messages")
	require.Len(t, e.accessSince(t, size), 3, "two pages searched, one reading")
}

// TestIntegrityAnchors: the integrity page lists the time-stamps and cosignatures of the
// latest anchored checkpoint, and says so when there are none.
func TestIntegrityAnchors(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "bob auditor", auditorPW))
	_, body := e.get(t, c, "/integrity")
	require.Contains(t, body, `id="noanchors"`)
	ctx := context.Background()
	signed, cp, err := e.l.Checkpoint()
	require.NoError(t, err)
	at, err := e.l.AppendAnchor(ctx, seal.Anchor{Type: seal.AnchorTimestamp, Size: cp.Size, Checkpoint: signed,
		Authority: `tsa.example <b>`, Time: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), Token: []byte("token")})
	require.NoError(t, err)
	_, body = e.get(t, c, "/integrity")
	require.Contains(t, body, fmt.Sprintf(`<tr><td>%d</td><td>RFC 3161 time-stamp</td><td>tsa.example &lt;b&gt;</td><td>2026-11-29 10:00:00 UTC</td></tr>`, at))
	require.Contains(t, body, fmt.Sprintf("tree size %d", cp.Size))
}

// TestHealthChart: the integrity page charts each number of the capture health that changed
// over the samples, as an inline SVG (no script), and lists the unchanged ones.
func TestHealthChart(t *testing.T) {
	n := 0
	hist := console.NewHealthHistory(func() any {
		n++
		return map[string]any{"reconnects": n / 2, "silences": 0, "silent": n%3 == 0, "state": "connected <b>"}
	}, time.Hour, 5)
	for range 7 {
		hist.Sample()
	}
	e := newEnv(t, func(o *console.Options) { o.HealthHistory = hist })
	c := e.client(t)
	require.Equal(t, http.StatusSeeOther, e.signin(t, c, "bob auditor", auditorPW))
	_, body := e.get(t, c, "/integrity")
	require.Contains(t, body, `<figcaption>reconnects: 3 (range 1–3)</figcaption>`, "the latest five samples: 1, 2, 2, 3, 3")
	require.Regexp(t, `<svg viewBox="0 0 600 48"[^>]*role="img" aria-label="reconnects"><rect[^>]*/><polyline points="0.0,46.0 150.0,`, body)
	require.Contains(t, body, `aria-label="silent"`)
	require.Contains(t, body, `<p id="unchanged">Unchanged: silences 0</p>`)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, console.NewHealthHistory(func() any { return 1 }, time.Millisecond, 2).Run(ctx), context.Canceled)
}

// TestFilterFormOnSearchAndExport: the search and export pages show the same filter form
// (the shared "filters" template of layout.html), filled from the query string.
func TestFilterFormOnSearchAndExport(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	for _, path := range []string{"/search?sender=u7&kind=audio", "/export?sender=u7&kind=audio"} {
		status, body := e.get(t, c, path)
		require.Equal(t, http.StatusOK, status, path)
		require.True(t, contains(body, `name="q"`, `id="sender" name="sender" value="u7"`,
			`<option selected>audio</option>`, `name="disposition"`), path)
	}
}

// TestSearchHitLinksToConversation: a hit's "open" link is the conversation page around that
// message, scrolled to it, and that page marks the message as the current one.
func TestSearchHitLinksToConversation(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	_, body := e.get(t, c, "/search?q="+url.QueryEscape("加我微信"))
	m := regexp.MustCompile(`href="(/conversation\?at=(\d+)&amp;c=[^"#]+#m(\d+))"`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	require.Equal(t, m[2], m[3], "the link scrolls to the message it is about")
	st, conv := e.get(t, c, strings.ReplaceAll(m[1], "&amp;", "&"))
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, conv, `id="m`+m[2]+`"`)
}

// TestExportBadQuery: an export whose query the index does not understand answers the export
// form again, 400, with the index's complaint and the filters kept; nothing is sealed.
func TestExportBadQuery(t *testing.T) {
	e := newEnv(t, nil)
	c := e.officer(t)
	tok := e.csrf(t, c, "/export")
	size := e.l.Size()
	resp, body := e.post(t, c, "/export", url.Values{"csrf": {tok}, "q": {"(unbalanced"}, "format": {"eml"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	require.True(t, contains(body, "not understood", `id="exportform"`, `value="(unbalanced"`), body)
	require.Equal(t, size, e.l.Size(), "a bad query seals nothing")
}
