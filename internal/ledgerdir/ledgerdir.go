// Package ledgerdir opens a writable ledger in the ledger directory layout of the programs
// (internal/layout): its signing key, its keyring and key vault, its store (the file store in
// DIR/store, or what -store and -blobs name: internal/backend), and the ledger on them. Payloads and blobs are always encrypted at rest (ledger.Encryption); no key is
// written in plain except the demonstration KEK file.
//
// An auditor's program needs none of this: it reads the layout with package layout, opens the
// store with internal/backend and checks it with package verify, without linking the writer.
//
// Library users keep keys their own way (a KMS, an HSM); this layout serves the examples.
//
// ExitCode maps what Open returns, and what fails after it, to the exit status every program
// under examples/ ends with (README, "Exit status").
package ledgerdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
)

// ErrMissingKey is returned when a directory holds a ledger but not its signing key: a new key
// would sign checkpoints that nobody can match to the old ones, so none is made.
var ErrMissingKey = errors.New("ledgerdir: the ledger's signing key is missing")

// Ledger is an open ledger directory: its stores and the ledger on them.
type Ledger struct {
	*ledger.Ledger
	// Store is the log and checkpoints: a *filestore.Store (DIR/store, or the directory of
	// -store) or a *pgstore.Store.
	Store store.Store
	// Blobs is the blob store of the attachments when it is not the store (-blobs s3://...);
	// nil otherwise.
	Blobs   store.Blobs
	Signing *seal.SigningKey
	Keyring seal.Keyring
	// Vault holds the wrapped data keys: DIR/keys (a *keydir.Vault) with a file store, the
	// store itself with PostgreSQL.
	Vault store.KeyVault
	// DemoKEK is set when the KEK is the key file beside the data (no passphrase).
	DemoKEK bool
	Dir     string
	// Spec is where the stores are (internal/backend).
	Spec backend.Spec

	stores *backend.Stores
	lock   *os.File // layout.LockFile, locked while the directory is open
}

// ErrInUse is returned by Open when another process has the directory open to write.
var ErrInUse = errors.New("ledgerdir: the ledger directory is open in another process")

// Open opens the ledger in dir for writing, on the default stores (the file store in
// DIR/store, which keeps the attachments too): OpenOn with backend.Default(dir).
func Open(ctx context.Context, dir, origin string, opts ledger.Options) (*Ledger, error) {
	return OpenOn(ctx, dir, origin, backend.Default(dir), opts)
}

// OpenOn opens the ledger in dir for writing on the stores of spec (from the -store and
// -blobs flags, backend.Parse); opts.Keys, opts.Encryption and, with -blobs, opts.Blobs are
// filled from the directory and spec (an opts.Encryption given keeps its CachedKeys). A
// directory without a ledger yet is laid out: the signing key (origin names it,
// layout.DefaultOrigin if empty), the keyring, the vault, the record of a spec that is not
// the default (ledger.store, internal/backend) and, last, the store, whose creation (or, for
// a spec that is not the default, the record) is the point after which the ledger exists; a
// layout interrupted before it is taken up where it stopped. A ledger whose signing key is
// missing fails with ErrMissingKey, one whose keyring or key-encryption key is missing or
// wrong with the keyring's errors, before anything is written: new keys would not verify or
// open what is there. A directory that records other stores than spec fails with
// backend.ErrMismatch, and a new one given a store that holds a ledger with
// backend.ErrNotEmpty, before anything is written (or, when the store's owner is what tells,
// ledger.ErrOtherLedger, the new directory then removed). Stores reached over the network
// (PostgreSQL, S3) are opened before anything is written in the directory, so one that cannot
// be reached leaves no trace there.
func OpenOn(ctx context.Context, dir, origin string, spec backend.Spec, opts ledger.Options) (*Ledger, error) {
	rec, started, err := backend.Recorded(dir)
	if err != nil {
		return nil, err
	}
	if started {
		if err := backend.Match(dir, rec, spec, true); err != nil {
			return nil, err
		}
		spec = backend.Settled(rec, spec)
	} else if err := backend.CheckFileFresh(spec); err != nil {
		return nil, err
	}
	stores := &backend.Stores{}
	if spec.Remote() {
		if stores, err = backend.OpenRemote(ctx, spec, false, !started, opts.Logger); err != nil {
			return nil, err
		}
	}
	made := false // the directory is this call's: nothing was there
	if !started {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			made = true
		}
		if err := durable.MkdirAll(dir); err != nil {
			stores.Close()
			return nil, fmt.Errorf("ledgerdir: %w", err)
		}
	}
	// The directory's lock comes before anything is read or written: loading the keyring
	// scrubs KEK files it does not list, which in another process's rotation would be the
	// new KEK not yet named in ledger.keyring.
	lock, err := lockDir(dir)
	if err != nil {
		stores.Close()
		return nil, err
	}
	l, err := open(ctx, dir, origin, started, spec, stores, opts)
	if err != nil {
		lock.Close()
		stores.Close()
		if made && errors.Is(err, ledger.ErrOtherLedger) {
			// Laid out for a store that another ledger claimed: the new keys can never open it.
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	l.lock = lock
	return l, nil
}

// lockDir opens and locks the directory's lock file.
func lockDir(dir string) (*os.File, error) {
	f, err := durable.OpenFile(filepath.Join(dir, layout.LockFile), os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("ledgerdir: %w", err)
	}
	if err := durable.Lock(f); err != nil {
		f.Close()
		if errors.Is(err, durable.ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrInUse, dir)
		}
		return nil, fmt.Errorf("ledgerdir: locking %s: %w", dir, err)
	}
	return f, nil
}

// open lays out (unless started) and opens the locked directory; stores holds the remote
// stores already open, and gets the file store. The caller closes stores on error.
func open(ctx context.Context, dir, origin string, started bool, spec backend.Spec, stores *backend.Stores, opts ledger.Options) (*Ledger, error) {
	keys, err := SigningKey(dir, origin, !started)
	if err != nil {
		return nil, err
	}
	ring, demo, err := Keyring(ctx, dir, !started)
	if err != nil {
		return nil, err
	}
	vault := stores.Vault
	if vault == nil {
		if vault, err = Vault(dir); err != nil {
			return nil, err
		}
	}
	if !started {
		if err := backend.Record(dir, spec); err != nil {
			return nil, err
		}
	}
	if stores.Store == nil {
		var st *filestore.Store
		if spec.Default {
			st, err = layout.OpenStore(ctx, dir, false, opts.Logger)
		} else {
			st, err = backend.OpenFile(ctx, spec, false, opts.Logger)
		}
		if err != nil {
			return nil, err
		}
		stores.Store = st
	}
	opts.Signing = keys
	cached := 0
	if opts.Encryption != nil {
		cached = opts.Encryption.CachedKeys
	}
	opts.Encryption = &ledger.Encryption{Keyring: ring, Vault: vault, CachedKeys: cached}
	if stores.Blobs != nil {
		opts.Blobs = stores.Blobs
	}
	l, err := ledger.Open(ctx, stores.Store, opts)
	if err != nil {
		return nil, err
	}
	return &Ledger{Ledger: l, Store: stores.Store, Blobs: stores.Blobs, Signing: keys, Keyring: ring, Vault: vault,
		DemoKEK: demo, Dir: dir, Spec: spec, stores: stores}, nil
}

// Close closes the ledger (signing a final checkpoint) and then its store.
func (l *Ledger) Close() error {
	err := errors.Join(l.Ledger.Close(), l.stores.Close())
	if l.lock != nil {
		err = errors.Join(err, l.lock.Close())
		l.lock = nil
	}
	return err
}

// SigningKey loads the directory's signing key; with create set (a ledger not started yet) it makes
// one, and the verifier key file, if there is none.
func SigningKey(dir, origin string, create bool) (*seal.SigningKey, error) {
	kp := filepath.Join(dir, layout.KeyFile)
	if _, err := os.Stat(kp); create && errors.Is(err, fs.ErrNotExist) {
		if origin == "" {
			origin = layout.DefaultOrigin
		}
		skey, vkey, err := seal.GenerateSigningKey(origin)
		if err != nil {
			return nil, err
		}
		if err := durable.CreateExclusive(kp, []byte(skey+"\n")); err != nil {
			return nil, fmt.Errorf("ledgerdir: writing signing key: %w", err)
		}
		if err := durable.WriteFile(filepath.Join(dir, layout.VKeyFile), []byte(vkey+"\n")); err != nil {
			return nil, fmt.Errorf("ledgerdir: writing verifier key: %w", err)
		}
		return seal.ParseSigningKey(skey)
	}
	b, err := os.ReadFile(kp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s holds a ledger but no %s; restore it from where you keep it (a new key would sign checkpoints that no verifier of this ledger accepts)", ErrMissingKey, dir, layout.KeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("ledgerdir: reading signing key: %w", err)
	}
	keys, err := seal.ParseSigningKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("ledgerdir: %s: %w", kp, err)
	}
	if vp := filepath.Join(dir, layout.VKeyFile); create {
		// A layout interrupted between the two keys: the verifier key follows from the signing key.
		if _, err := os.Stat(vp); errors.Is(err, fs.ErrNotExist) {
			if err := durable.WriteFile(vp, []byte(keys.VerifierKey+"\n")); err != nil {
				return nil, fmt.Errorf("ledgerdir: writing verifier key: %w", err)
			}
		}
	}
	return keys, nil
}
