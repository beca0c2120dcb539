package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/commseal/commseal/store"
)

// DefaultRetention is the retention of a blob written when Options.Retention is zero: seven
// years (2,557 days, leap days included), the longest record-keeping period of the SFC's rules.
const DefaultRetention = 2557 * 24 * time.Hour

// Options configure a Blobs.
type Options struct {
	// Bucket is the bucket's name. It must have Object Lock enabled (Open checks).
	Bucket string
	// Prefix goes before every object name ("commseal/blobs/", say); empty for none. Objects
	// are named Prefix + the lower-case hex SHA-256 of their content.
	Prefix string
	// Retention is how long after it is written a blob is locked (DefaultRetention if zero).
	// Retain lengthens it per blob afterwards.
	Retention time.Duration
	// Now is the clock retain-until dates are computed from. Default time.Now.
	Now func() time.Time
}

// Blobs keeps attachment content as objects in an S3 bucket with Object Lock: a store.Blobs
// whose every object is locked in COMPLIANCE mode until a retain-until date, and a Locker that
// lengthens that date and sets or clears the legal hold per blob. It is safe for concurrent
// use. See the package documentation for the layout and what the server guarantees.
type Blobs struct {
	c      *s3.Client
	bucket string
	prefix string
	keep   time.Duration
	now    func() time.Time

	mu     sync.RWMutex // guards closed; read-held by every call in flight
	closed bool
}

var (
	_ store.Blobs = (*Blobs)(nil)
	_ Locker      = (*Blobs)(nil)
)

// Errors callers branch on with errors.Is, beside store.ErrNotFound, store.ErrHashMismatch,
// store.ErrCorrupt, store.ErrInvalid and store.ErrClosed.
var (
	// ErrUnavailable means the endpoint could not be reached or answered with a server error
	// (5xx, throttling) after the client's retries. The call may be made again: a blob write
	// that failed with it was stored whole or not at all, and writing it again is harmless.
	ErrUnavailable = errors.New("s3store: the S3 endpoint is unavailable (retry later)")
	// ErrNoObjectLock is returned by Open for a bucket without Object Lock enabled.
	ErrNoObjectLock = errors.New("s3store: the bucket does not have Object Lock enabled")
	// ErrLocked means the server refused a change that would weaken an object's lock: a
	// retain-until date earlier than the current one (COMPLIANCE mode is never shortened, by
	// anyone), or a deletion of a locked or held object.
	ErrLocked = errors.New("s3store: refused by the server: the object is locked")
)

// Open returns a Blobs over the bucket opts.Bucket through client, after checking that the
// bucket exists and has Object Lock enabled (ErrNoObjectLock otherwise). The client carries the
// endpoint, region, credentials and retry policy; path-style addressing suits most servers
// other than AWS. Close does not close the client (an s3.Client holds nothing to close).
func Open(ctx context.Context, client *s3.Client, opts Options) (*Blobs, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: s3store: a nil client", store.ErrInvalid)
	}
	if opts.Bucket == "" {
		return nil, fmt.Errorf("%w: s3store: Options.Bucket is required", store.ErrInvalid)
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("%w: s3store: a negative retention %v", store.ErrInvalid, opts.Retention)
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Blobs{c: client, bucket: opts.Bucket, prefix: opts.Prefix, keep: opts.Retention, now: opts.Now}
	out, err := client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(opts.Bucket)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "ObjectLockConfiguration") {
			return nil, fmt.Errorf("%w: bucket %q: %v", ErrNoObjectLock, opts.Bucket, err)
		}
		return nil, b.fail(ctx, "open bucket "+opts.Bucket, err)
	}
	if out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return nil, fmt.Errorf("%w: bucket %q", ErrNoObjectLock, opts.Bucket)
	}
	return b, nil
}

// Key returns the object name of the blob whose SHA-256 is sum: the prefix, then the hex digest.
func (b *Blobs) Key(sum store.Hash) string { return b.prefix + hex.EncodeToString(sum[:]) }

// Bucket returns the bucket's name.
func (b *Blobs) Bucket() string { return b.bucket }

// enter starts a call: it fails with the context's error or ErrClosed. The caller calls b.mu.RUnlock.
func (b *Blobs) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return fmt.Errorf("%w: s3store", store.ErrClosed)
	}
	return nil
}

// Close makes every later call fail with store.ErrClosed, after the calls in flight return. A
// second Close returns nil.
func (b *Blobs) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// WriteBlob implements store.Blobs. It refuses data whose SHA-256 is not sum
// (store.ErrHashMismatch), sending nothing. Otherwise it writes one object, in a single PUT
// that the server checks against sum (x-amz-checksum-sha256) and that creates it only if no
// current version exists (If-None-Match: *), locked in COMPLIANCE mode until now plus the
// retention. A blob already stored is left as it is, its lock included: writing it again is
// harmless and creates no second version. (An object already under the blob's name is taken to
// be it, as the file store takes an existing file; ReadBlob checks it against its hash.) The object is whole or absent: S3 makes a PUT
// visible only once it is complete and durable.
func (b *Blobs) WriteBlob(ctx context.Context, sum store.Hash, data []byte) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	if sha256.Sum256(data) != sum {
		return fmt.Errorf("%w: blob %x", store.ErrHashMismatch, sum[:8])
	}
	until := b.now().Add(b.keep).UTC()
	_, err := b.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:                    aws.String(b.bucket),
		Key:                       aws.String(b.Key(sum)),
		Body:                      bytes.NewReader(data),
		ContentLength:             aws.Int64(int64(len(data))),
		ContentType:               aws.String("application/octet-stream"),
		ChecksumSHA256:            aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		IfNoneMatch:               aws.String("*"),
		ObjectLockMode:            types.ObjectLockModeCompliance,
		ObjectLockRetainUntilDate: aws.Time(until),
	})
	if err == nil {
		return nil
	}
	switch status(err) {
	case http.StatusPreconditionFailed:
		return nil // stored before
	case http.StatusConflict:
		// A concurrent conditional write of the same key: whichever won stored this content.
		if _, herr := b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(sum))}); herr == nil {
			return nil
		}
	}
	return b.fail(ctx, fmt.Sprintf("write blob %x", sum[:8]), err)
}

// ReadBlob implements store.Blobs: the blob's content, checked against sum (store.ErrCorrupt if
// it does not match), or store.ErrNotFound. A blob whose current version is a delete marker (a
// DeleteObject without a version id, which Object Lock does not prevent) is read from its
// newest locked version: a delete marker hides an object, it does not destroy it.
func (b *Blobs) ReadBlob(ctx context.Context, sum store.Hash) ([]byte, error) {
	if err := b.enter(ctx); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	data, err := b.get(ctx, sum, "")
	if errors.Is(err, store.ErrNotFound) {
		v, verr := b.newestVersion(ctx, sum)
		if verr != nil {
			return nil, verr
		}
		if v == "" {
			return nil, err
		}
		data, err = b.get(ctx, sum, v)
	}
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(data) != sum {
		return nil, fmt.Errorf("%w: s3store: object %s does not match its hash", store.ErrCorrupt, b.Key(sum))
	}
	return data, nil
}

// get reads the object of sum, the given version or the current one.
func (b *Blobs) get(ctx context.Context, sum store.Hash, version string) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(sum))}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := b.c.GetObject(ctx, in)
	if err != nil {
		return nil, b.fail(ctx, fmt.Sprintf("read blob %x", sum[:8]), err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := io.Copy(&buf, out.Body); err != nil {
		return nil, b.fail(ctx, fmt.Sprintf("read blob %x", sum[:8]), err)
	}
	return buf.Bytes(), nil
}

// newestVersion returns the id of the newest version of sum's object that is not a delete
// marker, or "" if there is none.
func (b *Blobs) newestVersion(ctx context.Context, sum store.Hash) (string, error) {
	key := b.Key(sum)
	out, err := b.c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(b.bucket), Prefix: aws.String(key)})
	if err != nil {
		return "", b.fail(ctx, fmt.Sprintf("list versions of blob %x", sum[:8]), err)
	}
	var best types.ObjectVersion
	for _, v := range out.Versions {
		if aws.ToString(v.Key) != key || v.VersionId == nil {
			continue
		}
		if best.VersionId == nil || aws.ToTime(v.LastModified).After(aws.ToTime(best.LastModified)) {
			best = v
		}
	}
	return aws.ToString(best.VersionId), nil
}

// status returns the HTTP status of the server's reply that err carries, or 0 for none (the
// request never got an answer).
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// fail turns an error of the client into one callers can branch on: the context's error when
// ctx ended, store.ErrNotFound, ErrLocked, store.ErrInvalid for an argument the server refused
// (a retain-until date in the past, say), or ErrUnavailable for an endpoint that did not answer
// or answered with a server error; any other error is wrapped as it is.
func (b *Blobs) fail(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("s3store: %s: %w (%v)", what, cerr, err)
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	st := status(err)
	switch {
	case code == "NoSuchKey" || code == "NoSuchVersion" || st == http.StatusNotFound && code != "NoSuchBucket":
		return fmt.Errorf("%w: s3store: %s: %v", store.ErrNotFound, what, err)
	case code == "ObjectLocked" || code == "AccessDenied" && strings.Contains(strings.ToLower(ae.ErrorMessage()), "lock"):
		return fmt.Errorf("%w: s3store: %s: %v", ErrLocked, what, err)
	case code == "InvalidArgument":
		return fmt.Errorf("%w: s3store: %s: %v", store.ErrInvalid, what, err)
	case st == 0 || st >= 500 || st == http.StatusTooManyRequests || code == "SlowDown" || code == "RequestTimeout":
		return fmt.Errorf("%w: s3store: %s at bucket %q: %v", ErrUnavailable, what, b.bucket, err)
	}
	return fmt.Errorf("s3store: %s: %w", what, err)
}
