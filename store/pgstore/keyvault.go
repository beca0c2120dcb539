package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
)

// keysPage is how many keys Keys reads per query.
const keysPage = 512

// wrote tells the test hook what the vault writes (the hook keeps its own copy).
func (s *Store) wrote(b []byte) {
	if s.written != nil {
		s.written(b)
	}
}

// metaValue is how metadata is stored: NULL for none.
func metaValue(meta []byte) []byte {
	if len(meta) == 0 {
		return nil
	}
	return meta
}

// beginKey checks what every vault call checks first: the context, Close, the id, and for a
// write, that the store is writable.
func (s *Store) beginKey(ctx context.Context, id string, write bool) error {
	var err error
	if write {
		err = s.beginWrite(ctx)
	} else {
		err = s.begin(ctx)
	}
	if err != nil {
		return err
	}
	return store.CheckKeyID(id)
}

// PutKey implements store.KeyVault: the key's row and its record of wrapped bytes go in in one
// transaction.
func (s *Store) PutKey(ctx context.Context, k store.WrappedKey) error {
	if err := s.beginWrite(ctx); err != nil {
		return err
	}
	if err := store.CheckWrappedKey(k); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return s.inTx(ctx, "put key", func(tx pgx.Tx) error {
		id := []byte(k.ID)
		s.wrote(k.Meta)
		tag, err := tx.Exec(ctx, s.q.putKey, id, []byte(k.KEK), metaValue(k.Meta))
		if err != nil {
			return s.fail(ctx, "put key", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("pgstore: %w: key %q", store.ErrDuplicate, k.ID)
		}
		return s.setWrapping(ctx, tx, id, k.KEK, k.Wrapped)
	})
}

// setWrapping writes wrapped as a new record, makes it the key's and deletes every other record
// of the key.
func (s *Store) setWrapping(ctx context.Context, tx pgx.Tx, id []byte, kek string, wrapped []byte) error {
	s.wrote(wrapped)
	var rec int64
	if err := tx.QueryRow(ctx, s.q.putRecord, id, wrapped).Scan(&rec); err != nil {
		return s.fail(ctx, "write wrapped key", err)
	}
	if _, err := tx.Exec(ctx, s.q.setRecord, id, []byte(kek), rec); err != nil {
		return s.fail(ctx, "point the key at its wrapping", err)
	}
	if _, err := tx.Exec(ctx, s.q.dropRecords, id, rec); err != nil {
		return s.fail(ctx, "delete the superseded wrapping", err)
	}
	return nil
}

// lockKey locks the key's row for the transaction and reports whether the key is destroyed, or
// ErrNotFound.
func (s *Store) lockKey(ctx context.Context, tx pgx.Tx, id string) (destroyed bool, err error) {
	err = tx.QueryRow(ctx, s.q.lockKey, []byte(id)).Scan(&destroyed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("pgstore: %w: key %q", store.ErrNotFound, id)
	}
	if err != nil {
		return false, s.fail(ctx, "lock key", err)
	}
	return destroyed, nil
}

// lockLive is lockKey for a change to a live key: a destroyed key is ErrDestroyed.
func (s *Store) lockLive(ctx context.Context, tx pgx.Tx, id string) error {
	destroyed, err := s.lockKey(ctx, tx, id)
	if err == nil && destroyed {
		err = fmt.Errorf("pgstore: %w: key %q", store.ErrDestroyed, id)
	}
	return err
}

// Key implements store.KeyVault.
func (s *Store) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := s.beginKey(ctx, id, false); err != nil {
		return store.WrappedKey{}, err
	}
	k := store.WrappedKey{ID: id}
	var kek []byte
	err := retryErr(ctx, func() error {
		return s.pool.QueryRow(ctx, s.q.key, []byte(id)).Scan(&kek, &k.Meta, &k.Destroyed, &k.Wrapped)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.WrappedKey{}, fmt.Errorf("pgstore: %w: key %q", store.ErrNotFound, id)
	}
	if err != nil {
		return store.WrappedKey{}, s.fail(ctx, "read key", err)
	}
	k.KEK = string(kek)
	return finishKey(k)
}

// finishKey checks a key as read: a tombstone comes with ErrDestroyed, a live key has wrapped
// bytes.
func finishKey(k store.WrappedKey) (store.WrappedKey, error) {
	if k.Destroyed {
		k.Wrapped = nil
		return k, fmt.Errorf("pgstore: %w: key %q", store.ErrDestroyed, k.ID)
	}
	if len(k.Wrapped) == 0 {
		return store.WrappedKey{}, fmt.Errorf("pgstore: %w: live key %q has no wrapped bytes", store.ErrCorrupt, k.ID)
	}
	return k, nil
}

// SetMeta implements store.KeyVault: it updates the key's row, which holds no wrapped bytes.
func (s *Store) SetMeta(ctx context.Context, id string, meta []byte) error {
	if err := s.beginKey(ctx, id, true); err != nil {
		return err
	}
	if err := store.CheckMeta(id, meta); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return s.inTx(ctx, "set key metadata", func(tx pgx.Tx) error {
		if err := s.lockLive(ctx, tx, id); err != nil {
			return err
		}
		s.wrote(meta)
		if _, err := tx.Exec(ctx, s.q.setMeta, []byte(id), metaValue(meta)); err != nil {
			return s.fail(ctx, "set key metadata", err)
		}
		return nil
	})
}

// UpdateMeta implements store.MetaUpdater: the key's row is locked (SELECT … FOR UPDATE) while
// update runs, so every other process's change of it waits.
func (s *Store) UpdateMeta(ctx context.Context, id string, update func([]byte) ([]byte, error)) error {
	if err := s.beginKey(ctx, id, true); err != nil {
		return err
	}
	return s.inTx(ctx, "update key metadata", func(tx pgx.Tx) error {
		var old []byte
		var destroyed bool
		err := tx.QueryRow(ctx, s.q.lockMeta, []byte(id)).Scan(&old, &destroyed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("pgstore: %w: key %q", store.ErrNotFound, id)
		case err != nil:
			return s.fail(ctx, "lock key", err)
		case destroyed:
			return fmt.Errorf("pgstore: %w: key %q", store.ErrDestroyed, id)
		}
		meta, err := update(old)
		if err != nil || bytes.Equal(meta, old) {
			return err
		}
		if err := store.CheckMeta(id, meta); err != nil {
			return fmt.Errorf("pgstore: %w", err)
		}
		s.wrote(meta)
		if _, err := tx.Exec(ctx, s.q.setMeta, []byte(id), metaValue(meta)); err != nil {
			return s.fail(ctx, "set key metadata", err)
		}
		return nil
	})
}

var _ store.MetaUpdater = (*Store)(nil)

// Rewrap implements store.KeyVault: in one transaction, the new record goes in, the key points
// at it, and the previous record is deleted.
func (s *Store) Rewrap(ctx context.Context, id, kek string, wrapped []byte) error {
	if err := s.beginKey(ctx, id, true); err != nil {
		return err
	}
	if err := store.CheckWrapping(id, kek, wrapped); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	return s.inTx(ctx, "rewrap key", func(tx pgx.Tx) error {
		if err := s.lockLive(ctx, tx, id); err != nil {
			return err
		}
		return s.setWrapping(ctx, tx, []byte(id), kek, wrapped)
	})
}

// DestroyKey implements store.KeyVault: every record of the key is deleted and its row kept as
// the tombstone. See the package documentation for what PostgreSQL keeps of deleted rows.
func (s *Store) DestroyKey(ctx context.Context, id string) error {
	if err := s.beginKey(ctx, id, true); err != nil {
		return err
	}
	return s.inTx(ctx, "destroy key", func(tx pgx.Tx) error {
		if _, err := s.lockKey(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q.destroy, []byte(id)); err != nil {
			return s.fail(ctx, "destroy key", err)
		}
		if _, err := tx.Exec(ctx, s.q.dropRecords, []byte(id), nil); err != nil {
			return s.fail(ctx, "destroy key: delete its records", err)
		}
		return nil
	})
}

// Keys implements store.KeyVault. It reads 512 keys per query, in byte-wise id order (bytea
// order), and holds no connection while the caller runs.
func (s *Store) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return paged(ctx, s, []byte{}, keysPage,
		func(after []byte) ([]store.WrappedKey, error) { return s.keysAfter(ctx, after) },
		func(k store.WrappedKey) []byte { return []byte(k.ID) })
}

func (s *Store) keysAfter(ctx context.Context, after []byte) ([]store.WrappedKey, error) {
	rows, err := s.pool.Query(ctx, s.q.keys, after, keysPage)
	if err != nil {
		return nil, s.fail(ctx, "list keys", err)
	}
	defer rows.Close()
	var out []store.WrappedKey
	for rows.Next() {
		var id, kek []byte
		var k store.WrappedKey
		if err := rows.Scan(&id, &kek, &k.Meta, &k.Destroyed, &k.Wrapped); err != nil {
			return nil, s.fail(ctx, "list keys", err)
		}
		k.ID, k.KEK = string(id), string(kek)
		k, err := finishKey(k)
		if err != nil && !errors.Is(err, store.ErrDestroyed) {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "list keys", err)
	}
	return out, nil
}
