package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/notaryproject/tspclient-go"
	"github.com/notaryproject/tspclient-go/pki"
)

// Media types of RFC 3161 3.4.
const (
	QueryType = "application/timestamp-query"
	ReplyType = "application/timestamp-reply"
)

// DefaultTimeout bounds one request to a TSA when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// TSA is a time-stamping authority the client asks.
type TSA struct {
	// Name labels the TSA in errors, logs and Result; unique within a Client.
	Name string
	// URL is the TSA's http or https endpoint for application/timestamp-query.
	URL string
	// Policy, if set, is requested (reqPolicy) and required in the token (ErrPolicy).
	Policy asn1.ObjectIdentifier
}

// Options tunes a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests; nil means a client with http.DefaultTransport. Its own
	// Timeout, if any, applies besides Timeout below.
	HTTPClient *http.Client
	// Timeout bounds each request to a TSA (DefaultTimeout when zero); the context passed to
	// Stamp may end it sooner. No call blocks longer.
	Timeout time.Duration
	// Logger receives one line per stamp (debug) and per failure (warn); nil logs nothing.
	Logger *slog.Logger
}

// Client stamps checkpoints with a fixed set of TSAs and verifies every token it returns
// against its roots. It is safe for concurrent use.
type Client struct {
	tsas    []TSA
	roots   *x509.CertPool
	http    *http.Client
	timeout time.Duration
	log     *slog.Logger
}

// NewClient returns a client for tsas whose tokens must chain to roots. It refuses an empty
// list, a nil pool, a name used twice and a URL that is not absolute http(s).
func NewClient(roots *x509.CertPool, tsas []TSA, opts Options) (*Client, error) {
	if roots == nil {
		return nil, errors.New("tsa: NewClient: no TSA roots")
	}
	if len(tsas) == 0 {
		return nil, errors.New("tsa: NewClient: no TSAs")
	}
	seen := map[string]bool{}
	for _, t := range tsas {
		if t.Name == "" || seen[t.Name] {
			return nil, fmt.Errorf("tsa: NewClient: TSA name %q empty or used twice", t.Name)
		}
		seen[t.Name] = true
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("tsa: NewClient: TSA %q: URL %q is not an absolute http(s) URL", t.Name, t.URL)
		}
	}
	c := &Client{
		tsas:    append([]TSA(nil), tsas...),
		roots:   roots,
		http:    opts.HTTPClient,
		timeout: opts.Timeout,
		log:     opts.Logger,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// TSAs returns the configured TSAs, in order.
func (c *Client) TSAs() []TSA { return append([]TSA(nil), c.tsas...) }

// Error is the error of one TSA: it names the TSA and wraps one of the package's sentinel
// errors (errors.Is(err, ErrUnavailable) says whether a retry may help).
type Error struct {
	TSA string // the TSA's Name
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("TSA %q: %v", e.TSA, e.Err) }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Result is one TSA's answer in StampAll: a verified token or an *Error.
type Result struct {
	TSA   string
	Token *Token
	Err   error
}

// StampAll asks every TSA, concurrently, to stamp checkpoint and returns one Result per TSA,
// in configured order, once all have answered or failed. It returns within the client's
// Timeout (or when ctx ends).
func (c *Client) StampAll(ctx context.Context, checkpoint []byte) []Result {
	res := make([]Result, len(c.tsas))
	if len(checkpoint) == 0 {
		for i, t := range c.tsas {
			res[i] = Result{TSA: t.Name, Err: errors.New("tsa: StampAll: empty checkpoint")}
		}
		return res
	}
	var wg sync.WaitGroup
	for i, t := range c.tsas {
		wg.Go(func() {
			tok, err := c.stamp(ctx, t, checkpoint)
			res[i] = Result{TSA: t.Name, Token: tok, Err: err}
		})
	}
	wg.Wait()
	return res
}

// Stamp asks the TSA named name to stamp checkpoint, the signed checkpoint note exactly as
// stored, and returns the verified token. The request carries the SHA-256 of checkpoint, a
// random 159-bit nonce, certReq true and the TSA's policy if set. The response must be
// granted, carry the same imprint and nonce (and policy), and verify as Verify does.
// Errors are *Error wrapping ErrUnavailable (retry later), ErrRejected, ErrMalformed,
// ErrImprint, ErrNonce, ErrPolicy, ErrSignature or ErrUntrusted; a caller's mistake (an
// unknown name, an empty checkpoint) is a plain error and nothing is sent.
func (c *Client) Stamp(ctx context.Context, name string, checkpoint []byte) (*Token, error) {
	if len(checkpoint) == 0 {
		return nil, errors.New("tsa: Stamp: empty checkpoint")
	}
	for _, t := range c.tsas {
		if t.Name == name {
			return c.stamp(ctx, t, checkpoint)
		}
	}
	return nil, fmt.Errorf("tsa: no TSA named %q", name)
}

func (c *Client) stamp(ctx context.Context, t TSA, checkpoint []byte) (*Token, error) {
	start := time.Now()
	tok, err := c.exchange(ctx, t, checkpoint)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "tsa: stamp failed", slog.String("tsa", t.Name), slog.Any("err", err))
		return nil, &Error{TSA: t.Name, Err: err}
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "tsa: stamped", slog.String("tsa", t.Name),
		slog.Time("time", tok.Time), slog.String("serial", tok.Serial.String()), slog.Duration("took", time.Since(start)))
	return tok, nil
}

// exchange sends one request and checks the answer.
func (c *Client) exchange(ctx context.Context, t TSA, checkpoint []byte) (*Token, error) {
	req, err := tspclient.NewRequest(tspclient.RequestOptions{
		Content:       checkpoint,
		HashAlgorithm: crypto.SHA256,
		ReqPolicy:     t.Policy,
	})
	if err != nil {
		return nil, fmt.Errorf("tsa: building request: %w", err)
	}
	query, err := req.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("tsa: encoding request: %w", err)
	}
	body, err := c.post(ctx, t.URL, query)
	if err != nil {
		return nil, err
	}
	return checkResponse(body, req, t.Policy, checkpoint, c.roots)
}

// post sends query and returns the reply body, or an error wrapping ErrUnavailable,
// ErrRejected or ErrMalformed.
func (c *Client) post(ctx context.Context, u string, query []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(query))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	hr.Header.Set("Content-Type", QueryType)
	hr.Header.Set("Accept", ReplyType)
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // drained so the connection can be reused
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, fmt.Errorf("%w: HTTP %s", ErrUnavailable, resp.Status)
		}
		return nil, fmt.Errorf("%w: HTTP %s", ErrRejected, resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != ReplyType {
		return nil, fmt.Errorf("%w: content type %q, want %s", ErrMalformed, resp.Header.Get("Content-Type"), ReplyType)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the reply: %w", ErrUnavailable, err)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("%w: reply longer than %d bytes", ErrMalformed, MaxResponseSize)
	}
	return body, nil
}

// checkResponse checks a TimeStampResp body (DER) against the request it answers and returns
// the verified token: the status is granted (or granted with modifications), the token's
// imprint and nonce are the request's, its policy is policy when policy is set, and the token
// verifies over checkpoint against roots (see Verify).
func checkResponse(body []byte, req *tspclient.Request, policy asn1.ObjectIdentifier, checkpoint []byte, roots *x509.CertPool) (*Token, error) {
	if req == nil {
		return nil, errors.New("tsa: checkResponse: no request")
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("%w: reply of %d bytes, more than %d", ErrMalformed, len(body), MaxResponseSize)
	}
	var resp tspclient.Response
	rest, err := asn1.Unmarshal(body, &resp)
	if err != nil {
		return nil, fmt.Errorf("%w: reply is not a TimeStampResp: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the TimeStampResp", ErrMalformed, len(rest))
	}
	if s := resp.Status.Status; s != pki.StatusGranted && s != pki.StatusGrantedWithMods {
		return nil, fmt.Errorf("%w: %v %v", ErrRejected, resp.Status.Err(), resp.Status.StatusString)
	}
	if len(resp.TimestampToken.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: granted reply without a token", ErrMalformed)
	}
	token := resp.TimestampToken.FullBytes
	st, info, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	// The algorithm's parameters are not compared: some TSAs echo an absent NULL for a NULL.
	if mi := info.MessageImprint; !mi.HashAlgorithm.Algorithm.Equal(req.MessageImprint.HashAlgorithm.Algorithm) ||
		!bytes.Equal(mi.HashedMessage, req.MessageImprint.HashedMessage) {
		return nil, fmt.Errorf("%w: token imprint %x is not the request's %x", ErrImprint,
			info.MessageImprint.HashedMessage, req.MessageImprint.HashedMessage)
	}
	if req.Nonce != nil && (info.Nonce == nil || info.Nonce.Cmp(req.Nonce) != 0) {
		return nil, fmt.Errorf("%w: got %v, sent %v", ErrNonce, info.Nonce, req.Nonce)
	}
	if policy != nil && !policy.Equal(info.Policy) {
		return nil, fmt.Errorf("%w: token policy %v, want %v", ErrPolicy, info.Policy, policy)
	}
	// Verify's checks, on the token parsed above.
	if err := checkVerifyInput(token, roots); err != nil {
		return nil, err
	}
	return verifyParsed(token, st, info, checkpoint, roots)
}
