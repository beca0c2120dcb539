// Package storetest is the conformance suite for store.Store adapters, in the spirit of
// testing/fstest.TestFS: an adapter proves it keeps the storage contract with one call from its
// own tests.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
//	}
//
// A persistent adapter runs RunPersistent instead, which also reopens stores over the same data
// to show that what was acknowledged is still there, in order, and that the reopened store goes
// on appending. RunKeyVault does the same for store.KeyVault adapters.
//
// # Rules
//
// Each subtest is one rule of the contract that package store states on its methods, named
// "Interface/rule", and stops at the first violation with a message that says the rule and what
// broke it. A rule whose premise failed (every rule needs Log/read-back, say) is skipped with the
// name of the rule it depends on rather than failed again, so one defect gives one failure. The
// rules of an optional interface (store.IdentityIndex, store.IdentityBatch,
// store.ConversationIndex, store.Blobs, store.Pipeline, store.SharedLog, store.EntryReader,
// store.Owner, store.ReadOnlyReporter) run when the adapter implements it and are skipped with a note
// otherwise.
//
//	Log/empty                         a new store is empty: size 0, no entries, no stored hashes
//	Log/read-back                     appended batches read back exactly (Size, Entries, ReadHashes)
//	Log/copies                        the store keeps copies; reads return copies
//	Log.Entries/range                 [start, end) clipped to the size at the call; early stop
//	Log.Entries/context               a context ended during iteration stops it with its error
//	Log.ReadHashes/range              hashes in the order asked; ErrNotFound beyond the count
//	Log.Append/out-of-order           a batch not starting at Size, or with a gap: ErrOutOfOrder
//	Log.Append/invalid                nil, empty, too few or too many stored hashes: ErrInvalid
//	Log.Append/duplicate-in-batch     an identity repeated within a batch: ErrDuplicate
//	Log.Append/large-and-empty        empty and 4 MiB entries, a batch of 5,000 entries
//	Log.Append/concurrent             racing appends: one wins each index, the rest are refused
//	Log/concurrent-readers            readers during appends never see part of a batch
//	Log/context-done                  a done context fails every method and writes nothing
//	Store/closed                      every call after Close fails with ErrClosed
//	Checkpoints/order                 stored in increasing size; latest; all in order
//	Checkpoints/invalid               size 0, beyond the log, empty note: ErrInvalid
//	IdentityIndex/lookup              Lookup finds each identity, nothing else, never a zero one
//	IdentityIndex/duplicate           Append of a stored identity: ErrDuplicate, nothing written
//	IdentityBatch/lookup-all          LookupAll finds each stored identity of a list, nothing else
//	ConversationIndex/last            the latest entry of each conversation, nothing else
//	Blobs/read-back                   content by its SHA-256, idempotent, copies both ways
//	Blobs/hash-mismatch               a wrong hash stores nothing: ErrHashMismatch
//	Pipeline/in-order                 batches submitted ahead are durable in order, results in order
//	Pipeline/checks-see-pending       checks count pending batches; a refused one changes nothing
//	SharedLog/build-at-size           build sees the size and the entries appended since from
//	SharedLog/refusals-append-nothing a failed, empty or misplaced build appends nothing
//	SharedLog/excludes-writers        one build at a time, from any number of writers
//	EntryReader/same-as-Entries       ReadEntries reads what Entries yields, every range
//	EntryReader/buffers               in dst's and buf's storage when large enough; not kept
//	EntryReader/failures              a cancelled context and a closed store fail the call
//	Owner/claim                       the first valid claim is recorded and answered to every later one
//	Owner/concurrent                  claims at once record one of them, and all get that one
//	ReadOnlyReporter/writable         a store opened for writing does not report read-only
//	Persistent/reopen-empty           (RunPersistent) an empty store reopens empty
//	Persistent/reopen-keeps-all       entries, hashes, checkpoints, blobs, indexes and owner survive
//	Persistent/reopen-idempotent      reopening changes nothing
//
// Stored hashes in the suite's batches are correctly counted (store.StoredHashesFor) but their
// values are arbitrary, deterministic functions of their stored-hash index: a store does not
// compute Merkle hashes, it keeps them.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/store"
)

// Run runs the conformance suite as subtests of t, one per rule. open must return a new, empty
// store each time it is called; the suite closes every store it opens.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	run(t, open, nil)
}

// RunPersistent runs everything Run does and then the persistence rules. open(t, name) opens
// the store named name: the first call with a name creates an empty store, a later call with
// the same name (after the previous store of that name was closed) must open the same data, and
// stores of different names are independent. The adapter maps names to its own namespace (a
// directory, a schema, a bucket prefix) and cleans up after t.
func RunPersistent(t *testing.T, open func(t *testing.T, name string) store.Store) {
	t.Helper()
	var n atomic.Int64
	fresh := func(t *testing.T) store.Store { return open(t, fmt.Sprintf("s%d", n.Add(1))) }
	run(t, fresh, func(t *testing.T) func() store.Store {
		name := fmt.Sprintf("p%d", n.Add(1))
		return func() store.Store { return open(t, name) }
	})
}

// A rule is one promise of the contract, checked by one subtest.
type rule struct {
	name  string
	needs []string           // rules whose failure makes this one meaningless
	iface func(s any) bool   // nil: every store; else the optional interface it checks
	fn    func(*check)       // checks the rule on a fresh store
	reop  func(*reopenCheck) // a persistence rule: opens and reopens the same store
}

// check is what a rule's function gets: a fresh store and a way to fail that names the rule.
type check struct {
	t    *testing.T
	s    store.Store
	rule string
}

// fail stops the rule with a message that names it.
func (c *check) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("rule %s broken: %s", c.rule, fmt.Sprintf(format, args...))
}

// must fails the rule if err is not nil: a call the rule relies on failed.
func (c *check) must(what string, err error) {
	c.t.Helper()
	if err != nil {
		c.fail("%s: %v", what, err)
	}
}

type reopenCheck struct {
	check
	open func() store.Store
}

func is[T any](s any) bool { _, ok := s.(T); return ok }

var rules = []rule{
	{name: "Log/empty", fn: logEmpty},
	{name: "Log/read-back", needs: []string{"Log/empty"}, fn: logReadBack},
	{name: "Log/copies", needs: []string{"Log/read-back"}, fn: logCopies},
	{name: "Log.Entries/range", needs: []string{"Log/read-back"}, fn: entriesRange},
	{name: "Log.Entries/context", needs: []string{"Log/read-back"}, fn: entriesContext},
	{name: "Log.ReadHashes/range", needs: []string{"Log/read-back"}, fn: readHashesRange},
	{name: "Log.Append/out-of-order", needs: []string{"Log/read-back"}, fn: appendOutOfOrder},
	{name: "Log.Append/invalid", needs: []string{"Log/read-back"}, fn: appendInvalid},
	{name: "Log.Append/duplicate-in-batch", needs: []string{"Log/read-back"}, fn: appendDuplicateInBatch},
	{name: "Log.Append/large-and-empty", needs: []string{"Log/read-back"}, fn: appendLargeAndEmpty},
	{name: "Log.Append/concurrent", needs: []string{"Log/read-back", "Log.Append/out-of-order"}, fn: appendConcurrent},
	{name: "Log/concurrent-readers", needs: []string{"Log/read-back"}, fn: concurrentReaders},
	{name: "Log/context-done", needs: []string{"Log/read-back"}, fn: contextDone},
	{name: "Store/closed", needs: []string{"Log/read-back"}, fn: closed},
	{name: "Checkpoints/order", needs: []string{"Log/read-back"}, fn: checkpointsOrder},
	{name: "Checkpoints/invalid", needs: []string{"Checkpoints/order"}, fn: checkpointsInvalid},
	{name: "IdentityIndex/lookup", needs: []string{"Log/read-back"}, iface: is[store.IdentityIndex], fn: identityLookup},
	{name: "IdentityIndex/duplicate", needs: []string{"IdentityIndex/lookup"}, iface: is[store.IdentityIndex], fn: identityDuplicate},
	{name: "IdentityBatch/lookup-all", needs: []string{"Log/read-back"}, iface: is[store.IdentityBatch], fn: identityLookupAll},
	{name: "ConversationIndex/last", needs: []string{"Log/read-back"}, iface: is[store.ConversationIndex], fn: conversationLast},
	{name: "Blobs/read-back", iface: is[store.Blobs], fn: blobsReadBack},
	{name: "Blobs/hash-mismatch", needs: []string{"Blobs/read-back"}, iface: is[store.Blobs], fn: blobsHashMismatch},
	{name: "Pipeline/in-order", needs: []string{"Log/read-back"}, iface: is[store.Pipeline], fn: pipelineInOrder},
	{name: "Pipeline/checks-see-pending", needs: []string{"Pipeline/in-order", "Log.Append/out-of-order"}, iface: is[store.Pipeline], fn: pipelineChecks},
	{name: "SharedLog/build-at-size", needs: []string{"Log/read-back"}, iface: is[store.SharedLog], fn: sharedBuildAtSize},
	{name: "SharedLog/refusals-append-nothing", needs: []string{"SharedLog/build-at-size", "Log.Append/out-of-order"}, iface: is[store.SharedLog], fn: sharedRefusals},
	{name: "SharedLog/excludes-writers", needs: []string{"SharedLog/build-at-size"}, iface: is[store.SharedLog], fn: sharedExcludes},
	{name: "EntryReader/same-as-Entries", needs: []string{"Log.Entries/range"}, iface: is[store.EntryReader], fn: entryReaderSameAsEntries},
	{name: "EntryReader/buffers", needs: []string{"EntryReader/same-as-Entries"}, iface: is[store.EntryReader], fn: entryReaderBuffers},
	{name: "EntryReader/failures", needs: []string{"EntryReader/same-as-Entries", "Store/closed"}, iface: is[store.EntryReader], fn: entryReaderFailures},
	{name: "Owner/claim", needs: []string{"Log/read-back"}, iface: is[store.Owner], fn: ownerClaim},
	{name: "Owner/concurrent", needs: []string{"Owner/claim"}, iface: is[store.Owner], fn: ownerConcurrent},
	{name: "ReadOnlyReporter/writable", iface: is[store.ReadOnlyReporter], fn: readOnlyWritable},
}

var persistentRules = []rule{
	{name: "Persistent/reopen-empty", needs: []string{"Log/read-back"}, reop: reopenEmpty},
	{name: "Persistent/reopen-keeps-all", needs: []string{"Log/read-back", "Checkpoints/order"}, reop: reopenKeepsAll},
	{name: "Persistent/reopen-idempotent", needs: []string{"Persistent/reopen-keeps-all"}, reop: reopenIdempotent},
}

func run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T) func() store.Store) {
	t.Helper()
	failed := map[string]bool{}
	all := rules
	if reopen != nil {
		all = append(slices.Clone(rules), persistentRules...)
	}
	for _, r := range all {
		unmet := false
		ok := t.Run(r.name, func(t *testing.T) {
			for _, n := range r.needs {
				if failed[n] {
					unmet = true
					t.Skipf("skipped: it relies on rule %s, which failed or could not be checked", n)
				}
			}
			if r.reop != nil {
				c := &reopenCheck{check: check{t: t, rule: r.name}, open: reopen(t)}
				r.reop(c)
				return
			}
			s := open(t)
			defer s.Close()
			if r.iface != nil && !r.iface(s) {
				t.Skipf("skipped: the store does not implement the optional interface of rule %s", r.name)
			}
			r.fn(&check{t: t, s: s, rule: r.name})
		})
		if !ok || unmet {
			failed[r.name] = true
		}
	}
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

// appendN appends batches of the given sizes, starting at the store's size.
func (c *check) appendN(sizes ...int) uint64 {
	c.t.Helper()
	ctx := context.Background()
	n, err := c.s.Size(ctx)
	c.must("Size", err)
	for _, k := range sizes {
		if err := c.s.Append(ctx, BatchAt(n, k)); err != nil {
			c.fail("Append(%d suite entries at %d): %v", k, n, err)
		}
		n += uint64(k)
	}
	return n
}

// entries collects Entries(start, end).
func (c *check) entries(start, end uint64) []store.Entry {
	c.t.Helper()
	var out []store.Entry
	for e, err := range c.s.Entries(context.Background(), start, end) {
		if err != nil {
			c.fail("Entries(%d, %d) after %d entries: %v", start, end, len(out), err)
		}
		out = append(out, e)
	}
	return out
}

// checkLog checks, through the required methods only, that the store holds exactly the suite
// entries [0, n) and their stored hashes.
func (c *check) checkLog(n uint64) {
	c.t.Helper()
	ctx := context.Background()
	size, err := c.s.Size(ctx)
	c.must("Size", err)
	if size != n {
		c.fail("Size = %d; want %d", size, n)
	}
	got := c.entries(0, n+10)
	for i, e := range got {
		if want := EntryAt(uint64(i)); !sameEntry(e, want) {
			c.fail("Entries(0, ...) yielded %s at position %d; want %s", describe(e), i, describe(want))
		}
	}
	if uint64(len(got)) != n {
		c.fail("Entries(0, %d) yielded %d entries; want %d", n+10, len(got), n)
	}
	hc := store.StoredHashCount(n)
	if hc > 0 {
		idx := make([]int64, hc)
		for k := range idx {
			idx[k] = int64(k)
		}
		rand.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		hs, err := c.s.ReadHashes(ctx, idx)
		c.must(fmt.Sprintf("ReadHashes(all %d, shuffled)", hc), err)
		if len(hs) != len(idx) {
			c.fail("ReadHashes returned %d hashes for %d indexes", len(hs), len(idx))
		}
		for k, x := range idx {
			if hs[k] != HashAt(x) {
				c.fail("ReadHashes: stored hash %d = %x; want %x", x, hs[k][:4], HashAt(x))
			}
		}
	}
	if _, err := c.s.ReadHashes(ctx, []int64{hc}); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadHashes([%d]) with %d entries: err = %v; want ErrNotFound", hc, n, err)
	}
}

func logEmpty(c *check) {
	ctx := context.Background()
	size, err := c.s.Size(ctx)
	c.must("Size", err)
	if size != 0 {
		c.fail("a new store has Size %d; want 0", size)
	}
	if es := c.entries(0, 100); len(es) != 0 {
		c.fail("Entries on a new store yielded %d entries", len(es))
	}
	if _, err := c.s.ReadHashes(ctx, []int64{0}); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadHashes([0]) on a new store: err = %v; want ErrNotFound", err)
	}
	if hs, err := c.s.ReadHashes(ctx, nil); err != nil || len(hs) != 0 {
		c.fail("ReadHashes(nil) = %d hashes, %v; want none, nil", len(hs), err)
	}
	if _, err := c.s.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		c.fail("LatestCheckpoint on a new store: err = %v; want ErrNotFound", err)
	}
	for cp, err := range c.s.AllCheckpoints(ctx) {
		c.fail("AllCheckpoints on a new store yielded %d, %v", cp.Size, err)
	}
	if _, err := store.ReadEntry(ctx, c.s, 0); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadEntry(0) on a new store: err = %v; want ErrNotFound", err)
	}
}

func logReadBack(c *check) {
	n := c.appendN(1)
	c.checkLog(n)
	n = c.appendN(1, 2, 3, 5, 8, 13, 100, 1, 64)
	c.checkLog(n)
}

func logCopies(c *check) {
	ctx := context.Background()
	b := BatchAt(0, 3)
	c.must("Append", c.s.Append(ctx, b))
	// The caller may reuse its batch once Append returns.
	for k := range b.Entries {
		clear(b.Entries[k].Leaf)
		clear(b.Entries[k].Payload)
	}
	clear(b.Hashes)
	for _, e := range c.entries(0, 3) {
		clear(e.Leaf)
		clear(e.Payload)
	}
	hs, err := c.s.ReadHashes(ctx, []int64{0, 1})
	c.must("ReadHashes", err)
	clear(hs)
	c.checkLog(3)
}

func entriesRange(c *check) {
	n := c.appendN(7, 9, 1, 20)
	for _, r := range [][2]uint64{{0, n}, {0, 1}, {1, 8}, {7, 16}, {16, n + 100}, {n - 1, n}, {n, n + 1}, {n + 5, n + 10}, {5, 5}, {9, 3}} {
		got := c.entries(r[0], r[1])
		want := uint64(0)
		if r[0] < min(r[1], n) {
			want = min(r[1], n) - r[0]
		}
		if uint64(len(got)) != want {
			c.fail("Entries(%d, %d) with %d entries yielded %d; want %d", r[0], r[1], n, len(got), want)
		}
		for k, e := range got {
			if !sameEntry(e, EntryAt(r[0]+uint64(k))) {
				c.fail("Entries(%d, %d) yielded %s; want %s", r[0], r[1], describe(e), describe(EntryAt(r[0]+uint64(k))))
			}
		}
	}
	ctx := context.Background()
	e, err := store.ReadEntry(ctx, c.s, 8)
	if err != nil || !sameEntry(e, EntryAt(8)) {
		c.fail("ReadEntry(8) = %s, %v", describe(e), err)
	}
	// Stopping early is allowed.
	k := 0
	for _, err := range c.s.Entries(ctx, 0, n) {
		c.must("Entries", err)
		if k++; k == 3 {
			break
		}
	}
	// Entries covers the size at the time of the call, not later appends.
	k = 0
	for _, err := range c.s.Entries(ctx, 0, n+100) {
		c.must("Entries", err)
		if k == 0 {
			c.appendN(2)
		}
		k++
	}
	if uint64(k) != n {
		c.fail("Entries(0, %d) yielded %d entries with an append during iteration; want the %d present at the call", n+100, k, n)
	}
}

func entriesContext(c *check) {
	n := c.appendN(30)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := 0
	var last error
	for _, err := range c.s.Entries(ctx, 0, n) {
		if err != nil {
			last = err
			break
		}
		k++
		cancel()
	}
	if k == int(n) || !errors.Is(last, context.Canceled) {
		c.fail("Entries whose context was cancelled after the first entry yielded %d entries, then %v; want fewer than %d, then context.Canceled", k, last, n)
	}
}

func readHashesRange(c *check) {
	ctx := context.Background()
	n := c.appendN(3, 4)
	hc := store.StoredHashCount(n)
	for _, idx := range [][]int64{{0}, {hc - 1, 0, 3}, {2, 2, 2}} {
		hs, err := c.s.ReadHashes(ctx, idx)
		c.must(fmt.Sprintf("ReadHashes(%v)", idx), err)
		for k, x := range idx {
			if hs[k] != HashAt(x) {
				c.fail("ReadHashes(%v)[%d] = %x; want %x", idx, k, hs[k][:4], HashAt(x))
			}
		}
	}
	if _, err := c.s.ReadHashes(ctx, []int64{-1}); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadHashes([-1]): err = %v; want ErrNotFound", err)
	}
	if _, err := c.s.ReadHashes(ctx, []int64{0, hc + 10}); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadHashes with one index beyond the count: err = %v; want ErrNotFound", err)
	}
}

func appendOutOfOrder(c *check) {
	ctx := context.Background()
	n := c.appendN(4)
	for _, tc := range []struct {
		what string
		b    *store.Batch
	}{
		{"a gap after size", BatchAt(n+1, 2)},
		{"starts before size", BatchAt(n-1, 2)},
		{"starts at 0 again", BatchAt(0, 1)},
		{"non-consecutive indices", func() *store.Batch {
			b := BatchAt(n, 3)
			b.Entries[2].Index++
			return b
		}()},
		{"a repeated index", func() *store.Batch {
			b := BatchAt(n, 3)
			b.Entries[1].Index = n
			return b
		}()},
	} {
		if err := c.s.Append(ctx, tc.b); !errors.Is(err, store.ErrOutOfOrder) {
			c.fail("Append(batch with %s): err = %v; want ErrOutOfOrder", tc.what, err)
		}
	}
	c.checkLog(n)
	n = c.appendN(3)
	c.checkLog(n)
}

func appendInvalid(c *check) {
	ctx := context.Background()
	n := c.appendN(3)
	if err := c.s.Append(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		c.fail("Append(nil): err = %v; want ErrInvalid", err)
	}
	if err := c.s.Append(ctx, &store.Batch{}); !errors.Is(err, store.ErrInvalid) {
		c.fail("Append(empty batch): err = %v; want ErrInvalid", err)
	}
	b := BatchAt(n, 5)
	b.Hashes = b.Hashes[:len(b.Hashes)-1]
	if err := c.s.Append(ctx, b); !errors.Is(err, store.ErrInvalid) {
		c.fail("Append(batch short of one stored hash): err = %v; want ErrInvalid", err)
	}
	b = BatchAt(n, 5)
	b.Hashes = append(b.Hashes, HashAt(0))
	if err := c.s.Append(ctx, b); !errors.Is(err, store.ErrInvalid) {
		c.fail("Append(batch with one stored hash too many): err = %v; want ErrInvalid", err)
	}
	c.checkLog(n)
	n = c.appendN(5, 1)
	c.checkLog(n)
}

func appendDuplicateInBatch(c *check) {
	ctx := context.Background()
	n := c.appendN(10)
	b := BatchAt(n, 5)
	b.Entries[4].Identity = b.Entries[1].Identity
	if err := c.s.Append(ctx, b); !errors.Is(err, store.ErrDuplicate) {
		c.fail("Append(batch repeating an identity within itself): err = %v; want ErrDuplicate", err)
	}
	c.checkLog(n)
	n = c.appendN(5)
	c.checkLog(n)
}

func appendLargeAndEmpty(c *check) {
	ctx := context.Background()
	b := BatchAt(0, 4)
	b.Entries[0].Leaf, b.Entries[0].Payload = nil, nil
	b.Entries[1].Leaf, b.Entries[1].Payload = []byte{}, []byte{}
	b.Entries[2].Leaf = fill("big-leaf", 2, 70_000)
	b.Entries[2].Payload = fill("big-payload", 2, 4<<20+3)
	b.Entries[3].Payload = []byte{0}
	c.must("Append(empty and large entries)", c.s.Append(ctx, b))
	got := c.entries(0, 4)
	if len(got) != 4 {
		c.fail("Entries yielded %d entries; want 4", len(got))
	}
	for k, want := range b.Entries {
		if !sameEntry(got[k], want) {
			c.fail("entry %d = %s; want %s", k, describe(got[k]), describe(want))
		}
	}
	// A single batch of many small entries.
	c.must("Append(5000 entries)", c.s.Append(ctx, BatchAt(4, 5000)))
	for _, i := range []uint64{4, 5, 2500, 5003} {
		e, err := store.ReadEntry(ctx, c.s, i)
		if err != nil || !sameEntry(e, EntryAt(i)) {
			c.fail("ReadEntry(%d) = %s, %v; want %s", i, describe(e), err, describe(EntryAt(i)))
		}
	}
}

func appendConcurrent(c *check) {
	// Appenders race for the same index: exactly one wins each index, the others get
	// ErrOutOfOrder or ErrDuplicate, and the log ends up exactly the suite's entries.
	ctx := context.Background()
	const target = 400
	var wg sync.WaitGroup
	var won atomic.Int64
	var bad atomic.Pointer[error]
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bad.Load() == nil {
				n, err := c.s.Size(ctx)
				if err != nil {
					bad.CompareAndSwap(nil, &err)
					return
				}
				if n >= target {
					return
				}
				k := w%3 + 1
				err = c.s.Append(ctx, BatchAt(n, k))
				switch {
				case err == nil:
					won.Add(int64(k))
				case errors.Is(err, store.ErrOutOfOrder), errors.Is(err, store.ErrDuplicate):
				default:
					err = fmt.Errorf("Append at %d: %w", n, err)
					bad.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := bad.Load(); p != nil {
		c.fail("%v", *p)
	}
	n, err := c.s.Size(ctx)
	c.must("Size", err)
	if uint64(won.Load()) != n {
		c.fail("appenders were told %d entries went in; Size = %d", won.Load(), n)
	}
	c.checkLog(n)
}

func concurrentReaders(c *check) {
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
	idx, _ := c.s.(store.IdentityIndex)
	conv, _ := c.s.(store.ConversationIndex)
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
				size, err := c.s.Size(ctx)
				if err != nil {
					report(fmt.Errorf("Size: %w", err))
					return
				}
				if size == 0 {
					continue
				}
				i := rng.Uint64N(size)
				e, err := store.ReadEntry(ctx, c.s, i)
				if err != nil || !sameEntry(e, EntryAt(i)) {
					report(fmt.Errorf("ReadEntry(%d) with size %d = %s, %v", i, size, describe(e), err))
					return
				}
				hc := store.StoredHashCount(size)
				x := rng.Int64N(hc)
				hs, err := c.s.ReadHashes(ctx, []int64{x, hc - 1})
				if err != nil || hs[0] != HashAt(x) || hs[1] != HashAt(hc-1) {
					report(fmt.Errorf("ReadHashes([%d %d]) with size %d: %v", x, hc-1, size, err))
					return
				}
				if want := EntryAt(i); idx != nil && want.Identity != (store.Hash{}) {
					if got, ok, err := idx.Lookup(ctx, want.Identity); err != nil || !ok || got != i {
						report(fmt.Errorf("Lookup(identity of %d) = %d, %v, %v", i, got, ok, err))
						return
					}
				}
				if want := EntryAt(i); conv != nil && want.Conversation != (store.Hash{}) {
					// Entry i is durable, so its conversation's latest entry is i or later.
					if last, ok, err := conv.LastInConversation(ctx, want.Conversation); err != nil || !ok || last < i {
						report(fmt.Errorf("LastInConversation(conversation of %d) = %d, %v, %v", i, last, ok, err))
						return
					}
				}
				if r == 0 {
					from := size - min(size, 20)
					k := uint64(0)
					for e, err := range c.s.Entries(ctx, from, size+50) {
						if err != nil || e.Index != from+k || !sameEntry(e, EntryAt(e.Index)) {
							report(fmt.Errorf("Entries during appends yielded %s, %v", describe(e), err))
							return
						}
						k++
					}
					if from+k < size {
						report(fmt.Errorf("Entries(%d, ...) ended at %d, before the size %d seen just before", from, from+k, size))
						return
					}
				}
			}
		}()
	}
	n := uint64(0)
	var appendErr error
	for n < total {
		k := int(n%17) + 1
		if err := c.s.Append(ctx, BatchAt(n, k)); err != nil {
			appendErr = fmt.Errorf("Append at %d: %w", n, err)
			break
		}
		n += uint64(k)
	}
	close(done)
	wg.Wait()
	close(errs)
	c.must("appending during reads", appendErr)
	for err := range errs {
		c.fail("a reader during appends: %v", err)
	}
	c.checkLog(n)
}

func contextDone(c *check) {
	n := c.appendN(3)
	cps := []store.Checkpoint{{Size: 1, Note: []byte("cp\n")}}
	c.must("PutCheckpoint", c.s.PutCheckpoint(context.Background(), cps[0]))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	isCancel := func(what string, err error) {
		c.t.Helper()
		if !errors.Is(err, context.Canceled) {
			c.fail("%s with a cancelled context: err = %v; want context.Canceled", what, err)
		}
	}
	isCancel("Append", c.s.Append(ctx, BatchAt(n, 2)))
	_, err := c.s.Size(ctx)
	isCancel("Size", err)
	yielded := false
	for _, err := range c.s.Entries(ctx, 0, n) {
		isCancel("Entries", err)
		yielded = true
		break
	}
	if !yielded {
		c.fail("Entries with a cancelled context yielded nothing; want context.Canceled")
	}
	_, err = c.s.ReadHashes(ctx, []int64{0})
	isCancel("ReadHashes", err)
	isCancel("PutCheckpoint", c.s.PutCheckpoint(ctx, store.Checkpoint{Size: 2, Note: []byte("x\n")}))
	_, err = c.s.LatestCheckpoint(ctx)
	isCancel("LatestCheckpoint", err)
	for _, err := range c.s.AllCheckpoints(ctx) {
		isCancel("AllCheckpoints", err)
		break
	}
	if x, ok := c.s.(store.IdentityIndex); ok {
		_, _, err = x.Lookup(ctx, EntryAt(0).Identity)
		isCancel("Lookup", err)
	}
	if x, ok := c.s.(store.ConversationIndex); ok {
		_, _, err = x.LastInConversation(ctx, EntryAt(0).Conversation)
		isCancel("LastInConversation", err)
	}
	data := []byte("blob under a cancelled context")
	sum := sha256.Sum256(data)
	if x, ok := c.s.(store.Blobs); ok {
		isCancel("WriteBlob", x.WriteBlob(ctx, sum, data))
		_, err = x.ReadBlob(ctx, sum)
		isCancel("ReadBlob", err)
		if _, err := x.ReadBlob(context.Background(), sum); !errors.Is(err, store.ErrNotFound) {
			c.fail("ReadBlob after WriteBlob with a cancelled context: err = %v; want ErrNotFound", err)
		}
	}
	if x, ok := c.s.(store.Pipeline); ok {
		isCancel("Submit", <-x.Submit(ctx, BatchAt(n, 2)))
	}
	// Nothing was written under the cancelled context.
	c.checkLog(n)
	c.checkCheckpoints(cps)
}

func closed(c *check) {
	ctx := context.Background()
	n := c.appendN(2)
	data := []byte("blob")
	sum := sha256.Sum256(data)
	if x, ok := c.s.(store.Blobs); ok {
		c.must("WriteBlob", x.WriteBlob(ctx, sum, data))
	}
	c.must("Close", c.s.Close())
	if err := c.s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		c.fail("a second Close: err = %v; want nil or ErrClosed", err)
	}
	isClosed := func(what string, err error) {
		c.t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			c.fail("%s after Close: err = %v; want ErrClosed", what, err)
		}
	}
	isClosed("Append", c.s.Append(ctx, BatchAt(n, 1)))
	_, err := c.s.Size(ctx)
	isClosed("Size", err)
	yielded := false
	for _, err := range c.s.Entries(ctx, 0, n) {
		isClosed("Entries", err)
		yielded = true
		break
	}
	if !yielded {
		c.fail("Entries after Close yielded nothing; want ErrClosed")
	}
	_, err = c.s.ReadHashes(ctx, []int64{0})
	isClosed("ReadHashes", err)
	isClosed("PutCheckpoint", c.s.PutCheckpoint(ctx, store.Checkpoint{Size: 1, Note: []byte("x\n")}))
	_, err = c.s.LatestCheckpoint(ctx)
	isClosed("LatestCheckpoint", err)
	yielded = false
	for _, err := range c.s.AllCheckpoints(ctx) {
		isClosed("AllCheckpoints", err)
		yielded = true
		break
	}
	if !yielded {
		c.fail("AllCheckpoints after Close yielded nothing; want ErrClosed")
	}
	if x, ok := c.s.(store.IdentityIndex); ok {
		_, _, err = x.Lookup(ctx, EntryAt(0).Identity)
		isClosed("Lookup", err)
	}
	if x, ok := c.s.(store.ConversationIndex); ok {
		_, _, err = x.LastInConversation(ctx, EntryAt(0).Conversation)
		isClosed("LastInConversation", err)
	}
	if x, ok := c.s.(store.Blobs); ok {
		isClosed("WriteBlob", x.WriteBlob(ctx, sum, data))
		_, err = x.ReadBlob(ctx, sum)
		isClosed("ReadBlob", err)
	}
	if x, ok := c.s.(store.Pipeline); ok {
		isClosed("Submit", <-x.Submit(ctx, BatchAt(n, 1)))
	}
}

func checkpointsOrder(c *check) {
	ctx := context.Background()
	c.appendN(600, 400, 200)
	put := func(size uint64, note string) error {
		return c.s.PutCheckpoint(ctx, store.Checkpoint{Size: size, Note: []byte(note)})
	}
	var want []store.Checkpoint
	for _, size := range []uint64{1, 5, 6, 1000} {
		note := fmt.Sprintf("checkpoint %d\n", size)
		c.must(fmt.Sprintf("PutCheckpoint(%d)", size), put(size, note))
		want = append(want, store.Checkpoint{Size: size, Note: []byte(note)})
	}
	for _, size := range []uint64{1000, 999, 3} {
		if err := put(size, "late\n"); !errors.Is(err, store.ErrOutOfOrder) {
			c.fail("PutCheckpoint(%d) after 1000: err = %v; want ErrOutOfOrder", size, err)
		}
	}
	c.checkCheckpoints(want)
	// The caller may reuse the note buffer; reads return copies.
	note := []byte("reused note\n")
	c.must("PutCheckpoint(1001)", c.s.PutCheckpoint(ctx, store.Checkpoint{Size: 1001, Note: note}))
	clear(note)
	cp, err := c.s.LatestCheckpoint(ctx)
	if err != nil || string(cp.Note) != "reused note\n" {
		c.fail("LatestCheckpoint after the caller reused its note = %q, %v", cp.Note, err)
	}
	clear(cp.Note)
	for cp, err := range c.s.AllCheckpoints(ctx) {
		c.must("AllCheckpoints", err)
		clear(cp.Note)
	}
	c.checkCheckpoints(append(want, store.Checkpoint{Size: 1001, Note: []byte("reused note\n")}))
}

func checkpointsInvalid(c *check) {
	ctx := context.Background()
	n := c.appendN(10)
	for _, tc := range []struct {
		what string
		cp   store.Checkpoint
	}{
		{"of size 0", store.Checkpoint{Size: 0, Note: []byte("zero\n")}},
		{"with an empty note", store.Checkpoint{Size: 1}},
		{"beyond the log", store.Checkpoint{Size: n + 1, Note: []byte("beyond\n")}},
	} {
		if err := c.s.PutCheckpoint(ctx, tc.cp); !errors.Is(err, store.ErrInvalid) {
			c.fail("PutCheckpoint(%s): err = %v; want ErrInvalid", tc.what, err)
		}
	}
	c.checkCheckpoints(nil)
	c.must("PutCheckpoint(at the log's size)", c.s.PutCheckpoint(ctx, store.Checkpoint{Size: n, Note: []byte("n\n")}))
}

func (c *check) checkCheckpoints(want []store.Checkpoint) {
	c.t.Helper()
	ctx := context.Background()
	if len(want) == 0 {
		if _, err := c.s.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
			c.fail("LatestCheckpoint: err = %v; want ErrNotFound", err)
		}
	} else {
		cp, err := c.s.LatestCheckpoint(ctx)
		last := want[len(want)-1]
		if err != nil || cp.Size != last.Size || !bytes.Equal(cp.Note, last.Note) {
			c.fail("LatestCheckpoint = %d %q, %v; want %d %q", cp.Size, cp.Note, err, last.Size, last.Note)
		}
	}
	var got []store.Checkpoint
	for cp, err := range c.s.AllCheckpoints(ctx) {
		c.must("AllCheckpoints", err)
		got = append(got, cp)
	}
	if !slices.EqualFunc(got, want, func(a, b store.Checkpoint) bool { return a.Size == b.Size && bytes.Equal(a.Note, b.Note) }) {
		c.fail("AllCheckpoints yielded %d checkpoints %v; want %d %v", len(got), sizes(got), len(want), sizes(want))
	}
}

func sizes(cs []store.Checkpoint) []uint64 {
	out := make([]uint64, len(cs))
	for k, c := range cs {
		out[k] = c.Size
	}
	return out
}

func identityLookup(c *check) {
	ctx := context.Background()
	x := c.s.(store.IdentityIndex)
	n := c.appendN(1, 20, 3)
	for i := range n {
		e := EntryAt(i)
		got, ok, err := x.Lookup(ctx, e.Identity)
		if e.Identity == (store.Hash{}) {
			if ok || err != nil {
				c.fail("Lookup(zero identity) = %d, %v, %v; want false, nil (a zero identity is never indexed)", got, ok, err)
			}
			continue
		}
		if err != nil || !ok || got != i {
			c.fail("Lookup(identity of entry %d) = %d, %v, %v; want %d, true, nil", i, got, ok, err, i)
		}
	}
	if _, ok, err := x.Lookup(ctx, EntryAt(n).Identity); ok || err != nil {
		c.fail("Lookup(identity not stored) = %v, %v; want false, nil", ok, err)
	}
	// An identity that shares a long prefix with a stored one is still a different identity.
	for _, bit := range []int{0, 8*8 - 1, 8 * 8, 255} {
		near := EntryAt(1).Identity
		near[bit/8] ^= 1 << (bit % 8)
		if _, ok, err := x.Lookup(ctx, near); ok || err != nil {
			c.fail("Lookup(identity differing in bit %d from a stored one) = %v, %v; want false, nil", bit, ok, err)
		}
	}
}

func identityLookupAll(c *check) {
	ctx := context.Background()
	x := c.s.(store.IdentityBatch)
	n := c.appendN(1, 20, 3)
	var ids []store.Hash
	want := map[store.Hash]uint64{}
	for i := range n + 5 { // five not stored
		e := EntryAt(i)
		ids = append(ids, e.Identity)
		if i < n && e.Identity != (store.Hash{}) {
			want[e.Identity] = i
		}
	}
	near := EntryAt(1).Identity
	near[31] ^= 1
	ids = append(ids, near, store.Hash{}, EntryAt(2).Identity) // a near miss, the zero identity, a repeat
	got, err := x.LookupAll(ctx, ids)
	c.must("LookupAll", err)
	if len(got) != len(want) {
		c.fail("LookupAll found %d identities; want the %d stored", len(got), len(want))
	}
	for id, i := range want {
		if g, ok := got[id]; !ok || g != i {
			c.fail("LookupAll: identity of entry %d = %d, %v; want %d", i, g, ok, i)
		}
	}
	if got, err := x.LookupAll(ctx, nil); err != nil || len(got) != 0 {
		c.fail("LookupAll(none) = %v, %v; want nothing, nil", got, err)
	}
}

func identityDuplicate(c *check) {
	ctx := context.Background()
	x := c.s.(store.IdentityIndex)
	n := c.appendN(10)
	b := BatchAt(n, 5)
	b.Entries[3].Identity = EntryAt(2).Identity
	if err := c.s.Append(ctx, b); !errors.Is(err, store.ErrDuplicate) {
		c.fail("Append(batch repeating a stored identity): err = %v; want ErrDuplicate", err)
	}
	c.checkLog(n)
	for k, e := range b.Entries {
		if k == 3 || e.Identity == (store.Hash{}) {
			continue
		}
		if i, ok, err := x.Lookup(ctx, e.Identity); ok || err != nil {
			c.fail("after a refused batch: Lookup(identity of its entry %d) = %d, %v, %v; want not found", e.Index, i, ok, err)
		}
	}
	// The identities of the refused batch are free.
	n = c.appendN(5, 1)
	c.checkLog(n)
}

func conversationLast(c *check) {
	ctx := context.Background()
	x := c.s.(store.ConversationIndex)
	conv := digest("conv-last", 0)
	b := BatchAt(0, 3)
	for k := range b.Entries {
		b.Entries[k].Conversation = store.Hash{}
	}
	b.Entries[0].Conversation = conv
	b.Entries[2].Conversation = conv
	c.must("Append", c.s.Append(ctx, b))
	if i, ok, err := x.LastInConversation(ctx, conv); err != nil || !ok || i != 2 {
		c.fail("LastInConversation = %d, %v, %v; want 2, true, nil", i, ok, err)
	}
	b = BatchAt(3, 3)
	for k := range b.Entries {
		b.Entries[k].Conversation = store.Hash{}
	}
	b.Entries[2].Conversation = conv
	c.must("Append", c.s.Append(ctx, b))
	if i, ok, err := x.LastInConversation(ctx, conv); err != nil || !ok || i != 5 {
		c.fail("LastInConversation = %d, %v, %v; want 5, true, nil", i, ok, err)
	}
	if _, ok, err := x.LastInConversation(ctx, digest("conv-last", 1)); ok || err != nil {
		c.fail("LastInConversation(unknown) = %v, %v; want false, nil", ok, err)
	}
	if _, ok, err := x.LastInConversation(ctx, store.Hash{}); ok || err != nil {
		c.fail("LastInConversation(zero) = %v, %v; want false, nil (a zero conversation is never indexed)", ok, err)
	}
}

func blobsReadBack(c *check) {
	ctx := context.Background()
	x := c.s.(store.Blobs)
	if _, err := x.ReadBlob(ctx, sha256.Sum256([]byte("nothing"))); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadBlob of a blob never written: err = %v; want ErrNotFound", err)
	}
	blobs := [][]byte{{}, []byte("hello"), fill("blob", 1, 1<<20+17)}
	for _, data := range blobs {
		sum := sha256.Sum256(data)
		c.must(fmt.Sprintf("WriteBlob(%d bytes)", len(data)), x.WriteBlob(ctx, sum, data))
		c.must(fmt.Sprintf("WriteBlob(%d bytes) again (content-addressed, idempotent)", len(data)), x.WriteBlob(ctx, sum, data))
	}
	for _, data := range blobs {
		sum := sha256.Sum256(data)
		got, err := x.ReadBlob(ctx, sum)
		if err != nil || !bytes.Equal(got, data) {
			c.fail("ReadBlob(%x) = %d bytes, %v; want the %d bytes written", sum[:4], len(got), err, len(data))
		}
		if len(got) > 0 {
			got[0] ^= 0xff
			if again, _ := x.ReadBlob(ctx, sum); !bytes.Equal(again, data) {
				c.fail("ReadBlob returned a slice aliasing the stored content")
			}
		}
	}
	// The caller may reuse its buffer after WriteBlob.
	buf := []byte("reused buffer")
	sum := sha256.Sum256(buf)
	c.must("WriteBlob", x.WriteBlob(ctx, sum, buf))
	clear(buf)
	if got, err := x.ReadBlob(ctx, sum); err != nil || string(got) != "reused buffer" {
		c.fail("ReadBlob after the caller reused its buffer = %q, %v", got, err)
	}
}

func blobsHashMismatch(c *check) {
	ctx := context.Background()
	x := c.s.(store.Blobs)
	data := []byte("the real content")
	wrong := sha256.Sum256([]byte("other content"))
	for _, sum := range []store.Hash{wrong, {}} {
		if err := x.WriteBlob(ctx, sum, data); !errors.Is(err, store.ErrHashMismatch) {
			c.fail("WriteBlob under a hash not of its content: err = %v; want ErrHashMismatch", err)
		}
		if _, err := x.ReadBlob(ctx, sum); !errors.Is(err, store.ErrNotFound) {
			c.fail("ReadBlob(wrong hash) after a refused WriteBlob: err = %v; want ErrNotFound", err)
		}
	}
	if _, err := x.ReadBlob(ctx, sha256.Sum256(data)); !errors.Is(err, store.ErrNotFound) {
		c.fail("ReadBlob(real hash) after a refused WriteBlob: err = %v; want ErrNotFound", err)
	}
}

func pipelineInOrder(c *check) {
	ctx := context.Background()
	x := c.s.(store.Pipeline)
	var chans []<-chan error
	n := uint64(0)
	for k := range 60 {
		size := k%7 + 1
		chans = append(chans, x.Submit(ctx, BatchAt(n, size)))
		n += uint64(size)
	}
	// Results arrive in submission order: once the last batch has its nil, every earlier one
	// has its result, and it is nil.
	last := len(chans) - 1
	if err := <-chans[last]; err != nil {
		c.fail("the last of %d batches submitted without waiting: %v", len(chans), err)
	}
	for k := range last {
		select {
		case err := <-chans[k]:
			if err != nil {
				c.fail("batch %d failed though the last batch succeeded: %v", k, err)
			}
		default:
			c.fail("the last batch was acknowledged before batch %d had its result", k)
		}
	}
	c.checkLog(n)
	// Append after pipelined batches goes on from there.
	n = c.appendN(3)
	c.checkLog(n)
}

func pipelineChecks(c *check) {
	ctx := context.Background()
	x := c.s.(store.Pipeline)
	_, indexed := c.s.(store.IdentityIndex)
	first := x.Submit(ctx, BatchAt(0, 4))
	// Checked against the pending batch: index 4 is next, not 0.
	stale := x.Submit(ctx, BatchAt(0, 2))
	var dup <-chan error
	if indexed {
		b := BatchAt(4, 2)
		b.Entries[1].Identity = EntryAt(1).Identity // in the pending batch
		dup = x.Submit(ctx, b)
	}
	next := x.Submit(ctx, BatchAt(4, 3)) // the refused batches do not count
	if err := <-first; err != nil {
		c.fail("first batch: %v", err)
	}
	if err := <-stale; !errors.Is(err, store.ErrOutOfOrder) {
		c.fail("a batch starting at 0 behind a pending batch of 4: err = %v; want ErrOutOfOrder", err)
	}
	if dup != nil {
		if err := <-dup; !errors.Is(err, store.ErrDuplicate) {
			c.fail("a batch repeating an identity of a pending batch: err = %v; want ErrDuplicate", err)
		}
	}
	if err := <-next; err != nil {
		c.fail("a batch after refused ones, checked as if they had not been submitted: %v", err)
	}
	c.checkLog(7)
}

func sharedBuildAtSize(c *check) {
	ctx := context.Background()
	x := c.s.(store.SharedLog)
	n := c.appendN(3)
	calls := 0
	err := x.AppendLocked(ctx, 1, func(size uint64, appended []store.Entry) (*store.Batch, error) {
		calls++
		if size != n {
			c.fail("build was given size %d; the log holds %d", size, n)
		}
		// What is below size is readable while the lock is held.
		if got := c.entries(0, size); uint64(len(got)) != size {
			c.fail("build read %d entries below size %d", len(got), size)
		}
		if appended != nil {
			if uint64(len(appended)) != size-1 {
				c.fail("build was given %d entries from 1; the log holds %d", len(appended), size)
			}
			for k, e := range appended {
				want := EntryAt(uint64(k) + 1)
				if e.Index != want.Index || e.Identity != want.Identity || e.Conversation != want.Conversation || !bytes.Equal(e.Leaf, want.Leaf) {
					c.fail("entry %d given to build: %s; want %s", k+1, describe(e), describe(want))
				}
			}
		}
		return BatchAt(size, 4), nil
	})
	c.must("AppendLocked", err)
	if calls != 1 {
		c.fail("build was called %d times; want once", calls)
	}
	c.checkLog(n + 4)
	c.must("AppendLocked from beyond the size", x.AppendLocked(ctx, n+100, func(size uint64, appended []store.Entry) (*store.Batch, error) {
		if appended != nil {
			c.fail("build was given %d entries from beyond the log's size; want nil", len(appended))
		}
		return nil, nil
	}))
}

func sharedRefusals(c *check) {
	ctx := context.Background()
	x := c.s.(store.SharedLog)
	n := c.appendN(2)
	boom := errors.New("build failed")
	if err := x.AppendLocked(ctx, n, func(uint64, []store.Entry) (*store.Batch, error) { return BatchAt(n, 3), boom }); !errors.Is(err, boom) {
		c.fail("a build that failed: err = %v; want its error", err)
	}
	if err := x.AppendLocked(ctx, n, func(uint64, []store.Entry) (*store.Batch, error) { return nil, nil }); err != nil {
		c.fail("a build that returned no batch: err = %v; want nil", err)
	}
	if err := x.AppendLocked(ctx, n, func(uint64, []store.Entry) (*store.Batch, error) { return BatchAt(n+1, 2), nil }); !errors.Is(err, store.ErrOutOfOrder) {
		c.fail("a batch that does not start at the size build was given: err = %v; want ErrOutOfOrder", err)
	}
	if _, indexed := c.s.(store.IdentityIndex); indexed {
		if err := x.AppendLocked(ctx, n, func(size uint64, _ []store.Entry) (*store.Batch, error) {
			b := BatchAt(size, 2)
			b.Entries[1].Identity = EntryAt(1).Identity // stored already
			return b, nil
		}); !errors.Is(err, store.ErrDuplicate) {
			c.fail("a batch that repeats a stored identity: err = %v; want ErrDuplicate", err)
		}
	}
	c.checkLog(n)
}

func sharedExcludes(c *check) {
	ctx := context.Background()
	x := c.s.(store.SharedLog)
	const writers, each = 4, 10
	var inside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for k := range each {
				errs <- x.AppendLocked(ctx, 0, func(size uint64, _ []store.Entry) (*store.Batch, error) {
					if inside.Add(1) != 1 {
						return nil, errors.New("two builds ran at once")
					}
					defer inside.Add(-1)
					if (w+k)%3 == 0 {
						runtime.Gosched() // let the others try to get in
					}
					return BatchAt(size, (w+k)%3+1), nil
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	var n uint64
	for err := range errs {
		c.must("AppendLocked from several writers at once", err)
	}
	for w := range writers {
		for k := range each {
			n += uint64((w+k)%3 + 1)
		}
	}
	c.checkLog(n)
}

func readOnlyWritable(c *check) {
	if c.s.(store.ReadOnlyReporter).ReadOnly() {
		c.fail("a store the suite opened for writing reports ReadOnly")
	}
}

func reopenEmpty(c *reopenCheck) {
	c.s = c.open()
	c.must("Close", c.s.Close())
	c.s = c.open()
	defer c.s.Close()
	c.checkLog(0)
	c.checkCheckpoints(nil)
	n := c.appendN(3)
	c.checkLog(n)
}

func reopenKeepsAll(c *reopenCheck) {
	ctx := context.Background()
	c.s = c.open()
	n := c.appendN(1, 5, 30, 2)
	cps := []store.Checkpoint{{Size: 1, Note: []byte("one\n")}, {Size: 38, Note: []byte("thirty-eight\n")}}
	for _, cp := range cps {
		c.must("PutCheckpoint", c.s.PutCheckpoint(ctx, cp))
	}
	blob := fill("reopen-blob", 0, 100_000)
	sum := sha256.Sum256(blob)
	if x, ok := c.s.(store.Blobs); ok {
		c.must("WriteBlob", x.WriteBlob(ctx, sum, blob))
	}
	_, owned := c.s.(store.Owner)
	if owned {
		c.wantOwner("keeper", "keeper")
	}
	c.must("Close", c.s.Close())
	c.s = c.open()
	c.checkLog(n)
	if owned {
		c.wantOwner("newcomer", "keeper")
	}
	c.checkCheckpoints(cps)
	c.checkIndexes(n)
	if x, ok := c.s.(store.Blobs); ok {
		if got, err := x.ReadBlob(ctx, sum); err != nil || !bytes.Equal(got, blob) {
			c.fail("ReadBlob after reopening = %d bytes, %v; want %d bytes", len(got), err, len(blob))
		}
	}
	// The reopened store still refuses what it must and goes on appending.
	if err := c.s.Append(ctx, BatchAt(n-1, 1)); !errors.Is(err, store.ErrOutOfOrder) {
		c.fail("Append at a stored index after reopening: err = %v; want ErrOutOfOrder", err)
	}
	if _, ok := c.s.(store.IdentityIndex); ok {
		dup := BatchAt(n, 1)
		dup.Entries[0].Identity = EntryAt(1).Identity
		if err := c.s.Append(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
			c.fail("Append of a stored identity after reopening: err = %v; want ErrDuplicate", err)
		}
	}
	if err := c.s.PutCheckpoint(ctx, store.Checkpoint{Size: 38, Note: []byte("again\n")}); !errors.Is(err, store.ErrOutOfOrder) {
		c.fail("PutCheckpoint(38) after reopening: err = %v; want ErrOutOfOrder", err)
	}
	n = c.appendN(7, 1)
	cps = append(cps, store.Checkpoint{Size: n, Note: []byte("more\n")})
	c.must("PutCheckpoint after reopening", c.s.PutCheckpoint(ctx, cps[2]))
	c.must("Close", c.s.Close())
	c.s = c.open()
	defer c.s.Close()
	c.checkLog(n)
	c.checkCheckpoints(cps)
	c.checkIndexes(n)
}

// checkIndexes checks the optional indexes the store implements against the suite entries
// [0, n).
func (c *check) checkIndexes(n uint64) {
	c.t.Helper()
	ctx := context.Background()
	last := map[store.Hash]uint64{}
	for i := range n {
		e := EntryAt(i)
		if x, ok := c.s.(store.IdentityIndex); ok && e.Identity != (store.Hash{}) {
			got, ok, err := x.Lookup(ctx, e.Identity)
			if err != nil || !ok || got != i {
				c.fail("Lookup(identity of entry %d) = %d, %v, %v; want %d, true, nil", i, got, ok, err, i)
			}
		}
		if e.Conversation != (store.Hash{}) {
			last[e.Conversation] = i
		}
	}
	if x, ok := c.s.(store.ConversationIndex); ok {
		for conv, want := range last {
			got, ok, err := x.LastInConversation(ctx, conv)
			if err != nil || !ok || got != want {
				c.fail("LastInConversation(%x) = %d, %v, %v; want %d, true, nil", conv[:4], got, ok, err, want)
			}
		}
	}
}

func reopenIdempotent(c *reopenCheck) {
	c.s = c.open()
	n := c.appendN(4, 4)
	c.must("Close", c.s.Close())
	for range 3 {
		c.s = c.open()
		c.checkLog(n)
		c.checkIndexes(n)
		c.must("Close", c.s.Close())
	}
	c.s = c.open()
	defer c.s.Close()
	n = c.appendN(1)
	c.checkLog(n)
}
