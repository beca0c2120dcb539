package seal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// DataKeySize is the size of a data key (XChaCha20-Poly1305).
const DataKeySize = chacha20poly1305.KeySize

// ErrDecrypt is wrapped when a ciphertext does not authenticate: it was altered, or the key
// is wrong.
var ErrDecrypt = errors.New("seal: decryption failed: ciphertext altered or wrong key")

const (
	cipherVersion = 1
	payloadAAD    = "commseal/payload/v1\x00"
	wrapAAD       = "commseal/wrap/v1\x00"
	derivedAAD    = "commseal/derived/v1\x00"
)

// EncryptDerived encrypts data derived from entry index (a search index record, a finding)
// under that entry's data key, so that destroying the key destroys what was derived from the
// entry too. The label (what the data is, e.g. "search") and the index are authenticated, so
// derived data can pass neither for a payload nor for another entry's or another label's data.
func EncryptDerived(rnd io.Reader, dek []byte, label string, index uint64, data []byte) ([]byte, error) {
	return seal(rnd, dek, derivedLabel(label, index), data)
}

// DecryptDerived reverses EncryptDerived; it fails with ErrDecrypt if anything was altered or
// the label or index differ.
func DecryptDerived(dek []byte, label string, index uint64, ct []byte) ([]byte, error) {
	return open(dek, derivedLabel(label, index), ct)
}

func derivedLabel(label string, index uint64) string {
	return derivedAAD + label + "\x00" + strconv.FormatUint(index, 10)
}

// EncryptPayload encrypts a payload envelope under a data key with XChaCha20-Poly1305 and a
// random 192-bit nonce. The key id is authenticated, so a ciphertext cannot be passed off under
// another key's name. The result is: version byte 1, nonce, ciphertext with tag.
func EncryptPayload(rnd io.Reader, dek []byte, keyID string, envelope []byte) ([]byte, error) {
	return seal(rnd, dek, payloadAAD+keyID, envelope)
}

// DecryptPayload reverses EncryptPayload; it fails with ErrDecrypt if anything was altered.
func DecryptPayload(dek []byte, keyID string, payload []byte) ([]byte, error) {
	return open(dek, payloadAAD+keyID, payload)
}

func seal(rnd io.Reader, key []byte, aad string, pt []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(pt)+aead.Overhead())
	out[0] = cipherVersion
	if _, err := io.ReadFull(rnd, out[1:]); err != nil {
		return nil, fmt.Errorf("seal: drawing nonce: %w", err)
	}
	return aead.Seal(out, out[1:], pt, []byte(aad)), nil
}

func open(key []byte, aad string, ct []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if len(ct) < 1+aead.NonceSize()+aead.Overhead() || ct[0] != cipherVersion {
		return nil, fmt.Errorf("%w: malformed ciphertext", ErrDecrypt)
	}
	pt, err := aead.Open(nil, ct[1:1+aead.NonceSize()], ct[1+aead.NonceSize():], []byte(aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Errors of keyrings, wrapped so that callers branch with errors.Is.
var (
	// ErrUnknownKEK is wrapped when a keyring is asked to unwrap under a key-encryption key it
	// does not hold: one it never had, or one that was retired.
	ErrUnknownKEK = errors.New("seal: unknown or retired key-encryption key")
	// ErrBadKEK is wrapped by errors about a key-encryption key or what derives one: a KEK
	// that is not 32 bytes or has no name, an empty passphrase, a short salt.
	ErrBadKEK = errors.New("seal: bad key-encryption key")
	// ErrBadDataKey is wrapped when a data key of a size other than DataKeySize is given to
	// Keyring.Wrap.
	ErrBadDataKey = errors.New("seal: bad data key")
	// ErrRetireCurrent is wrapped when KEKRetirer.Retire is asked to retire the current KEK:
	// Rotate first.
	ErrRetireCurrent = errors.New("seal: the current key-encryption key cannot be retired")
)

// A Keyring wraps and unwraps data keys under a key-encryption key (KEK) that never leaves it.
// It is what a KMS or HSM adapter implements; seal/sealtest.RunKeyring checks one against every
// rule below. Wrapped keys are bound to their key id and to the KEK that wrapped it, which the
// caller records beside the wrapped bytes (store.WrappedKey.KEK) and names again to unwrap.
//
// Destroying a data key is destroying its wrapped form wherever it is kept (store.KeyVault).
// Copies the vault cannot reach (backups, snapshots, blocks a file system or an SSD kept) are
// made useless by retiring the KEK that wrapped them: a keyring that can do so implements
// KEKRetirer. Moving every key to another keyring (a file KEK to a KMS) is unwrapping each with
// the old keyring and wrapping it with the new one, which touches no entry.
type Keyring interface {
	// ID names the current KEK: the one Wrap uses now.
	ID() string
	// Wrap encrypts a data key of DataKeySize bytes (ErrBadDataKey for another size) under the
	// current KEK, bound to keyID, and returns the name of the KEK it used and the wrapped
	// bytes. The name is what Unwrap takes: it is returned with the bytes, rather than read
	// from ID before the call, so that a rotation in between cannot mislabel a key.
	Wrap(ctx context.Context, keyID string, dek []byte) (kek string, wrapped []byte, err error)
	// Unwrap returns the data key that Wrap wrapped under the KEK named kek for keyID. It fails,
	// returning no key, with an error wrapping ErrUnknownKEK when the keyring does not hold kek
	// (never did, or retired it), and wrapping ErrDecrypt when the bytes were altered, were
	// wrapped for another key id, or under another KEK.
	Unwrap(ctx context.Context, kek, keyID string, wrapped []byte) ([]byte, error)
}

// A KEKRetirer is a Keyring that can replace its KEK and destroy old ones. Crypto-shredding
// relies on it (ledger.ApplyRetention refuses to shred without one): once the data keys are
// destroyed in the vault, the KEK that wrapped them is retired, after the surviving keys were
// rewrapped under a new one, so that no copy of a destroyed wrapped key unwraps again.
// KEKKeyring, which holds one KEK, is not one. Implement it over a KMS or HSM (its key
// versions or key destruction) and check the adapter with seal/sealtest.RunKeyring; the
// example programs' ledger directory has a file-based one, not importable yet.
type KEKRetirer interface {
	Keyring
	// Rotate makes a new KEK current and returns its name. Older KEKs still unwrap what they
	// wrapped until they are retired.
	Rotate(ctx context.Context) (kek string, err error)
	// Retire destroys a KEK: nothing wrapped under it unwraps again, from any copy of the
	// wrapped bytes, and it is no longer listed by KEKs. Retiring the current KEK fails with
	// ErrRetireCurrent and changes nothing; retiring a KEK already retired is harmless.
	Retire(ctx context.Context, kek string) error
	// KEKs lists the KEKs that are not retired, the current one included, in no set order.
	KEKs(ctx context.Context) ([]string, error)
}

// KEKKeyring is a Keyring holding one 256-bit KEK in memory: data keys are wrapped with
// XChaCha20-Poly1305 under it. It never rotates (it keeps nothing persistent to rotate); wrap a
// KEKRetirer around KEKs kept elsewhere for that (internal/ledgerdir keeps generations of them
// in files, seal/sealtest in memory).
type KEKKeyring struct {
	id  string
	kek [32]byte
}

// NewKEKKeyring returns a keyring for a 32-byte KEK; id names it (e.g. "file-1").
func NewKEKKeyring(id string, kek []byte) (*KEKKeyring, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("%w: a KEK is 32 bytes, got %d", ErrBadKEK, len(kek))
	}
	if id == "" {
		return nil, fmt.Errorf("%w: a KEK needs a name", ErrBadKEK)
	}
	k := &KEKKeyring{id: id}
	copy(k.kek[:], kek)
	return k, nil
}

// ID implements Keyring.
func (k *KEKKeyring) ID() string { return k.id }

// Wrap implements Keyring.
func (k *KEKKeyring) Wrap(_ context.Context, keyID string, dek []byte) (string, []byte, error) {
	if len(dek) != DataKeySize {
		return "", nil, fmt.Errorf("%w: a data key is %d bytes, got %d", ErrBadDataKey, DataKeySize, len(dek))
	}
	w, err := seal(rand.Reader, k.kek[:], wrapAAD+keyID, dek)
	if err != nil {
		return "", nil, err
	}
	return k.id, w, nil
}

// Unwrap implements Keyring. A KEK name other than its own fails with ErrUnknownKEK; a wrong
// KEK or an altered wrapped key fails with ErrDecrypt.
func (k *KEKKeyring) Unwrap(_ context.Context, kek, keyID string, wrapped []byte) ([]byte, error) {
	if kek != k.id {
		return nil, fmt.Errorf("unwrapping data key %q: %w: %q (this keyring holds %q)", keyID, ErrUnknownKEK, kek, k.id)
	}
	dek, err := open(k.kek[:], wrapAAD+keyID, wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key %q: %w", keyID, err)
	}
	return dek, nil
}

// Argon2id parameters for passphrase-derived KEKs (RFC 9106's second recommended option:
// 64 MiB, 3 passes).
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 4
)

// PassphraseKEK derives a 32-byte KEK from a passphrase and a 16-byte or longer random salt
// with Argon2id.
func PassphraseKEK(passphrase, salt []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("%w: empty passphrase", ErrBadKEK)
	}
	if len(salt) < 16 {
		return nil, fmt.Errorf("%w: salt of %d bytes, want at least 16", ErrBadKEK, len(salt))
	}
	return argon2.IDKey(passphrase, salt, argonTime, argonMemory, argonThreads, 32), nil
}

// NewDataKey returns a fresh random data key.
func NewDataKey() ([]byte, error) {
	k := make([]byte, DataKeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, fmt.Errorf("seal: drawing data key: %w", err)
	}
	return k, nil
}
