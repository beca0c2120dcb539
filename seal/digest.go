package seal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a SHA-256 digest, the same type as tlog.Hash (its String method is base64).
type Hash = tlog.Hash

// LeafHash returns the RFC 6962 hash of a leaf: SHA-256(0x00 || leaf), as tlog.RecordHash does.
func LeafHash(leaf []byte) Hash {
	// A leaf is about 200 bytes: hashing it from a stack buffer in one call avoids the
	// allocation and the two writes of a streaming hash, on every append and every verify.
	var buf [512]byte
	if len(leaf) < len(buf) {
		buf[0] = 0x00
		n := copy(buf[1:], leaf)
		return sha256.Sum256(buf[:1+n])
	}
	return tlog.RecordHash(leaf)
}

// NodeHash returns the RFC 6962 hash of an interior node: SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash { return tlog.NodeHash(left, right) }

const (
	identityTag     = "commseal/identity/v1\x00"
	conversationTag = "commseal/conversation/v1\x00"
	commitmentTag   = "commseal/commitment/v1\x00"
)

// digestParts hashes tag followed by each part with a 32-bit length prefix, so that no two
// different part lists collide by concatenation.
func digestParts(tag string, parts ...string) Hash {
	// Ids are short: the input is assembled on the stack (append moves a long one to the
	// heap) and hashed in one call, which is on every append's path.
	var buf [256]byte
	b := append(buf[:0], tag...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return sha256.Sum256(b)
}

// IdentityDigest returns the source identity digest of an entry: class separates kinds of
// identity (a message id and an event id may coincide), then platform, tenant and the id.
func IdentityDigest(class, platform, tenant, id string) Hash {
	return digestParts(identityTag, class, platform, tenant, id)
}

// ConversationDigest returns the digest that chains a conversation's entries.
func ConversationDigest(platform, tenant, conversation string) Hash {
	return digestParts(conversationTag, platform, tenant, conversation)
}

// SaltSize is the size of the commitment salt.
const SaltSize = 32

// Commitment returns the salted commitment to plaintext:
// SHA-256("commseal/commitment/v1\x00" || salt || uint64be(len(plaintext)) || plaintext).
func Commitment(salt *[SaltSize]byte, plaintext []byte) Hash {
	h := sha256.New()
	h.Write([]byte(commitmentTag))
	h.Write(salt[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(plaintext)))
	h.Write(n[:])
	h.Write(plaintext)
	var out Hash
	h.Sum(out[:0])
	return out
}

// EnvelopeVersion is the version byte of a payload envelope.
const EnvelopeVersion = 1

// ErrMalformedEnvelope is wrapped by OpenEnvelope errors.
var ErrMalformedEnvelope = errors.New("seal: malformed payload envelope")

// AppendEnvelope appends the envelope of plaintext (version, salt, plaintext) to b.
func AppendEnvelope(b []byte, salt *[SaltSize]byte, plaintext []byte) []byte {
	b = append(b, EnvelopeVersion)
	b = append(b, salt[:]...)
	return append(b, plaintext...)
}

// OpenEnvelope splits an envelope into its salt and plaintext; plaintext aliases env.
func OpenEnvelope(env []byte) (salt [SaltSize]byte, plaintext []byte, err error) {
	if len(env) < 1+SaltSize {
		return salt, nil, fmt.Errorf("%w: %d bytes", ErrMalformedEnvelope, len(env))
	}
	if env[0] != EnvelopeVersion {
		return salt, nil, fmt.Errorf("%w: version %d", ErrMalformedEnvelope, env[0])
	}
	copy(salt[:], env[1:1+SaltSize])
	return salt, env[1+SaltSize:], nil
}

// CommitEnvelope returns the commitment of the plaintext inside env.
func CommitEnvelope(env []byte) (Hash, error) {
	salt, pt, err := OpenEnvelope(env)
	if err != nil {
		return Hash{}, err
	}
	return Commitment(&salt, pt), nil
}
