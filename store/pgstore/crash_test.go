package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
)

// checkSuiteLog checks that s holds exactly the suite's entries [0, n) and their stored hashes.
func checkSuiteLog(t *testing.T, s store.Store, n uint64) {
	t.Helper()
	ctx := context.Background()
	size, err := s.Size(ctx)
	if err != nil || size != n {
		t.Fatalf("Size = %d, %v; want %d", size, err, n)
	}
	k := uint64(0)
	for e, err := range s.Entries(ctx, 0, n) {
		want := storetest.EntryAt(k)
		if err != nil || e.Index != k || e.Identity != want.Identity || e.Conversation != want.Conversation ||
			!bytes.Equal(e.Leaf, want.Leaf) || !bytes.Equal(e.Payload, want.Payload) {
			t.Fatalf("entry %d: %+v, %v; not the suite's entry", k, e.Index, err)
		}
		k++
	}
	if k != n {
		t.Fatalf("Entries yielded %d entries; want %d", k, n)
	}
	idx := make([]int64, store.StoredHashCount(n))
	for x := range idx {
		idx[x] = int64(x)
	}
	hs, err := s.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatalf("ReadHashes: %v", err)
	}
	for x, h := range hs {
		if h != storetest.HashAt(int64(x)) {
			t.Fatalf("stored hash %d differs", x)
		}
	}
}

// TestCrashLosesNothingAcknowledged appends batches without pause while the server is stopped
// as a crash would stop it (immediate shutdown: no checkpoint, recovery from the WAL at the next
// start). Every batch acknowledged before the crash is there after the restart, in order; the
// store that lived through the crash goes on appending on new connections; a store opened
// afterwards agrees.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.NewServer(t)
	dsn := srv.CreateDatabase(t)
	s := open(t, dsn, "crash")

	var acked atomic.Uint64 // entries acknowledged
	var stop atomic.Bool
	failed := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := uint64(0)
		for k := 0; !stop.Load(); k++ {
			size := k%5 + 1
			if err := s.Append(ctx, storetest.BatchAt(n, size)); err != nil {
				failed <- err
				return
			}
			n += uint64(size)
			acked.Store(n)
		}
	}()
	for acked.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	var appendErr error
	select {
	case appendErr = <-failed:
	case <-time.After(30 * time.Second):
		t.Fatal("appends went on for 30 s after the server was stopped")
	}
	stop.Store(true)
	<-done
	before := acked.Load()
	t.Logf("crashed after %d entries acknowledged; the next append failed with: %v", before, appendErr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}

	// The batch whose commit the crash interrupted may or may not be there; every acknowledged
	// one is.
	n, err := s.Size(ctx)
	if err != nil {
		t.Fatalf("Size after the restart: %v", err)
	}
	if n < before || n > before+5 {
		t.Fatalf("after the restart the log holds %d entries; %d were acknowledged", n, before)
	}
	checkSuiteLog(t, s, n)
	if err := s.Append(ctx, storetest.BatchAt(n, 3)); err != nil {
		t.Fatalf("Append through the store that lived through the restart: %v", err)
	}
	n += 3
	r := open(t, dsn, "crash")
	checkSuiteLog(t, r, n)

	// A clean stop and start in between appends loses nothing either.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, storetest.BatchAt(n, 1)); err == nil {
		t.Fatal("Append with the server stopped succeeded")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, storetest.BatchAt(n, 2)); err != nil {
		t.Fatalf("Append after the server came back: %v", err)
	}
	checkSuiteLog(t, r, n+2)
}

// TestOpenErrors: a DSN that does not parse, a server that is not there, and a schema written
// by a newer version fail Open with a clear error, naming where (never the password), and
// change nothing.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	_, err := pgstore.Open(ctx, "postgres://u:s3cret@[::1/db", nil)
	if !errors.Is(err, store.ErrInvalid) || bytes.Contains([]byte(err.Error()), []byte("s3cret")) {
		t.Fatalf("Open with a DSN that does not parse: %v; want store.ErrInvalid without the password", err)
	}
	t.Logf("bad DSN: %v", err)

	// A socket directory where no server listens, and a TCP port where none does.
	for _, dsn := range []string{
		"host=" + t.TempDir() + " user=u password=s3cret dbname=ledger connect_timeout=3",
		"postgres://u:s3cret@127.0.0.1:1/ledger?connect_timeout=3",
	} {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = pgstore.Open(cctx, dsn, nil)
		cancel()
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`connect to database "ledger"`)) || bytes.Contains([]byte(err.Error()), []byte("s3cret")) {
			t.Fatalf("Open of an unreachable server: %v; want an error naming the database, without the password", err)
		}
		t.Logf("unreachable: %v", err)
	}

	dsn := pgtest.Start(t)
	s := open(t, dsn, "future")
	if err := s.Append(ctx, storetest.BatchAt(0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, `INSERT INTO {s}.schema_version (version, description) VALUES (999, 'from the future')`); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err = pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "future", ReadOnly: ro})
		if !errors.Is(err, pgstore.ErrSchemaTooNew) {
			t.Fatalf("Open (read-only %v) of a schema at version 999: %v; want ErrSchemaTooNew", ro, err)
		}
	}
	t.Logf("newer schema: %v", err)
	checkSuiteLog(t, s, 2)

	// A read-only open of a schema nobody created says so.
	if _, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "nothing", ReadOnly: true}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read-only Open of a missing schema: %v; want store.ErrNotFound", err)
	}
}

// TestMigrationToOwnerKeepsTheLog opens a log written at schema version 1 (made by rolling a
// new schema back: the owner table dropped, its version row deleted), and checks that a reader
// reads it as it is, and that a writer's Open migrates it to version 2 with its entries intact
// and no owner yet, so the next ledger to open it claims it.
func TestMigrationToOwnerKeepsTheLog(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	s := open(t, dsn, "v1")
	if err := s.Append(ctx, storetest.BatchAt(0, 5)); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`DROP TABLE {s}.owner`, `DELETE FROM {s}.schema_version WHERE version = 2`} {
		if _, err := s.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A reader reads it as it is: version 2 added nothing a reader uses.
	ro, err := pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "v1", ReadOnly: true})
	if err != nil {
		t.Fatalf("a read-only Open of a version-1 schema: %v", err)
	}
	checkSuiteLog(t, ro, 5)
	ro.Close()
	s = open(t, dsn, "v1")
	if n, err := s.Exec(ctx, `SELECT 1 FROM {s}.schema_version`); err != nil || n != 2 {
		t.Fatalf("schema_version holds %d rows, %v; want 2 after the migration", n, err)
	}
	checkSuiteLog(t, s, 5)
	if got, err := s.Claim(ctx, "ledger A"); err != nil || got != "ledger A" {
		t.Fatalf("Claim of the migrated log = %q, %v; want it recorded", got, err)
	}
	if got, err := s.Claim(ctx, "ledger B"); err != nil || got != "ledger A" {
		t.Fatalf("a second Claim = %q, %v; want the first owner", got, err)
	}
}
