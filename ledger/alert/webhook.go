package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	// HeaderSignature carries "sha256=" and the lowercase hex HMAC-SHA256, under the shared
	// secret, of the timestamp header's value, a ".", and the body.
	HeaderSignature = "X-Commseal-Signature"
	// HeaderTimestamp carries the Unix time in seconds at which the request was signed. It is
	// inside the MAC, so a receiver that refuses old timestamps refuses replays.
	HeaderTimestamp = "X-Commseal-Timestamp"
	// HeaderIdempotencyKey carries Alert.ID: every attempt to deliver one alert has the same
	// key, and the receiver deduplicates on it.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// DefaultMaxSkew is how far from the receiver's clock VerifySignature accepts a timestamp by
// default.
const DefaultMaxSkew = 5 * time.Minute

// WebhookOptions configures a Webhook.
type WebhookOptions struct {
	// URL is the receiver's endpoint, http or https. Required.
	URL string
	// Secret is the shared HMAC key. Required, at least 16 bytes.
	Secret []byte
	// Client sends the requests. Default: a client with a 30 s timeout that does not follow
	// redirects (a redirected POST would arrive as a GET without its body); a 3xx is retried.
	Client *http.Client
	// IncludeExcerpt sends Alert.Excerpt when it is set. Default false: the body carries
	// references only.
	IncludeExcerpt bool
	// Now gives the signing time. Default time.Now.
	Now func() time.Time
}

// Webhook is a Sender that POSTs each alert as JSON (the Alert's JSON form) to a URL, signed
// with HMAC-SHA256 (HeaderSignature over HeaderTimestamp and the body) and with the alert's ID
// as HeaderIdempotencyKey. A 2xx reply is delivery; 408, 429 (honouring Retry-After), 5xx and
// network errors are retried by the Outbox; any other 4xx is permanent. Receivers check
// requests with VerifySignature. Put it behind an Outbox: on its own it does not retry.
type Webhook struct {
	url     string
	secret  []byte
	client  *http.Client
	excerpt bool
	now     func() time.Time
}

// NewWebhook checks opts and returns a Webhook.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if _, err := checkURL("webhook", opts.URL); err != nil {
		return nil, err
	}
	if len(opts.Secret) < 16 {
		return nil, errors.New("alert: webhook secret must be at least 16 bytes")
	}
	w := &Webhook{url: opts.URL, secret: bytes.Clone(opts.Secret), client: opts.Client,
		excerpt: opts.IncludeExcerpt, now: opts.Now}
	if w.client == nil {
		w.client = defaultClient()
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Send POSTs a once. See Sender.
func (w *Webhook) Send(ctx context.Context, a Alert) error {
	a, err := prepare(a, w.excerpt)
	if err != nil {
		return err
	}
	body, err := json.Marshal(&a)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAlert, err)
	}
	now := w.now()
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return redact(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "commseal-alert/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	req.Header.Set(HeaderIdempotencyKey, a.ID)
	resp, err := w.client.Do(req)
	if err != nil {
		return redact(err)
	}
	defer resp.Body.Close()
	return classify(resp, now, readReply(resp))
}

// Sign returns the HeaderSignature value for a request signed at timestamp (the
// HeaderTimestamp value) with body: "sha256=" and hex(HMAC-SHA256(secret, timestamp + "." +
// body)).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature is for receivers: it checks that signature (the HeaderSignature value) is
// the MAC of timestamp (the HeaderTimestamp value) and body under secret, in constant time,
// and that timestamp is within maxSkew of now (DefaultMaxSkew when maxSkew is 0). A receiver
// should also deduplicate on HeaderIdempotencyKey: within the skew a captured request can be
// sent again. Errors wrap ErrBadSignature or ErrStaleTimestamp.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	hexMAC, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: no sha256= prefix", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: not %d hex bytes", ErrBadSignature, sha256.Size)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrBadSignature, shorten(timestamp, 32))
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, timestamp, body), "sha256="))
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: MAC does not match", ErrBadSignature)
	}
	d := now.Sub(time.Unix(sec, 0))
	if d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: signed at %d, now %d", ErrStaleTimestamp, sec, now.Unix())
	}
	return nil
}
