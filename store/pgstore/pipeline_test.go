package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
	"github.com/jackc/pgx/v5"
)

// TestPipelineFailure: a batch that fails for a reason other than the checks (here its context
// ended while it waited behind another) fails the batches submitted after it, which were built
// on it, and writes nothing; a batch submitted once the failure is known is checked against
// the log as it is. The head row is held locked from another connection meanwhile, as another
// process appending would hold it, so that the batches are queued when the context ends.
func TestPipelineFailure(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	s := open(t, dsn, "pipe")
	if err := s.Append(ctx, storetest.BatchAt(0, 2)); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT size FROM pipe.head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
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
	err = <-after
	if err == nil || !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrOutOfOrder) {
		t.Fatalf("the batch submitted after the failed one: %v; want it failed with the earlier batch's error", err)
	}
	checkSuiteLog(t, s, 5)
	if err := <-s.Submit(ctx, storetest.BatchAt(5, 4)); err != nil {
		t.Fatalf("a batch submitted after the failure was known: %v", err)
	}
	checkSuiteLog(t, s, 9)
}
