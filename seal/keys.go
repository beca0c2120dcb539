package seal

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrBadSigningKey is wrapped by errors about signing or verifier keys.
var ErrBadSigningKey = errors.New("seal: bad key")

// GenerateSigningKey returns a new Ed25519 signing key and its verifier key for a ledger with the
// given origin, in golang.org/x/mod/sumdb/note's text formats ("PRIVATE+KEY+origin+..." and
// "origin+hash+key"). The origin becomes the key name, so it must not contain spaces or '+'.
func GenerateSigningKey(origin string) (skey, vkey string, err error) {
	if err := checkOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

func checkOrigin(origin string) error {
	if origin == "" || strings.ContainsAny(origin, " +\n\t\r") {
		return fmt.Errorf("%w: origin %q must be non-empty with no spaces, '+' or newlines", ErrBadSigningKey, origin)
	}
	return nil
}

// NewSigner parses a signing key in sumdb/note format.
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %v", ErrBadSigningKey, err)
	}
	return s, nil
}

// NewVerifier parses a verifier key in sumdb/note format.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key: %v", ErrBadSigningKey, err)
	}
	return v, nil
}

// SigningKey is a ledger's checkpoint signing key with its verifier.
type SigningKey struct {
	Signer      note.Signer
	Verifier    note.Verifier
	VerifierKey string // the verifier key in sumdb/note text form, to publish
}

// ed25519SigningKey reads the name and the Ed25519 private key of a sumdb/note signing key
// ("PRIVATE+KEY+name+hash+base64(0x01 || seed)"); what names the key in errors.
func ed25519SigningKey(skey, what string) (string, ed25519.PrivateKey, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", nil, fmt.Errorf("%w: %s has %d fields", ErrBadSigningKey, what, len(parts))
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", nil, fmt.Errorf("%w: %s is not an Ed25519 key", ErrBadSigningKey, what)
	}
	return parts[2], ed25519.NewKeyFromSeed(raw[1:]), nil
}

// ParseSigningKey parses an Ed25519 signing key in sumdb/note format ("PRIVATE+KEY+name+hash+
// key") and derives its verifier.
func ParseSigningKey(skey string) (*SigningKey, error) {
	skey = strings.TrimSpace(skey)
	s, err := NewSigner(skey)
	if err != nil {
		return nil, err
	}
	_, priv, err := ed25519SigningKey(skey, "signing key")
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSigningKey, err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if v.KeyHash() != s.KeyHash() {
		return nil, fmt.Errorf("%w: derived verifier does not match the signing key", ErrBadSigningKey)
	}
	return &SigningKey{Signer: s, Verifier: v, VerifierKey: vkey}, nil
}
