package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/verify"
	"golang.org/x/mod/sumdb/note"
)

// Searcher is what the handler needs of a search index; *search.Index is one.
type Searcher interface {
	Search(ctx context.Context, rec search.Recorder, q search.Query) (*search.Result, error)
	Stats() search.Stats
}

// Options configure the handler. Ledger and Auth are required; without Index the search and
// query exports answer 501, without Signer exports answer 501, without Store verification
// answers 501.
type Options struct {
	// Ledger is the open ledger the handler serves; every content read is sealed in it.
	Ledger *ledger.Ledger
	// Index answers searches (a *search.Index kept up to date with Run).
	Index Searcher
	// Auth says who a request is from (Tokens, Certificates, AnyOf).
	Auth Authenticator
	// Signer signs export manifests: the ledger's checkpoint key (ledger.Options.Signing.Signer).
	Signer note.Signer
	// Store is the ledger's store, read (never written) by POST /v1/verify.
	Store verify.Reader
	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes if zero).
	MaxBodyBytes int64
	// Logger receives one line per request (principal, route, status; never a token or a
	// reason) and failures. Default: discard.
	Logger *slog.Logger
	// Now is the clock of verification results. Default time.Now.
	Now func() time.Time
}

// Limits of requests.
const (
	DefaultMaxBodyBytes = 4 << 20
	// MaxWhyBytes bounds the reason of a content request.
	MaxWhyBytes = 1024
	// MaxExportEntries bounds the entries of one export.
	MaxExportEntries = search.MaxLimit
)

// WhyHeader carries the reason of a content request (or the JSON field "why").
const WhyHeader = "X-Commseal-Why"

// handler serves the API.
type handler struct {
	opts Options
	l    *ledger.Ledger
	log  *slog.Logger
	mux  *http.ServeMux

	verifyMu sync.Mutex // held while a verification runs
	lastMu   sync.Mutex // guards last
	last     *Verification
}

// New returns the API's http.Handler (see the package documentation for the endpoints). A
// handler without Options.Ledger or Options.Auth fails closed: it answers every request 500
// and logs why.
func New(opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Ledger == nil || opts.Auth == nil {
		log.Error("api: misconfigured: Options.Ledger and Options.Auth are required; refusing every request")
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusInternalServerError, "the API is misconfigured")
		})
	}
	h := &handler{opts: opts, l: opts.Ledger, log: log, mux: http.NewServeMux()}
	h.route("POST /v1/search", content, h.search)
	h.route("GET /v1/entries/{i}", content, h.entry)
	h.route("GET /v1/blobs/{sha256}", content, h.blob)
	h.route("POST /v1/export", content, h.export)
	h.route("GET /v1/checkpoint", integrity, h.checkpoint)
	h.route("GET /v1/proof/{i}", integrity, h.proof)
	h.route("GET /v1/consistency", integrity, h.consistency)
	h.route("GET /v1/status", integrity, h.status)
	h.route("POST /v1/verify", integrity, h.verify)
	h.route("GET /v1/access", integrity, h.access)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return h
}

// need is what a route needs of a principal.
type need int

const (
	content   need = iota // content: officer, admin; a reason is required
	integrity             // proofs and status: auditor, officer, admin
)

// request is what a route's function gets: the request, its principal and, for content, the
// reason from the header (a JSON body's "why" is read by the route).
type request struct {
	*http.Request
	who Principal
	why string
}

// route registers fn for pattern behind authentication and the role check.
func (h *handler) route(pattern string, n need, fn func(w http.ResponseWriter, r *request) error) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := h.opts.Auth.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="commseal"`)
			h.log.Warn("api: refused", "route", pattern, "status", http.StatusUnauthorized, "err", err)
			writeError(w, http.StatusUnauthorized, "not authenticated")
			return
		}
		allowed := p.Role.integrity()
		if n == content {
			allowed = p.Role.content()
		}
		if !allowed {
			h.log.Warn("api: refused", "route", pattern, "who", p.Name, "role", string(p.Role), "status", http.StatusForbidden)
			writeError(w, http.StatusForbidden, fmt.Sprintf("role %s may not use %s", p.Role, pattern))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		req := &request{Request: r, who: p, why: r.Header.Get(WhyHeader)}
		err = fn(w, req)
		status := http.StatusOK
		if err != nil {
			status = h.fail(w, err)
		}
		h.log.Info("api: served", "route", pattern, "who", p.Name, "role", string(p.Role), "status", status)
	})
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// httpError is an error with the status it answers.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// errStarted marks a failure after the response began: nothing more can be written.
type errStarted struct{ err error }

func (e *errStarted) Error() string { return e.err.Error() }
func (e *errStarted) Unwrap() error { return e.err }

// fail answers err and returns the status.
func (h *handler) fail(w http.ResponseWriter, err error) int {
	var he *httpError
	var started *errStarted
	var mbe *http.MaxBytesError
	status := http.StatusInternalServerError
	msg := "internal error"
	switch {
	case errors.As(err, &started):
		h.log.Error("api: failed while streaming the response", "err", err)
		return 0
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &mbe):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case errors.Is(err, search.ErrQuery):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, ledger.ErrNotCovered):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, ledger.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, capture.ErrBlobNotFound), errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, ledger.ErrShredded):
		status, msg = http.StatusGone, err.Error()
	case errors.Is(err, ledger.ErrClosed), errors.Is(err, search.ErrClosed):
		status, msg = http.StatusServiceUnavailable, "the ledger is closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "request canceled"
	}
	if status >= 500 {
		h.log.Error("api: request failed", "status", status, "err", err)
	}
	writeError(w, status, msg)
	return status
}

// writeJSON answers v as JSON with status 200.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("api: encoding the response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(append(b, '\n'))
	if err != nil {
		return &errStarted{err}
	}
	return nil
}

// writeError answers {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a JSON body into v strictly: one object, no unknown fields.
func decode(r *request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "bad request body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad request body: data after the JSON object")
	}
	return nil
}

// reason returns the reason of a content request: the header, or body (a JSON "why") when the
// header is absent. It refuses a missing, overlong or unprintable one with 400.
func reason(r *request, body string) (string, error) {
	why := r.why
	if why == "" {
		why = body
	}
	why = strings.TrimSpace(why)
	switch {
	case why == "":
		return "", errorf(http.StatusBadRequest, "a reason is required: the %s header or the JSON field \"why\"", WhyHeader)
	case len(why) > MaxWhyBytes:
		return "", errorf(http.StatusBadRequest, "the reason is longer than %d bytes", MaxWhyBytes)
	case !utf8.ValidString(why) || strings.ContainsFunc(why, unicode.IsControl):
		return "", errorf(http.StatusBadRequest, "the reason must be UTF-8 text without control characters")
	}
	return why, nil
}

// accessor returns the accessor that seals the request's reads, for purpose.
func (h *handler) accessor(r *request, why, purpose string) *ledger.Accessor {
	return h.l.Access(r.who.Name, why).For(purpose)
}
