package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// An export from a ledger whose log is in PostgreSQL and whose attachments are in S3: the
// bundle holds the attachment, read back from the bucket, and verifies with the key alone.
func TestExportFromPostgresAndS3(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	_, blobsURL := backendtest.S3(t, "")
	dir := filepath.Join(t.TempDir(), "ledger")
	spec, err := backend.Parse(dir, pgURL, blobsURL)
	require.NoError(t, err)
	l, err := ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	require.NoError(t, err)
	m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m0", Kind: capture.KindPicture,
		Conversation: capture.Conversation{ID: "cid0", Type: capture.ConversationGroup}, Sender: capture.Party{ID: "u0"},
		Raw: []byte(`{}`), SentAt: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
	_, err = l.Append(ctx, m)
	require.NoError(t, err)
	picture := []byte("PNG-BYTES quokka picture")
	sum, err := l.PutBlob(ctx, picture)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(picture), sum)
	body, _ := json.Marshal(capture.MediaResult{Status: capture.MediaStored, Name: "q.png", MediaType: "picture",
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(picture))})
	about := m.Identity()
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "m0/0",
		Conversation: m.Conversation, About: &about, At: m.SentAt, Body: body})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)

	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errs := runE("-dir", dir, "-store", pgURL, "-blobs", blobsURL, "-who", "carol", "-why", "SFC request 7", "-conversation", "cid0", "-out", out)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, stdout, "wrote 2 entries")
	rep, err := verify.Bundle(out, vkey)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Attachments)
	got, err := os.ReadFile(filepath.Join(out, verify.BundleAttachmentPath(hex.EncodeToString(sum[:]))))
	require.NoError(t, err)
	require.Equal(t, picture, got)

	// Without the -blobs the ledger was made with: refused, nothing written.
	out2 := filepath.Join(t.TempDir(), "bundle2")
	code, _, errs = runE("-dir", dir, "-store", pgURL, "-who", "carol", "-why", "SFC request 7", "-conversation", "cid0", "-out", out2)
	require.Equal(t, exitRefused, code)
	require.Contains(t, errs, "keeps its attachments in S3 bucket")
	require.NoDirExists(t, out2)
}

// A bad -store or -blobs is a usage error that opens and writes nothing.
func TestExportRefusesBadStoreFlags(t *testing.T) {
	dir := makeLedger(t)
	before := ledgerFiles(t, dir)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	for _, c := range []struct{ flag, value, want string }{
		{"-store", "mysql://u:pw@h/db", "-store mysql://...: unknown kind of store"},
		{"-store", "postgres://u:hunter2@h:5432/db?schema=no-such", "schema must be one name"},
		{"-blobs", "s3://bucket?endpoint=http://h:1", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"-blobs", "/mnt/blobs", "want s3://bucket"},
	} {
		out := filepath.Join(t.TempDir(), "bundle")
		code, _, errs := runE("-dir", dir, c.flag, c.value, "-who", "carol", "-why", "w", "-conversation", "cid0", "-out", out)
		require.Equal(t, exitRefused, code, c.value)
		require.Contains(t, errs, c.want)
		require.NotContains(t, errs, "hunter2")
		require.NoDirExists(t, out)
	}
	require.Equal(t, before, ledgerFiles(t, dir))
}

// Another ledger's directory or store (backend.ErrMismatch, layout.ErrNoLedger,
// ledgerdir.ErrInUse): exit 2, nothing written.
func TestExportRefusesOtherLedgers(t *testing.T) {
	backendtest.RefusesOtherLedgers(t, "export", func(dir string, flags ...string) (int, string) {
		out := filepath.Join(t.TempDir(), "bundle")
		code, _, errs := runE(append([]string{"-dir", dir, "-who", "carol", "-why", "w", "-conversation", "cid0", "-out", out}, flags...)...)
		return code, errs
	})
}

// The exit status (README, "Exit status"): 2 for an invocation refused before anything was
// done, 1 for an export that failed.
func TestExportExitStatus(t *testing.T) {
	dir := makeLedger(t)
	sel := []string{"-who", "carol", "-why", "w", "-conversation", "cid0"}
	file := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(file, "file"), nil, 0o600))
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"no flags", nil, 2},
		{"no -out", append([]string{"-dir", dir}, sel...), 2},
		{"a malformed -from", append([]string{"-dir", dir, "-out", filepath.Join(t.TempDir(), "b"), "-from", "July"}, sel...), 2},
		{"an unknown -format", append([]string{"-dir", dir, "-out", filepath.Join(t.TempDir(), "b"), "-format", "pdf"}, sel...), 2},
		{"-out is a file", append([]string{"-dir", dir, "-out", filepath.Join(file, "file", "b")}, sel...), 2},
		{"nothing matched: the export fails", append([]string{"-dir", dir, "-out", filepath.Join(t.TempDir(), "b"), "-sender", "nobody"}, sel...), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runE(c.args...)
			require.Equal(t, c.want, code, errs)
			require.Contains(t, errs, "export: ")
		})
	}
}
