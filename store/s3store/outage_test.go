package s3store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/s3store"
	"github.com/commseal/commseal/store/s3store/s3test"
)

// TestEndpointDown: with versitygw stopped, every call fails with ErrUnavailable (retryable,
// and never mistaken for ErrNotFound); an encrypted ledger's PutBlob fails the same way and
// stores no key for the blob. Once the server is back, the blobs written before are all
// there, and the writes that failed succeed when made again, each stored once.
func TestEndpointDown(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	b := open(t, srv, s3store.Options{})
	before := []byte("written before the outage")
	sumBefore := sha256.Sum256(before)
	if err := b.WriteBlob(ctx, sumBefore, before); err != nil {
		t.Fatal(err)
	}
	vault := &memstore.KeyVault{}
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: signingKey(t), CheckpointInterval: time.Hour, Blobs: b,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: vault}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	srv.Stop()
	during := []byte("written during the outage")
	sumDuring := sha256.Sum256(during)
	start := time.Now()
	err = b.WriteBlob(ctx, sumDuring, during)
	if !errors.Is(err, s3store.ErrUnavailable) {
		t.Fatalf("WriteBlob with the endpoint down: err = %v; want ErrUnavailable", err)
	}
	t.Logf("WriteBlob with the endpoint down failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := b.ReadBlob(ctx, sumBefore); !errors.Is(err, s3store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReadBlob with the endpoint down: err = %v; want ErrUnavailable, not ErrNotFound", err)
	}
	if _, err := b.Lock(ctx, sumBefore); !errors.Is(err, s3store.ErrUnavailable) {
		t.Fatalf("Lock with the endpoint down: err = %v; want ErrUnavailable", err)
	}
	if err := b.SetLegalHold(ctx, sumBefore, true); !errors.Is(err, s3store.ErrUnavailable) {
		t.Fatalf("SetLegalHold with the endpoint down: err = %v; want ErrUnavailable", err)
	}
	attachment := []byte("attachment captured during the outage")
	if _, err := l.PutBlob(ctx, attachment); !errors.Is(err, s3store.ErrUnavailable) {
		t.Fatalf("ledger PutBlob with the endpoint down: err = %v; want ErrUnavailable", err)
	}
	n := 0
	for _, err := range vault.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("the vault holds %d keys after a failed PutBlob; want none (the retry makes one)", n)
	}

	srv.Start()
	if got, err := b.ReadBlob(ctx, sumBefore); err != nil || string(got) != string(before) {
		t.Fatalf("ReadBlob after the outage = %q, %v", got, err)
	}
	if _, err := b.ReadBlob(ctx, sumDuring); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReadBlob of the blob whose write failed: err = %v; want ErrNotFound (nothing half-written)", err)
	}
	if err := b.WriteBlob(ctx, sumDuring, during); err != nil {
		t.Fatalf("WriteBlob again after the outage: %v", err)
	}
	if got, err := b.ReadBlob(ctx, sumDuring); err != nil || string(got) != string(during) {
		t.Fatalf("ReadBlob of the retried write = %q, %v", got, err)
	}
	if n := versions(t, srv.Client(), srv.Bucket, b.Key(sumDuring)); n != 1 {
		t.Fatalf("the retried blob has %d versions; want 1", n)
	}
	sum, err := l.PutBlob(ctx, attachment)
	if err != nil {
		t.Fatalf("ledger PutBlob again after the outage: %v", err)
	}
	if got, err := l.Access("officer", "check").Blob(ctx, sum); err != nil || string(got) != string(attachment) {
		t.Fatalf("reading the attachment after the outage = %q, %v", got, err)
	}
}
