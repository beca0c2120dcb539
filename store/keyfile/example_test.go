package keyfile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keyfile"
)

// A vault in one file: keys are stored wrapped, changed, and destroyed; a destroyed key keeps
// its tombstone, and its wrapped bytes are overwritten in the file.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	v, err := keyfile.Open(filepath.Join(dir, "keys.vault"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	_ = v.PutKey(ctx, store.WrappedKey{ID: "dk1.2026-07.x", KEK: "kek-1", Wrapped: []byte("wrapped bytes"), Meta: []byte(`{"tenant":"corp"}`)})
	_ = v.SetMeta(ctx, "dk1.2026-07.x", []byte(`{"tenant":"corp","kinds":["message"]}`))
	_ = v.DestroyKey(ctx, "dk1.2026-07.x")
	k, err := v.Key(ctx, "dk1.2026-07.x")
	fmt.Println(errors.Is(err, store.ErrDestroyed), k.KEK, string(k.Meta), k.Wrapped == nil)

	file, _ := os.ReadFile(v.Path())
	fmt.Println(bytesContain(file, "wrapped bytes"))
	// Output:
	// true kek-1 {"tenant":"corp","kinds":["message"]} true
	// false
}

func bytesContain(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}

// Compact when the file has grown well past its live part: here a key's metadata was set a
// hundred times, and compaction leaves one record per key.
func ExampleVault_Compact() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	v, err := keyfile.Open(filepath.Join(dir, "keys.vault"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	_ = v.PutKey(ctx, store.WrappedKey{ID: "dk1.2026-07.x", KEK: "kek-1", Wrapped: []byte("wrapped bytes")})
	for i := range 100 {
		_ = v.SetMeta(ctx, "dk1.2026-07.x", fmt.Appendf(nil, `{"entries":%d}`, i))
	}
	if s := v.Stats(); s.FileBytes > 2*s.LiveBytes {
		fmt.Println("compacting", s.FileBytes, "bytes to", s.LiveBytes)
		if err := v.Compact(ctx); err != nil {
			fmt.Println(err)
			return
		}
	}
	k, _ := v.Key(ctx, "dk1.2026-07.x")
	fmt.Println(v.Stats().FileBytes, string(k.Meta))
	// Output:
	// compacting 7191 bytes to 115
	// 115 {"entries":99}
}
