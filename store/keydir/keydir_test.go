package keydir_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
	"github.com/commseal/commseal/store/storetest"
)

func TestKeyVaultConformance(t *testing.T) {
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault {
		v, err := keydir.Open(filepath.Join(t.TempDir(), "keys"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}

func mustOpen(t *testing.T, dir string) *keydir.Vault {
	t.Helper()
	v, err := keydir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func listKeys(t *testing.T, v store.KeyVault) []store.WrappedKey {
	t.Helper()
	var ks []store.WrappedKey
	for k, err := range v.Keys(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return ks
}

// TestReopenSeesSameState: what one Vault did, a Vault opened later on the directory sees.
func TestReopenSeesSameState(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := v.PutKey(ctx, storetest.KeyAt(id, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.UpdateKey(ctx, storetest.KeyAt("b", 2)); err != nil {
		t.Fatal(err)
	}
	if err := v.DestroyKey(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	before := listKeys(t, v)

	r := mustOpen(t, dir)
	after := listKeys(t, r)
	if len(after) != len(before) {
		t.Fatalf("reopened vault lists %d keys; before it had %d", len(after), len(before))
	}
	for k := range before {
		if d := storetest.SameKey(after[k], before[k]); d != "" {
			t.Fatalf("reopened vault: %s", d)
		}
	}
	if got, err := r.Key(ctx, "b"); err != nil || storetest.SameKey(got, storetest.KeyAt("b", 2)) != "" {
		t.Fatalf("reopened vault: Key(b) = %v; want version 2", err)
	}
	if _, err := r.Key(ctx, "c"); !errors.Is(err, store.ErrDestroyed) {
		t.Fatalf("reopened vault: Key(c) err = %v; want ErrDestroyed", err)
	}
	if err := r.PutKey(ctx, storetest.KeyAt("c", 3)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("reopened vault: PutKey of the destroyed id: err = %v; want ErrDuplicate", err)
	}
	if err := r.PutKey(ctx, storetest.KeyAt("e", 1)); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, mustOpen(t, dir)); len(got) != 5 || got[4].ID != "e" {
		t.Fatalf("after a put through the reopened vault, a third sees %d keys", len(got))
	}
}

// TestDestroyedKeyLeavesNoTrace: after DestroyKey, no file of the directory holds the key's
// wrapped bytes, raw or in the base64 of the JSON encoding, in any version it had.
func TestDestroyedKeyLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")
	v := mustOpen(t, dir)
	k1, k2 := storetest.KeyAt("shred-me", 1), storetest.KeyAt("shred-me", 2)
	keep := storetest.KeyAt("keep", 1)
	for _, k := range []store.WrappedKey{k1, keep} {
		if err := v.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.UpdateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	contains := func(secret []byte) []string {
		var found []string
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(b, secret) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(secret))) {
				found = append(found, filepath.Base(p))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	if len(contains(k2.Wrapped)) == 0 {
		t.Fatalf("the live key's wrapped bytes are in no file: the check below would prove nothing")
	}
	if err := v.DestroyKey(ctx, "shred-me"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []store.WrappedKey{k1, k2} {
		if files := contains(k.Wrapped); len(files) > 0 {
			t.Fatalf("after DestroyKey, files %v still hold wrapped bytes of the key (keyring %s)", files, k.Keyring)
		}
	}
	if len(contains(keep.Wrapped)) == 0 {
		t.Fatalf("DestroyKey of one key removed another's wrapped bytes")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left in the vault", e.Name())
		}
	}
}

// TestLongIDs: an id too long for a file name is refused as invalid, not with an error of the
// file system, and the longest accepted id works.
func TestLongIDs(t *testing.T) {
	ctx := context.Background()
	v := mustOpen(t, filepath.Join(t.TempDir(), "keys"))
	longest := strings.Repeat("k", 125)
	if err := v.PutKey(ctx, storetest.KeyAt(longest, 1)); err != nil {
		t.Fatalf("PutKey of a %d-byte id: %v", len(longest), err)
	}
	if got, err := v.Key(ctx, longest); err != nil || storetest.SameKey(got, storetest.KeyAt(longest, 1)) != "" {
		t.Fatalf("Key of a %d-byte id: %v", len(longest), err)
	}
	for _, n := range []int{126, 200, 256, 1000} {
		if err := v.PutKey(ctx, storetest.KeyAt(strings.Repeat("k", n), 1)); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("PutKey of a %d-byte id: err = %v; want ErrInvalid", n, err)
		}
	}
}
