package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
	"github.com/jackc/pgx/v5"
)

// lockedHead opens a store in schema holding 2 entries and holds its head row locked from another
// connection, in the transaction it returns, as another process appending would hold it.
func lockedHead(t *testing.T, dsn, schema string) (*pgstore.Store, *pgx.Conn, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	s := open(t, dsn, schema)
	if err := s.Append(ctx, storetest.BatchAt(0, 2)); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(ctx) })
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT size FROM `+schema+`.head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	return s, other, tx
}

// TestPipelineFailure: a batch that fails for a reason other than the checks (here its context
// ended while it waited behind another) fails the batches submitted after it, which were built
// on it, and writes nothing; a batch submitted once the failure is known is checked against
// the log as it is. The head row is held locked from another connection meanwhile, as another
// process appending would hold it, so that the batches are queued when the context ends.
func TestPipelineFailure(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	s, _, tx := lockedHead(t, dsn, "pipe")
	first := s.Submit(ctx, storetest.BatchAt(2, 3)) // waits for the lock
	cctx, cancel := context.WithCancel(ctx)
	doomed := s.Submit(cctx, storetest.BatchAt(5, 2))
	after := s.Submit(ctx, storetest.BatchAt(7, 1))
	cancel()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-first:
		t.Fatalf("a batch was answered (%v) while another connection held the head row", err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the batch that waited for the lock: %v", err)
	}
	if err := <-doomed; !errors.Is(err, context.Canceled) {
		t.Fatalf("the batch whose context ended while it waited: %v; want context.Canceled", err)
	}
	err := <-after
	if err == nil || !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrOutOfOrder) {
		t.Fatalf("the batch submitted after the failed one: %v; want it failed with the earlier batch's error", err)
	}
	checkSuiteLog(t, s, 5)
	if err := <-s.Submit(ctx, storetest.BatchAt(5, 4)); err != nil {
		t.Fatalf("a batch submitted after the failure was known: %v", err)
	}
	checkSuiteLog(t, s, 9)
}

// TestSessionKilledDuringAppend: the server ends the session of a batch that waits for the head
// row's lock (pg_terminate_backend, as an administrator or a failover would). The batch fails,
// after the store has read back that it is not in the log; nothing is written; the store goes
// on appending on another connection.
func TestSessionKilledDuringAppend(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	s, other, tx := lockedHead(t, dsn, "killed")
	res := s.Submit(ctx, storetest.BatchAt(2, 3))
	var pid int32
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := other.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = 'commseal' AND wait_event_type = 'Lock'`).Scan(&pid)
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) || time.Now().After(deadline) {
			t.Fatalf("finding the session waiting for the lock: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var killed bool
	if err := other.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend: %v, %v", killed, err)
	}
	err := <-res
	if err == nil || !strings.Contains(err.Error(), "not in the log") {
		t.Fatalf("the batch whose session was terminated: %v; want an error after reading back that it is not in the log", err)
	}
	t.Logf("session terminated: %v", err)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	checkSuiteLog(t, s, 2)
	if err := s.Append(ctx, storetest.BatchAt(2, 3)); err != nil {
		t.Fatalf("Append after the session was terminated: %v", err)
	}
	checkSuiteLog(t, s, 5)
}
