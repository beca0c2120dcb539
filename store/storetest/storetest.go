// Package storetest is the conformance suite for store.Store adapters, in the spirit of
// testing/fstest.TestFS: an adapter proves it keeps the storage contract with one call from its
// own tests.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
//	}
//
// A persistent adapter also runs RunPersistent, which reopens stores over the same data to show
// that what was acknowledged is still there, in order, and that the reopened store goes on
// appending.
//
// The suite checks behaviour only through the store.Store interface: append and read back,
// batch atomicity (a rejected batch writes nothing), ordering, large and empty entries,
// concurrent readers during appends (run it with -race), concurrent appenders racing for the
// same index, blobs by content hash, checkpoints in order, Lookup and LastInConversation,
// context cancellation, errors after Close, and the sentinel error of every misuse. Stored
// hashes in the suite's batches are correctly counted (store.StoredHashesFor) but their values
// are arbitrary, deterministic functions of their stored-hash index: a store does not compute
// Merkle hashes, it keeps them.
//
// RunKeyVault is the same for store.KeyVault adapters (wrapped data keys, destroyed on demand):
//
//	func TestKeyVaultConformance(t *testing.T) {
//		storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault { return &memstore.KeyVault{} })
//	}
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/store"
)

// Run runs the conformance suite as subtests of t. open must return a new, empty store each
// time it is called; the suite closes every store it opens.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			c.fn(t, s)
		})
	}
}

// RunPersistent runs everything Run does and then checks persistence. open(t, name) opens the
// store named name: the first call with a name creates an empty store, a later call with the
// same name (after the previous store of that name was closed) must open the same data, and
// stores of different names are independent. The adapter maps names to its own namespace (a
// directory, a schema, a bucket prefix) and cleans up after t.
func RunPersistent(t *testing.T, open func(t *testing.T, name string) store.Store) {
	t.Helper()
	var n atomic.Int64
	fresh := func(t *testing.T) store.Store {
		return open(t, fmt.Sprintf("s%d", n.Add(1)))
	}
	Run(t, fresh)
	for _, c := range persistentCases {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("p%d", n.Add(1))
			c.fn(t, func() store.Store { return open(t, name) })
		})
	}
}

type testCase struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

var cases = []testCase{
	{"Empty", testEmpty},
	{"AppendReadBack", testAppendReadBack},
	{"ReturnsCopies", testReturnsCopies},
	{"Ordering", testOrdering},
	{"BatchAtomicity", testBatchAtomicity},
	{"Misuse", testMisuse},
	{"LargeAndEmptyEntries", testLargeAndEmpty},
	{"EntriesIteration", testEntriesIteration},
	{"Blobs", testBlobs},
	{"Checkpoints", testCheckpoints},
	{"LookupAndConversation", testLookup},
	{"ConcurrentReadersDuringAppends", testConcurrentReaders},
	{"ConcurrentAppenders", testConcurrentAppenders},
	{"ContextCancelled", testContextCancelled},
	{"Closed", testClosed},
}

var persistentCases = []struct {
	name string
	fn   func(t *testing.T, open func() store.Store)
}{
	{"ReopenEmpty", testReopenEmpty},
	{"ReopenKeepsEverything", testReopenKeepsEverything},
	{"ReopenIdempotent", testReopenIdempotent},
}

// EntryAt returns the deterministic entry the suite stores at index i. Adapter tests may use it
// to build their own fixtures. Some entries have a zero identity or conversation, and leaves and
// payloads vary in length, including empty.
func EntryAt(i uint64) store.Entry {
	e := store.Entry{Index: i}
	if i%7 != 3 {
		e.Identity = digest("identity", i)
	}
	if i%11 != 5 {
		e.Conversation = digest("conversation", i%5)
	}
	e.Leaf = fill("leaf", i, int(i%13)*7)
	e.Payload = fill("payload", i, int(i*37%600))
	return e
}

// HashAt returns the deterministic stored hash the suite stores at stored-hash index k.
func HashAt(k int64) store.Hash { return digest("stored-hash", uint64(k)) }

// BatchAt returns the batch of the n suite entries starting at index start, with their stored
// hashes.
func BatchAt(start uint64, n int) *store.Batch {
	b := &store.Batch{Entries: make([]store.Entry, n)}
	for k := range n {
		b.Entries[k] = EntryAt(start + uint64(k))
	}
	first := store.StoredHashCount(start)
	last := store.StoredHashCount(start + uint64(n))
	for x := first; x < last; x++ {
		b.Hashes = append(b.Hashes, HashAt(x))
	}
	return b
}

func digest(tag string, i uint64) store.Hash {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], i)
	return sha256.Sum256(append([]byte(tag), buf[:]...))
}

func fill(tag string, i uint64, n int) []byte {
	if n == 0 {
		return nil
	}
	out := make([]byte, 0, n+32)
	for k := uint64(0); len(out) < n; k++ {
		h := digest(tag, i<<20|k)
		out = append(out, h[:]...)
	}
	return out[:n]
}

func sameEntry(a, b store.Entry) bool {
	return a.Index == b.Index && a.Identity == b.Identity && a.Conversation == b.Conversation &&
		bytes.Equal(a.Leaf, b.Leaf) && bytes.Equal(a.Payload, b.Payload)
}

func describe(e store.Entry) string {
	return fmt.Sprintf("{Index:%d Identity:%x Conversation:%x Leaf:%d bytes Payload:%d bytes}",
		e.Index, e.Identity[:4], e.Conversation[:4], len(e.Leaf), len(e.Payload))
}

// appendN appends count entries in batches of the given sizes, starting at the store's size.
func appendN(t *testing.T, s store.Store, sizes ...int) uint64 {
	t.Helper()
	ctx := context.Background()
	n, err := s.Size(ctx)
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	for _, k := range sizes {
		if err := s.Append(ctx, BatchAt(n, k)); err != nil {
			t.Fatalf("Append(%d entries at %d): %v", k, n, err)
		}
		n += uint64(k)
	}
	return n
}

// checkLog checks that s holds exactly the suite entries [0, n) and their stored hashes.
func checkLog(t *testing.T, s store.Store, n uint64) {
	t.Helper()
	ctx := context.Background()
	size, err := s.Size(ctx)
	if err != nil || size != n {
		t.Fatalf("Size = %d, %v; want %d", size, err, n)
	}
	hc, err := s.HashCount(ctx)
	if err != nil || hc != store.StoredHashCount(n) {
		t.Fatalf("HashCount = %d, %v; want %d", hc, err, store.StoredHashCount(n))
	}
	for i := range n {
		e, err := s.Entry(ctx, i)
		if err != nil {
			t.Fatalf("Entry(%d): %v", i, err)
		}
		if want := EntryAt(i); !sameEntry(e, want) {
			t.Fatalf("Entry(%d) = %s; want %s", i, describe(e), describe(want))
		}
	}
	if _, err := s.Entry(ctx, n); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Entry(%d) beyond size: err = %v; want ErrNotFound", n, err)
	}
	i := uint64(0)
	for e, err := range s.Entries(ctx, 0) {
		if err != nil {
			t.Fatalf("Entries(0) at %d: %v", i, err)
		}
		if want := EntryAt(i); !sameEntry(e, want) {
			t.Fatalf("Entries(0) yielded %s at position %d; want %s", describe(e), i, describe(want))
		}
		i++
	}
	if i != n {
		t.Fatalf("Entries(0) yielded %d entries; want %d", i, n)
	}
	if hc > 0 {
		idx := make([]int64, hc)
		for k := range idx {
			idx[k] = int64(k)
		}
		rand.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		hs, err := s.ReadHashes(ctx, idx)
		if err != nil {
			t.Fatalf("ReadHashes(all %d): %v", hc, err)
		}
		if len(hs) != len(idx) {
			t.Fatalf("ReadHashes returned %d hashes for %d indexes", len(hs), len(idx))
		}
		for k, x := range idx {
			if hs[k] != HashAt(x) {
				t.Fatalf("ReadHashes: stored hash %d = %x; want %x", x, hs[k][:4], HashAt(x))
			}
		}
	}
	if _, err := s.ReadHashes(ctx, []int64{hc}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadHashes([%d]) beyond HashCount: err = %v; want ErrNotFound", hc, err)
	}
	lastConv := map[store.Hash]uint64{}
	for i := range n {
		e := EntryAt(i)
		if e.Identity != (store.Hash{}) {
			got, ok, err := s.Lookup(ctx, e.Identity)
			if err != nil || !ok || got != i {
				t.Fatalf("Lookup(identity of %d) = %d, %v, %v; want %d, true, nil", i, got, ok, err, i)
			}
		}
		if e.Conversation != (store.Hash{}) {
			lastConv[e.Conversation] = i
		}
	}
	for c, want := range lastConv {
		got, ok, err := s.LastInConversation(ctx, c)
		if err != nil || !ok || got != want {
			t.Fatalf("LastInConversation(%x) = %d, %v, %v; want %d, true, nil", c[:4], got, ok, err, want)
		}
	}
}

func testEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	checkLog(t, s, 0)
	if _, err := s.ReadHashes(ctx, []int64{0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadHashes([0]) on empty store: err = %v; want ErrNotFound", err)
	}
	for e, err := range s.Entries(ctx, 0) {
		t.Errorf("Entries on empty store yielded %s, %v", describe(e), err)
	}
	if _, ok, err := s.Lookup(ctx, digest("identity", 1)); ok || err != nil {
		t.Errorf("Lookup on empty store = %v, %v; want false, nil", ok, err)
	}
	if _, ok, err := s.LastInConversation(ctx, digest("conversation", 1)); ok || err != nil {
		t.Errorf("LastInConversation on empty store = %v, %v; want false, nil", ok, err)
	}
	if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LatestCheckpoint on empty store: err = %v; want ErrNotFound", err)
	}
	for c, err := range s.AllCheckpoints(ctx) {
		t.Errorf("AllCheckpoints on empty store yielded %d, %v", c.Size, err)
	}
	if _, err := s.Blob(ctx, sha256.Sum256([]byte("nothing"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Blob on empty store: err = %v; want ErrNotFound", err)
	}
}

func testAppendReadBack(t *testing.T, s store.Store) {
	n := appendN(t, s, 1)
	checkLog(t, s, n)
	n = appendN(t, s, 1, 2, 3, 5, 8, 13, 100, 1, 64)
	checkLog(t, s, n)
}

func testReturnsCopies(t *testing.T, s store.Store) {
	ctx := context.Background()
	b := BatchAt(0, 3)
	if err := s.Append(ctx, b); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// The caller may reuse its batch once Append returns.
	for k := range b.Entries {
		clear(b.Entries[k].Leaf)
		clear(b.Entries[k].Payload)
	}
	clear(b.Hashes)
	e, err := s.Entry(ctx, 1)
	if err != nil {
		t.Fatalf("Entry(1): %v", err)
	}
	clear(e.Leaf)
	clear(e.Payload)
	for e, err := range s.Entries(ctx, 0) {
		if err != nil {
			t.Fatalf("Entries: %v", err)
		}
		clear(e.Leaf)
		clear(e.Payload)
	}
	hs, err := s.ReadHashes(ctx, []int64{0, 1})
	if err != nil {
		t.Fatalf("ReadHashes: %v", err)
	}
	clear(hs)
	checkLog(t, s, 3)
}

func testOrdering(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := appendN(t, s, 4)
	for _, tc := range []struct {
		what string
		b    *store.Batch
	}{
		{"gap after size", BatchAt(n+1, 2)},
		{"starts before size", BatchAt(n-1, 2)},
		{"starts at 0 again", BatchAt(0, 1)},
		{"non-consecutive indices", func() *store.Batch {
			b := BatchAt(n, 3)
			b.Entries[2].Index++
			return b
		}()},
		{"repeated index", func() *store.Batch {
			b := BatchAt(n, 3)
			b.Entries[1].Index = n
			return b
		}()},
	} {
		if err := s.Append(ctx, tc.b); !errors.Is(err, store.ErrOutOfOrder) {
			t.Errorf("Append(%s): err = %v; want ErrOutOfOrder", tc.what, err)
		}
	}
	checkLog(t, s, n)
	n = appendN(t, s, 3)
	checkLog(t, s, n)
}

func testBatchAtomicity(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := appendN(t, s, 10)
	// An identity already stored, in the middle of an otherwise valid batch.
	b := BatchAt(n, 5)
	b.Entries[3].Identity = EntryAt(2).Identity
	if err := s.Append(ctx, b); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Append(batch repeating a stored identity): err = %v; want ErrDuplicate", err)
	}
	checkNothingOf(t, s, b, 3)
	// An identity repeated within the batch.
	b = BatchAt(n, 5)
	b.Entries[4].Identity = b.Entries[1].Identity
	if err := s.Append(ctx, b); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Append(batch repeating an identity within itself): err = %v; want ErrDuplicate", err)
	}
	checkNothingOf(t, s, b, 4)
	// Too few and too many stored hashes.
	b = BatchAt(n, 5)
	b.Hashes = b.Hashes[:len(b.Hashes)-1]
	if err := s.Append(ctx, b); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Append(batch short of one stored hash): err = %v; want ErrInvalid", err)
	}
	checkNothingOf(t, s, b, -1)
	b = BatchAt(n, 5)
	b.Hashes = append(b.Hashes, HashAt(0))
	if err := s.Append(ctx, b); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Append(batch with one stored hash too many): err = %v; want ErrInvalid", err)
	}
	checkNothingOf(t, s, b, -1)
	checkLog(t, s, n)
	// The store goes on after rejections, and the identities of rejected batches are free.
	n = appendN(t, s, 5, 1)
	checkLog(t, s, n)
}

// checkNothingOf checks that no entry of the rejected batch b is visible, skipping the
// identity of entry skip (which is a stored one).
func checkNothingOf(t *testing.T, s store.Store, b *store.Batch, skip int) {
	t.Helper()
	ctx := context.Background()
	size, err := s.Size(ctx)
	if err != nil || size != b.Entries[0].Index {
		t.Fatalf("after a rejected batch: Size = %d, %v; want %d", size, err, b.Entries[0].Index)
	}
	hc, err := s.HashCount(ctx)
	if err != nil || hc != store.StoredHashCount(size) {
		t.Fatalf("after a rejected batch: HashCount = %d, %v; want %d", hc, err, store.StoredHashCount(size))
	}
	for k, e := range b.Entries {
		if _, err := s.Entry(ctx, e.Index); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after a rejected batch: Entry(%d): err = %v; want ErrNotFound", e.Index, err)
		}
		if k == skip || e.Identity == (store.Hash{}) {
			continue
		}
		if i, ok, err := s.Lookup(ctx, e.Identity); ok || err != nil {
			t.Errorf("after a rejected batch: Lookup(identity of entry %d) = %d, %v, %v; want not found", e.Index, i, ok, err)
		}
	}
}

func testMisuse(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := appendN(t, s, 3)
	if err := s.Append(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Append(nil): err = %v; want ErrInvalid", err)
	}
	if err := s.Append(ctx, &store.Batch{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Append(empty batch): err = %v; want ErrInvalid", err)
	}
	if _, err := s.ReadHashes(ctx, []int64{-1}); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ReadHashes([-1]): err = %v; want ErrNotFound or ErrInvalid", err)
	}
	hc := store.StoredHashCount(n)
	if _, err := s.ReadHashes(ctx, []int64{0, hc + 10}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadHashes with one index beyond HashCount: err = %v; want ErrNotFound", err)
	}
	if hs, err := s.ReadHashes(ctx, nil); err != nil || len(hs) != 0 {
		t.Errorf("ReadHashes(nil) = %d hashes, %v; want none, nil", len(hs), err)
	}
	if _, err := s.Entry(ctx, 1<<62); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Entry(1<<62): err = %v; want ErrNotFound", err)
	}
	if _, ok, err := s.Lookup(ctx, store.Hash{}); ok || err != nil {
		t.Errorf("Lookup(zero identity) = %v, %v; want false, nil (zero identities are not indexed)", ok, err)
	}
	if _, ok, err := s.LastInConversation(ctx, store.Hash{}); ok || err != nil {
		t.Errorf("LastInConversation(zero) = %v, %v; want false, nil (zero conversations are not indexed)", ok, err)
	}
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: 1}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutCheckpoint(empty note): err = %v; want ErrInvalid", err)
	}
	data := []byte("attachment")
	if err := s.PutBlob(ctx, store.Hash{}, data); !errors.Is(err, store.ErrHashMismatch) {
		t.Errorf("PutBlob(zero hash): err = %v; want ErrHashMismatch", err)
	}
	checkLog(t, s, n)
}

func testLargeAndEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	b := BatchAt(0, 4)
	b.Entries[0].Leaf, b.Entries[0].Payload = nil, nil
	b.Entries[1].Leaf, b.Entries[1].Payload = []byte{}, []byte{}
	b.Entries[2].Leaf = fill("big-leaf", 2, 70_000)
	b.Entries[2].Payload = fill("big-payload", 2, 4<<20+3)
	b.Entries[3].Payload = []byte{0}
	if err := s.Append(ctx, b); err != nil {
		t.Fatalf("Append(empty and large entries): %v", err)
	}
	for k, want := range b.Entries {
		e, err := s.Entry(ctx, uint64(k))
		if err != nil {
			t.Fatalf("Entry(%d): %v", k, err)
		}
		if !sameEntry(e, want) {
			t.Errorf("Entry(%d) = %s; want %s", k, describe(e), describe(want))
		}
	}
	k := 0
	for e, err := range s.Entries(ctx, 0) {
		if err != nil {
			t.Fatalf("Entries: %v", err)
		}
		if !sameEntry(e, b.Entries[k]) {
			t.Errorf("Entries yielded %s at %d; want %s", describe(e), k, describe(b.Entries[k]))
		}
		k++
	}
	if k != len(b.Entries) {
		t.Errorf("Entries yielded %d entries; want %d", k, len(b.Entries))
	}
	// A single batch of many small entries.
	big := BatchAt(4, 5000)
	if err := s.Append(ctx, big); err != nil {
		t.Fatalf("Append(5000 entries): %v", err)
	}
	for _, i := range []uint64{4, 5, 2500, 5003} {
		e, err := s.Entry(ctx, i)
		if err != nil || !sameEntry(e, EntryAt(i)) {
			t.Errorf("Entry(%d) = %s, %v; want %s", i, describe(e), err, describe(EntryAt(i)))
		}
	}
}

func testEntriesIteration(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := appendN(t, s, 7, 9, 1, 20)
	for _, start := range []uint64{0, 1, 7, 16, n - 1, n, n + 5} {
		i := start
		for e, err := range s.Entries(ctx, start) {
			if err != nil {
				t.Fatalf("Entries(%d): %v", start, err)
			}
			if !sameEntry(e, EntryAt(i)) {
				t.Fatalf("Entries(%d) yielded %s; want %s", start, describe(e), describe(EntryAt(i)))
			}
			i++
		}
		if want := max(n, start); i != want {
			t.Errorf("Entries(%d) ended at %d; want %d", start, i, want)
		}
	}
	// Stopping early is allowed.
	k := 0
	for _, err := range s.Entries(ctx, 0) {
		if err != nil {
			t.Fatalf("Entries: %v", err)
		}
		k++
		if k == 3 {
			break
		}
	}
	// Entries covers the size at the time of the call, not later appends.
	k = 0
	for _, err := range s.Entries(ctx, 0) {
		if err != nil {
			t.Fatalf("Entries: %v", err)
		}
		if k == 0 {
			appendN(t, s, 2)
		}
		k++
	}
	if uint64(k) != n {
		t.Errorf("Entries yielded %d entries with an append during iteration; want the %d present at the call", k, n)
	}
}

func testBlobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	blobs := [][]byte{{}, []byte("hello"), fill("blob", 1, 1<<20+17)}
	for _, data := range blobs {
		sum := sha256.Sum256(data)
		if err := s.PutBlob(ctx, sum, data); err != nil {
			t.Fatalf("PutBlob(%d bytes): %v", len(data), err)
		}
		if err := s.PutBlob(ctx, sum, data); err != nil {
			t.Fatalf("PutBlob(%d bytes) again: %v; want nil (content-addressed, idempotent)", len(data), err)
		}
	}
	for _, data := range blobs {
		sum := sha256.Sum256(data)
		got, err := s.Blob(ctx, sum)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Blob(%x) = %d bytes, %v; want the %d bytes stored", sum[:4], len(got), err, len(data))
		}
		if len(got) > 0 {
			got[0] ^= 0xff
			again, _ := s.Blob(ctx, sum)
			if !bytes.Equal(again, data) {
				t.Fatalf("Blob returned a slice aliasing the stored content")
			}
		}
	}
	// Wrong hash: rejected, and nothing stored under either hash.
	data := []byte("the real content")
	wrong := sha256.Sum256([]byte("other content"))
	if err := s.PutBlob(ctx, wrong, data); !errors.Is(err, store.ErrHashMismatch) {
		t.Fatalf("PutBlob(wrong hash): err = %v; want ErrHashMismatch", err)
	}
	if _, err := s.Blob(ctx, wrong); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Blob(wrong hash) after rejected PutBlob: err = %v; want ErrNotFound", err)
	}
	if _, err := s.Blob(ctx, sha256.Sum256(data)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Blob(real hash) after rejected PutBlob: err = %v; want ErrNotFound", err)
	}
	// The caller may reuse its buffer after PutBlob.
	buf := []byte("reused buffer")
	sum := sha256.Sum256(buf)
	if err := s.PutBlob(ctx, sum, buf); err != nil {
		t.Fatalf("PutBlob: %v", err)
	}
	clear(buf)
	if got, err := s.Blob(ctx, sum); err != nil || string(got) != "reused buffer" {
		t.Errorf("Blob after caller reused its buffer = %q, %v", got, err)
	}
}

func testCheckpoints(t *testing.T, s store.Store) {
	ctx := context.Background()
	put := func(size uint64, note string) error {
		return s.PutCheckpoint(ctx, store.Checkpoint{Size: size, Note: []byte(note)})
	}
	if err := put(0, "note at size 0\n"); err != nil {
		t.Fatalf("PutCheckpoint(size 0): %v", err)
	}
	if err := put(0, "again at 0\n"); !errors.Is(err, store.ErrOutOfOrder) {
		t.Errorf("PutCheckpoint(size 0 again): err = %v; want ErrOutOfOrder", err)
	}
	want := []store.Checkpoint{{Size: 0, Note: []byte("note at size 0\n")}}
	for _, size := range []uint64{1, 5, 6, 1000} {
		note := fmt.Sprintf("checkpoint %d\n", size)
		if err := put(size, note); err != nil {
			t.Fatalf("PutCheckpoint(%d): %v", size, err)
		}
		want = append(want, store.Checkpoint{Size: size, Note: []byte(note)})
	}
	for _, size := range []uint64{1000, 999, 3} {
		if err := put(size, "late\n"); !errors.Is(err, store.ErrOutOfOrder) {
			t.Errorf("PutCheckpoint(%d) after 1000: err = %v; want ErrOutOfOrder", size, err)
		}
	}
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: 2000}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutCheckpoint(empty note): err = %v; want ErrInvalid", err)
	}
	checkCheckpoints(t, s, want)
	// The caller may reuse the note buffer.
	note := []byte("reused note\n")
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: 1001, Note: note}); err != nil {
		t.Fatalf("PutCheckpoint(1001): %v", err)
	}
	clear(note)
	c, err := s.LatestCheckpoint(ctx)
	if err != nil || string(c.Note) != "reused note\n" {
		t.Errorf("LatestCheckpoint after caller reused its note = %q, %v", c.Note, err)
	}
}

func checkCheckpoints(t *testing.T, s store.Store, want []store.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	if len(want) == 0 {
		if _, err := s.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LatestCheckpoint: err = %v; want ErrNotFound", err)
		}
	} else {
		c, err := s.LatestCheckpoint(ctx)
		last := want[len(want)-1]
		if err != nil || c.Size != last.Size || !bytes.Equal(c.Note, last.Note) {
			t.Errorf("LatestCheckpoint = %d %q, %v; want %d %q", c.Size, c.Note, err, last.Size, last.Note)
		}
	}
	var got []store.Checkpoint
	for c, err := range s.AllCheckpoints(ctx) {
		if err != nil {
			t.Fatalf("AllCheckpoints: %v", err)
		}
		got = append(got, c)
	}
	if !slices.EqualFunc(got, want, func(a, b store.Checkpoint) bool { return a.Size == b.Size && bytes.Equal(a.Note, b.Note) }) {
		t.Errorf("AllCheckpoints yielded %d checkpoints %v; want %d %v", len(got), sizes(got), len(want), sizes(want))
	}
}

func sizes(cs []store.Checkpoint) []uint64 {
	out := make([]uint64, len(cs))
	for k, c := range cs {
		out[k] = c.Size
	}
	return out
}

func testLookup(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Conversation c gets entries 0, 2 and then 5 in a later batch.
	c := digest("conv-lookup", 0)
	id := func(i uint64) store.Hash { return digest("id-lookup", i) }
	b := BatchAt(0, 3)
	for k := range b.Entries {
		b.Entries[k].Identity = id(uint64(k))
		b.Entries[k].Conversation = store.Hash{}
	}
	b.Entries[0].Conversation = c
	b.Entries[2].Conversation = c
	if err := s.Append(ctx, b); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if i, ok, err := s.LastInConversation(ctx, c); err != nil || !ok || i != 2 {
		t.Errorf("LastInConversation = %d, %v, %v; want 2, true, nil", i, ok, err)
	}
	b = BatchAt(3, 3)
	for k := range b.Entries {
		b.Entries[k].Identity = id(uint64(3 + k))
		b.Entries[k].Conversation = store.Hash{}
	}
	b.Entries[2].Conversation = c
	if err := s.Append(ctx, b); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if i, ok, err := s.LastInConversation(ctx, c); err != nil || !ok || i != 5 {
		t.Errorf("LastInConversation = %d, %v, %v; want 5, true, nil", i, ok, err)
	}
	for i := range uint64(6) {
		if got, ok, err := s.Lookup(ctx, id(i)); err != nil || !ok || got != i {
			t.Errorf("Lookup(id %d) = %d, %v, %v; want %d, true, nil", i, got, ok, err, i)
		}
	}
	if _, ok, err := s.Lookup(ctx, id(6)); ok || err != nil {
		t.Errorf("Lookup(unknown) = %v, %v; want false, nil", ok, err)
	}
	// An identity that shares a long prefix with a stored one is still a different identity.
	near := id(1)
	near[31] ^= 1
	if _, ok, err := s.Lookup(ctx, near); ok || err != nil {
		t.Errorf("Lookup(identity differing in its last bit from a stored one) = %v, %v; want false, nil", ok, err)
	}
	near = id(1)
	near[0] ^= 1
	if _, ok, err := s.Lookup(ctx, near); ok || err != nil {
		t.Errorf("Lookup(identity differing in its first bit from a stored one) = %v, %v; want false, nil", ok, err)
	}
	if _, ok, err := s.LastInConversation(ctx, digest("conv-lookup", 1)); ok || err != nil {
		t.Errorf("LastInConversation(unknown) = %v, %v; want false, nil", ok, err)
	}
}

func testConcurrentReaders(t *testing.T, s store.Store) {
	ctx := context.Background()
	const total = 600
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				size, err := s.Size(ctx)
				if err != nil {
					report(fmt.Errorf("Size: %w", err))
					return
				}
				if size == 0 {
					continue
				}
				i := rng.Uint64N(size)
				e, err := s.Entry(ctx, i)
				if err != nil || !sameEntry(e, EntryAt(i)) {
					report(fmt.Errorf("Entry(%d) with size %d = %s, %v", i, size, describe(e), err))
					return
				}
				hc := store.StoredHashCount(size)
				x := rng.Int64N(hc)
				hs, err := s.ReadHashes(ctx, []int64{x, hc - 1})
				if err != nil || hs[0] != HashAt(x) || hs[1] != HashAt(hc-1) {
					report(fmt.Errorf("ReadHashes([%d %d]) with size %d: %v", x, hc-1, size, err))
					return
				}
				if want := EntryAt(i); want.Identity != (store.Hash{}) {
					if got, ok, err := s.Lookup(ctx, want.Identity); err != nil || !ok || got != i {
						report(fmt.Errorf("Lookup(identity of %d) = %d, %v, %v", i, got, ok, err))
						return
					}
				}
				if r == 0 {
					k := uint64(0)
					for e, err := range s.Entries(ctx, size-min(size, 20)) {
						if err != nil || e.Index != size-min(size, 20)+k || !sameEntry(e, EntryAt(e.Index)) {
							report(fmt.Errorf("Entries during appends yielded %s, %v", describe(e), err))
							return
						}
						k++
					}
				}
			}
		}()
	}
	n := uint64(0)
	for n < total {
		k := int(n%17) + 1
		if err := s.Append(ctx, BatchAt(n, k)); err != nil {
			t.Errorf("Append at %d: %v", n, err)
			break
		}
		n += uint64(k)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkLog(t, s, n)
}

func testConcurrentAppenders(t *testing.T, s store.Store) {
	// Appenders race for the same index: exactly one wins each index, the others get
	// ErrOutOfOrder or ErrDuplicate, and the log ends up exactly the suite's entries.
	ctx := context.Background()
	const target = 400
	var wg sync.WaitGroup
	var won atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := s.Size(ctx)
				if err != nil {
					t.Errorf("Size: %v", err)
					return
				}
				if n >= target {
					return
				}
				k := w%3 + 1
				err = s.Append(ctx, BatchAt(n, k))
				switch {
				case err == nil:
					won.Add(int64(k))
				case errors.Is(err, store.ErrOutOfOrder), errors.Is(err, store.ErrDuplicate):
				default:
					t.Errorf("Append at %d: %v", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n, err := s.Size(ctx)
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	if uint64(won.Load()) != n {
		t.Errorf("appenders were told %d entries went in; Size = %d", won.Load(), n)
	}
	checkLog(t, s, n)
}

func testContextCancelled(t *testing.T, s store.Store) {
	n := appendN(t, s, 3)
	data := []byte("blob under a cancelled context")
	sum := sha256.Sum256(data)
	if err := s.PutCheckpoint(context.Background(), store.Checkpoint{Size: 1, Note: []byte("cp\n")}); err != nil {
		t.Fatalf("PutCheckpoint: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	isCancel := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v; want context.Canceled", what, err)
		}
	}
	isCancel("Append", s.Append(ctx, BatchAt(n, 2)))
	_, err := s.Size(ctx)
	isCancel("Size", err)
	_, err = s.HashCount(ctx)
	isCancel("HashCount", err)
	_, err = s.Entry(ctx, 0)
	isCancel("Entry", err)
	for _, err := range s.Entries(ctx, 0) {
		isCancel("Entries", err)
		break
	}
	_, err = s.ReadHashes(ctx, []int64{0})
	isCancel("ReadHashes", err)
	_, _, err = s.Lookup(ctx, EntryAt(0).Identity)
	isCancel("Lookup", err)
	_, _, err = s.LastInConversation(ctx, EntryAt(0).Conversation)
	isCancel("LastInConversation", err)
	isCancel("PutCheckpoint", s.PutCheckpoint(ctx, store.Checkpoint{Size: 2, Note: []byte("x\n")}))
	_, err = s.LatestCheckpoint(ctx)
	isCancel("LatestCheckpoint", err)
	for _, err := range s.AllCheckpoints(ctx) {
		isCancel("AllCheckpoints", err)
		break
	}
	isCancel("PutBlob", s.PutBlob(ctx, sum, data))
	_, err = s.Blob(ctx, sum)
	isCancel("Blob", err)
	// Nothing was written under the cancelled context.
	checkLog(t, s, n)
	checkCheckpoints(t, s, []store.Checkpoint{{Size: 1, Note: []byte("cp\n")}})
	if _, err := s.Blob(context.Background(), sum); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Blob after PutBlob with a cancelled context: err = %v; want ErrNotFound", err)
	}
	// A context cancelled while entries are being read stops the iteration with its error.
	ctx, cancel = context.WithCancel(context.Background())
	k := 0
	var last error
	for _, err := range s.Entries(ctx, 0) {
		if err != nil {
			last = err
			break
		}
		k++
		cancel()
	}
	cancel()
	if k == int(n) || !errors.Is(last, context.Canceled) {
		t.Errorf("Entries cancelled after the first entry yielded %d entries, then %v; want fewer than %d, then context.Canceled", k, last, n)
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := appendN(t, s, 2)
	data := []byte("blob")
	sum := sha256.Sum256(data)
	if err := s.PutBlob(ctx, sum, data); err != nil {
		t.Fatalf("PutBlob: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: err = %v; want nil or ErrClosed", err)
	}
	isClosed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: err = %v; want ErrClosed", what, err)
		}
	}
	isClosed("Append", s.Append(ctx, BatchAt(n, 1)))
	_, err := s.Size(ctx)
	isClosed("Size", err)
	_, err = s.HashCount(ctx)
	isClosed("HashCount", err)
	_, err = s.Entry(ctx, 0)
	isClosed("Entry", err)
	yielded := false
	for _, err := range s.Entries(ctx, 0) {
		isClosed("Entries", err)
		yielded = true
		break
	}
	if !yielded {
		t.Errorf("Entries after Close yielded nothing; want ErrClosed")
	}
	_, err = s.ReadHashes(ctx, []int64{0})
	isClosed("ReadHashes", err)
	_, _, err = s.Lookup(ctx, EntryAt(0).Identity)
	isClosed("Lookup", err)
	_, _, err = s.LastInConversation(ctx, EntryAt(0).Conversation)
	isClosed("LastInConversation", err)
	isClosed("PutCheckpoint", s.PutCheckpoint(ctx, store.Checkpoint{Size: 1, Note: []byte("x\n")}))
	_, err = s.LatestCheckpoint(ctx)
	isClosed("LatestCheckpoint", err)
	yielded = false
	for _, err := range s.AllCheckpoints(ctx) {
		isClosed("AllCheckpoints", err)
		yielded = true
		break
	}
	if !yielded {
		t.Errorf("AllCheckpoints after Close yielded nothing; want ErrClosed")
	}
	isClosed("PutBlob", s.PutBlob(ctx, sum, data))
	_, err = s.Blob(ctx, sum)
	isClosed("Blob", err)
}

func testReopenEmpty(t *testing.T, open func() store.Store) {
	s := open()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open()
	defer s.Close()
	checkLog(t, s, 0)
	checkCheckpoints(t, s, nil)
	n := appendN(t, s, 3)
	checkLog(t, s, n)
}

func testReopenKeepsEverything(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	s := open()
	n := appendN(t, s, 1, 5, 30, 2)
	cps := []store.Checkpoint{{Size: 1, Note: []byte("one\n")}, {Size: 38, Note: []byte("thirty-eight\n")}}
	for _, c := range cps {
		if err := s.PutCheckpoint(ctx, c); err != nil {
			t.Fatalf("PutCheckpoint: %v", err)
		}
	}
	blob := fill("reopen-blob", 0, 100_000)
	sum := sha256.Sum256(blob)
	if err := s.PutBlob(ctx, sum, blob); err != nil {
		t.Fatalf("PutBlob: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open()
	checkLog(t, s, n)
	checkCheckpoints(t, s, cps)
	if got, err := s.Blob(ctx, sum); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("Blob after reopen = %d bytes, %v; want %d bytes", len(got), err, len(blob))
	}
	// The reopened store still rejects what it must and goes on appending.
	if err := s.Append(ctx, BatchAt(n-1, 1)); !errors.Is(err, store.ErrOutOfOrder) {
		t.Errorf("Append at a stored index after reopen: err = %v; want ErrOutOfOrder", err)
	}
	dup := BatchAt(n, 1)
	dup.Entries[0].Identity = EntryAt(1).Identity
	if err := s.Append(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Append of a stored identity after reopen: err = %v; want ErrDuplicate", err)
	}
	if err := s.PutCheckpoint(ctx, store.Checkpoint{Size: 38, Note: []byte("again\n")}); !errors.Is(err, store.ErrOutOfOrder) {
		t.Errorf("PutCheckpoint(38) after reopen: err = %v; want ErrOutOfOrder", err)
	}
	n = appendN(t, s, 7, 1)
	cps = append(cps, store.Checkpoint{Size: n, Note: []byte("more\n")})
	if err := s.PutCheckpoint(ctx, cps[2]); err != nil {
		t.Fatalf("PutCheckpoint after reopen: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open()
	defer s.Close()
	checkLog(t, s, n)
	checkCheckpoints(t, s, cps)
}

func testReopenIdempotent(t *testing.T, open func() store.Store) {
	s := open()
	n := appendN(t, s, 4, 4)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 3 {
		s = open()
		checkLog(t, s, n)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	s = open()
	defer s.Close()
	n = appendN(t, s, 1)
	checkLog(t, s, n)
}
