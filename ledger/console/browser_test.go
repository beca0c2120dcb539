package console_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/commseal/commseal/internal/testenv"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's chromium (`apt-get install chromium`; .ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// TestBrowser drives the console in headless Chromium as an officer does: sign in, give the
// case, search a two-character Chinese term and an English phrase, open a conversation with
// its picture, dismiss an alert, export and download a bundle that verify.Bundle accepts.
// The hostile message (script in its text, sender name and file name) is on the pages and
// never runs; afterwards the ledger holds the access entries of every content page and the
// disposition. With COMMSEAL_SCREENSHOTS=DIR it saves a screenshot of each page there.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "chromium is not installed at "+chromiumPath+" (apt-get install chromium)")
	}
	if testing.Short() {
		t.Skip("a browser test: not in -short")
	}
	n := 0
	hist := console.NewHealthHistory(func() any { n++; return map[string]int{"reconnects": n * n} }, time.Hour, 10)
	for range 4 {
		hist.Sample()
	}
	e := newEnv(t, func(o *console.Options) { o.HealthHistory = hist })
	start := e.l.Size()
	// The flags the brief of the test names, and --disable-dev-shm-usage: a container's small
	// /dev/shm otherwise crashes the renderer.
	downloads := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()), chromedp.IgnoreCertErrors, chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	var mu sync.Mutex
	var dialogs []string
	done := make(chan string, 1)
	require.NoError(t, chromedp.Do(ctx)) // start the browser
	listen := func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
		case *browser.EventDownloadProgress:
			if ev.State == browser.DownloadProgressStateCompleted {
				select {
				case done <- ev.GUID:
				default:
				}
			}
		}
	}
	require.NoError(t, chromedp.Listen(ctx, listen))
	require.NoError(t, chromedp.ListenBrowser(ctx, listen))
	shots := os.Getenv("COMMSEAL_SCREENSHOTS")
	shot := func(name string) {
		if shots == "" {
			return
		}
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), b, 0o600))
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.TrimSpace(s)
	}
	eval := func(js string) int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		require.NoError(t, err, js)
		return n
	}
	// follow clicks sel, which loads a new page, and waits until that page has loaded: a
	// marker set on the old page must be gone, so that no query reads the old page.
	follow := func(sel string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.staleConsolePage = true`)); err != nil {
				return err
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
				return err
			}
			for { // evaluation fails while the page is being replaced: try again
				loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.staleConsolePage && document.readyState === "complete"`))
				if err == nil && loaded {
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	noScript := func(where string) {
		require.Equal(t, 1, eval(`document.scripts.length`), "only the console's own script: %s", where)
		require.Equal(t, 0, eval(`document.querySelectorAll("[onerror],[onload],a[href^='javascript:']").length`), where)
	}

	// Sign in; the first content page asks for the case.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/signin"),
		chromedp.SendKeys(chromedp.ID("name"), "alice@compliance"),
		chromedp.SendKeys(chromedp.ID("password"), officerPW),
		follow(`#signin button`),
		chromedp.WaitVisible(chromedp.ID("why")),
		chromedp.SendKeys(chromedp.ID("why"), "case 2026-117"),
		follow(`#reason button`),
		chromedp.WaitVisible(chromedp.ID("q")),
	))
	shot("search-form")

	// A two-character Chinese term: three messages, the hostile one among them.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "微信"),
		follow(`#searchform button`),
		chromedp.WaitVisible(chromedp.ID("total")),
	))
	require.Equal(t, "3", text("#total"))
	require.Equal(t, 3, eval(`[...document.querySelectorAll("mark")].filter(m => m.textContent.includes("微信")).length`))
	require.Contains(t, text("#m4 .text"), "<img src=x onerror=alert(1)>", "hostile text shown as text")
	require.Contains(t, text("#m4 .sender"), "<script>alert(3)</script>")
	noScript("search 微信")
	shot("search-chinese")

	// An English phrase.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("q"), `"call me on WhatsApp"`),
		follow(`#searchform button`),
		chromedp.WaitVisible(chromedp.ID("total")),
	))
	require.Equal(t, "1", text("#total"))
	require.Equal(t, "WhatsApp", text("mark"))

	// A conversation, its picture loaded through the audited blob read.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/search?q="+url.QueryEscape("加我微信再講")),
		chromedp.WaitVisible(chromedp.CSS(`p.open a`)),
		follow(`p.open a`),
		chromedp.WaitVisible(chromedp.CSS(`.thread`)),
	))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector(".files img") && document.querySelector(".files img").complete`))
	require.NoError(t, err)
	require.Equal(t, 5, eval(`document.querySelectorAll(".thread article").length`))
	require.Equal(t, 160, eval(`document.querySelector(".files img").naturalWidth`), "the picture is shown")
	require.Equal(t, 1, eval(`document.querySelectorAll("article.current").length`))
	shot("conversation")

	// Dismiss the first alert of the queue.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/alerts"), chromedp.WaitVisible(chromedp.ID("opencount"))))
	open, _ := strconv.Atoi(text("#opencount"))
	var row string
	row, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("tbody tr").id`))
	require.NoError(t, err)
	shot("alerts")
	require.NoError(t, chromedp.Do(ctx,
		follow("#"+row+" button"),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	))
	require.Equal(t, strconv.Itoa(open-1), text("#opencount"))
	noScript("alerts")

	// Export and download.
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: ptr(true)})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/export"),
		chromedp.SendKeys(chromedp.ID("q"), "微信 OR whatsapp"),
		follow(`#exportform button`),
	))
	for { // the status page reloads itself until the bundle is ready
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!document.getElementById("download")`))
		if err == nil && ready {
			break
		}
		require.NoError(t, ctx.Err(), "the export did not finish")
		time.Sleep(50 * time.Millisecond)
	}
	shot("export-ready")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("download"))))
	var guid string
	select {
	case guid = <-done:
	case <-ctx.Done():
		t.Fatal("the download did not complete")
	}
	zb, err := os.ReadFile(filepath.Join(downloads, guid))
	require.NoError(t, err)
	rep, err := verify.Bundle(unzip(t, zb), e.vkey)
	require.NoError(t, err, "the downloaded bundle verifies")
	require.GreaterOrEqual(t, rep.Opened, 4)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/integrity"), chromedp.WaitVisible(chromedp.ID("vkey"))))
	require.Greater(t, eval(`Math.round(document.querySelector("svg polyline").getBBox().width)`), 500, "the health chart is drawn")
	shot("integrity")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/access"), chromedp.WaitVisible(chromedp.CSS("table.access"))))
	shot("access-log")

	// The language switch, by keyboard: focus the link and press Enter.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/search?q="+url.QueryEscape("報價")),
		chromedp.Focus(chromedp.CSS(`a[lang="zh-Hant"]`)),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.staleConsolePage = true`))
			return err
		}),
		chromedp.KeyEvent("\r"),
	))
	for {
		lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.staleConsolePage ? "" : document.documentElement.lang`))
		if err == nil && lang == "zh-Hant" {
			break
		}
		require.NoError(t, ctx.Err(), "the language did not switch")
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, "搜尋", text("h1"))
	require.Contains(t, text("#results"), "結果")
	shot("search-zh-hant")

	mu.Lock()
	require.Empty(t, dialogs, "no script of a message ran")
	mu.Unlock()

	// The ledger holds the access of every content page, in order, and the disposition.
	var ops []string
	for _, a := range e.accessSince(t, start) {
		require.Contains(t, a, `"who":"alice@compliance"`)
		require.Contains(t, a, `"why":"case 2026-117"`)
		ops = append(ops, field(a, "op")+"/"+field(a, "for"))
	}
	require.Equal(t, []string{
		"query/query", "read/read", // 微信
		"query/query", "read/read", // the phrase
		"query/query", "read/read", // the search that leads to the conversation
		"query/query", "read/read", // the conversation
		"blob/read",                   // its picture
		"scan/review",                 // the alert queue
		"get/review",                  // reading the alert to dismiss it
		"scan/review",                 // the queue again
		"query/export", "read/export", // the export (its messages carry no attachment)
		"query/access-log",                      // viewing the access log
		"query/query", "read/read", "blob/read", // 報價: its hit shows a picture
		"query/query", "read/read", "blob/read", // the same page in Chinese
	}, ops)
	q, err := surveil.Alerts(context.Background(), e.l, e.l.Access("test", "check"))
	require.NoError(t, err)
	dismissed := 0
	for _, a := range q {
		for _, d := range a.Dispositions {
			if d.Disposition == surveil.Dismissed && d.Who == "alice@compliance" {
				dismissed++
			}
		}
	}
	require.Equal(t, 1, dismissed)
}

func ptr[T any](v T) *T { return &v }

// field returns a top-level string field of a JSON object (test use: access bodies).
func field(obj, name string) string {
	k := `"` + name + `":"`
	i := strings.Index(obj, k)
	if i < 0 {
		return ""
	}
	rest := obj[i+len(k):]
	return rest[:strings.IndexByte(rest, '"')]
}
