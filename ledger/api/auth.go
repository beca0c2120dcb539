package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is what a principal may do.
type Role string

// The roles. An officer reads content (queries, exports, entries); an auditor checks integrity
// (proofs, checkpoints, verification, the access log's metadata) and reads no content; an admin
// does both.
const (
	RoleOfficer Role = "officer"
	RoleAuditor Role = "auditor"
	RoleAdmin   Role = "admin"
)

// ParseRole returns the Role spelled s ("officer", "auditor" or "admin").
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleOfficer, RoleAuditor, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("%w: %q (want officer, auditor or admin)", ErrUnknownRole, s)
}

// content reports whether r may read content.
func (r Role) content() bool { return r == RoleOfficer || r == RoleAdmin }

// integrity reports whether r may read proofs, checkpoints and verification results.
func (r Role) integrity() bool { return r == RoleOfficer || r == RoleAuditor || r == RoleAdmin }

// Principal is an authenticated caller: its Name is the "who" of every access entry its
// requests seal.
type Principal struct {
	Name string
	Role Role
}

// Authenticator says who made a request. It returns an error wrapping ErrUnauthenticated when
// the request carries no credential it accepts; ErrNoCredentials (which wraps
// ErrUnauthenticated) when the request carries no credential of its kind at all, so that
// AnyOf can try the next one.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// Errors callers branch on with errors.Is.
var (
	// ErrUnauthenticated is wrapped by every authentication failure; the handler answers 401.
	ErrUnauthenticated = errors.New("api: not authenticated")
	// ErrNoCredentials means a request carries no credential of an authenticator's kind.
	ErrNoCredentials = fmt.Errorf("%w: no credentials", ErrUnauthenticated)
)

// Sentinel errors a *FileError wraps.
var (
	ErrSyntax       = errors.New("malformed line")         // too few fields, or not UTF-8
	ErrBadHash      = errors.New("not a SHA-256 hex")      // the token digest is not 64 hex digits
	ErrBadName      = errors.New("bad name")               // empty, too long or with control characters
	ErrUnknownRole  = errors.New("unknown role")           // not officer, auditor or admin
	ErrDuplicate    = errors.New("duplicate")              // a token digest (or a name in a role map) twice
	ErrFileTooLarge = errors.New("file too large")         // beyond MaxAuthFileBytes
	ErrEmptyFile    = errors.New("no entries in the file") // nothing but comments and blank lines
)

// Limits of token and role files.
const (
	MaxAuthFileBytes = 1 << 20
	MaxNameBytes     = 256
)

// FileError says what is wrong with a token or role file and on which line (counting from 1;
// 0 for the file as a whole). It wraps one of the sentinel errors above; it never holds the
// line's text, which may be a secret pasted by mistake.
type FileError struct {
	File string
	Line int
	Err  error
}

// Error formats the error as "api: FILE: line N: problem".
func (e *FileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("api: %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("api: %s: line %d: %v", e.File, e.Line, e.Err)
}

// Unwrap returns the sentinel error.
func (e *FileError) Unwrap() error { return e.Err }

// line is one parsed entry of an auth file: its first field (unless nameFirst), its name and
// its role.
type line struct {
	n           int
	first, name string
	role        Role
}

// parseLines reads an auth file: one entry a line, "#" comments and blank lines skipped. With
// key set a line is "KEY NAME ROLE", else "NAME ROLE"; the name is everything between (inner
// spaces kept, so certificate names with spaces work), the role the last field.
func parseLines(r io.Reader, file string, key bool) ([]line, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxAuthFileBytes+1))
	if err != nil {
		return nil, &FileError{File: file, Err: err}
	}
	if len(b) > MaxAuthFileBytes {
		return nil, &FileError{File: file, Err: fmt.Errorf("%w: more than %d bytes", ErrFileTooLarge, MaxAuthFileBytes)}
	}
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, MaxAuthFileBytes+1)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fail := func(err error) error { return &FileError{File: file, Line: n, Err: err} }
		if !utf8.ValidString(text) {
			return nil, fail(fmt.Errorf("%w: not UTF-8", ErrSyntax))
		}
		l := line{n: n}
		rest := text
		if key {
			i := strings.IndexFunc(rest, unicode.IsSpace)
			if i < 0 {
				return nil, fail(fmt.Errorf("%w: want SHA256HEX NAME ROLE", ErrSyntax))
			}
			l.first, rest = rest[:i], strings.TrimSpace(rest[i:])
		}
		j := strings.LastIndexFunc(rest, unicode.IsSpace)
		if j < 0 {
			if key {
				return nil, fail(fmt.Errorf("%w: want SHA256HEX NAME ROLE", ErrSyntax))
			}
			return nil, fail(fmt.Errorf("%w: want NAME ROLE", ErrSyntax))
		}
		l.name = strings.TrimSpace(rest[:j])
		if l.role, err = ParseRole(rest[j+1:]); err != nil {
			return nil, fail(err)
		}
		if err := checkName(l.name); err != nil {
			return nil, fail(err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, &FileError{File: file, Err: err}
	}
	if len(out) == 0 {
		return nil, &FileError{File: file, Err: ErrEmptyFile}
	}
	return out, nil
}

// checkName refuses names that would make access entries ambiguous or unreadable.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadName, MaxNameBytes)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: control characters", ErrBadName)
	}
	return nil
}

// Tokens authenticates bearer tokens ("Authorization: Bearer TOKEN") against a list of
// SHA-256 digests, each with a name and a role. It keeps no token, only digests, and compares
// digests in constant time. Make one with ParseTokens or LoadTokens; it is safe for concurrent
// use.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	sum [sha256.Size]byte
	p   Principal
}

// HashToken returns the line a token file holds for token: the hex SHA-256 of the token.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ParseTokens reads a token file, named file in errors:
//
//	# comments and blank lines are skipped
//	SHA256HEX NAME ROLE
//
// SHA256HEX is the hex SHA-256 of the token (HashToken; `printf %s TOKEN | sha256sum`), NAME
// the principal's name (spaces allowed; it is the "who" of its access entries), ROLE one of
// officer, auditor, admin. A digest listed twice, or any malformed line, fails with a
// *FileError naming the line.
func ParseTokens(r io.Reader, file string) (*Tokens, error) {
	lines, err := parseLines(r, file, true)
	if err != nil {
		return nil, err
	}
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	for _, l := range lines {
		var e tokenEntry
		if len(l.first) != 2*sha256.Size {
			return nil, &FileError{File: file, Line: l.n, Err: fmt.Errorf("%w: %d characters", ErrBadHash, len(l.first))}
		}
		if _, err := hex.Decode(e.sum[:], []byte(l.first)); err != nil {
			return nil, &FileError{File: file, Line: l.n, Err: ErrBadHash}
		}
		if prev, ok := seen[e.sum]; ok {
			return nil, &FileError{File: file, Line: l.n, Err: fmt.Errorf("%w: the token of line %d", ErrDuplicate, prev)}
		}
		seen[e.sum] = l.n
		e.p = Principal{Name: l.name, Role: l.role}
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// LoadTokens reads the token file at path (see ParseTokens).
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	defer f.Close()
	return ParseTokens(f, path)
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Authenticate returns the principal whose token the request's bearer token is. Every listed
// digest is compared, in constant time, whatever matches.
func (t *Tokens) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, ErrNoCredentials
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, fmt.Errorf("%w: want Authorization: Bearer TOKEN", ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return t.entries[found].p, nil
}

// Certificates authenticates TLS client certificates that the server verified (tls.Config
// ClientAuth RequireAndVerifyClientCert or VerifyClientCertIfGiven, with ClientCAs): the leaf
// certificate's subject common name, else its first email address listed in Roles, is the
// principal's name, with the role Roles gives it. Certificates the server did not verify are
// never looked at.
type Certificates struct {
	// Roles maps a certificate's subject CN or SAN email to its role.
	Roles map[string]Role
}

// Authenticate returns the principal of the request's verified client certificate.
func (c *Certificates) Authenticate(r *http.Request) (Principal, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return Principal{}, ErrNoCredentials
	}
	leaf := r.TLS.VerifiedChains[0][0]
	names := append([]string{leaf.Subject.CommonName}, leaf.EmailAddresses...)
	for _, n := range names {
		if role, ok := c.Roles[n]; ok && n != "" {
			return Principal{Name: n, Role: role}, nil
		}
	}
	return Principal{}, fmt.Errorf("%w: the client certificate's names have no role", ErrUnauthenticated)
}

// ParseRoles reads a role map for Certificates, named file in errors:
//
//	# comments and blank lines are skipped
//	NAME ROLE
//
// NAME is a certificate subject common name or email address (spaces allowed), ROLE one of
// officer, auditor, admin. A name listed twice, or any malformed line, fails with a *FileError
// naming the line.
func ParseRoles(r io.Reader, file string) (map[string]Role, error) {
	lines, err := parseLines(r, file, false)
	if err != nil {
		return nil, err
	}
	roles := map[string]Role{}
	seen := map[string]int{}
	for _, l := range lines {
		if prev, ok := seen[l.name]; ok {
			return nil, &FileError{File: file, Line: l.n, Err: fmt.Errorf("%w: %q is on line %d", ErrDuplicate, l.name, prev)}
		}
		seen[l.name] = l.n
		roles[l.name] = l.role
	}
	return roles, nil
}

// LoadRoles reads the role map at path (see ParseRoles).
func LoadRoles(path string) (map[string]Role, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	defer f.Close()
	return ParseRoles(f, path)
}

// AnyOf returns an Authenticator that asks each of auths in turn: the first that finds a
// credential of its kind in the request decides (a wrong bearer token is refused even when a
// client certificate would pass). A request with no credential at all gets ErrNoCredentials.
func AnyOf(auths ...Authenticator) Authenticator { return anyOf(auths) }

type anyOf []Authenticator

func (a anyOf) Authenticate(r *http.Request) (Principal, error) {
	for _, x := range a {
		p, err := x.Authenticate(r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return p, err
	}
	return Principal{}, ErrNoCredentials
}
