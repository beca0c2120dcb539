package keydir_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keydir"
)

// Moving a data key to a new KEK (a file KEK to a KMS, say): unwrap it with the old keyring,
// wrap it with the new one, and Rewrap. The vault writes the new wrapping as a record of its
// own and scrubs the old record, so the old wrapped bytes are no longer in the directory.
// (ledger.RotateKEK does this for every key of a vault.)
func ExampleVault_Rewrap() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	v, err := keydir.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	newRing := func(name string) *seal.KEKKeyring {
		kek := make([]byte, 32)
		rand.Read(kek)
		r, _ := seal.NewKEKKeyring(name, kek)
		return r
	}
	oldRing, kmsRing := newRing("file-1"), newRing("kms-1")

	const id = "dk1.2026-07.a"
	dek, _ := seal.NewDataKey()
	kek, wrapped, _ := oldRing.Wrap(ctx, id, dek)
	if err := v.PutKey(ctx, store.WrappedKey{ID: id, KEK: kek, Wrapped: wrapped}); err != nil {
		fmt.Println(err)
		return
	}

	k, _ := v.Key(ctx, id)
	plain, _ := oldRing.Unwrap(ctx, k.KEK, k.ID, k.Wrapped)
	kek, wrapped, _ = kmsRing.Wrap(ctx, id, plain)
	if err := v.Rewrap(ctx, id, kek, wrapped); err != nil {
		fmt.Println(err)
		return
	}

	k, _ = v.Key(ctx, id)
	back, err := kmsRing.Unwrap(ctx, k.KEK, k.ID, k.Wrapped)
	fmt.Println(k.KEK, bytes.Equal(back, dek), err)
	_, err = oldRing.Unwrap(ctx, k.KEK, k.ID, k.Wrapped)
	fmt.Println(errors.Is(err, seal.ErrUnknownKEK)) // the old keyring opens nothing now

	files, _ := os.ReadDir(dir) // the key's files, named by the hex of its id
	for _, f := range files {
		fmt.Println(f.Name())
	}
	// Output:
	// kms-1 true <nil>
	// true
	// 646b312e323032362d30372e61.2.rec
	// 646b312e323032362d30372e61.meta
}
