package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrBadKey is wrapped by errors about signing or verifier keys.
var ErrBadKey = errors.New("seal: bad key")

// GenerateKey returns a new Ed25519 signing key and its verifier key for a ledger with the
// given origin, in golang.org/x/mod/sumdb/note's text formats ("PRIVATE+KEY+origin+..." and
// "origin+hash+key"). The origin becomes the key name, so it must not contain spaces or '+'.
func GenerateKey(origin string) (skey, vkey string, err error) {
	if err := checkOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

func checkOrigin(origin string) error {
	if origin == "" || strings.ContainsAny(origin, " +\n\t\r") {
		return fmt.Errorf("%w: origin %q must be non-empty with no spaces, '+' or newlines", ErrBadKey, origin)
	}
	return nil
}

// NewSigner parses a signing key in sumdb/note format.
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %v", ErrBadKey, err)
	}
	return s, nil
}

// NewVerifier parses a verifier key in sumdb/note format.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key: %v", ErrBadKey, err)
	}
	return v, nil
}
