package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/commseal/commseal/store"
)

// Locker is the optional capability of a blob store whose objects are locked by the storage
// itself (WORM storage such as S3 Object Lock): a ledger that knows a blob's retention period
// and legal holds calls it to make the storage keep the blob at least that long, and while
// held. It is defined here until the ledger calls it; Blobs implements it.
//
// Retention only grows. A retain-until date earlier than the current one is refused by the
// server (ErrLocked): in COMPLIANCE mode nobody, the account's root included, can shorten it
// or delete the object before it. A legal hold keeps an object whatever its date says, until
// the hold is cleared.
type Locker interface {
	// Retain sets the retain-until date of the blob stored under sum to until (COMPLIANCE
	// mode). A date later than the current one extends the lock; the same date changes
	// nothing; an earlier date fails with ErrLocked, the server's refusal (as does any 403
	// answer, credentials without s3:PutObjectRetention included: the wrapped message says
	// which). store.ErrInvalid for a date not in the future; store.ErrNotFound for a blob
	// not stored.
	Retain(ctx context.Context, sum store.Hash, until time.Time) error
	// SetLegalHold places (on) or clears (off) the legal hold on the blob stored under sum.
	// store.ErrNotFound for a blob not stored.
	SetLegalHold(ctx context.Context, sum store.Hash, on bool) error
	// Lock returns the lock of the blob stored under sum: its mode, retain-until date and
	// legal hold. store.ErrNotFound for a blob not stored.
	Lock(ctx context.Context, sum store.Hash) (Lock, error)
}

// Lock is the lock the storage keeps on one blob.
type Lock struct {
	Mode        string    // "COMPLIANCE" for every blob Blobs writes; "" for none
	RetainUntil time.Time // zero for none
	LegalHold   bool
}

// Retain implements Locker.
func (b *Blobs) Retain(ctx context.Context, sum store.Hash, until time.Time) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	if until.IsZero() {
		return fmt.Errorf("%w: s3store: retain blob %x until a zero time", store.ErrInvalid, sum[:8])
	}
	_, err := b.c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.Key(sum)),
		Retention: &types.ObjectLockRetention{
			Mode:            types.ObjectLockRetentionModeCompliance,
			RetainUntilDate: aws.Time(until.UTC()),
		},
	})
	if err != nil {
		st := status(err)
		err = b.fail(ctx, fmt.Sprintf("retain blob %x until %s", sum[:8], until.UTC().Format(time.RFC3339)), err)
		if st == http.StatusForbidden && !errors.Is(err, ErrLocked) {
			// AWS may answer a shortening with a bare AccessDenied; versitygw names the lock.
			err = fmt.Errorf("%w: %w", ErrLocked, err)
		}
		return err
	}
	return nil
}

// SetLegalHold implements Locker.
func (b *Blobs) SetLegalHold(ctx context.Context, sum store.Hash, on bool) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	st := types.ObjectLockLegalHoldStatusOff
	if on {
		st = types.ObjectLockLegalHoldStatusOn
	}
	_, err := b.c.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
		Bucket:    aws.String(b.bucket),
		Key:       aws.String(b.Key(sum)),
		LegalHold: &types.ObjectLockLegalHold{Status: st},
	})
	if err != nil {
		return b.fail(ctx, fmt.Sprintf("set legal hold %s on blob %x", st, sum[:8]), err)
	}
	return nil
}

// Lock implements Locker.
func (b *Blobs) Lock(ctx context.Context, sum store.Hash) (Lock, error) {
	if err := b.enter(ctx); err != nil {
		return Lock{}, err
	}
	defer b.mu.RUnlock()
	var l Lock
	var err error
	if l.Mode, l.RetainUntil, err = b.retention(ctx, sum); err != nil {
		return Lock{}, err
	}
	h, err := b.c.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(sum))})
	switch {
	case err == nil:
		l.LegalHold = h.LegalHold != nil && h.LegalHold.Status == types.ObjectLockLegalHoldStatusOn
	case !noLock(err): // no lock configuration: never held
		return Lock{}, b.fail(ctx, fmt.Sprintf("read the legal hold of blob %x", sum[:8]), err)
	}
	return l, nil
}

// RetainUntil returns the retain-until date of the blob stored under sum, zero if it has none
// (Lock without the legal hold: one request).
func (b *Blobs) RetainUntil(ctx context.Context, sum store.Hash) (time.Time, error) {
	if err := b.enter(ctx); err != nil {
		return time.Time{}, err
	}
	defer b.mu.RUnlock()
	_, until, err := b.retention(ctx, sum)
	return until, err
}

// retention reads the mode and retain-until date of the blob stored under sum ("" and zero for
// none), with b.mu held.
func (b *Blobs) retention(ctx context.Context, sum store.Hash) (string, time.Time, error) {
	r, err := b.c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(b.bucket), Key: aws.String(b.Key(sum))})
	switch {
	case err == nil && r.Retention != nil:
		return string(r.Retention.Mode), aws.ToTime(r.Retention.RetainUntilDate), nil
	case err != nil && !noLock(err): // no lock configuration: an object with no date
		return "", time.Time{}, b.fail(ctx, fmt.Sprintf("read the retention of blob %x", sum[:8]), err)
	}
	return "", time.Time{}, nil
}

// noLock reports whether err is the server's answer for an object that has no retention or
// legal hold set (S3 answers NoSuchObjectLockConfiguration rather than an empty one).
func noLock(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchObjectLockConfiguration"
}
