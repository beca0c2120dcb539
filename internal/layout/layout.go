// Package layout is the ledger directory layout that every program under examples/ shares, so
// that `verify -dir` checks what any of them wrote:
//
//	DIR/ledger.key      the Ed25519 checkpoint signing key (sumdb/note format)
//	DIR/ledger.vkey     its verifier key, to publish and to hand to auditors
//	DIR/store/          the store/filestore directory: entries, stored hashes, checkpoints, blobs
//	DIR/ledger.keyring  how the key-encryption keys (KEKs) are obtained, and a check value each
//	DIR/ledger.kek      the first KEK (hex) when no passphrase is used: a demonstration setup
//	DIR/keks/           the KEKs (hex), or the Argon2id salts of passphrase-derived KEKs, made
//	                    by rotations (retention retires the KEK that wrapped destroyed keys)
//	DIR/keys/           data keys wrapped by a KEK (store/keydir); destroyed keys leave tombstones;
//	                    absent when the store is PostgreSQL, whose key vault holds them
//	DIR/index/          the search index (ledger/search): documents sealed under their messages'
//	                    data keys, derived from the ledger and rebuilt from it when damaged
//	DIR/surveil.cursor  how far each lexicon version has scanned (ledger/surveil)
//	DIR/ledger.store    where the store is when it is not DIR/store (PostgreSQL, another
//	                    directory) or the attachments are elsewhere (S3): see internal/backend;
//	                    absent in the default layout
//
// Every directory is created with mode 0700 and every file 0600 (internal/durable).
//
// This package reads the layout without opening a ledger for writing, which is all an
// auditor's program needs (VerifierKey, OpenStore read-only); internal/ledgerdir opens a
// writable ledger in it.
package layout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/store/filestore"
)

// File names inside a ledger directory.
const (
	KeyFile     = "ledger.key"     // the checkpoint signing key
	VKeyFile    = "ledger.vkey"    // its verifier key
	StoreDir    = "store"          // the file store
	KeyringFile = "ledger.keyring" // how the KEK is obtained and a check value; no secret
	KEKFile     = "ledger.kek"     // a 256-bit KEK in hex (when no passphrase is used)
	KEKDir      = "keks"           // one write-once file per later KEK generation
	VaultDir    = "keys"           // wrapped data keys (store/keydir)
	LockFile    = "ledger.lock"    // locked by the one process that has the directory open to write
	IndexDir    = "index"          // the search index (ledger/search)
	CursorFile  = "surveil.cursor" // surveillance's cursor (ledger/surveil)
	StoreFile   = "ledger.store"   // where the store and blob store are, when not the default (internal/backend)
)

// PassphraseEnv names the environment variable holding the passphrase from which the KEK is
// derived with Argon2id.
const PassphraseEnv = "COMMSEAL_PASSPHRASE"

// DefaultOrigin names ledgers created without an explicit origin.
const DefaultOrigin = "commseal.example/ledger"

// ErrNoLedger is returned when a directory holds no ledger.
var ErrNoLedger = errors.New("layout: no ledger in this directory")

// VerifierKey reads the directory's verifier key file.
func VerifierKey(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, VKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s has no %s", ErrNoLedger, dir, VKeyFile)
	}
	if err != nil {
		return "", fmt.Errorf("layout: reading verifier key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Exists reports, as ErrNoLedger, a directory that holds no ledger (no store, and no
// StoreFile naming one elsewhere): what a program that works on an existing ledger checks
// before it opens one, so that a mistyped path is not laid out as a new ledger.
func Exists(dir string) error {
	if st, err := os.Stat(filepath.Join(dir, StoreDir)); err == nil && st.IsDir() {
		return nil
	}
	if st, err := os.Stat(filepath.Join(dir, StoreFile)); err == nil && st.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%w: %s is not a ledger directory (no %s/ or %s)", ErrNoLedger, dir, StoreDir, StoreFile)
}

// OpenStore opens the directory's file store. A read-only store must already exist
// (ErrNoLedger otherwise); it can be opened beside a running writer.
func OpenStore(ctx context.Context, dir string, readOnly bool, log *slog.Logger) (*filestore.Store, error) {
	if readOnly {
		if err := Exists(dir); err != nil {
			return nil, err
		}
	}
	return filestore.Open(ctx, filepath.Join(dir, StoreDir), &filestore.Options{ReadOnly: readOnly, Logger: log})
}
