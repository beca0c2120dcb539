package pgstore

import (
	"context"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/storetest"
)

// StorageView is a Store whose vault storage storetest.RunKeyVault can see
// (storetest.VaultStorage): every value the vault writes, and every value its tables hold.
type StorageView struct {
	*Store
	storetest.Writes
}

// NewStorageView hooks the vault writes of s.
func NewStorageView(s *Store) *StorageView {
	v := &StorageView{Store: s}
	s.written = v.Record
	return v
}

// Kept implements storetest.VaultStorage: every column of every row of the vault's tables.
func (v *StorageView) Kept() ([][]byte, error) {
	ctx := context.Background()
	var out [][]byte
	for _, sql := range []string{
		`SELECT id, kek, coalesce(meta, ''::bytea) FROM {s}.vault_keys`,
		`SELECT key_id, wrapped, ''::bytea FROM {s}.vault_records`,
	} {
		rows, err := v.pool.Query(ctx, expand(sql, v.schema))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var a, b, c []byte
			if err := rows.Scan(&a, &b, &c); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, a, b, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Exec runs sql (with {s} for the schema) on the store's database, for tests that change rows
// behind the store's back.
func (s *Store) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, expand(sql, s.schema), args...)
	return tag.RowsAffected(), err
}

// SetCopyAbove sets the batch size above which s writes batches with COPY in a transaction.
func (s *Store) SetCopyAbove(n int) { s.copyAbove = n }

// ReadEntries is readEntries: one query's worth of entries from from on, up to to.
func (s *Store) ReadEntries(ctx context.Context, from, to uint64) ([]store.Entry, error) {
	return s.readEntries(ctx, from, to)
}

// SetReadBytes sets how many bytes of entries s reads per query.
func (s *Store) SetReadBytes(n int) { s.readBytes = n }
