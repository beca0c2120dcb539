// Package ledgerdir lays out a ledger directory for commseal's programs: the checkpoint
// signing key, its verifier key and the embedded file store, side by side:
//
//	DIR/ledger.key    the Ed25519 checkpoint signing key (sumdb/note format), mode 0600
//	DIR/ledger.vkey   its verifier key, to publish and to hand to auditors
//	DIR/store/        the store/filestore directory: entries, stored hashes, checkpoints, blobs
//	DIR/ledger.keyring how the key-encryption key (KEK) is obtained, and a check value
//	DIR/ledger.kek    the KEK (hex, 0600) when no passphrase is used: a demonstration setup
//	DIR/keys/         data keys wrapped by the KEK (store/keydir); destroyed keys leave tombstones
//
// Payloads and blobs are always encrypted at rest (ledger.Encryption); no key is written in
// plain except the demonstration KEK file.
//
// Library users keep keys their own way (a KMS, an HSM); this layout serves the examples.
package ledgerdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/keydir"
)

// File names inside a ledger directory.
const (
	KeyFile  = "ledger.key"
	VKeyFile = "ledger.vkey"
	StoreDir = "store"
)

// DefaultOrigin names ledgers created without an explicit origin.
const DefaultOrigin = "commseal.example/ledger"

// ErrNoLedger is returned when a directory holds no ledger.
var ErrNoLedger = errors.New("ledgerdir: no ledger in this directory")

// Keys loads the directory's signing key, creating it (and the verifier key file) when create
// is set and there is none. origin names a new key; it is ignored for an existing one.
func Keys(dir, origin string, create bool) (*seal.Keys, error) {
	kp := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(kp)
	if errors.Is(err, fs.ErrNotExist) && create {
		if origin == "" {
			origin = DefaultOrigin
		}
		skey, vkey, err := seal.GenerateKey(origin)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := writeFileSync(kp, []byte(skey+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("ledgerdir: writing signing key: %w", err)
		}
		if err := writeFileSync(filepath.Join(dir, VKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("ledgerdir: writing verifier key: %w", err)
		}
		return seal.ParseSigningKey(skey)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s", ErrNoLedger, dir, KeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("ledgerdir: reading signing key: %w", err)
	}
	return seal.ParseSigningKey(string(b))
}

// VerifierKey reads the directory's verifier key file.
func VerifierKey(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, VKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s has no %s", ErrNoLedger, dir, VKeyFile)
	}
	if err != nil {
		return "", fmt.Errorf("ledgerdir: reading verifier key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// OpenStore opens the directory's file store. A read-only store must already exist.
func OpenStore(ctx context.Context, dir string, readOnly bool, log *slog.Logger) (*filestore.Store, error) {
	sd := filepath.Join(dir, StoreDir)
	if readOnly {
		if _, err := os.Stat(sd); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s/", ErrNoLedger, dir, StoreDir)
		}
	}
	return filestore.Open(ctx, sd, &filestore.Options{ReadOnly: readOnly, Logger: log})
}

// Ledger is an open ledger directory: its store and the ledger on it.
type Ledger struct {
	*ledger.Ledger
	Store   *filestore.Store
	Keys    *seal.Keys
	Keyring seal.Keyring
	Vault   *keydir.Vault
	// DemoKEK is set when the KEK is the key file beside the data (no passphrase).
	DemoKEK bool
	Dir     string
}

// Open opens (creating if needed) the ledger in dir for writing. opts.Keys is filled from the
// directory's key.
func Open(ctx context.Context, dir, origin string, opts ledger.Options) (*Ledger, error) {
	keys, err := Keys(dir, origin, true)
	if err != nil {
		return nil, err
	}
	ring, demo, err := Keyring(ctx, dir, true)
	if err != nil {
		return nil, err
	}
	vault, err := Vault(dir)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, dir, false, opts.Logger)
	if err != nil {
		return nil, err
	}
	opts.Keys = keys
	opts.Encryption = &ledger.Encryption{Keyring: ring, Vault: vault}
	l, err := ledger.Open(ctx, st, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Ledger{Ledger: l, Store: st, Keys: keys, Keyring: ring, Vault: vault, DemoKEK: demo, Dir: dir}, nil
}

// Close closes the ledger (signing a final checkpoint) and then its store.
func (l *Ledger) Close() error {
	return errors.Join(l.Ledger.Close(), l.Store.Close())
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
