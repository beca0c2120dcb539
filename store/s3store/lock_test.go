package s3store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/s3store"
	"github.com/commseal/commseal/store/s3store/s3test"
)

// versionOf returns the id of the only version of key.
func versionOf(t testing.TB, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	var ids []string
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	if len(ids) != 1 || ids[0] == "" {
		t.Fatalf("versions of %s: %q; want one", key, ids)
	}
	return ids[0]
}

// deleteVersion tries to delete one version of key for good, bypass header and all.
func deleteVersion(c *s3.Client, bucket, key, version string) error {
	_, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		VersionId: aws.String(version), BypassGovernanceRetention: aws.Bool(true)})
	return err
}

// TestLockedBlobCannotBeDeletedOrShortened: a blob is written locked in COMPLIANCE mode until
// now plus the retention; its version cannot be deleted (even with the governance bypass),
// its date cannot be brought forward or its mode weakened (through Retain: ErrLocked; through a
// plain client: refused), only extended; and the blob reads back unchanged after every refusal.
func TestLockedBlobCannotBeDeletedOrShortened(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	b := open(t, srv, s3store.Options{Retention: 3 * time.Hour, Now: func() time.Time { return now }})
	c := srv.Client()
	data := []byte("locked attachment ciphertext")
	sum := sha256.Sum256(data)
	if err := b.WriteBlob(ctx, sum, data); err != nil {
		t.Fatal(err)
	}
	l, err := b.Lock(ctx, sum)
	if err != nil {
		t.Fatal(err)
	}
	if l.Mode != "COMPLIANCE" || !l.RetainUntil.Equal(now.Add(3*time.Hour)) || l.LegalHold {
		t.Fatalf("Lock = %+v; want COMPLIANCE until %v, no hold", l, now.Add(3*time.Hour))
	}
	key := b.Key(sum)
	v := versionOf(t, c, srv.Bucket, key)

	if err := deleteVersion(c, srv.Bucket, key, v); err == nil {
		t.Fatal("DeleteObject of a locked version succeeded")
	}
	if err := b.Retain(ctx, sum, now.Add(time.Hour)); !errors.Is(err, s3store.ErrLocked) {
		t.Fatalf("Retain to an earlier date: err = %v; want ErrLocked", err)
	}
	// The server refuses it, not just Retain: a plain client, bypass header and all.
	_, err = c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key),
		BypassGovernanceRetention: aws.Bool(true),
		Retention:                 &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(now.Add(time.Minute))}})
	if err == nil {
		t.Fatal("the server let a client shorten a COMPLIANCE retention")
	}
	_, err = c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key),
		BypassGovernanceRetention: aws.Bool(true),
		Retention:                 &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(now.Add(3 * time.Hour))}})
	if err == nil {
		t.Fatal("the server let a client turn a COMPLIANCE retention into GOVERNANCE")
	}
	if l2, err := b.Lock(ctx, sum); err != nil || l2 != l {
		t.Fatalf("after refused changes Lock = %+v, %v; want %+v", l2, err, l)
	}

	later := now.Add(48 * time.Hour)
	if err := b.Retain(ctx, sum, later); err != nil {
		t.Fatalf("Retain to a later date: %v", err)
	}
	if err := b.Retain(ctx, sum, later); err != nil {
		t.Fatalf("Retain to the same date again: %v", err)
	}
	if l, err := b.Lock(ctx, sum); err != nil || !l.RetainUntil.Equal(later) || l.Mode != "COMPLIANCE" {
		t.Fatalf("after extending, Lock = %+v, %v; want COMPLIANCE until %v", l, err, later)
	}
	if err := b.Retain(ctx, sum, now.Add(3*time.Hour)); !errors.Is(err, s3store.ErrLocked) {
		t.Fatalf("Retain back to the first date after extending: err = %v; want ErrLocked", err)
	}
	if err := deleteVersion(c, srv.Bucket, key, v); err == nil {
		t.Fatal("DeleteObject of a locked version succeeded after extending")
	}
	if got, err := b.ReadBlob(ctx, sum); err != nil || string(got) != string(data) {
		t.Fatalf("ReadBlob after the refused deletions = %q, %v", got, err)
	}
	if err := b.Retain(ctx, sha256.Sum256([]byte("absent")), later); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Retain of a blob not stored: err = %v; want ErrNotFound", err)
	}
	// Bad dates: refused, and the lock stays as it was.
	if err := b.Retain(ctx, sum, time.Time{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Retain until the zero time: err = %v; want ErrInvalid", err)
	}
	if err := b.Retain(ctx, sum, time.Now().Add(-time.Hour)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Retain until a past date: err = %v; want ErrInvalid (the server's InvalidArgument)", err)
	}
	if l, err := b.Lock(ctx, sum); err != nil || !l.RetainUntil.Equal(later) {
		t.Fatalf("after refused dates, Lock = %+v, %v; want until %v", l, err, later)
	}
}

// TestDeleteMarkerHidesNothing: a DeleteObject without a version id, which Object Lock does not
// refuse, only puts a delete marker in front of the locked version: ReadBlob still reads the
// blob, and writing it again is harmless.
func TestDeleteMarkerHidesNothing(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	b := open(t, srv, s3store.Options{})
	c := srv.Client()
	data := []byte("attachment someone tried to delete")
	sum := sha256.Sum256(data)
	if err := b.WriteBlob(ctx, sum, data); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(b.Key(sum))}); err != nil {
		t.Fatalf("DeleteObject without a version id: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(b.Key(sum))}); err == nil {
		t.Fatal("no delete marker: the object is still current")
	}
	if got, err := b.ReadBlob(ctx, sum); err != nil || string(got) != string(data) {
		t.Fatalf("ReadBlob behind a delete marker = %q, %v; want the locked version", got, err)
	}
	if err := b.WriteBlob(ctx, sum, data); err != nil {
		t.Fatalf("WriteBlob behind a delete marker: %v", err)
	}
	if got, err := b.ReadBlob(ctx, sum); err != nil || string(got) != string(data) {
		t.Fatalf("ReadBlob after writing again = %q, %v", got, err)
	}
}

// TestHeldBlobCannotBeDeletedUntilReleased: SetLegalHold places and clears the hold the server
// keeps; while it is on, the object's version cannot be deleted; once it is cleared (and no
// retention date holds it), it can. The hold alone is shown on an object written without a
// retention date (by a plain client), since a blob written by Blobs is also held by its date;
// on such a blob, clearing the hold leaves the date in force.
func TestHeldBlobCannotBeDeletedUntilReleased(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	b := open(t, srv, s3store.Options{})
	c := srv.Client()

	// The hold alone.
	data := []byte("held attachment, no retention date")
	sum := sha256.Sum256(data)
	key := b.Key(sum)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key), Body: strings.NewReader(string(data))}); err != nil {
		t.Fatal(err)
	}
	v := versionOf(t, c, srv.Bucket, key)
	if err := b.SetLegalHold(ctx, sum, true); err != nil {
		t.Fatalf("SetLegalHold(on): %v", err)
	}
	if l, err := b.Lock(ctx, sum); err != nil || !l.LegalHold {
		t.Fatalf("Lock of a held blob = %+v, %v; want LegalHold", l, err)
	}
	if err := deleteVersion(c, srv.Bucket, key, v); err == nil {
		t.Fatal("DeleteObject of a held version succeeded")
	}
	if got, err := b.ReadBlob(ctx, sum); err != nil || string(got) != string(data) {
		t.Fatalf("ReadBlob of the held blob = %q, %v", got, err)
	}
	if err := b.SetLegalHold(ctx, sum, false); err != nil {
		t.Fatalf("SetLegalHold(off): %v", err)
	}
	if l, err := b.Lock(ctx, sum); err != nil || l.LegalHold {
		t.Fatalf("Lock after release = %+v, %v; want no hold", l, err)
	}
	if err := deleteVersion(c, srv.Bucket, key, v); err != nil {
		t.Fatalf("DeleteObject of a released version with no retention date: %v", err)
	}
	if _, err := b.ReadBlob(ctx, sum); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReadBlob after the deletion: err = %v; want ErrNotFound", err)
	}

	// A blob written by Blobs: held and dated; releasing the hold leaves the date.
	data = []byte("held attachment with a date")
	sum = sha256.Sum256(data)
	if err := b.WriteBlob(ctx, sum, data); err != nil {
		t.Fatal(err)
	}
	v = versionOf(t, c, srv.Bucket, b.Key(sum))
	if err := b.SetLegalHold(ctx, sum, true); err != nil {
		t.Fatal(err)
	}
	if err := deleteVersion(c, srv.Bucket, b.Key(sum), v); err == nil {
		t.Fatal("DeleteObject of a held, dated version succeeded")
	}
	if err := b.SetLegalHold(ctx, sum, false); err != nil {
		t.Fatal(err)
	}
	if err := deleteVersion(c, srv.Bucket, b.Key(sum), v); err == nil {
		t.Fatal("DeleteObject of a dated version succeeded once its hold was released")
	}
	if l, err := b.Lock(ctx, sum); err != nil || l.Mode != "COMPLIANCE" || l.LegalHold {
		t.Fatalf("Lock after release = %+v, %v; want COMPLIANCE, no hold", l, err)
	}
	if err := b.SetLegalHold(ctx, sha256.Sum256([]byte("absent")), true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetLegalHold of a blob not stored: err = %v; want ErrNotFound", err)
	}
}
