package ledgerdir

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/keydir"
)

// More files inside a ledger directory, for encryption at rest.
const (
	KEKFile     = "ledger.kek"     // a 256-bit KEK in hex, mode 0600 (when no passphrase is used)
	KeyringFile = "ledger.keyring" // how the KEK is obtained and a check value; no secret
	VaultDir    = "keys"           // wrapped data keys (store/keydir)
	// PassphraseEnv names the environment variable holding the passphrase from which the KEK
	// is derived with Argon2id.
	PassphraseEnv = "COMMSEAL_PASSPHRASE"
)

// Errors of keyring setup.
var (
	ErrWrongKEK     = errors.New("ledgerdir: wrong passphrase or key file: it does not open this ledger's keys")
	ErrMissingKEK   = errors.New("ledgerdir: the key-encryption key is missing")
	ErrCorruptKEK   = errors.New("ledgerdir: the key-encryption key file is corrupt")
	errCheckKeyID   = "commseal/kek-check"
	checkKeyContent = make([]byte, seal.DataKeySize)
)

type keyringFile struct {
	Mode  string `json:"mode"` // "passphrase" or "file"
	Salt  []byte `json:"salt,omitempty"`
	ID    string `json:"id"`
	Check []byte `json:"check"` // a zero key wrapped under the KEK: opens only with the right one
}

// Keyring returns the directory's keyring. A new ledger (create set, no keyring file yet) gets
// a passphrase-derived KEK when COMMSEAL_PASSPHRASE is set, else a random KEK in ledger.kek
// (mode 0600): a demonstration key, since it sits beside the data it protects. demo reports
// the latter. A wrong passphrase or key file fails with ErrWrongKEK, a missing one with
// ErrMissingKEK, before anything is written.
func Keyring(ctx context.Context, dir string, create bool) (ring seal.Keyring, demo bool, err error) {
	kp := filepath.Join(dir, KeyringFile)
	b, err := os.ReadFile(kp)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("%w: %s has no %s", ErrNoLedger, dir, KeyringFile)
		}
		return newKeyring(ctx, dir)
	}
	if err != nil {
		return nil, false, fmt.Errorf("ledgerdir: %w", err)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, false, fmt.Errorf("%w: %s is not valid JSON", ErrCorruptKEK, KeyringFile)
	}
	var kek []byte
	switch kf.Mode {
	case "passphrase":
		pass := os.Getenv(PassphraseEnv)
		if pass == "" {
			return nil, false, fmt.Errorf("%w: this ledger's keys are protected by a passphrase: set %s", ErrMissingKEK, PassphraseEnv)
		}
		if kek, err = seal.PassphraseKEK([]byte(pass), kf.Salt); err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrCorruptKEK, err)
		}
	case "file":
		demo = true
		if kek, err = readKEKFile(dir); err != nil {
			return nil, false, err
		}
	default:
		return nil, false, fmt.Errorf("%w: unknown mode %q in %s", ErrCorruptKEK, kf.Mode, KeyringFile)
	}
	r, err := seal.NewKEKKeyring(kf.ID, kek)
	if err != nil {
		return nil, false, err
	}
	if _, err := r.Unwrap(ctx, errCheckKeyID, kf.Check); err != nil {
		return nil, false, ErrWrongKEK
	}
	return r, demo, nil
}

func readKEKFile(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, KEKFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is gone from %s", ErrMissingKEK, KEKFile, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("ledgerdir: %w", err)
	}
	kek, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(kek) != 32 {
		return nil, fmt.Errorf("%w: %s must hold 64 hex digits", ErrCorruptKEK, KEKFile)
	}
	return kek, nil
}

func newKeyring(ctx context.Context, dir string) (seal.Keyring, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	kf := keyringFile{Mode: "file"}
	kek := make([]byte, 32)
	if pass := os.Getenv(PassphraseEnv); pass != "" {
		kf.Mode = "passphrase"
		kf.Salt = make([]byte, 16)
		if _, err := rand.Read(kf.Salt); err != nil {
			return nil, false, err
		}
		var err error
		if kek, err = seal.PassphraseKEK([]byte(pass), kf.Salt); err != nil {
			return nil, false, err
		}
	} else {
		if _, err := rand.Read(kek); err != nil {
			return nil, false, err
		}
		if err := writeFileSync(filepath.Join(dir, KEKFile), []byte(hex.EncodeToString(kek)+"\n"), 0o600); err != nil {
			return nil, false, fmt.Errorf("ledgerdir: writing %s: %w", KEKFile, err)
		}
	}
	id := sha256.Sum256(append([]byte("commseal/kek-id\x00"), kek...))
	kf.ID = "kek-" + hex.EncodeToString(id[:6])
	r, err := seal.NewKEKKeyring(kf.ID, kek)
	if err != nil {
		return nil, false, err
	}
	if kf.Check, err = r.Wrap(ctx, errCheckKeyID, checkKeyContent); err != nil {
		return nil, false, err
	}
	b, _ := json.MarshalIndent(kf, "", "  ")
	if err := writeFileSync(filepath.Join(dir, KeyringFile), append(b, '\n'), 0o644); err != nil {
		return nil, false, fmt.Errorf("ledgerdir: writing %s: %w", KeyringFile, err)
	}
	return r, kf.Mode == "file", nil
}

// Vault opens the directory's key vault.
func Vault(dir string) (*keydir.Vault, error) { return keydir.Open(filepath.Join(dir, VaultDir)) }
