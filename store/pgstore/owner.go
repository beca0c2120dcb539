package pgstore

import (
	"context"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
)

var _ store.Owner = (*Store)(nil)

// Claim implements store.Owner with the one row of the owner table: a transaction inserts
// owner unless a row is there (waiting for a claim in flight in another transaction to commit
// or roll back), then reads the row, which a statement of its own sees whichever claim won.
func (s *Store) Claim(ctx context.Context, owner string) (string, error) {
	if err := store.CheckOwner(owner); err != nil {
		return "", err
	}
	if err := s.beginWrite(ctx); err != nil {
		return "", err
	}
	var got string
	err := s.inTx(ctx, "claim", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, expand(`INSERT INTO {s}.owner (owner) VALUES ($1) ON CONFLICT (one) DO NOTHING`, s.schema), owner); err != nil {
			return s.fail(ctx, "claim", err)
		}
		return s.fail(ctx, "claim: read the owner", tx.QueryRow(ctx, expand(`SELECT owner FROM {s}.owner`, s.schema)).Scan(&got))
	})
	if err != nil {
		return "", err
	}
	return got, nil
}
