package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/export"
)

// session is one browser's state, kept on the server; the cookie holds only its random id.
// A session that is not signed in (name "") carries the CSRF token of the sign-in form.
type session struct {
	key      [sha256.Size]byte // SHA-256 of the cookie's id: the map key (the id itself is not kept)
	name     string
	role     api.Role
	proxy    bool   // signed in by a trusted proxy's header
	csrf     string // the token every form of this session carries
	why      string // the reason (case) content is read for, once per case
	created  time.Time
	lastSeen time.Time
	bundle   *heldBundle // the latest export, until downloaded or the session ends
}

// heldBundle is an export being built, or built and waiting for its one download. Its fields
// are guarded by sessions.mu.
type heldBundle struct {
	id      string
	matched int
	phase   string // the phase export.Build reports: "read", "prove", "write"
	done    int
	total   int
	b       *export.Bundle // set when built
	err     error          // set when the build failed
	cancel  func()         // stops the build
}

// exportState is what the status page shows of an export.
type exportState struct {
	Matched, Done, Total int
	Phase                string
	Ready, Failed        bool
	Entries              int
	TreeSize             uint64
	Attached, Missing    int
	err                  error // why the build failed
}

// sessions holds the sessions in memory, bounded.
type sessions struct {
	mu   sync.Mutex
	m    map[[sha256.Size]byte]*session
	max  int
	idle time.Duration
	abs  time.Duration
	now  func() time.Time
}

// randomToken returns 32 random bytes in unpadded base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create makes a session for name with role (an anonymous one when name is "") and returns it
// with its cookie value. The name and role never change after.
func (s *sessions) create(name string, role api.Role, proxy bool) (*session, string) {
	id := randomToken()
	now := s.now()
	ss := &session{key: sha256.Sum256([]byte(id)), csrf: randomToken(), created: now, lastSeen: now, name: name, role: role, proxy: proxy}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.evictLocked(now)
	}
	s.m[ss.key] = ss
	return ss, id
}

// evictLocked drops expired sessions, then, if still full, the anonymous ones, then the oldest.
func (s *sessions) evictLocked(now time.Time) {
	for _, ss := range s.m {
		if s.expired(ss, now) {
			s.removeLocked(ss)
		}
	}
	if len(s.m) < s.max {
		return
	}
	for _, ss := range s.m {
		if ss.name == "" {
			s.removeLocked(ss)
		}
	}
	for len(s.m) >= s.max {
		var oldest *session
		for _, ss := range s.m {
			if oldest == nil || ss.lastSeen.Before(oldest.lastSeen) {
				oldest = ss
			}
		}
		s.removeLocked(oldest)
	}
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) > s.idle || now.Sub(ss.created) > s.abs
}

// get returns the live session of id and marks it seen; an expired one is dropped.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[k]
	if ss == nil {
		return nil
	}
	if s.expired(ss, now) {
		s.removeLocked(ss)
		return nil
	}
	ss.lastSeen = now
	return ss
}

// drop ends a session, stopping its export.
func (s *sessions) drop(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(ss)
}

// removeLocked forgets a session and stops its export.
func (s *sessions) removeLocked(ss *session) {
	if ss.bundle != nil {
		ss.bundle.cancel()
		ss.bundle = nil
	}
	delete(s.m, ss.key)
}

// reason returns the session's reason.
func (s *sessions) reason(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ss.why
}

// setReason sets the session's reason.
func (s *sessions) setReason(ss *session, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.why = why
}

// start makes hb the session's export, stopping and dropping any earlier one.
func (s *sessions) start(ss *session, hb *heldBundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := ss.bundle; old != nil {
		old.cancel()
	}
	ss.bundle = hb
}

// progress records how far hb's build is.
func (s *sessions) progress(hb *heldBundle, phase string, done, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hb.phase, hb.done, hb.total = phase, done, total
}

// finish records the end of hb's build.
func (s *sessions) finish(hb *heldBundle, b *export.Bundle, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hb.b, hb.err = b, err
}

// state returns the state of the session's export if id names it.
func (s *sessions) state(ss *session, id string) (exportState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hb := ss.bundle
	if hb == nil || !sameToken(id, hb.id) {
		return exportState{}, false
	}
	st := exportState{Matched: hb.matched, Phase: hb.phase, Done: hb.done, Total: hb.total, Ready: hb.b != nil, Failed: hb.err != nil, err: hb.err}
	if hb.b != nil {
		st.Entries, st.TreeSize, st.Attached, st.Missing = hb.b.Entries, hb.b.TreeSize, hb.b.Attachments, hb.b.Unavailable
	}
	return st, true
}

// take returns and forgets the session's built export if id names it.
func (s *sessions) take(ss *session, id string) *export.Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.bundle == nil || !sameToken(id, ss.bundle.id) || ss.bundle.b == nil {
		return nil
	}
	b := ss.bundle.b
	ss.bundle = nil
	return b
}

// sameToken compares two tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// cookie returns the session cookie for id (maxAge < 0 deletes it).
func (h *handler) cookie(id string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: h.cookieName, Value: id, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: !h.opts.InsecureCookies, SameSite: http.SameSiteStrictMode}
}

// limiter counts failed sign-ins per key (an account name, a client address) in a window and
// refuses a key that reached its limit until the window has passed since its last failure.
type limiter struct {
	mu     sync.Mutex
	fails  map[string]*failures
	limit  int
	window time.Duration
	now    func() time.Time
}

type failures struct {
	n    int
	last time.Time
}

// blocked reports whether key reached its limit within the window.
func (l *limiter) blocked(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[key]
	if f == nil {
		return false
	}
	if l.now().Sub(f.last) > l.window {
		delete(l.fails, key)
		return false
	}
	return f.n >= l.limit
}

// fail counts a failure of key.
func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.fails[key]
	if f == nil || now.Sub(f.last) > l.window {
		if len(l.fails) > 100000 { // bound memory under a spray of names: forget the stale
			for k, x := range l.fails {
				if now.Sub(x.last) > l.window {
					delete(l.fails, k)
				}
			}
		}
		f = &failures{}
		l.fails[key] = f
	}
	f.n++
	f.last = now
}

// reset forgets key's failures (after a successful sign-in of an account).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
