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

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/keydir"
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
	kp := filepath.Join(dir, layout.KeyringFile)
	b, err := os.ReadFile(kp)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("%w: %s holds a ledger but no %s; restore it (a new KEK would not open the ledger's data keys)", ErrMissingKEK, dir, layout.KeyringFile)
		}
		return newKeyring(ctx, dir)
	}
	if err != nil {
		return nil, false, fmt.Errorf("ledgerdir: %w", err)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, false, fmt.Errorf("%w: %s is not valid JSON", ErrCorruptKEK, layout.KeyringFile)
	}
	var kek []byte
	switch kf.Mode {
	case "passphrase":
		pass := os.Getenv(layout.PassphraseEnv)
		if pass == "" {
			return nil, false, fmt.Errorf("%w: this ledger's keys are protected by a passphrase: set %s", ErrMissingKEK, layout.PassphraseEnv)
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
		return nil, false, fmt.Errorf("%w: unknown mode %q in %s", ErrCorruptKEK, kf.Mode, layout.KeyringFile)
	}
	r, err := seal.NewKEKKeyring(kf.ID, kek)
	if err != nil {
		return nil, false, err
	}
	if _, err := r.Unwrap(ctx, kf.ID, errCheckKeyID, kf.Check); err != nil {
		return nil, false, ErrWrongKEK
	}
	return r, demo, nil
}

func readKEKFile(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, layout.KEKFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is gone from %s", ErrMissingKEK, layout.KEKFile, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("ledgerdir: %w", err)
	}
	kek, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(kek) != 32 {
		return nil, fmt.Errorf("%w: %s must hold 64 hex digits", ErrCorruptKEK, layout.KEKFile)
	}
	return kek, nil
}

func newKeyring(ctx context.Context, dir string) (seal.Keyring, bool, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, false, err
	}
	kf := keyringFile{Mode: "file"}
	kek := make([]byte, 32)
	if pass := os.Getenv(layout.PassphraseEnv); pass != "" {
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
		if err := durable.CreateExclusive(filepath.Join(dir, layout.KEKFile), []byte(hex.EncodeToString(kek)+"\n")); err != nil {
			return nil, false, fmt.Errorf("ledgerdir: writing %s: %w", layout.KEKFile, err)
		}
	}
	id := sha256.Sum256(append([]byte("commseal/kek-id\x00"), kek...))
	kf.ID = "kek-" + hex.EncodeToString(id[:6])
	r, err := seal.NewKEKKeyring(kf.ID, kek)
	if err != nil {
		return nil, false, err
	}
	if _, kf.Check, err = r.Wrap(ctx, errCheckKeyID, checkKeyContent); err != nil {
		return nil, false, err
	}
	b, _ := json.MarshalIndent(kf, "", "  ")
	if err := durable.CreateExclusive(filepath.Join(dir, layout.KeyringFile), append(b, '\n')); err != nil {
		return nil, false, fmt.Errorf("ledgerdir: writing %s: %w", layout.KeyringFile, err)
	}
	return r, kf.Mode == "file", nil
}

// Vault opens the directory's key vault (creating it, mode 0700, if needed).
func Vault(dir string) (*keydir.Vault, error) {
	return keydir.Open(filepath.Join(dir, layout.VaultDir))
}
