package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"unicode/utf8"
)

// WrappedKey is a data key as a KeyVault keeps it: wrapped under a key-encryption key (KEK),
// never in plain.
type WrappedKey struct {
	ID  string // the key id, as it appears in leaves
	KEK string // the name of the KEK that wrapped it, as seal.Keyring's Wrap returned it
	// Wrapped is the wrapped key; nil once destroyed.
	Wrapped []byte
	// Meta is JSON the ledger keeps with the key (its scope, the kinds of entry it protects,
	// a blob address, a shredding mark); a destroyed key keeps the metadata it had.
	Meta      []byte
	Destroyed bool
}

// ErrDestroyed is returned for a key that was destroyed: the data it encrypted is gone.
var ErrDestroyed = errors.New("store: key destroyed")

// KeyVault keeps wrapped data keys. Unlike the log, it is mutable on purpose: destroying a key
// (crypto-shredding) is how a ledger forgets content without rewriting a single entry. A store
// that implements it can hold an encrypted ledger's keys beside its entries; the vault never
// sees a key in plain. storetest.RunKeyVault checks an adapter against every rule below.
//
// Destroying must leave nothing behind that the vault can reach, which shapes every write:
//
//   - Wrapped bytes are written once, as a record of their own, and never rewritten or copied
//     (no replace-by-rename, no metadata update that writes them again): each copy would be
//     one more place a destroyed key could be read back from. What changes (metadata) is kept
//     apart from them.
//   - Replacing a key's wrapping (Rewrap, for KEK rotation) writes the new record, makes it
//     the key's, and then destroys the previous record as DestroyKey does.
//   - Destroying overwrites each record in place (with zeros, made durable) before releasing
//     it, and leaves a tombstone: the id, the KEK and the metadata, without wrapped bytes.
//
// What the vault cannot reach (backups, snapshots, copy-on-write file systems, blocks an SSD
// remapped) is made useless by retiring the KEK (seal.KEKRetirer), not by the vault.
//
// Every id must pass CheckKeyID (ErrInvalid otherwise; for Key and DestroyKey, ErrNotFound is
// also acceptable). Every method honors its context: once it is done, a call fails with its
// error and changes nothing. A vault is safe for concurrent use.
type KeyVault interface {
	// PutKey durably stores a new key: its ID, KEK, Wrapped and Meta (checked by CheckWrappedKey:
	// ErrInvalid otherwise; Destroyed is ignored). It fails with ErrDuplicate, changing nothing,
	// if the id exists, live or destroyed: a destroyed key never comes back. The vault keeps
	// no slice of k.
	PutKey(ctx context.Context, k WrappedKey) error
	// Key returns a copy of a live key. For a destroyed key it returns the tombstone (ID, KEK
	// and Meta, Wrapped nil, Destroyed set) with an error wrapping ErrDestroyed; for an unknown
	// id, ErrNotFound.
	Key(ctx context.Context, id string) (WrappedKey, error)
	// SetMeta durably replaces a live key's metadata (empty or JSON, else ErrInvalid) and
	// nothing else: the wrapped bytes are neither rewritten nor copied. ErrDestroyed for a
	// destroyed key, ErrNotFound for an unknown one, and nothing changes.
	SetMeta(ctx context.Context, id string, meta []byte) error
	// Rewrap durably replaces a live key's wrapping with wrapped, made under the KEK named kek
	// (both non-empty, else ErrInvalid): it writes them as a new record, makes that record the
	// key's, then destroys the previous one as DestroyKey destroys a record (overwritten in
	// place, then released). A failure part way leaves the key whole under one wrapping or the
	// other, and a superseded record that the next Rewrap or DestroyKey of the key destroys.
	// ErrDestroyed for a destroyed key (which stays destroyed), ErrNotFound for an unknown one.
	Rewrap(ctx context.Context, id, kek string, wrapped []byte) error
	// DestroyKey durably destroys every wrapped form of the key the vault keeps, overwriting
	// each in place before releasing it, and leaves a tombstone (ID, KEK, Meta). Destroying a
	// destroyed key is harmless, and destroys what an interrupted destruction left. ErrNotFound
	// for an unknown id.
	DestroyKey(ctx context.Context, id string) error
	// Keys yields every key, live and destroyed (as Key returns them, Destroyed set and no
	// error for a tombstone), in id order (byte-wise). It may stop early when the consumer
	// does, and yields the context's error when it is done.
	Keys(ctx context.Context) iter.Seq2[WrappedKey, error]
}

// MetaUpdater is implemented by key vaults that several processes share (store/pgstore): it
// changes a key's metadata as one atomic step, so that two writers adding to it at once (a
// kind of entry, an attachment's scope, a shredding mark) do not undo each other. A ledger uses
// it when the vault has it, and reads and writes with Key and SetMeta when not.
type MetaUpdater interface {
	// UpdateMeta calls update once with the metadata of the live key id and stores what update
	// returns, with no other change to that key in between (a concurrent UpdateMeta, SetMeta,
	// Rewrap or DestroyKey of id waits, or fails). Metadata returned unchanged (the same bytes)
	// is not written. An error from update is returned as it is, and nothing changes. update
	// must not call the vault (it may hold the vault's lock). It fails
	// as SetMeta does: ErrNotFound, ErrDestroyed, ErrInvalid for metadata CheckMeta refuses.
	UpdateMeta(ctx context.Context, id string, update func(meta []byte) ([]byte, error)) error
}

// CheckKeyID reports whether id can name a key: it is not empty and is valid UTF-8 (a key id is
// text in leaves, shred entries and JSON metadata; one that is not UTF-8 could be stored but
// not read back). Vaults call it (or CheckWrappedKey) before every use of an id and refuse a bad one
// with ErrInvalid.
func CheckKeyID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: a key needs an id", ErrInvalid)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: key id %q is not valid UTF-8", ErrInvalid, id)
	}
	return nil
}

// CheckWrappedKey reports whether k can be stored by PutKey: an id that CheckKeyID accepts, a KEK
// name, wrapped bytes, and metadata that CheckMeta accepts. Vaults call it before writing.
func CheckWrappedKey(k WrappedKey) error {
	if err := CheckKeyID(k.ID); err != nil {
		return err
	}
	if err := CheckWrapping(k.ID, k.KEK, k.Wrapped); err != nil {
		return err
	}
	return CheckMeta(k.ID, k.Meta)
}

// CheckWrapping reports whether a wrapping can be stored by PutKey or Rewrap: a KEK name and
// wrapped bytes.
func CheckWrapping(id, kek string, wrapped []byte) error {
	switch {
	case kek == "":
		return fmt.Errorf("%w: key %q without the name of its KEK", ErrInvalid, id)
	case len(wrapped) == 0:
		return fmt.Errorf("%w: key %q without wrapped bytes", ErrInvalid, id)
	}
	return nil
}

// CheckMeta reports whether metadata can be stored by PutKey or SetMeta: empty or JSON.
func CheckMeta(id string, meta []byte) error {
	if len(meta) > 0 && !json.Valid(meta) {
		return fmt.Errorf("%w: key %q metadata is not JSON", ErrInvalid, id)
	}
	return nil
}
