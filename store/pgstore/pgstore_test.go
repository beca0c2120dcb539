package pgstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store in its own schema of the database dsn, closed when t ends.
func open(t testing.TB, dsn, schema string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the storage conformance suite (Run's rules and the persistence rules)
// against a real PostgreSQL server: each store in a schema of its own, reopened by name.
func TestConformance(t *testing.T) {
	dsn := pgtest.Start(t)
	storetest.RunPersistent(t, func(t *testing.T, name string) store.Store {
		s, err := pgstore.Open(context.Background(), dsn, &pgstore.Options{Schema: name})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestKeyVaultConformance runs the key vault suite, with the vault's tables in view for the
// rules on wrapped bytes written once and scrubbed from every row.
func TestKeyVaultConformance(t *testing.T) {
	dsn := pgtest.Start(t)
	var n atomic.Int64
	storetest.RunKeyVault(t, func(t *testing.T) store.KeyVault {
		return pgstore.NewStorageView(open(t, dsn, fmt.Sprintf("vault%d", n.Add(1))))
	})
}

// A writer's pool must hold the head lock's connection and another to read with: a pool of one
// would wait for itself in AppendLocked. Refused before anything connects.
func TestOpenRefusesAWritersPoolOfOne(t *testing.T) {
	_, err := pgstore.Open(context.Background(), "postgres://u@127.0.0.1:1/db?connect_timeout=1", &pgstore.Options{MaxConns: 1})
	require.ErrorIs(t, err, store.ErrInvalid)
	require.ErrorContains(t, err, "at least 2 connections")
}
