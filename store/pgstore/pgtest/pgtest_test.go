package pgtest_test

import (
	"context"
	"testing"

	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func exec(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Start gives each test its own database on one cluster: a table made in one is not in the
// other.
func TestStartGivesFreshDatabases(t *testing.T) {
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a == b {
		t.Fatalf("two calls of Start gave the same DSN %q", a)
	}
	exec(t, a, "CREATE TABLE only_in_a (x int)")
	exec(t, a, "SELECT * FROM only_in_a")
	exec(t, b, "CREATE TABLE only_in_a (x int)") // fails if b were a
	exec(t, a, "DO $$ BEGIN IF current_setting('fsync') <> 'on' THEN RAISE 'fsync is off'; END IF; END $$")
}

// NewServer, Crash, Start and Stop are exercised by store/pgstore's
// TestCrashLosesNothingAcknowledged, which needs a server of its own to crash.
