package pgstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
)

// WriteBlob implements store.Blobs: content goes in once, under its SHA-256; writing it again
// changes nothing.
func (s *Store) WriteBlob(ctx context.Context, sum store.Hash, data []byte) error {
	if err := s.beginWrite(ctx); err != nil {
		return err
	}
	if sha256.Sum256(data) != sum {
		return fmt.Errorf("pgstore: %w: blob %x", store.ErrHashMismatch, sum[:8])
	}
	if len(data) > MaxValueSize {
		return fmt.Errorf("pgstore: %w: a blob of %d bytes, more than the %d pgstore takes", store.ErrInvalid, len(data), MaxValueSize)
	}
	if err := retryErr(ctx, func() error { _, err := s.pool.Exec(ctx, s.q.writeBlob, sum[:], nonNil(data)); return err }); err != nil {
		return s.fail(ctx, "write blob", err)
	}
	return nil
}

// ReadBlob implements store.Blobs. Content that does not match its address is store.ErrCorrupt.
func (s *Store) ReadBlob(ctx context.Context, sum store.Hash) ([]byte, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var data []byte
	err := retryErr(ctx, func() error { return s.pool.QueryRow(ctx, s.q.readBlob, sum[:]).Scan(&data) })
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: %w: blob %x", store.ErrNotFound, sum[:8])
	}
	if err != nil {
		return nil, s.fail(ctx, "read blob", err)
	}
	if sha256.Sum256(data) != sum {
		return nil, fmt.Errorf("pgstore: %w: blob %x does not match its hash", store.ErrCorrupt, sum[:8])
	}
	return nonNil(data), nil
}
