// Package sealtest is a kit for code that uses seal.Keyring: an in-memory keyring that rotates
// and retires KEKs (Keyring, for tests of what sits on a keyring), and the conformance suite
// that a KMS or HSM adapter runs to prove it keeps the seal.Keyring and seal.KEKRetirer
// contracts (RunKeyring), in the spirit of testing/fstest.TestFS and store/storetest.
//
//	func TestConformance(t *testing.T) {
//		sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring { return myKMSKeyring(t) })
//	}
package sealtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"github.com/commseal/commseal/seal"
)

// Keyring is an in-memory seal.KEKRetirer: a current KEK and the older KEKs not yet retired,
// each a seal.KEKKeyring. Retiring a KEK forgets it, so nothing wrapped under it unwraps from
// this keyring again. It is safe for concurrent use. It keeps nothing on disk: a test keyring.
type Keyring struct {
	mu      sync.RWMutex
	prefix  string // distinguishes the KEK names of two keyrings
	n       int    // KEKs made so far
	current string
	live    map[string]*seal.KEKKeyring
	retired map[string]bool
}

var _ seal.KEKRetirer = (*Keyring)(nil)

// NewKeyring returns a keyring with one fresh random KEK, current.
func NewKeyring() *Keyring {
	var p [3]byte
	rand.Read(p[:]) // never fails (crypto/rand, Go 1.24 and later)
	k := &Keyring{prefix: "mem-" + hex.EncodeToString(p[:]), live: map[string]*seal.KEKKeyring{}, retired: map[string]bool{}}
	k.rotate()
	return k
}

func (k *Keyring) rotate() string {
	kek := make([]byte, 32)
	rand.Read(kek)
	k.n++
	id := fmt.Sprintf("%s-%d", k.prefix, k.n)
	r, _ := seal.NewKEKKeyring(id, kek) // a 32-byte KEK and a name: cannot fail
	k.live[id], k.current = r, id
	return id
}

// ID implements seal.Keyring.
func (k *Keyring) ID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Wrap implements seal.Keyring.
func (k *Keyring) Wrap(ctx context.Context, keyID string, dek []byte) (string, []byte, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	k.mu.RLock()
	r := k.live[k.current]
	k.mu.RUnlock()
	return r.Wrap(ctx, keyID, dek)
}

// Unwrap implements seal.Keyring.
func (k *Keyring) Unwrap(ctx context.Context, kek, keyID string, wrapped []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.RLock()
	r, ok := k.live[kek]
	k.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unwrapping data key %q: %w: %q", keyID, seal.ErrUnknownKEK, kek)
	}
	return r.Unwrap(ctx, kek, keyID, wrapped)
}

// Rotate implements seal.KEKRetirer.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rotate(), nil
}

// Retire implements seal.KEKRetirer. A name this keyring never made fails with
// seal.ErrUnknownKEK.
func (k *Keyring) Retire(ctx context.Context, kek string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch _, ok := k.live[kek]; {
	case kek == k.current:
		return fmt.Errorf("sealtest: %w: %q", seal.ErrRetireCurrent, kek)
	case k.retired[kek]:
		return nil
	case !ok:
		return fmt.Errorf("sealtest: %w: %q", seal.ErrUnknownKEK, kek)
	}
	delete(k.live, kek)
	k.retired[kek] = true
	return nil
}

// KEKs implements seal.KEKRetirer; the names are sorted.
func (k *Keyring) KEKs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, 0, len(k.live))
	for id := range k.live {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}
