package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// ErrNotEncrypted is returned by a Deriver's Seal and Open on a ledger without
// Options.Encryption: there is no data key to seal derived data under, so a program keeps such
// data in memory only.
var ErrNotEncrypted = errors.New("ledger: the ledger is not encrypted")

// Deriver reads the ledger's content for a program that derives state from it (a search index,
// surveillance that re-scans history) and seals what that program keeps under the data key of
// the entry it came from, so that shredding the entry's scope destroys the derived state with
// it, as irrecoverably as the entry itself: the state needs no rewriting to forget.
//
// Deriving is not an access: nothing a Deriver reads leaves the process except sealed under
// the entry's own key, and no entry is appended for it (an index that follows the ledger would
// otherwise chase its own access entries). What a person sees of derived state goes through an
// Accessor (Accessor.Query), which seals the access first.
type Deriver struct {
	l     *Ledger
	label string
}

// Derive returns a Deriver whose sealed data is labelled label (for example "search"), so that
// one program's derived data cannot be passed off as another's.
func (l *Ledger) Derive(label string) *Deriver { return &Deriver{l: l, label: label} }

// Scan calls fn with every entry in [from, to) decrypted, like Accessor.Scan but sealing no
// access entry; a shredded entry comes with Body nil and an error wrapping ErrShredded.
func (d *Deriver) Scan(ctx context.Context, from, to uint64, fn func(*Entry, error) error) error {
	to = min(to, d.l.Size())
	if from >= to {
		return nil
	}
	return d.l.scan(ctx, from, to, fn)
}

// Kinds calls fn with the index and kind of every entry in [from, to), reading the leaves only:
// nothing is decrypted or decoded. A consumer that was handed some entries' content
// (Options.Appended) finds with it which entries it still has to read.
func (d *Deriver) Kinds(ctx context.Context, from, to uint64, fn func(i uint64, k seal.Kind) error) error {
	return d.l.entries(ctx, from, min(to, d.l.Size()), func(e store.Entry) error {
		k, err := seal.LeafKind(e.Leaf)
		if err != nil {
			return fmt.Errorf("%w: ledger: entry %d: %w", store.ErrCorrupt, e.Index, err)
		}
		return fn(e.Index, k)
	})
}

// Seal encrypts data derived from entry index under the data key keyID (the entry's
// Leaf.KeyID). It fails with ErrShredded when the key was destroyed and ErrNotEncrypted on a
// plain ledger.
func (d *Deriver) Seal(ctx context.Context, keyID string, index uint64, data []byte) ([]byte, error) {
	dek, err := d.key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	rnd := d.l.rand()
	defer d.l.putRand(rnd)
	return seal.EncryptDerived(rnd, dek, d.label, index, data)
}

// Open decrypts what Seal returned for the same key and index. It fails with ErrShredded when
// the key was destroyed (the data is gone for good) and with an error wrapping seal.ErrDecrypt
// when the ciphertext was altered or belongs elsewhere.
func (d *Deriver) Open(ctx context.Context, keyID string, index uint64, ct []byte) ([]byte, error) {
	dek, err := d.key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	data, err := seal.DecryptDerived(dek, d.label, index, ct)
	if err != nil {
		return nil, fmt.Errorf("ledger: derived data of entry %d: %w", index, err)
	}
	return data, nil
}

func (d *Deriver) key(ctx context.Context, keyID string) ([]byte, error) {
	if d.l.dk == nil {
		return nil, ErrNotEncrypted
	}
	if keyID == "" {
		return nil, errors.New("ledger: derived data needs the key id of an encrypted entry")
	}
	return d.l.dk.get(ctx, keyID, keyScope{}, false, "")
}

// Encrypted reports whether the ledger encrypts content (Options.Encryption), that is whether
// a Deriver can seal derived data.
func (l *Ledger) Encrypted() bool { return l.dk != nil }
