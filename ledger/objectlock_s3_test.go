package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/s3store"
	"github.com/commseal/commseal/store/s3store/s3test"
)

var _ ledger.ObjectLocker = (*s3store.Blobs)(nil)

// TestObjectLocksOnS3: against a real S3 server with Object Lock (versitygw, started by s3test;
// skipped when it is not installed, a failure with COMMSEAL_REQUIRE_EXTERNAL=1), an encrypted
// ledger whose attachments are in the bucket: the retention policy sets each attachment's
// retain-until to the end of its scope's retention and a shorter policy is refused by the server
// (s3store.ErrLocked, reported); a hold sets the legal hold on its conversation's attachments
// only, and its version cannot be deleted; a release with the endpoint down seals the release,
// reports ErrLocksPending (wrapping s3store.ErrUnavailable) and leaves the hold set, and the
// pass after the outage clears it.
func TestObjectLocksOnS3(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	blobs, err := s3store.Open(ctx, srv.Client(), s3store.Options{Bucket: srv.Bucket, Prefix: "ledger/blobs/", Retention: time.Hour})
	require.NoError(t, err)
	defer blobs.Close()
	vault := &memstore.KeyVault{}
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: testKeys(t), CheckpointInterval: time.Hour, Blobs: blobs,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: vault}})
	require.NoError(t, err)
	defer l.Close()

	sent := thisMonth()
	a := attach(t, l, "cid-a", 1, sent, "order ticket of desk A")
	b := attach(t, l, "cid-b", 1, sent, "order ticket of desk B")
	addrA, addrB := storedAddr(t, vault, a), storedAddr(t, vault, b)
	lock := func(addr store.Hash) s3store.Lock {
		t.Helper()
		lk, err := blobs.Lock(ctx, addr)
		require.NoError(t, err)
		return lk
	}
	written := lock(addrA).RetainUntil
	require.WithinDuration(t, time.Now().Add(time.Hour), written, 5*time.Minute, "written with the store's default")

	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}}
	rep, err := l.ApplyLocks(ctx, &policy)
	require.NoError(t, err, "%s", srv.Logs())
	require.Equal(t, 2, rep.Retained)
	require.True(t, lock(addrA).RetainUntil.Equal(endOfMonthPlus(sent, 1)), "retain-until %v; want the end of the scope's retention %v", lock(addrA).RetainUntil, endOfMonthPlus(sent, 1))
	require.Equal(t, "COMPLIANCE", lock(addrB).Mode)

	shorter := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "2 months", Keep: ledger.Period{Months: 2}}}}
	// The server refuses to shorten (s3store.ErrLocked); the blob is kept longer than the
	// shorter policy needs, so nothing is pending.
	require.ErrorIs(t, blobs.Retain(ctx, addrA, endOfMonthPlus(sent, 0).Add(time.Hour)), s3store.ErrLocked)
	rep, err = l.ApplyLocks(ctx, &shorter)
	require.NoError(t, err)
	require.Zero(t, rep.Failed)
	require.True(t, lock(addrA).RetainUntil.Equal(endOfMonthPlus(sent, 1)), "never shortened")

	_, err = l.PlaceHold(ctx, ledger.Hold{ID: "h1", Tenant: "corp1", Conversation: "cid-a", Reason: "SFC inquiry", By: "counsel"})
	require.NoError(t, err)
	require.True(t, lock(addrA).LegalHold, "the held conversation's attachment carries the legal hold")
	require.False(t, lock(addrB).LegalHold)
	c := srv.Client()
	key := blobs.Key(addrA)
	vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(srv.Bucket), Prefix: aws.String(key)})
	require.NoError(t, err)
	require.Len(t, vs.Versions, 1)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key),
		VersionId: vs.Versions[0].VersionId, BypassGovernanceRetention: aws.Bool(true)})
	require.Error(t, err, "a held, locked version cannot be deleted")

	srv.Stop()
	size := l.Size()
	i, err := l.ReleaseHold(ctx, "h1", "counsel", "inquiry closed")
	require.ErrorIs(t, err, ledger.ErrLocksPending)
	require.True(t, errors.Is(err, s3store.ErrUnavailable), "%v", err)
	require.Equal(t, size, i, "the release is sealed")
	srv.Start()
	require.True(t, lock(addrA).LegalHold, "the server missed the release")
	rep, err = l.ApplyLocks(ctx, nil)
	require.NoError(t, err, "the known policy is the shorter one, which the longer lock already meets")
	require.Equal(t, 1, rep.Cleared)
	require.False(t, lock(addrA).LegalHold, "the pass after the outage clears the legal hold")
	require.True(t, lock(addrA).RetainUntil.Equal(endOfMonthPlus(sent, 1)), "the date stays")
	got, err := l.Blob(ctx, a)
	require.NoError(t, err)
	require.Equal(t, "order ticket of desk A", string(got))
}
