package console

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/commseal/commseal/ledger/api"
	"golang.org/x/crypto/argon2"
)

// Account is a console user: a name (the "who" of every access entry the user's pages seal),
// a role, and an Argon2id password hash in the PHC string format. An account whose Hash is
// "-" cannot sign in with a password (a name for identity from a trusted proxy only).
type Account struct {
	Name string
	Role api.Role
	Hash string
}

// Errors of accounts files and password hashes, for errors.Is.
var (
	ErrAccountSyntax = errors.New("console: malformed account line")
	ErrBadHash       = errors.New("console: not an Argon2id PHC string")
	ErrDuplicateName = errors.New("console: account listed twice")
	ErrNoAccounts    = errors.New("console: no accounts in the file")
)

// Limits of accounts files and of the Argon2id parameters a hash may ask for: a hash that asks
// for more memory or time than these is refused when the file is read, so that a bad line
// cannot make every sign-in exhaust the server.
const (
	MaxAccountsBytes  = 1 << 20
	MaxArgonMemoryKiB = 1 << 20 // 1 GiB
	MaxArgonTime      = 16
	MaxArgonThreads   = 16
)

// Default Argon2id parameters of HashPassword (RFC 9106's second recommended option).
const (
	DefaultArgonMemoryKiB = 64 * 1024
	DefaultArgonTime      = 3
	DefaultArgonThreads   = 4
)

// phc is a parsed Argon2id PHC string.
type phc struct {
	m    uint32
	t    uint32
	p    uint8
	salt []byte
	hash []byte
}

var b64 = base64.RawStdEncoding

// parsePHC reads "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" (SALT and HASH unpadded base64).
func parsePHC(s string) (*phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", ErrBadHash)
	}
	h := &phc{}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: want m=…,t=…,p=…", ErrBadHash)
	}
	for i, want := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(params[i], "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || k != want || err != nil || n == 0 {
			return nil, fmt.Errorf("%w: bad parameter %q", ErrBadHash, params[i])
		}
		switch want {
		case "m":
			if n > MaxArgonMemoryKiB || n < 8 {
				return nil, fmt.Errorf("%w: m=%d outside 8..%d KiB", ErrBadHash, n, MaxArgonMemoryKiB)
			}
			h.m = uint32(n)
		case "t":
			if n > MaxArgonTime {
				return nil, fmt.Errorf("%w: t=%d over %d", ErrBadHash, n, MaxArgonTime)
			}
			h.t = uint32(n)
		case "p":
			if n > MaxArgonThreads {
				return nil, fmt.Errorf("%w: p=%d over %d", ErrBadHash, n, MaxArgonThreads)
			}
			h.p = uint8(n)
		}
	}
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return nil, fmt.Errorf("%w: the salt must be base64 of at least 8 bytes", ErrBadHash)
	}
	if h.hash, err = b64.DecodeString(parts[5]); err != nil || len(h.hash) < 16 || len(h.hash) > 64 {
		return nil, fmt.Errorf("%w: the hash must be base64 of 16 to 64 bytes", ErrBadHash)
	}
	return h, nil
}

// check reports, in constant time over the hash, whether password matches.
func (h *phc) check(password string) bool {
	got := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.hash)))
	return subtle.ConstantTimeCompare(got, h.hash) == 1
}

// HashPassword returns the Argon2id PHC string of password with a fresh 16-byte salt and the
// default parameters: the third field of an accounts line.
func HashPassword(password string) (string, error) {
	return hashPassword(password, DefaultArgonMemoryKiB, DefaultArgonTime, DefaultArgonThreads)
}

func hashPassword(password string, m, t uint32, p uint8) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	sum := argon2.IDKey([]byte(password), salt, t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// ParseAccounts reads an accounts file, named file in errors:
//
//	# comments and blank lines are skipped
//	NAME ROLE $argon2id$v=19$m=65536,t=3,p=4$SALT$HASH
//
// NAME is the account's name (inner spaces allowed; it is the "who" of the access entries the
// user's pages seal), ROLE one of officer, auditor, admin, and the last field the Argon2id
// hash in the PHC string format (HashPassword, or `console -hash-password`), or "-" for an
// account that signs in only through a trusted proxy. Errors name the line, never its text.
func ParseAccounts(r io.Reader, file string) ([]Account, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxAccountsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("console: %s: %w", file, err)
	}
	if len(b) > MaxAccountsBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrAccountSyntax, file, MaxAccountsBytes)
	}
	var out []Account
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, MaxAccountsBytes+1)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fail := func(err error) error { return fmt.Errorf("%s: line %d: %w", file, n, err) }
		if !utf8.ValidString(text) {
			return nil, fail(fmt.Errorf("%w: not UTF-8", ErrAccountSyntax))
		}
		i := strings.LastIndexFunc(text, unicode.IsSpace)
		if i < 0 {
			return nil, fail(fmt.Errorf("%w: want NAME ROLE HASH", ErrAccountSyntax))
		}
		hash, rest := text[i+1:], strings.TrimSpace(text[:i])
		j := strings.LastIndexFunc(rest, unicode.IsSpace)
		if j < 0 {
			return nil, fail(fmt.Errorf("%w: want NAME ROLE HASH", ErrAccountSyntax))
		}
		name := strings.TrimSpace(rest[:j])
		role, err := api.ParseRole(rest[j+1:])
		if err != nil {
			return nil, fail(err)
		}
		if err := checkName(name); err != nil {
			return nil, fail(err)
		}
		if hash != "-" {
			if _, err := parsePHC(hash); err != nil {
				return nil, fail(err)
			}
		}
		if prev, ok := seen[name]; ok {
			return nil, fail(fmt.Errorf("%w: %q is on line %d", ErrDuplicateName, name, prev))
		}
		seen[name] = n
		out = append(out, Account{Name: name, Role: role, Hash: hash})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("console: %s: %w", file, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", file, ErrNoAccounts)
	}
	return out, nil
}

// LoadAccounts reads the accounts file at path (see ParseAccounts).
func LoadAccounts(path string) ([]Account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer f.Close()
	return ParseAccounts(f, path)
}

// checkName refuses names that would make access entries ambiguous.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrAccountSyntax)
	case len(name) > api.MaxNameBytes:
		return fmt.Errorf("%w: a name longer than %d bytes", ErrAccountSyntax, api.MaxNameBytes)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: control characters in the name", ErrAccountSyntax)
	}
	return nil
}

// HashPasswordParams is HashPassword with explicit Argon2id parameters: memory in KiB, passes
// and lanes, within the limits ParseAccounts accepts.
func HashPasswordParams(password string, memoryKiB, passes uint32, lanes uint8) (string, error) {
	if memoryKiB < 8 || memoryKiB > MaxArgonMemoryKiB || passes == 0 || passes > MaxArgonTime || lanes == 0 || lanes > MaxArgonThreads {
		return "", fmt.Errorf("%w: parameters out of range", ErrBadHash)
	}
	return hashPassword(password, memoryKiB, passes, lanes)
}
