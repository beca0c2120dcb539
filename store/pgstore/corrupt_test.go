package pgstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/storetest"
)

func sha256Sum(b []byte) store.Hash { return sha256.Sum256(b) }

// TestCorruptRows: rows changed behind the store's back in ways no append makes are reported
// as store.ErrCorrupt by the read that meets them, and a head row that disagrees with the
// entries stops Open.
func TestCorruptRows(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	s := open(t, dsn, "damaged")
	if err := s.Append(ctx, storetest.BatchAt(0, 8)); err != nil {
		t.Fatal(err)
	}
	blob := []byte("attachment content")
	if err := s.WriteBlob(ctx, sha256Sum(blob), blob); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := s.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	corrupt := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("%s: err = %v; want store.ErrCorrupt", what, err)
		}
		t.Logf("%s: %v", what, err)
	}

	exec(`UPDATE {s}.entries SET hashes = substring(hashes from 2) WHERE idx = 3`)
	_, err := s.ReadHashes(ctx, []int64{store.StoredHashCount(3)})
	corrupt("ReadHashes of an entry row whose stored hashes lost a byte", err)

	exec(`UPDATE {s}.entries SET identity = '\x0102'::bytea WHERE idx = 5`)
	_, err = store.ReadEntry(ctx, s, 5)
	corrupt("ReadEntry of a row with a 2-byte identity", err)

	exec(`UPDATE {s}.blobs SET data = 'other content'::bytea`)
	_, err = s.ReadBlob(ctx, sha256Sum(blob))
	corrupt("ReadBlob of content that no longer matches its address", err)

	exec(`DELETE FROM {s}.entries WHERE idx = 7`)
	_, err = pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "damaged"})
	corrupt("Open with the last entry row deleted", err)
	exec(`DELETE FROM {s}.head`)
	_, err = pgstore.Open(ctx, dsn, &pgstore.Options{Schema: "damaged"})
	corrupt("Open without a head row", err)
}
