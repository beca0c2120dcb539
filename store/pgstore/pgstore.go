package pgstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune Open. The zero value (or nil) is a writable store in schema "commseal".
type Options struct {
	// Schema is the PostgreSQL schema that holds the ledger's tables (default "commseal"). It is
	// created if missing. Ledgers in different schemas of one database are independent.
	Schema string
	// ReadOnly opens the store for reading only: it runs no migration (the schema must exist at
	// the version this code knows), its sessions are read-only, and every write fails with
	// store.ErrReadOnly. A read-only store can verify a ledger while its writer runs.
	ReadOnly bool
	// MaxConns bounds the connection pool (default: pgxpool's default, or pool_max_conns in the
	// DSN); a writer needs at least 2 (ErrInvalid otherwise).
	MaxConns int32
	// Logger receives warnings (a server running with fsync off); nil discards them.
	Logger *slog.Logger
}

// MaxValueSize is the largest entry (leaf and payload together) or blob the store takes, in
// bytes; PostgreSQL's own limit for one bytea value is 1 GB.
const MaxValueSize = 512 << 20

// copyAbove is the size of a batch (leaves and payloads, in bytes) above which it is streamed
// with COPY rather than sent as one statement, whose parameters PostgreSQL holds in memory whole.
const copyAbove = 32 << 20

// Errors callers branch on with errors.Is. The store also returns the errors of package store.
var (
	// ErrSchemaTooNew is returned by Open for a schema migrated by a newer version of this
	// package: this code does not know its tables, so it touches nothing.
	ErrSchemaTooNew = errors.New("pgstore: the ledger's schema is newer than this code")
	// ErrCommitUnknown is returned when the connection broke during COMMIT and the store could
	// not find out whether the batch committed.
	ErrCommitUnknown = errors.New("pgstore: commit outcome unknown")
)

// Store is a store.Store on PostgreSQL. It is safe for concurrent use. Open it with Open; Close
// releases its connections.
type Store struct {
	pool     *pgxpool.Pool
	schema   string
	q        queries
	readOnly bool
	log      *slog.Logger

	closed   atomic.Bool
	submitMu sync.Mutex    // orders submissions into queue, and Close after them
	queue    chan *pending // closed by Close
	seq      atomic.Uint64 // sequence number of the last batch submitted
	workerWG sync.WaitGroup

	copyAbove int // batches of more bytes than this are written with COPY in a transaction
	readBytes int // Entries reads at most this many bytes per query (readBytes)

	leases leases // HoldLease's connection and the leases it holds

	written func(b []byte) // test hook: every wrapped key and metadata value the vault writes; it copies what it keeps
}

var (
	_ store.Store             = (*Store)(nil)
	_ store.IdentityIndex     = (*Store)(nil)
	_ store.IdentityBatch     = (*Store)(nil)
	_ store.ConversationIndex = (*Store)(nil)
	_ store.Blobs             = (*Store)(nil)
	_ store.Pipeline          = (*Store)(nil)
	_ store.ReadOnlyReporter  = (*Store)(nil)
	_ store.KeyVault          = (*Store)(nil)
)

// Open connects to the PostgreSQL database named by dsn (a URL such as
// "postgres://user:pass@host:5432/db" or key=value pairs, as libpq and pgx take them), migrates
// the ledger's schema to the version this code knows (unless opts.ReadOnly), and checks that the
// head row agrees with the entries. A DSN that does not parse is store.ErrInvalid; a server that
// cannot be reached fails with an error that names the host and database (never the password).
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Schema == "" {
		o.Schema = "commseal"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w: DSN: %v", store.ErrInvalid, err)
	}
	// Durable means committed: never let a server or role default weaken it.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if o.ReadOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "commseal"
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if cfg.MaxConns < 2 && !o.ReadOnly {
		// AppendLocked holds one connection while its build reads through another.
		return nil, fmt.Errorf("pgstore: %w: a writer needs a pool of at least 2 connections, not %d", store.ErrInvalid, cfg.MaxConns)
	}
	where := fmt.Sprintf("database %q on %s:%d as %q", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: connect to %s: %w", where, err)
	}
	s := &Store{
		pool:     pool,
		schema:   o.Schema,
		q:        newQueries(o.Schema),
		readOnly: o.ReadOnly,
		log:      o.Logger,
		queue:    make(chan *pending, 256),

		copyAbove: copyAbove,
		readBytes: readBytes,
	}
	if err := s.open(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %s, schema %q: %w", where, o.Schema, err)
	}
	s.workerWG.Add(1)
	go s.worker()
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	if s.readOnly {
		if err := s.checkVersion(ctx); err != nil {
			return err
		}
	} else if err := s.migrate(ctx); err != nil {
		return err
	}
	var size, rows int64
	err := s.pool.QueryRow(ctx, s.q.consistency).Scan(&size, &rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: the head row is missing", store.ErrCorrupt)
	}
	if err != nil {
		return err
	}
	if size != rows {
		return fmt.Errorf("%w: the head row says %d entries, the entries table ends at %d", store.ErrCorrupt, size, rows)
	}
	for _, setting := range []string{"fsync", "synchronous_commit"} {
		var v string
		if err := s.pool.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&v); err != nil {
			return err
		}
		if v != "on" {
			s.log.Warn("pgstore: the server runs with "+setting+" off: a commit may not survive a crash of the machine", "setting", setting, "value", v)
		}
	}
	return nil
}

// ReadOnly implements store.ReadOnlyReporter.
func (s *Store) ReadOnly() bool { return s.readOnly }

// Schema returns the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Close waits for the batches submitted before it, releases every connection and makes every
// later call fail with store.ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	s.submitMu.Lock()
	if s.closed.Swap(true) {
		s.submitMu.Unlock()
		return nil
	}
	close(s.queue)
	s.submitMu.Unlock()
	s.workerWG.Wait()
	s.leases.mu.Lock()
	s.leases.drop()
	s.leases.mu.Unlock()
	s.pool.Close()
	return nil
}

func (s *Store) isClosed() bool { return s.closed.Load() }

// begin checks what every call checks first: the context, then Close.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return store.ErrClosed
	}
	return nil
}

// beginWrite is begin for calls that write.
func (s *Store) beginWrite(ctx context.Context) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if s.readOnly {
		return store.ErrReadOnly
	}
	return nil
}

// fail turns an error from the driver into the store's: ErrClosed when the store was closed
// while the call ran, the context's error when it ended, else the error wrapped with what the
// call was doing.
func (s *Store) fail(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if s.isClosed() {
		return fmt.Errorf("pgstore: %s: %w", what, store.ErrClosed)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("pgstore: %s: %w (%v)", what, cerr, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "25006" { // read_only_sql_transaction
		return fmt.Errorf("pgstore: %s: %w: %v", what, store.ErrReadOnly, err)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// beginTx begins a transaction. A connection that broke while idle in the pool (the server
// restarted, say) fails before anything reaches the server; the transaction then begins on
// another connection, up to three times.
func (s *Store) beginTx(ctx context.Context) (pgx.Tx, error) {
	for try := 0; ; try++ {
		tx, err := s.pool.Begin(ctx)
		if err == nil || try == 2 || !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			return tx, err
		}
	}
}

// inTx runs f in a transaction and commits it if f returns nil.
func (s *Store) inTx(ctx context.Context, what string, f func(tx pgx.Tx) error) error {
	tx, err := s.beginTx(ctx)
	if err != nil {
		return s.fail(ctx, what+": begin", err)
	}
	defer rollback(tx)
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail(ctx, what+": commit", err)
	}
	return nil
}

// retry runs f, the whole of a read or an idempotent write, again when it failed before
// anything reached the server (a connection that broke while idle in the pool), up to three
// times in all.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for try := 0; ; try++ {
		v, err := f()
		if err == nil || try == 2 || !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			return v, err
		}
	}
}

// paged yields the rows of a query read a page at a time after a cursor, starting after first:
// read returns the page after a cursor (at most n rows, retried as a whole), next gives the
// cursor a page's last row leaves. It checks the context and Close before each page and the
// context before each row, and holds no connection while the caller runs.
func paged[T, C any](ctx context.Context, s *Store, first C, n int, read func(C) ([]T, error), next func(T) C) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		after := first
		for {
			if err := s.begin(ctx); err != nil {
				yield(zero, err)
				return
			}
			page, err := retry(ctx, func() ([]T, error) { return read(after) })
			if err != nil {
				yield(zero, err)
				return
			}
			for _, v := range page {
				if err := ctx.Err(); err != nil {
					yield(zero, err)
					return
				}
				if !yield(v, nil) {
					return
				}
			}
			if len(page) < n {
				return
			}
			after = next(page[len(page)-1])
		}
	}
}

// retryErr is retry for f that returns only an error.
func retryErr(ctx context.Context, f func() error) error {
	_, err := retry(ctx, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// rollback ends a transaction that did not commit; its error is of no use to the caller.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// queries are the store's SQL statements with the schema's tables named.
type queries struct {
	consistency, size, lockHead, headForUpdate, leavesFrom, setHead, appendBatch, readBack, entries, hashes, lookup, lookupAll, lastConv string
	lockCheckpoints, latestCheckpoint, checkpointsFrom, putCheckpoint                                                                    string
	writeBlob, readBlob                                                                                                                  string
	putKey, putRecord, setRecord, key, lockKey, lockMeta, setMeta, dropRecords, destroy, keys                                            string
	entriesTable                                                                                                                         pgx.Identifier
}

func newQueries(schema string) queries {
	t := func(sql string) string { return expand(sql, schema) }
	return queries{
		consistency: t(`SELECT h.size, (SELECT coalesce(max(idx) + 1, 0) FROM {s}.entries) FROM {s}.head h`),
		size:        t(`SELECT size FROM {s}.head`),
		// The row lock this UPDATE takes, held to COMMIT, serializes every batch transaction.
		lockHead:      t(`UPDATE {s}.head SET size = size + $1 RETURNING size - $1`),
		headForUpdate: t(`SELECT size FROM {s}.head FOR UPDATE`),
		leavesFrom:    t(`SELECT idx, identity, conversation, leaf, NULL::bytea FROM {s}.entries WHERE idx >= $1 ORDER BY idx LIMIT $2`),
		setHead:       t(`UPDATE {s}.head SET size = $1`),
		appendBatch: t(`WITH h AS (UPDATE {s}.head SET size = size + $1 WHERE size = $2 RETURNING size)
			INSERT INTO {s}.entries (idx, identity, conversation, leaf, payload, hashes)
			SELECT * FROM unnest($3::bigint[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[], $8::bytea[])
			WHERE EXISTS (SELECT 1 FROM h)`),
		readBack: t(`SELECT leaf, payload FROM {s}.entries WHERE idx = $1`),
		// The entries [$1, $2), cut before the first one after $1 that takes the bytes read
		// beyond $3 (lengths come from the values' headers: nothing is read twice).
		entries: t(`SELECT idx, identity, conversation, leaf, payload FROM {s}.entries
			WHERE idx >= $1 AND idx < coalesce((
				SELECT min(idx) FROM (
					SELECT idx, sum(octet_length(leaf) + octet_length(payload)) OVER (ORDER BY idx) AS upto
					FROM {s}.entries WHERE idx >= $1 AND idx < $2) w
				WHERE upto > $3 AND idx > $1), $2)
			ORDER BY idx`),
		hashes:           t(`SELECT idx, hashes FROM {s}.entries WHERE idx = ANY($1)`),
		lookup:           t(`SELECT idx FROM {s}.entries WHERE identity = $1`),
		lookupAll:        t(`SELECT identity, idx FROM {s}.entries WHERE identity = ANY($1::bytea[])`),
		lastConv:         t(`SELECT max(idx) FROM {s}.entries WHERE conversation = $1`),
		lockCheckpoints:  t(`LOCK TABLE {s}.checkpoints IN EXCLUSIVE MODE`),
		latestCheckpoint: t(`SELECT size, note FROM {s}.checkpoints ORDER BY size DESC LIMIT 1`),
		checkpointsFrom:  t(`SELECT size, note FROM {s}.checkpoints WHERE size > $1 ORDER BY size LIMIT $2`),
		putCheckpoint:    t(`INSERT INTO {s}.checkpoints (size, note) VALUES ($1, $2)`),
		writeBlob:        t(`INSERT INTO {s}.blobs (sum, data) VALUES ($1, $2) ON CONFLICT (sum) DO NOTHING`),
		readBlob:         t(`SELECT data FROM {s}.blobs WHERE sum = $1`),
		putKey:           t(`INSERT INTO {s}.vault_keys (id, kek, meta) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`),
		putRecord:        t(`INSERT INTO {s}.vault_records (key_id, wrapped) VALUES ($1, $2) RETURNING id`),
		setRecord:        t(`UPDATE {s}.vault_keys SET kek = $2, record = $3 WHERE id = $1`),
		key:              t(`SELECT k.kek, k.meta, k.destroyed, r.wrapped FROM {s}.vault_keys k LEFT JOIN {s}.vault_records r ON r.id = k.record WHERE k.id = $1`),
		lockKey:          t(`SELECT destroyed FROM {s}.vault_keys WHERE id = $1 FOR UPDATE`),
		lockMeta:         t(`SELECT meta, destroyed FROM {s}.vault_keys WHERE id = $1 FOR UPDATE`),
		setMeta:          t(`UPDATE {s}.vault_keys SET meta = $2 WHERE id = $1`),
		dropRecords:      t(`DELETE FROM {s}.vault_records WHERE key_id = $1 AND id IS DISTINCT FROM $2`),
		destroy:          t(`UPDATE {s}.vault_keys SET record = NULL, destroyed = true WHERE id = $1`),
		keys:             t(`SELECT k.id, k.kek, k.meta, k.destroyed, r.wrapped FROM {s}.vault_keys k LEFT JOIN {s}.vault_records r ON r.id = k.record WHERE k.id > $1 ORDER BY k.id LIMIT $2`),
		entriesTable:     pgx.Identifier{schema, "entries"},
	}
}

// expand names the schema in sql, where {s} stands for it.
func expand(sql, schema string) string {
	return strings.ReplaceAll(sql, "{s}", pgx.Identifier{schema}.Sanitize())
}
