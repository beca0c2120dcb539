package dingtalktest

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// AddFile registers content as the media behind downloadCode: the download API then answers a
// link that serves it.
func (g *Gateway) AddFile(downloadCode, contentType string, content []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.files[downloadCode] = file{content: append([]byte(nil), content...), contentType: contentType}
}

// FailDownloads makes the next n messageFiles/download calls for downloadCode fail with HTTP 500
// and a "system error" body, the transient failure DingTalk documents. Negative n: fail until
// changed.
func (g *Gateway) FailDownloads(downloadCode string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dlFaults[downloadCode] = n
}

func (g *Gateway) handleToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &req) != nil {
		apiError(w, http.StatusBadRequest, "InvalidParameter", "malformed body")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if req.AppKey != g.Config.ClientID || req.AppSecret != g.Config.ClientSecret {
		apiError(w, http.StatusBadRequest, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
		return
	}
	g.stats.TokenRequests++
	tok := rand.Text()
	g.tokens[tok] = time.Now().Add(g.Config.TokenTTL)
	secs := int64(g.Config.TokenTTL / time.Second)
	if secs < 1 {
		secs = 1
	}
	writeJSON(w, map[string]any{"accessToken": tok, "expireIn": secs})
}

// TokenRequests reports how many access tokens the gateway has issued.
func (g *Gateway) TokenRequests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stats.TokenRequests
}

// ExpireTokens makes every access token issued so far invalid, as if they had expired.
func (g *Gateway) ExpireTokens() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.tokens)
}

func (g *Gateway) handleDownload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DownloadCode string `json:"downloadCode"`
		RobotCode    string `json:"robotCode"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	g.mu.Lock()
	defer g.mu.Unlock()
	fail := func(status int, code, msg string) {
		g.stats.DownloadErrors++
		apiError(w, status, code, msg)
	}
	exp, ok := g.tokens[r.Header.Get("x-acs-dingtalk-access-token")]
	if !ok || time.Now().After(exp) {
		fail(http.StatusUnauthorized, "InvalidAuthentication", "不合法的access_token")
		return
	}
	if q := g.Config.DownloadQPS; q > 0 {
		now := time.Now()
		if now.Sub(g.dlWindow) >= time.Second {
			g.dlWindow, g.dlInWindow = now, 0
		}
		g.dlInWindow++
		if g.dlInWindow > q {
			w.Header().Set("Retry-After", "1")
			fail(http.StatusForbidden, "Forbidden.AccessDenied.QpsLimitForApi", "api qps limit")
			return
		}
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		fail(http.StatusBadRequest, "InvalidParameter", "malformed body")
		return
	}
	if req.RobotCode != g.Config.RobotCode {
		fail(http.StatusBadRequest, "invalidParameter.robotCode", "robotCode is wrong")
		return
	}
	if n := g.dlFaults[req.DownloadCode]; n != 0 {
		if n > 0 {
			g.dlFaults[req.DownloadCode] = n - 1
		}
		fail(http.StatusInternalServerError, "ServiceUnavailable", "system error")
		return
	}
	if _, ok := g.files[req.DownloadCode]; !ok {
		fail(http.StatusBadRequest, "invalidParameter.downloadCode", "downloadCode is invalid")
		return
	}
	id := rand.Text()
	g.links[id] = req.DownloadCode
	g.stats.Downloads++
	writeJSON(w, map[string]string{"downloadUrl": g.URL + "/files/" + id})
}

func (g *Gateway) handleFile(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	f, ok := g.files[g.links[r.PathValue("id")]]
	if ok {
		g.stats.FileGets++
	}
	g.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.content)))
	_, _ = w.Write(f.content)
}
