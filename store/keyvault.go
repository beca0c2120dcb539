package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"unicode/utf8"
)

// WrappedKey is a data key as a KeyVault keeps it: wrapped by a keyring's KEK, never in plain.
type WrappedKey struct {
	ID        string // the key id, as it appears in leaves
	Keyring   string // the id of the keyring (KEK) that wrapped it
	Wrapped   []byte // nil once destroyed
	Meta      []byte // JSON the ledger keeps with the key (its scope, blob address, ...)
	Destroyed bool
}

// ErrDestroyed is returned for a key that was destroyed: the data it encrypted is gone.
var ErrDestroyed = errors.New("store: key destroyed")

// KeyVault keeps wrapped data keys. Unlike the log, it is mutable on purpose: destroying a key
// (crypto-shredding) is how a ledger forgets content without rewriting a single entry. A store
// that implements it can hold an encrypted ledger's keys beside its entries; the vault never
// sees a key in plain.
type KeyVault interface {
	// PutKey durably stores a new key. It fails with ErrDuplicate if the id exists, live or
	// destroyed.
	PutKey(ctx context.Context, k WrappedKey) error
	// Key returns a live key, ErrDestroyed for a destroyed one, ErrNotFound for an unknown id.
	Key(ctx context.Context, id string) (WrappedKey, error)
	// UpdateKey durably replaces a live key's Keyring, Wrapped and Meta (for KEK rotation and
	// metadata); ErrDestroyed or ErrNotFound otherwise.
	UpdateKey(ctx context.Context, k WrappedKey) error
	// DestroyKey durably destroys a key's wrapped material; the id stays known as destroyed.
	// Destroying a destroyed key is harmless.
	DestroyKey(ctx context.Context, id string) error
	// Keys yields every key, live and destroyed (with Wrapped nil), in id order.
	Keys(ctx context.Context) iter.Seq2[WrappedKey, error]
}

// CheckKeyID reports whether id can name a key: it is not empty and is valid UTF-8 (a key id is
// text in leaves, shred entries and JSON metadata; one that is not UTF-8 could be stored but
// not read back). Vaults call it (or CheckKey) before every use of an id and refuse a bad one
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

// CheckKey reports whether k can be stored by PutKey or UpdateKey: an id that CheckKeyID
// accepts, wrapped bytes, and metadata that is empty or JSON. Vaults call it before writing.
func CheckKey(k WrappedKey) error {
	if err := CheckKeyID(k.ID); err != nil {
		return err
	}
	switch {
	case len(k.Wrapped) == 0:
		return fmt.Errorf("%w: key %q without wrapped bytes", ErrInvalid, k.ID)
	case len(k.Meta) > 0 && !json.Valid(k.Meta):
		return fmt.Errorf("%w: key %q metadata is not JSON", ErrInvalid, k.ID)
	}
	return nil
}
