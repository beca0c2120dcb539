// Package keydir is a store.KeyVault kept in a directory: one small file per data key, holding
// the key wrapped by a keyring's KEK (never in plain) and the ledger's metadata for it.
//
// Durability: every change is written to a temporary file, synced, renamed over the key's file
// and followed by a sync of the directory, so a crash leaves either the old or the new version.
// Destroying a key first overwrites its file in place with zeros and syncs it, then replaces it
// with a tombstone that records only the id and the fact of destruction. The wrapped bytes are
// useless without the KEK anyway; the overwrite removes them from the file system's view
// (storage media may keep remapped blocks, which is why the keys are wrapped in the first place).
//
// File name: the hex of the key id plus ".key" (so an id has at most 125 bytes). File content: JSON
// {"id","keyring","wrapped","meta"} or {"id","destroyed":true}.
package keydir

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

// Vault is a store.KeyVault in a directory. It is safe for concurrent use within one process.
type Vault struct {
	dir string
	mu  sync.Mutex
}

var _ store.KeyVault = (*Vault)(nil)

// Open opens (creating if needed, mode 0700) the vault directory.
func Open(dir string) (*Vault, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("keydir: %w", err)
	}
	return &Vault{dir: dir}, nil
}

type fileKey struct {
	ID        string          `json:"id"`
	Keyring   string          `json:"keyring,omitempty"`
	Wrapped   []byte          `json:"wrapped,omitempty"`
	Meta      json.RawMessage `json:"meta,omitempty"`
	Destroyed bool            `json:"destroyed,omitempty"`
}

func (v *Vault) path(id string) string {
	return filepath.Join(v.dir, hex.EncodeToString([]byte(id))+".key")
}

func (v *Vault) read(id string) (store.WrappedKey, error) {
	b, err := os.ReadFile(v.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return store.WrappedKey{}, fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	}
	if err != nil {
		return store.WrappedKey{}, fmt.Errorf("keydir: reading key %q: %w", id, err)
	}
	var f fileKey
	if err := json.Unmarshal(b, &f); err != nil || f.ID != id {
		return store.WrappedKey{}, fmt.Errorf("%w: key file for %q is unreadable", store.ErrCorrupt, id)
	}
	k := store.WrappedKey{ID: f.ID, Keyring: f.Keyring, Wrapped: f.Wrapped, Meta: f.Meta, Destroyed: f.Destroyed}
	if k.Destroyed {
		return k, fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	}
	if len(k.Wrapped) == 0 {
		return k, fmt.Errorf("%w: key file for %q has no wrapped key", store.ErrCorrupt, id)
	}
	return k, nil
}

func (v *Vault) write(f fileKey) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	tmp, err := os.CreateTemp(v.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keydir: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("keydir: writing key %q: %w", f.ID, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keydir: syncing key %q: %w", f.ID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	if err := os.Rename(tmp.Name(), v.path(f.ID)); err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	return syncDir(v.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keydir: syncing directory: %w", err)
	}
	return nil
}

// maxID is the longest id whose file name (hex, ".key") fits the 255 bytes that file systems
// allow a name.
const maxID = (255 - len(".key")) / 2

func checkID(id string) error {
	if len(id) > maxID {
		return fmt.Errorf("%w: key id must be 1 to %d bytes", store.ErrInvalid, maxID)
	}
	return store.CheckKeyID(id)
}

// checkKey refuses a PutKey or UpdateKey that cannot be written.
func checkKey(ctx context.Context, k store.WrappedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(k.ID); err != nil {
		return err
	}
	return store.CheckKey(k)
}

// PutKey implements store.KeyVault.
func (v *Vault) PutKey(ctx context.Context, k store.WrappedKey) error {
	if err := checkKey(ctx, k); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := os.Stat(v.path(k.ID)); err == nil {
		return fmt.Errorf("%w: key %q", store.ErrDuplicate, k.ID)
	}
	return v.write(fileKey{ID: k.ID, Keyring: k.Keyring, Wrapped: k.Wrapped, Meta: k.Meta})
}

// Key implements store.KeyVault.
func (v *Vault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := ctx.Err(); err != nil {
		return store.WrappedKey{}, err
	}
	if err := checkID(id); err != nil {
		return store.WrappedKey{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.read(id)
}

// UpdateKey implements store.KeyVault.
func (v *Vault) UpdateKey(ctx context.Context, k store.WrappedKey) error {
	if err := checkKey(ctx, k); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.read(k.ID); err != nil {
		return err
	}
	return v.write(fileKey{ID: k.ID, Keyring: k.Keyring, Wrapped: k.Wrapped, Meta: k.Meta})
}

// DestroyKey implements store.KeyVault.
func (v *Vault) DestroyKey(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	_, err := v.read(id)
	if errors.Is(err, store.ErrDestroyed) {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrCorrupt) {
		return err
	}
	// Overwrite in place first, so the wrapped bytes do not survive in the old file's blocks. A
	// failure leaves the key live and says so: the caller retries, never believing it gone.
	if err := zeroFile(v.path(id)); err != nil {
		return fmt.Errorf("keydir: overwriting key %q before destroying it: %w", id, err)
	}
	return v.write(fileKey{ID: id, Destroyed: true})
}

// zeroFile overwrites a file's contents with zeros and syncs it.
func zeroFile(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, fi.Size()), 0); err != nil {
		return err
	}
	return f.Sync()
}

// Keys implements store.KeyVault.
func (v *Vault) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return func(yield func(store.WrappedKey, error) bool) {
		ents, err := os.ReadDir(v.dir)
		if err != nil {
			yield(store.WrappedKey{}, fmt.Errorf("keydir: %w", err))
			return
		}
		var ids []string
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), ".key")
			if !ok || strings.HasPrefix(name, ".") {
				continue
			}
			b, err := hex.DecodeString(name)
			if err != nil {
				continue
			}
			ids = append(ids, string(b))
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				yield(store.WrappedKey{}, err)
				return
			}
			v.mu.Lock()
			k, err := v.read(id)
			v.mu.Unlock()
			if errors.Is(err, store.ErrDestroyed) {
				err = nil
			}
			if !yield(k, err) || err != nil {
				return
			}
		}
	}
}
