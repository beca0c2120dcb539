package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sender delivers one alert to a receiver, once, now: an Outbox calls it from Run and retries
// when it fails. nil means delivered. An error that wraps ErrPermanent makes the outbox keep
// the alert as a dead letter; a *DeliveryError with RetryAfter set asks it to wait that long
// before the next attempt; any other error is retried with backoff. Webhook and DingTalk are
// Senders.
type Sender interface {
	Send(ctx context.Context, a Alert) error
}

// DeliveryError is a refusal by the receiver: its HTTP status, or for DingTalk its errcode
// and errmsg.
type DeliveryError struct {
	StatusCode int           // the HTTP status
	Code       int           // DingTalk's errcode (0 for a plain webhook)
	Msg        string        // the receiver's explanation, if any, shortened
	Permanent  bool          // retrying the same alert cannot succeed
	RetryAfter time.Duration // the receiver asked to wait this long (Retry-After), 0 if not
}

// Error describes the refusal: status, errcode, the receiver's message, and whether it is
// permanent or when to retry.
func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("alert: delivery refused: HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != 0 {
		fmt.Fprintf(&b, ", errcode %d", e.Code)
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, ": %q", e.Msg)
	}
	if e.Permanent {
		b.WriteString(" (permanent)")
	} else if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is makes a permanent DeliveryError match ErrPermanent.
func (e *DeliveryError) Is(target error) bool { return target == ErrPermanent && e.Permanent }

// defaultClient is the HTTP client of senders given none: a 30 s timeout, no redirects.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxReply bounds how much of a reply body is read.
const maxReply = 64 << 10

// classify turns an HTTP reply into nil (2xx) or a *DeliveryError: 408 and 429 and every
// status other than 4xx are retried, the other 4xx are permanent. msg is the reply's text.
func classify(resp *http.Response, now time.Time, msg string) error {
	c := resp.StatusCode
	if c >= 200 && c < 300 {
		return nil
	}
	e := &DeliveryError{StatusCode: c, Msg: shorten(msg, 200)}
	if c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests {
		e.Permanent = true
		return e
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): a number of seconds or an
// HTTP date. Anything else, or a date in the past, gives 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return min(t.Sub(now), maxRetryAfter)
}

// maxRetryAfter caps what a receiver can ask for: a day.
const maxRetryAfter = 24 * time.Hour

// readReply reads at most maxReply bytes of a reply and drains the rest, so that the
// connection can be reused.
func readReply(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return string(b)
}

// redact removes the URL from a transport error: a webhook URL may hold a token (DingTalk's
// access_token, a sign), and errors end in logs.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("alert: %s request: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return fmt.Errorf("alert: request: %w", err)
}

func shorten(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// checkURL parses an endpoint URL and requires http or https with a host.
func checkURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("alert: %s URL does not parse", what) // the error would repeat the URL
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alert: %s URL must be http or https with a host", what)
	}
	return u, nil
}
