package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/stretchr/testify/require"
)

// With attachments on S3 Object Lock, a hold placed with the program sets the legal hold of the
// held conversation's attachment, -apply-locks -keep sets its retain-until date to the end of
// its scope's retention when that is later than the store's default, and a release clears the
// legal hold (with the bucket down, the program refuses to start and seals nothing).
func TestHoldsAndRetentionLockAttachmentsOnS3(t *testing.T) {
	ctx := context.Background()
	srv, blobs := backendtest.S3(t, "")
	dir := filepath.Join(t.TempDir(), "ledger")
	spec, err := backend.Parse(dir, "", blobs)
	require.NoError(t, err)
	l, err := ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	require.NoError(t, err)
	sent := time.Date(2026, 7, 3, 9, 0, 0, 0, time.UTC)
	_, err = l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m0", Conversation: capture.Conversation{ID: "cid0"},
		Kind: capture.KindFile, Text: "ticket", SentAt: sent})
	require.NoError(t, err)
	sum, err := l.PutBlob(ctx, []byte("ticket scan"))
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]string{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "m0/0",
		Conversation: capture.Conversation{ID: "cid0"}, About: &capture.Identity{Platform: "dingtalk", Tenant: "corp", ID: "m0"},
		At: sent.Add(time.Minute), Body: body})
	require.NoError(t, err)
	require.NoError(t, l.Close())

	client := srv.Client()
	objects, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	require.NoError(t, err)
	require.Len(t, objects.Contents, 1, "the attachment, encrypted")
	key := objects.Contents[0].Key
	legalHold := func() types.ObjectLockLegalHoldStatus {
		t.Helper()
		out, err := client.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: aws.String(srv.Bucket), Key: key})
		if err != nil {
			return types.ObjectLockLegalHoldStatusOff // never set
		}
		return out.LegalHold.Status
	}

	code, out, errs := runR("-dir", dir, "-blobs", blobs, "-hold", "case-1", "-tenant", "corp", "-conversation", "cid0", "-reason", "SFC inquiry", "-by", "counsel")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "hold case-1 placed")
	require.Equal(t, types.ObjectLockLegalHoldStatusOn, legalHold(), "the hold set the object's legal hold")

	// Kept 7 years, the store's default date (7 years from the write) already covers the scope.
	code, out, errs = runR("-dir", dir, "-blobs", blobs, "-apply-locks", "-keep", "7y")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "object locks: 1 attachments, 0 retain-until dates set")
	// Kept 10 years, the date moves to the end of the scope's retention.
	code, out, errs = runR("-dir", dir, "-blobs", blobs, "-apply-locks", "-keep", "10y")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "object locks: 1 attachments, 1 retain-until dates set")
	ret, err := client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(srv.Bucket), Key: key})
	require.NoError(t, err)
	end := time.Date(2036, 8, 1, 0, 0, 0, 0, time.UTC) // July 2026's scope, kept 10 years after the month ends
	require.True(t, ret.Retention.RetainUntilDate.Equal(end), "retain-until %v; want %v", ret.Retention.RetainUntilDate, end)
	require.Equal(t, types.ObjectLockRetentionModeCompliance, ret.Retention.Mode)

	// With the bucket down the program does not start: nothing is sealed. (A bucket lost after
	// the hold is sealed leaves the locks pending: package ledger's tests.)
	srv.Stop()
	code, _, errs = runR("-dir", dir, "-blobs", blobs, "-release", "case-1", "-reason", "closed", "-by", "counsel")
	require.Equal(t, 1, code)
	require.Contains(t, errs, "unavailable")
	srv.Start()
	code, out, _ = runR("-dir", dir, "-blobs", blobs, "-holds")
	require.Equal(t, 0, code)
	require.Contains(t, out, "case-1", "still held")
	require.Equal(t, types.ObjectLockLegalHoldStatusOn, legalHold())
	code, out, errs = runR("-dir", dir, "-blobs", blobs, "-release", "case-1", "-reason", "closed", "-by", "counsel")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "hold case-1 released")
	require.Equal(t, types.ObjectLockLegalHoldStatusOff, legalHold())
	code, out, errs = runR("-dir", dir, "-blobs", blobs, "-apply-locks")
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "0 legal holds placed", "nothing held")
	require.Contains(t, out, "0 failed")
	require.Equal(t, types.ObjectLockLegalHoldStatusOff, legalHold())
}
