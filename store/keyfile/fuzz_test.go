package keyfile_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keyfile"
)

// FuzzOpen opens arbitrary bytes as a vault file. Open never panics; it fails only with
// store.ErrCorrupt, changing nothing; a vault it opens lists its keys, reopens with the same keys and nothing
// more to repair, and once its live keys are destroyed the file holds none of their wrapped
// bytes.
func FuzzOpen(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.vault")
	v, err := keyfile.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	history(f, v)
	if err := v.Compact(context.Background()); err != nil {
		f.Fatal(err)
	}
	if err := v.PutKey(context.Background(), store.WrappedKey{ID: "z", KEK: "kek-1", Wrapped: []byte("0123456789")}); err != nil {
		f.Fatal(err)
	}
	v.Close()
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-5])
	f.Add(seed[:16])
	f.Add(seed[:7])
	f.Add([]byte{})
	flipped := bytes.Clone(seed)
	flipped[40] ^= 1
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, content []byte) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "keys.vault")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := keyfile.Open(path)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Open: %v; want nil or ErrCorrupt", err)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
				t.Fatal("a refused Open changed the file")
			}
			return
		}
		keys := listKeys(t, v)
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := keyfile.Open(path)
		if err != nil {
			t.Fatalf("reopening a file Open accepted: %v", err)
		}
		defer r.Close()
		if rec := r.Recovery(); rec != (keyfile.Recovery{}) {
			t.Fatalf("the second Open repaired again: %+v", rec)
		}
		if d := sameKeys(listKeys(t, r), keys); d != "" {
			t.Fatalf("reopened: %s", d)
		}
		for _, k := range keys {
			if err := r.DestroyKey(ctx, k.ID); err != nil {
				t.Fatalf("DestroyKey(%q): %v", k.ID, err)
			}
		}
		for _, k := range keys {
			if len(k.Wrapped) >= 8 && filesHolding(t, path, k.Wrapped) != 0 {
				t.Fatalf("destroyed key %q is still in the file", k.ID)
			}
		}
	})
}
