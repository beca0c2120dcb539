package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/verify"
	"golang.org/x/mod/sumdb/note"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console. Ledger and at least one Account are required; without
// Index the search, conversation and export pages answer 501, without Signer exports do,
// without Store the integrity page offers no verification.
type Options struct {
	// Ledger is the open ledger the console serves; every content page seals its access in it.
	Ledger *ledger.Ledger
	// Index answers searches (a *search.Index kept up to date with Run).
	Index api.Searcher
	// Signer signs export manifests: the ledger's checkpoint key.
	Signer note.Signer
	// Store is the ledger's store, read (never written) by a verification from the integrity page.
	Store verify.Reader
	// Accounts are the users (ParseAccounts).
	Accounts []Account
	// Proxy, if set, takes identity from a trusted reverse proxy's header.
	Proxy *Proxy
	// InsecureCookies drops the Secure attribute of the session cookie, for a demonstration
	// on plain HTTP over loopback only: a Secure cookie is not sent back over plain HTTP.
	InsecureCookies bool
	// Health, if set, returns the capture health (any JSON-marshalable value) that the
	// integrity page shows.
	Health func() any
	// HealthHistory, if set, is charted on the integrity page (run it beside the console).
	HealthHistory *HealthHistory
	// IdleTimeout ends a session unused this long (DefaultIdleTimeout if zero); MaxSessionAge
	// ends any session this long after sign-in (DefaultMaxSessionAge if zero).
	IdleTimeout, MaxSessionAge time.Duration
	// AccountFailures failed sign-ins of one account, or AddressFailures from one client
	// address, within LockoutWindow refuse further sign-ins of it until LockoutWindow has
	// passed since the last failure (defaults: 5, 20, 15 minutes).
	AccountFailures, AddressFailures int
	LockoutWindow                    time.Duration
	// Logger receives one line per refused request and failures (never a password, a
	// reason or content). Default: discard.
	Logger *slog.Logger
	// Now is the clock of sessions and lockouts. Default time.Now.
	Now func() time.Time
}

// Proxy takes the signed-in user's name from a header set by a reverse proxy that
// authenticated the user (single sign-on). The header is believed only on connections from
// Trusted addresses; the name must be one of Options.Accounts, whose role applies.
type Proxy struct {
	Header  string         // e.g. "X-Forwarded-User"
	Trusted []netip.Prefix // the proxy's addresses
}

// Defaults of Options.
const (
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultMaxSessionAge   = 8 * time.Hour
	DefaultAccountFailures = 5
	DefaultAddressFailures = 20
	DefaultLockoutWindow   = 15 * time.Minute
	// MaxSessions bounds the sessions held in memory.
	MaxSessions = 10000
	// MaxFormBytes bounds a form body.
	MaxFormBytes = 64 << 10
	// MaxWhyBytes bounds a reason.
	MaxWhyBytes = api.MaxWhyBytes
)

// ContentSecurityPolicy is the policy of every page: scripts, styles and images from the
// console itself only; nothing inline; no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// handler serves the console.
type handler struct {
	opts       Options
	l          *ledger.Ledger
	log        *slog.Logger
	mux        *http.ServeMux
	pages      map[string]*template.Template
	accounts   map[string]*Account
	hashes     map[string]*phc
	dummy      *phc // checked for an unknown name, so that it takes as long as a known one
	cookieName string
	sess       *sessions
	byAccount  *limiter
	byAddress  *limiter
	hashing    chan struct{} // bounds concurrent Argon2id computations

	verifyMu sync.Mutex
	lastMu   sync.Mutex
	last     *api.Verification
}

// New returns the console's http.Handler. It fails on a configuration it cannot serve
// safely: no ledger, no account, a bad hash, a proxy without header or trusted addresses.
func New(opts Options) (http.Handler, error) {
	if opts.Ledger == nil {
		return nil, errors.New("console: Options.Ledger is required")
	}
	if len(opts.Accounts) == 0 {
		return nil, errors.New("console: no accounts")
	}
	if opts.Proxy != nil && (opts.Proxy.Header == "" || len(opts.Proxy.Trusted) == 0) {
		return nil, errors.New("console: a proxy needs its header and its trusted addresses")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.IdleTimeout, DefaultIdleTimeout)
	def(&opts.MaxSessionAge, DefaultMaxSessionAge)
	def(&opts.LockoutWindow, DefaultLockoutWindow)
	if opts.AccountFailures <= 0 {
		opts.AccountFailures = DefaultAccountFailures
	}
	if opts.AddressFailures <= 0 {
		opts.AddressFailures = DefaultAddressFailures
	}
	h := &handler{opts: opts, l: opts.Ledger, log: opts.Logger, mux: http.NewServeMux(),
		accounts: map[string]*Account{}, hashes: map[string]*phc{}, hashing: make(chan struct{}, 2),
		sess:      &sessions{m: map[[32]byte]*session{}, max: MaxSessions, idle: opts.IdleTimeout, abs: opts.MaxSessionAge, now: opts.Now},
		byAccount: &limiter{fails: map[string]*failures{}, limit: opts.AccountFailures, window: opts.LockoutWindow, now: opts.Now},
		byAddress: &limiter{fails: map[string]*failures{}, limit: opts.AddressFailures, window: opts.LockoutWindow, now: opts.Now},
	}
	h.cookieName = "__Host-commseal"
	if opts.InsecureCookies {
		h.cookieName = "commseal"
	}
	for i := range opts.Accounts {
		a := &opts.Accounts[i]
		if err := checkName(a.Name); err != nil {
			return nil, err
		}
		if _, err := api.ParseRole(string(a.Role)); err != nil {
			return nil, fmt.Errorf("console: account %q: %w", a.Name, err)
		}
		if _, dup := h.accounts[a.Name]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateName, a.Name)
		}
		h.accounts[a.Name] = a
		if a.Hash == "-" {
			continue
		}
		p, err := parsePHC(a.Hash)
		if err != nil {
			return nil, fmt.Errorf("console: account %q: %w", a.Name, err)
		}
		h.hashes[a.Name] = p
		if h.dummy == nil {
			d, err := hashPassword(randomToken(), p.m, p.t, p.p)
			if err != nil {
				return nil, err
			}
			h.dummy, _ = parsePHC(d)
		}
	}
	if h.dummy == nil {
		d, _ := hashPassword(randomToken(), 8*1024, 1, 1)
		h.dummy, _ = parsePHC(d)
	}
	var err error
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

// parsePages parses every page with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

// need is what a route needs of its caller.
type need int

const (
	anyone   need = iota // the sign-in page
	signedIn             // integrity, access log: every role
	content              // officer, admin; and a reason
)

// request is what a page function gets.
type request struct {
	*http.Request
	ss   *session
	lang string
}

// routes registers the pages.
func (h *handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	h.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	h.route("GET /{$}", signedIn, h.home)
	h.route("GET /signin", anyone, h.signinPage)
	h.route("POST /signin", anyone, h.signin)
	h.route("POST /signout", signedIn, h.signout)
	h.route("GET /lang", anyone, h.setLang)
	h.route("GET /reason", signedIn, h.reasonPage)
	h.route("POST /reason", signedIn, h.setReason)
	h.route("GET /search", content, h.search)
	h.route("GET /conversation", content, h.conversation)
	h.route("GET /blob/{sha256}", content, h.blob)
	h.route("GET /alerts", content, h.alerts)
	h.route("POST /alerts/dispose", content, h.dispose)
	h.route("GET /export", content, h.exportPage)
	h.route("POST /export", content, h.export)
	h.route("GET /export/status", content, h.exportStatus)
	h.route("GET /export/download", content, h.download)
	h.route("GET /integrity", signedIn, h.integrity)
	h.route("POST /integrity/verify", signedIn, h.verify)
	h.route("GET /access", signedIn, h.accessLog)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, &request{Request: r, lang: h.language(r)}, http.StatusNotFound, "notfound")
	})
}

// ServeHTTP sets the security headers of every response, then serves it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if !h.opts.InsecureCookies {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	h.mux.ServeHTTP(w, r)
}

// httpError is a refusal with its status and the message key of its page.
type httpError struct {
	status int
	key    string // a message key (see i18n.go)
	detail string // shown after the message; never content
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s %s", e.status, e.key, e.detail) }

func refuse(status int, key string) error { return &httpError{status: status, key: key} }

func refusef(status int, key string, format string, args ...any) error {
	return &httpError{status: status, key: key, detail: fmt.Sprintf(format, args...)}
}

// route registers fn for pattern behind the session, CSRF, role and reason checks, in that
// order; a refused request reads nothing and seals nothing.
func (h *handler) route(pattern string, n need, fn func(w http.ResponseWriter, r *request) error) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, hr *http.Request) {
		r := &request{Request: hr, lang: h.language(hr)}
		if hr.Method == http.MethodPost {
			hr.Body = http.MaxBytesReader(w, hr.Body, MaxFormBytes)
		}
		r.ss = h.session(w, hr)
		err := h.check(r, n)
		if err == nil {
			err = fn(w, r)
		}
		if err != nil {
			h.fail(w, r, pattern, err)
		}
	})
}

// check refuses a request that may not reach its page.
func (h *handler) check(r *request, n need) error {
	if r.Method == http.MethodPost {
		// Every form carries the session's CSRF token, the sign-in form included (its
		// session is anonymous); it is checked before anything else is read.
		if r.ss == nil || !sameToken(r.PostFormValue("csrf"), r.ss.csrf) {
			return refuse(http.StatusForbidden, "csrf")
		}
	}
	if n == anyone {
		return nil
	}
	if r.ss == nil || r.ss.name == "" {
		if r.Method == http.MethodGet {
			return errSignIn
		}
		return refuse(http.StatusUnauthorized, "signedout")
	}
	if n == content {
		if r.ss.role != api.RoleOfficer && r.ss.role != api.RoleAdmin {
			return refuse(http.StatusForbidden, "nocontent")
		}
		if h.sess.reason(r.ss) == "" {
			if r.Method == http.MethodGet {
				return errReason
			}
			return refuse(http.StatusBadRequest, "needreason")
		}
	}
	return nil
}

// Redirections a check asks for.
var (
	errSignIn = errors.New("sign in first")
	errReason = errors.New("give a reason first")
)

// fail answers err.
func (h *handler) fail(w http.ResponseWriter, r *request, pattern string, err error) {
	var he *httpError
	switch {
	case errors.Is(err, errSignIn):
		http.Redirect(w, r.Request, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	case errors.Is(err, errReason):
		http.Redirect(w, r.Request, "/reason?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	case errors.As(err, &he):
	case errors.Is(err, ledger.ErrShredded):
		he = &httpError{status: http.StatusGone, key: "shredded"}
	case errors.Is(err, ledger.ErrNotFound):
		he = &httpError{status: http.StatusNotFound, key: "notfound"}
	case errors.Is(err, context.Canceled):
		return
	default:
		h.log.Error("console: request failed", "route", pattern, "err", err)
		he = &httpError{status: http.StatusInternalServerError, key: "internal"}
	}
	who := ""
	if r.ss != nil {
		who = r.ss.name
	}
	h.log.Warn("console: refused", "route", pattern, "who", who, "status", he.status, "why", he.key)
	h.renderError(w, r, he.status, he.key, he.detail)
}

// session returns the request's session: from a trusted proxy's header, else from the cookie.
func (h *handler) session(w http.ResponseWriter, r *http.Request) *session {
	var id string
	if c, err := r.Cookie(h.cookieName); err == nil {
		id = c.Value
	}
	ss := h.sess.get(id)
	if h.opts.Proxy == nil {
		return ss
	}
	name := r.Header.Get(h.opts.Proxy.Header)
	if name == "" || !h.fromProxy(r) {
		if name != "" {
			h.log.Warn("console: identity header from an untrusted address ignored", "addr", r.RemoteAddr)
		}
		if ss != nil && ss.proxy {
			return nil // a proxy's session is good only through the proxy
		}
		return ss
	}
	if ss != nil && ss.proxy && ss.name == name {
		return ss
	}
	a := h.accounts[name]
	if a == nil {
		h.log.Warn("console: the proxy named an unknown account")
		return nil
	}
	if ss != nil {
		h.sess.drop(ss)
	}
	ns, nid := h.sess.create(a.Name, a.Role, true)
	http.SetCookie(w, h.cookie(nid, 0))
	return ns
}

// fromProxy reports whether r came from a trusted proxy address.
func (h *handler) fromProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range h.opts.Proxy.Trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr is the client's address, for rate limiting.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// page is what every template gets.
type page struct {
	Lang    string
	tr      map[string]string
	User    string
	Role    string
	CSRF    string
	Why     string
	Content bool // the user may read content
	Proxy   bool
	Here    string // this page's URL, for the language switch
	Active  string
	Error   string
	Notice  string
	Refresh int // seconds after which the page reloads itself (0: never)
	D       any
}

// T returns the UI text of key in the page's language.
func (p *page) T(key string) string {
	if s, ok := p.tr[key]; ok {
		return s
	}
	if s, ok := texts["en"][key]; ok {
		return s
	}
	return key
}

// newPage starts a page for r.
func (h *handler) newPage(r *request, active string, d any) *page {
	p := &page{Lang: r.lang, tr: texts[r.lang], Here: r.URL.RequestURI(), Active: active, D: d}
	if r.ss != nil {
		p.CSRF = r.ss.csrf
		p.User, p.Role, p.Proxy = r.ss.name, string(r.ss.role), r.ss.proxy
		p.Content = r.ss.role == api.RoleOfficer || r.ss.role == api.RoleAdmin
		p.Why = h.sess.reason(r.ss)
	}
	return p
}

// render executes the page template name into a buffer, then answers it with status.
func (h *handler) render(w http.ResponseWriter, status int, name string, p *page) error {
	t := h.pages[name]
	if t == nil {
		return fmt.Errorf("console: no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("console: rendering %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// renderError answers an error page.
func (h *handler) renderError(w http.ResponseWriter, r *request, status int, key string, detail ...string) {
	p := h.newPage(r, "", nil)
	p.Error = p.T(key)
	if len(detail) > 0 && detail[0] != "" {
		p.Error += " " + detail[0]
	}
	if err := h.render(w, status, "error", p); err != nil {
		h.log.Error("console: rendering an error page", "err", err)
		http.Error(w, http.StatusText(status), status)
	}
}

// localPath returns next if it is a path on this site, else "/".
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	return next
}

// checkText refuses text that is too long, not UTF-8 or holds control characters.
func checkText(s string, max int) error {
	switch {
	case len(s) > max:
		return refusef(http.StatusBadRequest, "badinput", "(> %d bytes)", max)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
		return refuse(http.StatusBadRequest, "badinput")
	}
	return nil
}

// home sends the user to the first page their role may use.
func (h *handler) home(w http.ResponseWriter, r *request) error {
	to := "/integrity"
	if r.ss.role == api.RoleOfficer || r.ss.role == api.RoleAdmin {
		to = "/search"
	}
	http.Redirect(w, r.Request, to, http.StatusSeeOther)
	return nil
}

// signinPage shows the sign-in form, with an anonymous session for its CSRF token.
func (h *handler) signinPage(w http.ResponseWriter, r *request) error {
	if r.ss != nil && r.ss.name != "" {
		http.Redirect(w, r.Request, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	if r.ss == nil {
		ss, id := h.sess.create("", "", false)
		http.SetCookie(w, h.cookie(id, 0))
		r.ss = ss
	}
	p := h.newPage(r, "signin", map[string]string{"Next": localPath(r.URL.Query().Get("next"))})
	return h.render(w, http.StatusOK, "signin", p)
}

// signin checks a name and password. A locked account or address is refused without the
// password being looked at; an unknown name costs the same hashing as a known one.
func (h *handler) signin(w http.ResponseWriter, r *request) error {
	name, password := r.PostFormValue("name"), r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"))
	addr := clientAddr(r.Request)
	again := func(status int, key string) error {
		p := h.newPage(r, "signin", map[string]string{"Next": next})
		p.Error = p.T(key)
		return h.render(w, status, "signin", p)
	}
	if len(name) > api.MaxNameBytes || len(password) > 1024 {
		return again(http.StatusBadRequest, "badsignin")
	}
	if h.byAccount.blocked(name) || h.byAddress.blocked(addr) {
		h.log.Warn("console: sign-in refused: locked out", "addr", addr)
		return again(http.StatusTooManyRequests, "lockedout")
	}
	select {
	case h.hashing <- struct{}{}:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	hash, known := h.hashes[name]
	if !known {
		hash = h.dummy
	}
	ok := hash.check(password) && known
	<-h.hashing
	if !ok {
		h.byAccount.fail(name)
		h.byAddress.fail(addr)
		h.log.Warn("console: sign-in failed", "addr", addr)
		return again(http.StatusUnauthorized, "badsignin")
	}
	h.byAccount.reset(name)
	a := h.accounts[name]
	h.sess.drop(r.ss) // a new id at sign-in: no session fixation
	_, id := h.sess.create(a.Name, a.Role, false)
	http.SetCookie(w, h.cookie(id, 0))
	h.log.Info("console: signed in", "who", a.Name, "role", string(a.Role))
	http.Redirect(w, r.Request, next, http.StatusSeeOther)
	return nil
}

// signout ends the session.
func (h *handler) signout(w http.ResponseWriter, r *request) error {
	h.sess.drop(r.ss)
	http.SetCookie(w, h.cookie("", -1))
	http.Redirect(w, r.Request, "/signin", http.StatusSeeOther)
	return nil
}

// setLang sets the language cookie and goes back.
func (h *handler) setLang(w http.ResponseWriter, r *request) error {
	lang := r.URL.Query().Get("to")
	if _, ok := texts[lang]; !ok {
		return refuse(http.StatusBadRequest, "badinput")
	}
	http.SetCookie(w, &http.Cookie{Name: "lang", Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: !h.opts.InsecureCookies, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r.Request, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
	return nil
}

// reasonPage asks for the reason (the case) content is read for.
func (h *handler) reasonPage(w http.ResponseWriter, r *request) error {
	p := h.newPage(r, "reason", map[string]string{"Next": localPath(r.URL.Query().Get("next"))})
	return h.render(w, http.StatusOK, "reason", p)
}

// setReason keeps the reason in the session until the user changes it or signs out.
func (h *handler) setReason(w http.ResponseWriter, r *request) error {
	why := strings.TrimSpace(r.PostFormValue("why"))
	next := localPath(r.PostFormValue("next"))
	if why == "" {
		p := h.newPage(r, "reason", map[string]string{"Next": next})
		p.Error = p.T("needreason")
		return h.render(w, http.StatusBadRequest, "reason", p)
	}
	if err := checkText(why, MaxWhyBytes); err != nil {
		return err
	}
	h.sess.setReason(r.ss, why)
	http.Redirect(w, r.Request, next, http.StatusSeeOther)
	return nil
}

// accessor returns the accessor that seals the user's reads for purpose.
func (h *handler) accessor(r *request, purpose string) *ledger.Accessor {
	return h.l.Access(r.ss.name, h.sess.reason(r.ss)).For(purpose)
}
