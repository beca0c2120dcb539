package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
)

// An adapter's Append starts by checking the batch against its own log, and writes nothing
// when the check fails. Here the adapter keeps its log in two slices; storetest.BatchAt makes
// the batches a ledger would hand it.
func ExampleCheckBatch() {
	var entries []store.Entry
	var hashes []store.Hash
	appendBatch := func(b *store.Batch) error {
		if err := store.CheckBatch(b, uint64(len(entries))); err != nil {
			return fmt.Errorf("mystore: append: %w", err)
		}
		// An adapter that implements store.IdentityIndex refuses here, with ErrDuplicate,
		// identities it already stores. Then it makes a copy of the whole batch durable, all of
		// it or none of it, and only then returns nil.
		for _, e := range b.Entries {
			e.Leaf, e.Payload = bytes.Clone(e.Leaf), bytes.Clone(e.Payload)
			entries = append(entries, e)
		}
		hashes = append(hashes, b.Hashes...)
		return nil
	}

	fmt.Println(appendBatch(storetest.BatchAt(0, 3))) // entries 0, 1, 2 and the hashes they add
	err := appendBatch(storetest.BatchAt(0, 3))       // the same batch again
	fmt.Println(errors.Is(err, store.ErrOutOfOrder))
	b := storetest.BatchAt(3, 2)
	b.Hashes = b.Hashes[:len(b.Hashes)-1] // a stored hash missing
	fmt.Println(errors.Is(appendBatch(b), store.ErrInvalid))
	b = storetest.BatchAt(3, 2)
	b.Entries[0].Identity = b.Entries[1].Identity // one message twice in a batch
	fmt.Println(errors.Is(appendBatch(b), store.ErrDuplicate))
	fmt.Println(len(entries), int64(len(hashes)) == store.StoredHashCount(uint64(len(entries))))

	// A complete adapter (memstore here) answers the same way.
	err = memstore.New().Append(context.Background(), storetest.BatchAt(1, 1))
	fmt.Println(errors.Is(err, store.ErrOutOfOrder))
	// Output:
	// <nil>
	// true
	// true
	// true
	// 3 true
	// true
}

// An adapter's PutCheckpoint checks the checkpoint against its log's size and the latest
// checkpoint it holds. The store never reads the signed note: the ledger and its verifiers do.
func ExampleCheckCheckpoint() {
	const size = 5 // entries in the adapter's log
	var checkpoints []store.Checkpoint
	put := func(c store.Checkpoint) error {
		var latest uint64
		if len(checkpoints) > 0 {
			latest = checkpoints[len(checkpoints)-1].Size
		}
		if err := store.CheckCheckpoint(c, size, latest); err != nil {
			return fmt.Errorf("mystore: checkpoint: %w", err)
		}
		checkpoints = append(checkpoints, store.Checkpoint{Size: c.Size, Note: bytes.Clone(c.Note)})
		return nil
	}

	note := []byte("example.com/hk-equities\n3\n...\n\n— example.com/hk-equities ...\n")
	fmt.Println(put(store.Checkpoint{Size: 3, Note: note}))
	fmt.Println(errors.Is(put(store.Checkpoint{Size: 3, Note: note}), store.ErrOutOfOrder)) // not newer
	fmt.Println(errors.Is(put(store.Checkpoint{Size: 6, Note: note}), store.ErrInvalid))    // beyond the log
	fmt.Println(errors.Is(put(store.Checkpoint{Size: 5}), store.ErrInvalid))                // no note
	fmt.Println(put(store.Checkpoint{Size: 5, Note: note}), len(checkpoints))
	// Output:
	// <nil>
	// true
	// true
	// true
	// <nil> 2
}

// A KeyVault's PutKey checks the key first: an id that leaves can carry, the name of the KEK
// that wrapped it, the wrapped bytes, and metadata that is JSON.
func ExampleCheckWrappedKey() {
	k := store.WrappedKey{ID: "dk1.2026-07.a", KEK: "kek-1", Wrapped: []byte("wrapped bytes"),
		Meta: []byte(`{"tenant":"corp"}`)}
	fmt.Println(store.CheckWrappedKey(k))
	for _, bad := range []store.WrappedKey{
		{ID: "dk1.2026-07.a", KEK: "kek-1"},                                          // nothing wrapped
		{ID: "dk1.2026-07.a", Wrapped: k.Wrapped},                                    // no KEK named
		{ID: "\xff", KEK: "kek-1", Wrapped: k.Wrapped},                               // not UTF-8
		{ID: "dk1.2026-07.a", KEK: "kek-1", Wrapped: k.Wrapped, Meta: []byte("v=1")}, // not JSON
	} {
		fmt.Println(errors.Is(store.CheckWrappedKey(bad), store.ErrInvalid))
	}

	// memstore's vault refuses the same keys, and a second key with an id already used.
	ctx := context.Background()
	var v memstore.KeyVault
	fmt.Println(v.PutKey(ctx, k), errors.Is(v.PutKey(ctx, k), store.ErrDuplicate))
	k.Wrapped[0] = 'W' // the vault kept a copy, not the caller's slice
	got, _ := v.Key(ctx, "dk1.2026-07.a")
	fmt.Println(string(got.Wrapped))
	// Output:
	// <nil>
	// true
	// true
	// true
	// true
	// <nil> true
	// wrapped bytes
}
