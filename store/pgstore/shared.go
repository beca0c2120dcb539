package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ store.SharedLog = (*Store)(nil)
	_ store.Leases    = (*Store)(nil)
)

// AppendLocked implements store.SharedLog. Its transaction locks the head row (SELECT … FOR
// UPDATE) before build runs, so every other writer's batch, from this process or another,
// waits for its COMMIT; build reads the log through the pool, on other connections, which see
// every entry committed before the lock was taken. The lock costs one round trip (BEGIN, the
// SELECT, and the read of the entries from on, up to 4,096 of them, sent together), the batch
// one more (its INSERT and the COMMIT sent together; COPY above 32 MiB). A connection lost after build ran is resolved as Append resolves it, by reading the
// batch back.
func (s *Store) AppendLocked(ctx context.Context, from uint64, build func(size uint64, appended []store.Entry) (*store.Batch, error)) error {
	if err := s.beginWrite(ctx); err != nil {
		return err
	}
	c, size, appended, err := s.lockHead(ctx, from)
	if err != nil {
		return err
	}
	defer c.Release()
	open := true
	defer func() {
		if open {
			rollbackConn(c)
		}
	}()
	b, err := build(uint64(size), appended)
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
	if batchBytes(b) > s.copyAbove {
		if _, err := c.Exec(wctx, s.q.setHead, int64(size)+int64(len(b.Entries))); err != nil {
			return s.fail(ctx, "append: move the head row", err)
		}
		if err := s.copyEntries(wctx, c, b); err != nil {
			return err
		}
		open = false
		tag, err := c.Exec(wctx, "COMMIT")
		if err == nil && tag.String() != "COMMIT" { // an aborted transaction answers ROLLBACK
			err = fmt.Errorf("pgstore: append: the transaction was rolled back (%s)", tag)
		}
		if err != nil {
			return s.resolve(b, err)
		}
		return nil
	}
	var q pgx.Batch
	q.Queue(s.q.appendBatch, batchArgs(b)...)
	q.Queue("COMMIT")
	br := c.SendBatch(wctx, &q)
	tag, ierr := br.Exec()
	_, cerr := br.Exec()
	if err := br.Close(); cerr == nil {
		cerr = err
	}
	switch {
	case ierr != nil:
		return s.appendFailed(b, ierr)
	case cerr != nil:
		open = false
		return s.resolve(b, cerr)
	case tag.RowsAffected() != int64(len(b.Entries)):
		return fmt.Errorf("pgstore: %w: the head row moved while it was locked", store.ErrCorrupt)
	}
	open = false
	return nil
}

// lockHead begins a transaction on a connection of the pool and locks the head row in it, then
// reads the entries from on (their leaves), in one round trip; it returns the connection, the
// log's size and those entries (nil if there are more than lockedRead). A connection that broke
// while idle in the pool fails before anything reaches the server; the lock is then tried on
// another, up to three times.
func (s *Store) lockHead(ctx context.Context, from uint64) (*pgxpool.Conn, int64, []store.Entry, error) {
	for try := 0; ; try++ {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return nil, 0, nil, s.fail(ctx, "append: connect", err)
		}
		var q pgx.Batch
		q.Queue("BEGIN")
		// A writer that stops (a paused process, a cut network) while it holds the lock must
		// not stop the others for long: the server ends its session after a minute idle in
		// the transaction, and a wait for the lock gives up after a minute too.
		q.Queue(fmt.Sprintf("SET LOCAL idle_in_transaction_session_timeout = %d", lockIdleTimeout.Milliseconds()))
		q.Queue(fmt.Sprintf("SET LOCAL lock_timeout = %d", lockIdleTimeout.Milliseconds()))
		q.Queue(s.q.headForUpdate)
		q.Queue(s.q.leavesFrom, int64(min(from, 1<<62)), lockedRead+1)
		br := c.SendBatch(ctx, &q)
		var size int64
		var appended []store.Entry
		for range 3 { // BEGIN, SET, SET
			if err == nil {
				_, err = br.Exec()
			}
		}
		if err == nil {
			err = br.QueryRow().Scan(&size)
		}
		if err == nil {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				appended, err = scanEntries(rows, from, nil) // the leaves, without payloads
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			if len(appended) > lockedRead || from > uint64(size) {
				appended = nil
			} else if uint64(len(appended)) != uint64(size)-from {
				err = fmt.Errorf("pgstore: %w: the log holds %d entries but %d from %d", store.ErrCorrupt, size, len(appended), from)
			}
		}
		if err == nil {
			return c, size, appended, nil
		}
		rollbackConn(c)
		c.Release()
		if try < 2 && pgconn.SafeToRetry(err) && ctx.Err() == nil {
			continue
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, nil, fmt.Errorf("pgstore: %w: the head row is missing", store.ErrCorrupt)
		}
		if errors.Is(err, store.ErrCorrupt) {
			return nil, 0, nil, err
		}
		return nil, 0, nil, s.fail(ctx, "append: lock the head row", err)
	}
}

// lockedRead is how many entries AppendLocked reads with the lock, at most.
const lockedRead = 4096

// leaseCallTimeout bounds each call on the lease session: one that takes longer finds the
// session lost, and with it the leases.
const leaseCallTimeout = 10 * time.Second

// lockIdleTimeout is how long a session may sit idle holding the head row's lock, and how long a
// writer waits for it, before the server gives up on it.
const lockIdleTimeout = time.Minute

// rollbackConn ends the transaction open on c, if any; its error is of no use to the caller (a
// connection left in a transaction is closed by the pool when released).
func rollbackConn(c *pgxpool.Conn) {
	if c.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_, _ = c.Exec(ctx, "ROLLBACK")
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
	if s.isClosed() { // Close dropped the leases after beginWrite: take none on a new session
		return false, fmt.Errorf("pgstore: lease %s: %w", name, store.ErrClosed)
	}
	// The calls on the lease session run to their own deadline, not the caller's: a call the
	// caller gives up on would close the session, and with it every lease it holds, the
	// other names' too.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseCallTimeout)
	defer cancel()
	if l.conn != nil && l.held[name] {
		if _, err := l.conn.Exec(lctx, ";"); err == nil {
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
	if err := l.conn.QueryRow(lctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, int32(leaseClass), s.schema+"/"+name).Scan(&ok); err != nil {
		l.drop()
		return false, s.fail(ctx, "lease "+name, err)
	}
	l.held[name] = ok
	return ok, nil
}

// drop releases every lease held and closes their connection. The unlock comes first: a server
// notices a closed connection only some time after, and holds its locks till then.
func (l *leases) drop() {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	_ = l.conn.Close(ctx)
	l.conn, l.held = nil, nil
}
