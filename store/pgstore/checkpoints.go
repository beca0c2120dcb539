package pgstore

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
)

// PutCheckpoint implements store.Checkpoints. The checkpoints table is locked (EXCLUSIVE: reads
// go on) for the transaction, so that checkpoints put at once from several processes are
// checked one after the other against each other.
func (s *Store) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	if err := s.beginWrite(ctx); err != nil {
		return err
	}
	return s.inTx(ctx, "put checkpoint", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.lockCheckpoints); err != nil {
			return s.fail(ctx, "put checkpoint: lock", err)
		}
		var size int64
		if err := tx.QueryRow(ctx, s.q.size).Scan(&size); err != nil {
			return s.fail(ctx, "put checkpoint: size", err)
		}
		latest, err := latestCheckpoint(ctx, tx, s.q)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return s.fail(ctx, "put checkpoint: latest", err)
		}
		if err := store.CheckCheckpoint(c, uint64(size), latest.Size); err != nil {
			return fmt.Errorf("pgstore: %w", err)
		}
		if _, err := tx.Exec(ctx, s.q.putCheckpoint, int64(c.Size), c.Note); err != nil {
			return s.fail(ctx, "put checkpoint", err)
		}
		return nil
	})
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func latestCheckpoint(ctx context.Context, q querier, qs queries) (store.Checkpoint, error) {
	var size int64
	var note []byte
	err := q.QueryRow(ctx, qs.latestCheckpoint).Scan(&size, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Checkpoint{}, fmt.Errorf("pgstore: %w: no checkpoint", store.ErrNotFound)
	}
	if err != nil {
		return store.Checkpoint{}, err
	}
	return store.Checkpoint{Size: uint64(size), Note: note}, nil
}

// LatestCheckpoint implements store.Checkpoints.
func (s *Store) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return store.Checkpoint{}, err
	}
	c, err := retry(ctx, func() (store.Checkpoint, error) { return latestCheckpoint(ctx, s.pool, s.q) })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return c, s.fail(ctx, "latest checkpoint", err)
	}
	return c, err
}

// AllCheckpoints implements store.Checkpoints. It reads 256 checkpoints per query.
func (s *Store) AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error] {
	return paged(ctx, s, 0, readChunk,
		func(after int64) ([]store.Checkpoint, error) { return s.checkpointsFrom(ctx, after) },
		func(c store.Checkpoint) int64 { return int64(c.Size) })
}

func (s *Store) checkpointsFrom(ctx context.Context, after int64) ([]store.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, s.q.checkpointsFrom, after, readChunk)
	if err != nil {
		return nil, s.fail(ctx, "read checkpoints", err)
	}
	defer rows.Close()
	var out []store.Checkpoint
	for rows.Next() {
		var size int64
		var note []byte
		if err := rows.Scan(&size, &note); err != nil {
			return nil, s.fail(ctx, "read checkpoints", err)
		}
		out = append(out, store.Checkpoint{Size: uint64(size), Note: note})
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "read checkpoints", err)
	}
	return out, nil
}
