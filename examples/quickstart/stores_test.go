package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/store/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// quickstart -store postgres://... -blobs s3://...: the ledger in PostgreSQL, the attachments
// in S3 (encrypted), the keys in DIR, and verified read-only from PostgreSQL at the end.
func TestQuickstartOnPostgresAndS3(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	srv, blobsURL := backendtest.S3(t, "qs")
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errs := runQS(t, "-dir", dir, "-n", "60", "-store", pgURL, "-blobs", blobsURL)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "verified")
	require.Contains(t, out, `PostgreSQL database "test`)
	require.Contains(t, out, "attachments (encrypted, locked) in S3 bucket "+srv.Bucket+", prefix qs/ at "+srv.URL)
	require.Contains(t, out, "give every program below the -store and -blobs you gave this one; verify takes -store alone")
	attachments, err := strconv.Atoi(regexp.MustCompile(`(\d+) attachments fetched`).FindStringSubmatch(out)[1])
	require.NoError(t, err)
	require.Positive(t, attachments)

	require.NoDirExists(t, filepath.Join(dir, layout.StoreDir))
	require.NoDirExists(t, filepath.Join(dir, layout.VaultDir))
	require.FileExists(t, filepath.Join(dir, layout.StoreFile))
	require.FileExists(t, filepath.Join(dir, layout.KeyFile))
	exposed, err := leakcheck.Exposed(dir)
	require.NoError(t, err)
	require.Empty(t, exposed)

	// Every attachment is in the bucket, and none in plain text.
	secrets := secretsOf(t, samplePayloads(60, 1))
	list, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String("qs/")})
	require.NoError(t, err)
	require.Len(t, list.Contents, attachments)
	for _, o := range list.Contents {
		obj, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: o.Key})
		require.NoError(t, err)
		var b bytes.Buffer
		_, err = b.ReadFrom(obj.Body)
		obj.Body.Close()
		require.NoError(t, err)
		if s, enc, found := leakcheck.Find(b.Bytes(), secrets); found {
			t.Errorf("object %s holds %q (as %q)", aws.ToString(o.Key), s, enc)
		}
	}

	// A second run goes on with the same ledger; without -blobs it is refused.
	code, out, errs = runQS(t, "-dir", dir, "-n", "10", "-store", pgURL, "-blobs", blobsURL)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "verified")
	code, _, errs = runQS(t, "-dir", dir, "-n", "10", "-store", pgURL)
	require.Equal(t, 2, code)
	require.Contains(t, errs, "keeps its attachments in S3 bucket "+srv.Bucket)
}

// A bad -store or -blobs: exit 2, a message that says what is wrong, nothing written.
func TestQuickstartRefusesBadStoreFlags(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	for _, c := range []struct{ flag, value, want string }{
		{"-store", "mysql://u:hunter2@h/db", "-store mysql://...: unknown kind of store"},
		{"-store", "postgres://u:hunter2@h:5432/?sslmode=disable", "names no database"},
		{"-blobs", "s3://bucket?endpoint=http://127.0.0.1:1", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"-blobs", "s3://bucket?endpoint=http://127.0.0.1:1&retention=forever", "retention=forever"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		code, out, errs := runQS(t, "-dir", dir, "-n", "5", c.flag, c.value)
		require.Equal(t, 2, code, out)
		require.Contains(t, errs, c.want)
		require.NotContains(t, errs, "hunter2")
		_, err := os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist, "nothing written for %s", c.value)
	}
}

// Another ledger's directory or store (backend.ErrMismatch, ErrNotEmpty, ledgerdir.ErrInUse,
// and ledger.ErrOtherLedger on PostgreSQL): exit 2, nothing written.
func TestQuickstartRefusesOtherLedgers(t *testing.T) {
	run := func(dir string, flags ...string) (int, string) {
		code, _, errs := runQS(t, append([]string{"-dir", dir, "-n", "5"}, flags...)...)
		return code, errs
	}
	backendtest.RefusesOtherLedgers(t, "quickstart", run)
	backendtest.RefusesAnotherLedgersStore(t, "quickstart", run)
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// written, 1 for a run that failed.
func TestQuickstartExitStatus(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"an unknown flag", []string{"-dir", t.TempDir(), "-nosuchflag"}, 2},
		{"a stray argument", []string{"-dir", t.TempDir(), "stray"}, 2},
		{"a -messages file that is not there", []string{"-dir", t.TempDir(), "-messages", filepath.Join(t.TempDir(), "none.jsonl")}, 2},
		{"-dir is a file: the ledger cannot be made", []string{"-dir", notDir, "-n", "5"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runQS(t, c.args...)
			require.Equal(t, c.want, code, "%s%s", out, errs)
			require.Contains(t, errs, "quickstart")
		})
	}
}
