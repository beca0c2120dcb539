package memstore

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/commseal/commseal/store"
)

// KeyVault is an in-memory store.KeyVault. The zero value is ready to use.
type KeyVault struct {
	mu   sync.Mutex
	keys map[string]store.WrappedKey
}

var _ store.KeyVault = (*KeyVault)(nil)

func cloneKey(k store.WrappedKey) store.WrappedKey {
	k.Wrapped = slices.Clone(k.Wrapped)
	k.Meta = slices.Clone(k.Meta)
	return k
}

// PutKey implements store.KeyVault.
func (v *KeyVault) PutKey(ctx context.Context, k store.WrappedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckKey(k); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		v.keys = map[string]store.WrappedKey{}
	}
	if _, ok := v.keys[k.ID]; ok {
		return fmt.Errorf("%w: key %q", store.ErrDuplicate, k.ID)
	}
	k.Destroyed = false
	v.keys[k.ID] = cloneKey(k)
	return nil
}

// Key implements store.KeyVault.
func (v *KeyVault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := ctx.Err(); err != nil {
		return store.WrappedKey{}, err
	}
	if err := store.CheckKeyID(id); err != nil {
		return store.WrappedKey{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[id]
	switch {
	case !ok:
		return store.WrappedKey{}, fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	case k.Destroyed:
		return cloneKey(k), fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	}
	return cloneKey(k), nil
}

// UpdateKey implements store.KeyVault.
func (v *KeyVault) UpdateKey(ctx context.Context, k store.WrappedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckKey(k); err != nil {
		return err
	}
	// Checked and replaced under one lock, so a racing DestroyKey is never undone.
	v.mu.Lock()
	defer v.mu.Unlock()
	switch old, ok := v.keys[k.ID]; {
	case !ok:
		return fmt.Errorf("%w: key %q", store.ErrNotFound, k.ID)
	case old.Destroyed:
		return fmt.Errorf("%w: key %q", store.ErrDestroyed, k.ID)
	}
	k.Destroyed = false
	v.keys[k.ID] = cloneKey(k)
	return nil
}

// DestroyKey implements store.KeyVault.
func (v *KeyVault) DestroyKey(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckKeyID(id); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[id]
	if !ok {
		return fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	}
	clear(k.Wrapped)
	k.Wrapped, k.Destroyed = nil, true
	v.keys[id] = k
	return nil
}

// Keys implements store.KeyVault.
func (v *KeyVault) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return func(yield func(store.WrappedKey, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(store.WrappedKey{}, err)
			return
		}
		v.mu.Lock()
		ks := make([]store.WrappedKey, 0, len(v.keys))
		for _, k := range v.keys {
			ks = append(ks, cloneKey(k))
		}
		v.mu.Unlock()
		slices.SortFunc(ks, func(a, b store.WrappedKey) int { return cmpString(a.ID, b.ID) })
		for _, k := range ks {
			if !yield(k, nil) {
				return
			}
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
