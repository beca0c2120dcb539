package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrAPI is wrapped by errors that DingTalk's OpenAPI answered (as opposed to network errors).
var ErrAPI = errors.New("dingtalk: OpenAPI error")

// APIError is an error answer of DingTalk's OpenAPI. It wraps ErrAPI.
type APIError struct {
	Status     int           // HTTP status
	Code       string        // DingTalk's error code, e.g. "Forbidden.AccessDenied.QpsLimitForApi"
	Message    string        // DingTalk's message
	RetryAfter time.Duration // from a Retry-After header, if any
}

// Error describes the answer.
func (e *APIError) Error() string {
	return fmt.Sprintf("dingtalk: OpenAPI answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns ErrAPI.
func (e *APIError) Unwrap() error { return ErrAPI }

// Throttled reports whether the answer is a rate limit (HTTP 429, or a QPS-limit code).
func (e *APIError) Throttled() bool {
	return e.Status == http.StatusTooManyRequests || strings.Contains(e.Code, "QpsLimit") || strings.Contains(e.Code, "Throttl")
}

// Unauthorized reports whether the access token was refused.
func (e *APIError) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Code == "InvalidAuthentication"
}

// maxAPIBody bounds an OpenAPI JSON answer.
const maxAPIBody = 1 << 20

// postJSON posts body to url and decodes a 200 answer into out; other answers become *APIError.
func postJSON(ctx context.Context, hc *http.Client, url string, header http.Header, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		var eb struct{ Code, Message string }
		if json.Unmarshal(rb, &eb) == nil {
			e.Code, e.Message = eb.Code, eb.Message
		} else {
			e.Message = string(bytes.ToValidUTF8(rb[:min(len(rb), 200)], nil))
		}
		if s, err := time.ParseDuration(resp.Header.Get("Retry-After") + "s"); err == nil && s > 0 {
			e.RetryAfter = s
		}
		return e
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return fmt.Errorf("%w: undecodable answer from %s: %v", ErrAPI, url, err)
	}
	return nil
}

// TokenCache holds an app's OpenAPI access token (POST /v1.0/oauth2/accessToken), refreshes it
// before it expires, and lets concurrent callers share one refresh. It is safe for concurrent
// use.
type TokenCache struct {
	host, appKey, appSecret string
	hc                      *http.Client

	mu         sync.Mutex
	tok        string
	refreshAt  time.Time // when the token is due for refresh (before its expiry)
	expires    time.Time
	refreshing chan struct{} // closed when the refresh in flight ends
	lastErr    error         // the outcome of the last refresh
	refreshes  int
}

// NewTokenCache returns a cache for the app's token at host (e.g. HostMainland). hc nil means a
// client with a 30 s timeout.
func NewTokenCache(host, appKey, appSecret string, hc *http.Client) *TokenCache {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &TokenCache{host: host, appKey: appKey, appSecret: appSecret, hc: hc}
}

// Token returns a valid access token, fetching one if none is cached or the cached one is
// within its refresh margin (a fifth of its lifetime, at most 5 minutes). Callers that arrive
// during a refresh wait for it instead of starting their own.
func (c *TokenCache) Token(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		now := time.Now()
		if c.tok != "" && now.Before(c.refreshAt) {
			tok := c.tok
			c.mu.Unlock()
			return tok, nil
		}
		if ch := c.refreshing; ch != nil {
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-ch:
			}
			c.mu.Lock()
			tok, err, ok := c.tok, c.lastErr, c.tok != "" && time.Now().Before(c.expires)
			c.mu.Unlock()
			if err != nil {
				return "", err
			}
			if ok {
				return tok, nil
			}
			continue
		}
		ch := make(chan struct{})
		c.refreshing = ch
		c.mu.Unlock()

		// The refresh is shared: it must not fail because the one caller who started it left.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		var out struct {
			AccessToken string `json:"accessToken"`
			ExpireIn    int64  `json:"expireIn"`
		}
		err := postJSON(rctx, c.hc, c.host+"/v1.0/oauth2/accessToken", nil,
			map[string]string{"appKey": c.appKey, "appSecret": c.appSecret}, &out)
		cancel()
		if err == nil && (out.AccessToken == "" || out.ExpireIn <= 0) {
			err = fmt.Errorf("%w: access token answer without a token or lifetime", ErrAPI)
		}
		c.mu.Lock()
		c.refreshing = nil
		c.lastErr = err
		if err == nil {
			life := time.Duration(out.ExpireIn) * time.Second
			c.tok = out.AccessToken
			c.expires = time.Now().Add(life)
			c.refreshAt = c.expires.Add(-min(life/5, 5*time.Minute))
			c.refreshes++
		}
		tok := c.tok
		c.mu.Unlock()
		close(ch)
		if err != nil {
			return "", fmt.Errorf("dingtalk: access token: %w", err)
		}
		return tok, nil
	}
}

// Invalidate drops tok if it is the cached token (the API refused it), so the next Token call
// fetches a new one.
func (c *TokenCache) Invalidate(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == tok {
		c.tok = ""
	}
}

// Refreshes reports how many tokens the cache has fetched.
func (c *TokenCache) Refreshes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshes
}
