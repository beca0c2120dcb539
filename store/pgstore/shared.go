package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
)

var (
	_ store.SharedLog = (*Store)(nil)
	_ store.Leases    = (*Store)(nil)
)

// AppendLocked implements store.SharedLog. Its transaction locks the head row (SELECT … FOR
// UPDATE) before build runs, so every other writer's batch, from this process or another,
// waits for its COMMIT; build reads the log through the pool, on other connections, which see
// every entry committed before the lock was taken. The batch is written as Append writes it
// (one statement, or COPY above 32 MiB), and the lock is released by the COMMIT that makes it
// durable. A connection lost after build ran is resolved as Append resolves it, by reading the
// batch back.
func (s *Store) AppendLocked(ctx context.Context, build func(size uint64) (*store.Batch, error)) error {
	if err := s.beginWrite(ctx); err != nil {
		return err
	}
	tx, err := s.beginTx(ctx)
	if err != nil {
		return s.fail(ctx, "append: begin", err)
	}
	open := true
	defer func() {
		if open {
			rollback(tx)
		}
	}()
	var size int64
	if err := tx.QueryRow(ctx, s.q.headForUpdate).Scan(&size); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pgstore: %w: the head row is missing", store.ErrCorrupt)
		}
		return s.fail(ctx, "append: lock the head row", err)
	}
	b, err := build(uint64(size))
	if err != nil || b == nil || len(b.Entries) == 0 {
		return err
	}
	if err := checkShape(b); err != nil {
		return err
	}
	if first := b.Entries[0].Index; first != uint64(size) {
		return fmt.Errorf("pgstore: %w: batch starts at %d, the log holds %d entries", store.ErrOutOfOrder, first, size)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := s.insertLocked(wctx, tx, b); err != nil {
		return err
	}
	open = false
	if err := tx.Commit(wctx); err != nil {
		return s.resolve(b, err)
	}
	return nil
}

// insertLocked writes b's entries in tx, whose head row is locked at b's first index, and
// moves the head past them.
func (s *Store) insertLocked(ctx context.Context, tx pgx.Tx, b *store.Batch) error {
	n := len(b.Entries)
	if batchBytes(b) > s.copyAbove {
		if _, err := tx.Exec(ctx, s.q.setHead, int64(b.Entries[0].Index)+int64(n)); err != nil {
			return s.fail(ctx, "append: move the head row", err)
		}
		return s.copyEntries(ctx, tx, b)
	}
	args := batchArgs(b)
	tag, err := tx.Exec(ctx, s.q.appendBatch, args...)
	if err != nil {
		return s.appendFailed(b, err)
	}
	if tag.RowsAffected() != int64(n) {
		return fmt.Errorf("pgstore: %w: the head row moved while it was locked", store.ErrCorrupt)
	}
	return nil
}

// The lease's advisory lock is keyed by two int4: this class, and a hash of the schema and the
// lease's name, so that ledgers in different schemas of one database hold their own leases.
const leaseClass = 0x636f6d6d // "comm"

// leases holds the sessions of the leases a store holds: a session-level advisory lock lives
// as long as its connection, so a process that dies or loses its connection releases it.
type leases struct {
	mu   sync.Mutex // guards conn and held
	conn *pgx.Conn
	held map[string]bool
}

// HoldLease implements store.Leases with a session-level advisory lock
// (pg_try_advisory_lock) on a connection of its own, outside the pool. While it is held, each
// call confirms that the connection, and so the lock, is still there; a lost connection loses
// the lease, and the call tries to take it again on a new one.
func (s *Store) HoldLease(ctx context.Context, name string) (bool, error) {
	if err := s.beginWrite(ctx); err != nil {
		return false, err
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && l.held[name] {
		if _, err := l.conn.Exec(ctx, ";"); err == nil {
			return true, nil
		}
		l.drop()
	}
	if l.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
		if err != nil {
			return false, s.fail(ctx, "lease: connect", err)
		}
		l.conn, l.held = conn, map[string]bool{}
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, int32(leaseClass), s.schema+"/"+name).Scan(&ok); err != nil {
		l.drop()
		return false, s.fail(ctx, "lease "+name, err)
	}
	l.held[name] = ok
	return ok, nil
}

// drop closes the leases' connection, which releases every lease it held.
func (l *leases) drop() {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_ = l.conn.Close(ctx)
	l.conn, l.held = nil, nil
}
