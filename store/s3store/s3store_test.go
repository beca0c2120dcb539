package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/s3store"
	"github.com/commseal/commseal/store/s3store/s3test"
	"github.com/commseal/commseal/store/storetest"
)

var prefixes atomic.Int64

// open returns a Blobs over srv's bucket under a prefix no other test uses.
func open(t testing.TB, srv *s3test.Server, opts s3store.Options) *s3store.Blobs {
	t.Helper()
	if opts.Bucket == "" {
		opts.Bucket = srv.Bucket
	}
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("t%d/", prefixes.Add(1))
	}
	if opts.Retention == 0 {
		opts.Retention = time.Hour
	}
	b, err := s3store.Open(context.Background(), srv.Client(), opts)
	if err != nil {
		t.Fatalf("Open: %v\n%s", err, srv.Logs())
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// logWithBlobs is a store.Store whose log is one store and whose blobs are a Blobs: what a
// ledger sees with ledger.Options.Blobs, and how the conformance suite reaches the Blobs rules
// (it runs them on a store.Store that implements store.Blobs).
type logWithBlobs struct {
	store.Store
	*s3store.Blobs
}

func (s logWithBlobs) Close() error { return errors.Join(s.Blobs.Close(), s.Store.Close()) }

var _ store.Blobs = logWithBlobs{}

// TestConformance runs storetest's suite on a file store whose blobs are in S3: the Blobs rules
// (read-back, hash-mismatch, context-done, closed, and reopen-keeps-all: blobs written before a
// reopen are read after it) run against versitygw.
func TestConformance(t *testing.T) {
	srv := s3test.New(t)
	base := t.TempDir()
	storetest.RunPersistent(t, func(t *testing.T, name string) store.Store {
		log, err := filestore.Open(context.Background(), filepath.Join(base, name), &filestore.Options{SegmentSize: 64 << 10, FlushEvery: 100})
		if err != nil {
			t.Fatalf("filestore.Open: %v", err)
		}
		b, err := s3store.Open(context.Background(), srv.Client(), s3store.Options{Bucket: srv.Bucket, Prefix: name + "/", Retention: time.Hour})
		if err != nil {
			t.Fatalf("s3store.Open: %v", err)
		}
		return logWithBlobs{Store: log, Blobs: b}
	})
}

// TestWriteBlobRules: each rule stated on store.Blobs, one by one, with what is in the bucket.
func TestWriteBlobRules(t *testing.T) {
	srv := s3test.New(t)
	b := open(t, srv, s3store.Options{})
	ctx := context.Background()
	c := srv.Client()

	t.Run("hash-mismatch-stores-nothing", func(t *testing.T) {
		data := []byte("the real content")
		wrong := sha256.Sum256([]byte("other content"))
		if err := b.WriteBlob(ctx, wrong, data); !errors.Is(err, store.ErrHashMismatch) {
			t.Fatalf("WriteBlob under a wrong hash: err = %v; want ErrHashMismatch", err)
		}
		for _, sum := range []store.Hash{wrong, sha256.Sum256(data)} {
			if n := versions(t, c, srv.Bucket, b.Key(sum)); n != 0 {
				t.Fatalf("after a refused write the bucket holds %d versions of %s; want none", n, b.Key(sum))
			}
		}
	})
	t.Run("same-content-again-is-harmless", func(t *testing.T) {
		data := []byte("written three times")
		sum := sha256.Sum256(data)
		for range 3 {
			if err := b.WriteBlob(ctx, sum, data); err != nil {
				t.Fatalf("WriteBlob: %v", err)
			}
		}
		if n := versions(t, c, srv.Bucket, b.Key(sum)); n != 1 {
			t.Fatalf("three writes of the same content left %d versions; want 1", n)
		}
		got, err := b.ReadBlob(ctx, sum)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadBlob = %q, %v", got, err)
		}
	})
	t.Run("concurrent-writes-of-one-blob", func(t *testing.T) {
		data := bytes.Repeat([]byte("racing "), 10_000)
		sum := sha256.Sum256(data)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- b.WriteBlob(ctx, sum, data) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a concurrent WriteBlob of the same content: %v", err)
			}
		}
		got, err := b.ReadBlob(ctx, sum)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadBlob after concurrent writes = %d bytes, %v", len(got), err)
		}
	})
	t.Run("not-found", func(t *testing.T) {
		if _, err := b.ReadBlob(ctx, sha256.Sum256([]byte("never written"))); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ReadBlob of a blob never written: err = %v; want ErrNotFound", err)
		}
		if _, err := b.Lock(ctx, sha256.Sum256([]byte("never written"))); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Lock of a blob never written: err = %v; want ErrNotFound", err)
		}
	})
	t.Run("named-by-hex-sha256-under-the-prefix", func(t *testing.T) {
		data := []byte("where is it")
		sum := sha256.Sum256(data)
		if err := b.WriteBlob(ctx, sum, data); err != nil {
			t.Fatal(err)
		}
		want := b.Key(sum)
		if !strings.HasSuffix(want, fmt.Sprintf("/%x", sum)) {
			t.Fatalf("Key = %q; want the prefix and the hex digest", want)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(want)})
		if err != nil {
			t.Fatalf("GetObject(%s) with a plain client: %v", want, err)
		}
		out.Body.Close()
	})
	t.Run("corrupt-object-is-reported", func(t *testing.T) {
		// An object under a blob's name whose content is not that blob (written behind the
		// store's back, without a lock): ReadBlob says so rather than return it.
		sum := sha256.Sum256([]byte("what the name promises"))
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(b.Key(sum)),
			Body: strings.NewReader("something else")}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadBlob(ctx, sum); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("ReadBlob of an object that does not match its name: err = %v; want ErrCorrupt", err)
		}
	})
}

// TestOpenRefusesBadBuckets: a bucket without Object Lock, a missing bucket, bad options.
func TestOpenRefusesBadBuckets(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	plain := srv.NewBucket(false)
	if _, err := s3store.Open(ctx, srv.Client(), s3store.Options{Bucket: plain}); !errors.Is(err, s3store.ErrNoObjectLock) {
		t.Fatalf("Open on a bucket without Object Lock: err = %v; want ErrNoObjectLock", err)
	}
	if _, err := s3store.Open(ctx, srv.Client(), s3store.Options{Bucket: "no-such-bucket"}); err == nil {
		t.Fatal("Open on a bucket that does not exist succeeded")
	}
	if _, err := s3store.Open(ctx, srv.Client(), s3store.Options{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Open without a bucket: err = %v; want ErrInvalid", err)
	}
	if _, err := s3store.Open(ctx, nil, s3store.Options{Bucket: srv.Bucket}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Open without a client: err = %v; want ErrInvalid", err)
	}
	if _, err := s3store.Open(ctx, srv.Client(), s3store.Options{Bucket: srv.Bucket, Retention: -time.Hour}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Open with a negative retention: err = %v; want ErrInvalid", err)
	}
}

// versions counts the versions (delete markers excluded) of key.
func versions(t testing.TB, c *s3.Client, bucket, key string) int {
	t.Helper()
	out, err := c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	n := 0
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			n++
		}
	}
	return n
}
