package memstore

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"

	"github.com/commseal/commseal/store"
)

// KeyVault is an in-memory store.KeyVault. The zero value is ready to use. Wrapped bytes are
// stored once per wrapping and zeroed when superseded or destroyed.
type KeyVault struct {
	mu   sync.Mutex
	keys map[string]*memKey

	written func(b []byte) // test hook: called with every byte string stored
}

type memKey struct {
	kek       string
	wrapped   []byte
	meta      []byte
	destroyed bool
}

var _ store.KeyVault = (*KeyVault)(nil)

func (v *KeyVault) store(b []byte) []byte {
	b = slices.Clone(b)
	if v.written != nil {
		v.written(b)
	}
	return b
}

func (k *memKey) export(id string) store.WrappedKey {
	return store.WrappedKey{ID: id, KEK: k.kek, Wrapped: slices.Clone(k.wrapped), Meta: slices.Clone(k.meta), Destroyed: k.destroyed}
}

// live returns the live key id, or the error the interface gives for it.
func (v *KeyVault) live(id string) (*memKey, error) {
	k, ok := v.keys[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	case k.destroyed:
		return nil, fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	}
	return k, nil
}

func begin(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return store.CheckKeyID(id)
}

// PutKey implements store.KeyVault.
func (v *KeyVault) PutKey(ctx context.Context, k store.WrappedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckWrappedKey(k); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys == nil {
		v.keys = map[string]*memKey{}
	}
	if _, ok := v.keys[k.ID]; ok {
		return fmt.Errorf("%w: key %q", store.ErrDuplicate, k.ID)
	}
	v.keys[k.ID] = &memKey{kek: k.KEK, wrapped: v.store(k.Wrapped), meta: v.store(k.Meta)}
	return nil
}

// Key implements store.KeyVault.
func (v *KeyVault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := begin(ctx, id); err != nil {
		return store.WrappedKey{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[id]
	switch {
	case !ok:
		return store.WrappedKey{}, fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	case k.destroyed:
		return k.export(id), fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	}
	return k.export(id), nil
}

// SetMeta implements store.KeyVault.
func (v *KeyVault) SetMeta(ctx context.Context, id string, meta []byte) error {
	if err := begin(ctx, id); err != nil {
		return err
	}
	if err := store.CheckMeta(id, meta); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, err := v.live(id)
	if err != nil {
		return err
	}
	k.meta = v.store(meta)
	return nil
}

// UpdateMeta implements store.MetaUpdater.
func (v *KeyVault) UpdateMeta(ctx context.Context, id string, update func([]byte) ([]byte, error)) error {
	if err := begin(ctx, id); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, err := v.live(id)
	if err != nil {
		return err
	}
	meta, err := update(bytes.Clone(k.meta))
	if err != nil || bytes.Equal(meta, k.meta) {
		return err
	}
	if err := store.CheckMeta(id, meta); err != nil {
		return err
	}
	k.meta = v.store(meta)
	return nil
}

var _ store.MetaUpdater = (*KeyVault)(nil)

// Rewrap implements store.KeyVault.
func (v *KeyVault) Rewrap(ctx context.Context, id, kek string, wrapped []byte) error {
	if err := begin(ctx, id); err != nil {
		return err
	}
	if err := store.CheckWrapping(id, kek, wrapped); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, err := v.live(id)
	if err != nil {
		return err
	}
	clear(k.wrapped)
	k.kek, k.wrapped = kek, v.store(wrapped)
	return nil
}

// DestroyKey implements store.KeyVault.
func (v *KeyVault) DestroyKey(ctx context.Context, id string) error {
	if err := begin(ctx, id); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[id]
	if !ok {
		return fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	}
	clear(k.wrapped)
	k.wrapped, k.destroyed = nil, true
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
		for id, k := range v.keys {
			ks = append(ks, k.export(id))
		}
		v.mu.Unlock()
		slices.SortFunc(ks, func(a, b store.WrappedKey) int { return strings.Compare(a.ID, b.ID) })
		for _, k := range ks {
			if err := ctx.Err(); err != nil {
				yield(store.WrappedKey{}, err)
				return
			}
			if !yield(k, nil) {
				return
			}
		}
	}
}
