package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5/pgconn"
)

const rollbackTimeout = 5 * time.Second

// A migration takes the schema from version-1 to version. Migrations are applied in order, each
// in its own transaction, and never edited once released: a change is a new migration.
type migration struct {
	version     int
	description string
	statements  []string // {s} stands for the schema
}

var migrations = []migration{
	{
		version:     1,
		description: "log of entries with stored hashes, head row, checkpoints, blobs, key vault",
		statements: []string{
			`CREATE TABLE {s}.head (
				one  boolean PRIMARY KEY DEFAULT true CHECK (one),
				size bigint NOT NULL CHECK (size >= 0)
			)`,
			`INSERT INTO {s}.head (one, size) VALUES (true, 0)`,
			`CREATE TABLE {s}.entries (
				idx          bigint PRIMARY KEY CHECK (idx >= 0),
				identity     bytea,
				conversation bytea,
				leaf         bytea NOT NULL,
				payload      bytea NOT NULL,
				hashes       bytea NOT NULL
			)`,
			`CREATE UNIQUE INDEX entries_identity ON {s}.entries (identity) WHERE identity IS NOT NULL`,
			`CREATE INDEX entries_conversation ON {s}.entries (conversation, idx) WHERE conversation IS NOT NULL`,
			`CREATE TABLE {s}.checkpoints (
				size bigint PRIMARY KEY CHECK (size > 0),
				note bytea NOT NULL
			)`,
			`CREATE TABLE {s}.blobs (
				sum  bytea PRIMARY KEY,
				data bytea NOT NULL
			)`,
			`CREATE TABLE {s}.vault_records (
				id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				key_id  bytea NOT NULL,
				wrapped bytea NOT NULL
			)`,
			`CREATE INDEX vault_records_key ON {s}.vault_records (key_id)`,
			`CREATE TABLE {s}.vault_keys (
				id        bytea PRIMARY KEY,
				kek       bytea NOT NULL,
				record    bigint REFERENCES {s}.vault_records (id),
				meta      bytea,
				destroyed boolean NOT NULL DEFAULT false
			)`,
		},
	},
	{
		version:     2,
		description: "owner: the ledger that claimed the log (store.Owner)",
		statements: []string{
			`CREATE TABLE {s}.owner (
				one   boolean PRIMARY KEY DEFAULT true CHECK (one),
				owner text NOT NULL CHECK (owner <> '')
			)`,
		},
	},
}

// SchemaVersion is the version of the schema this code creates and knows.
var SchemaVersion = migrations[len(migrations)-1].version

// migrate brings the schema to SchemaVersion, one migration per transaction, each under an
// advisory lock on the schema's name so that processes opening the ledger at once apply each
// migration once.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, or reports that there is none.
func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.beginTx(ctx)
	if err != nil {
		return false, err
	}
	defer rollback(tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "commseal.pgstore:"+s.schema); err != nil {
		return false, fmt.Errorf("lock for migration: %w", err)
	}
	for _, sql := range []string{
		`CREATE SCHEMA IF NOT EXISTS {s}`,
		`CREATE TABLE IF NOT EXISTS {s}.schema_version (
			version     integer PRIMARY KEY,
			description text NOT NULL,
			applied_at  timestamptz NOT NULL DEFAULT now()
		)`,
	} {
		if _, err := tx.Exec(ctx, expand(sql, s.schema)); err != nil {
			return false, fmt.Errorf("create the schema: %w", err)
		}
	}
	var v int
	if err := tx.QueryRow(ctx, expand(`SELECT coalesce(max(version), 0) FROM {s}.schema_version`, s.schema)).Scan(&v); err != nil {
		return false, fmt.Errorf("read the schema version: %w", err)
	}
	switch {
	case v > SchemaVersion:
		return false, fmt.Errorf("%w: schema version %d, this code knows up to %d", ErrSchemaTooNew, v, SchemaVersion)
	case v == SchemaVersion:
		return true, tx.Commit(ctx)
	}
	m := migrations[v] // migrations[k] has version k+1
	for _, sql := range m.statements {
		if _, err := tx.Exec(ctx, expand(sql, s.schema)); err != nil {
			return false, fmt.Errorf("migration %d (%s): %w", m.version, m.description, err)
		}
	}
	if _, err := tx.Exec(ctx, expand(`INSERT INTO {s}.schema_version (version, description) VALUES ($1, $2)`, s.schema), m.version, m.description); err != nil {
		return false, fmt.Errorf("migration %d: record it: %w", m.version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migration %d: commit: %w", m.version, err)
	}
	return false, nil
}

// checkVersion, for a read-only store, checks that the schema exists at the version this code
// knows.
func (s *Store) checkVersion(ctx context.Context) error {
	var v int
	err := s.pool.QueryRow(ctx, expand(`SELECT coalesce(max(version), 0) FROM {s}.schema_version`, s.schema)).Scan(&v)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") { // undefined table or schema
		return fmt.Errorf("%w: no ledger in this schema (open it for writing once to create it)", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	switch {
	case v > SchemaVersion:
		return fmt.Errorf("%w: schema version %d, this code knows up to %d", ErrSchemaTooNew, v, SchemaVersion)
	case v < readerVersion:
		return fmt.Errorf("schema version %d is older than the %d this code reads; open the store for writing once to migrate it", v, readerVersion)
	}
	return nil
}

// readerVersion is the oldest schema version a read-only store reads: the migrations after it
// add only what a reader does not use (version 2, the owner table), so an auditor can read a
// replica that no writer of this version has opened yet.
const readerVersion = 1
