package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
)

// TestSeveralStoresOneLedger: stores opened at once on one new schema (as several processes
// would) migrate it once; then they append to the one log at once. The head row's lock
// serializes them: each index is won by exactly one batch, the others are refused with
// ErrOutOfOrder or ErrDuplicate and write nothing, and every store reads the same log.
func TestSeveralStoresOneLedger(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	const writers = 4
	stores := make([]*pgstore.Store, writers)
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			stores[w], errs[w] = pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "shared", MaxConns: 4})
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("Open %d of a new schema at once: %v", w, err)
		}
		t.Cleanup(func() { stores[w].Close() })
	}
	if n, err := stores[0].Exec(ctx, `SELECT 1 FROM {s}.schema_version`); err != nil || n != int64(pgstore.SchemaVersion) {
		t.Fatalf("schema_version holds %d rows, %v; want %d (each migration applied once)", n, err, pgstore.SchemaVersion)
	}

	const target = 300
	var won atomic.Uint64
	for w := range writers {
		wg.Go(func() {
			s := stores[w]
			for {
				n, err := s.Size(ctx)
				if err != nil {
					errs[w] = err
					return
				}
				if n >= target {
					return
				}
				k := w%3 + 1
				err = s.Append(ctx, storetest.BatchAt(n, k))
				switch {
				case err == nil:
					won.Add(uint64(k))
				case errors.Is(err, store.ErrOutOfOrder), errors.Is(err, store.ErrDuplicate):
				default:
					errs[w] = fmt.Errorf("Append at %d: %w", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	n, err := stores[0].Size(ctx)
	if err != nil || n != won.Load() || n < target {
		t.Fatalf("Size = %d, %v; the writers were told %d entries went in (want at least %d)", n, err, won.Load(), target)
	}
	for _, s := range stores {
		checkSuiteLog(t, s, n)
	}
}

// TestReadOnly: a read-only store reads what a writer appends while it runs, and refuses every
// write with ErrReadOnly, writing nothing.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	w := open(t, dsn, "ro")
	if err := w.Append(ctx, storetest.BatchAt(0, 5)); err != nil {
		t.Fatal(err)
	}
	r, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "ro", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.ReadOnly() || w.ReadOnly() {
		t.Fatalf("ReadOnly() = %v for the read-only store, %v for the writer", r.ReadOnly(), w.ReadOnly())
	}
	checkSuiteLog(t, r, 5)
	if err := w.Append(ctx, storetest.BatchAt(5, 3)); err != nil {
		t.Fatal(err)
	}
	checkSuiteLog(t, r, 8)
	blob := []byte("attachment")
	sum := sha256Sum(blob)
	for what, err := range map[string]error{
		"Append":        r.Append(ctx, storetest.BatchAt(8, 1)),
		"PutCheckpoint": r.PutCheckpoint(ctx, store.Checkpoint{Size: 8, Note: []byte("cp\n")}),
		"WriteBlob":     r.WriteBlob(ctx, sum, blob),
		"PutKey":        r.PutKey(ctx, storetest.KeyAt("k", 1)),
		"SetMeta":       r.SetMeta(ctx, "k", nil),
		"DestroyKey":    r.DestroyKey(ctx, "k"),
	} {
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v; want ErrReadOnly", what, err)
		}
	}
	checkSuiteLog(t, w, 8)
	if _, err := w.LatestCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a checkpoint was stored through the read-only store: %v", err)
	}
}

// TestCopyPath: batches larger than the statement limit are streamed with COPY in a
// transaction that locks the head row; they keep the same rules. (The limit is lowered to one
// byte so that every batch takes that path.)
func TestCopyPath(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Start(t), "copy")
	s.SetCopyAbove(1)
	n := uint64(0)
	for _, k := range []int{1, 7, 30, 2} {
		if err := s.Append(ctx, storetest.BatchAt(n, k)); err != nil {
			t.Fatalf("Append(%d entries at %d): %v", k, n, err)
		}
		n += uint64(k)
	}
	if err := s.Append(ctx, storetest.BatchAt(n-1, 2)); !errors.Is(err, store.ErrOutOfOrder) {
		t.Fatalf("Append at a stored index: %v; want ErrOutOfOrder", err)
	}
	dup := storetest.BatchAt(n, 3)
	dup.Entries[2].Identity = storetest.EntryAt(4).Identity
	if err := s.Append(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Append of a stored identity: %v; want ErrDuplicate", err)
	}
	checkSuiteLog(t, s, n)
	if err := s.Append(ctx, storetest.BatchAt(n, 3)); err != nil {
		t.Fatal(err)
	}
	checkSuiteLog(t, s, n+3)
}

// TestLargeEntriesReadInSmallQueries: Entries reads no more than a budget of bytes per query
// (16 MiB; 250 kB here) unless one entry is larger, so a log of large entries is read without
// holding 256 of them.
func TestLargeEntriesReadInSmallQueries(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Start(t), "large")
	s.SetReadBytes(250_000)
	b := storetest.BatchAt(0, 4)
	for k := range b.Entries {
		b.Entries[k].Payload = bytes.Repeat([]byte{byte(k + 1)}, 140_000)
	}
	if err := s.Append(ctx, b); err != nil {
		t.Fatal(err)
	}
	chunk, err := s.ReadEntries(ctx, 0, 4)
	if err != nil || len(chunk) != 1 {
		t.Fatalf("one query over four entries of 140 kB read %d entries, %v; want 1 (250 kB at most unless one entry is larger)", len(chunk), err)
	}
	s.SetReadBytes(300_000)
	if chunk, err := s.ReadEntries(ctx, 1, 4); err != nil || len(chunk) != 2 || chunk[0].Index != 1 {
		t.Fatalf("one query from entry 1 with 300 kB read %d entries, %v; want 2", len(chunk), err)
	}
	k := 0
	for e, err := range s.Entries(ctx, 0, 4) {
		if err != nil || e.Index != uint64(k) || !bytes.Equal(e.Payload, b.Entries[k].Payload) || !bytes.Equal(e.Leaf, b.Entries[k].Leaf) {
			t.Fatalf("entry %d: %d, %v", k, e.Index, err)
		}
		k++
	}
	if k != 4 {
		t.Fatalf("Entries yielded %d entries; want 4", k)
	}
}
