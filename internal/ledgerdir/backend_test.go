package ledgerdir_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func parse(t *testing.T, dir, st, bl string) backend.Spec {
	t.Helper()
	spec, err := backend.Parse(dir, st, bl)
	require.NoError(t, err)
	return spec
}

// -store DIR2: the file store in a directory of its own, recorded in ledger.store; the keys
// stay in DIR.
func TestOpenOnAnotherDirectory(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir, other := t.TempDir(), filepath.Join(t.TempDir(), "log")
	spec := parse(t, dir, other, "")
	l, err := ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	require.NoError(t, err)
	require.IsType(t, &filestore.Store{}, l.Store)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	for _, f := range []string{layout.KeyFile, layout.VKeyFile, layout.KeyringFile, layout.KEKFile, layout.StoreFile} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	require.DirExists(t, filepath.Join(dir, layout.VaultDir), "with a file store the data keys stay in DIR/keys")
	require.NoDirExists(t, filepath.Join(dir, layout.StoreDir))
	require.DirExists(t, other)
	require.NoError(t, layout.Exists(dir))

	// Opened without -store, the ledger would start over in DIR/store: refused, nothing written.
	before := snapshot(t, dir)
	_, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.ErrorIs(t, err, backend.ErrMismatch)
	require.ErrorContains(t, err, "keeps its log in the file store in "+other)
	require.Equal(t, before, snapshot(t, dir))
	require.NoDirExists(t, filepath.Join(dir, layout.StoreDir))

	// A new ledger directory on that store: refused, nothing written.
	fresh := filepath.Join(t.TempDir(), "new")
	_, err = ledgerdir.OpenOn(ctx, fresh, "", parse(t, fresh, other, ""), ledger.Options{})
	require.ErrorIs(t, err, backend.ErrNotEmpty)
	require.NoDirExists(t, fresh)

	l, err = ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	require.NoError(t, err)
	e, err := l.Access("t", "t").Get(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", e.Message.Text)
	require.NoError(t, l.Close())

	// The auditor's way in, with and without -store (ledger.store says where).
	for _, s := range []backend.Spec{spec, backend.Default(dir)} {
		st, err := backend.OpenReader(ctx, dir, s, nil)
		require.NoError(t, err)
		_, err = verify.Ledger(ctx, st, l.Signing.Verifier, verify.Options{AllowUnsigned: true})
		require.NoError(t, err)
		require.NoError(t, st.Close())
	}
}

// -store postgres:// and -blobs s3://: the log, checkpoints and data keys in PostgreSQL, the
// attachments (encrypted) in S3, the signing key and KEK in DIR.
func TestOpenOnPostgresAndS3(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	pgURL := backendtest.Postgres(t)
	srv, blobsURL := backendtest.S3(t, "att")
	dir := filepath.Join(t.TempDir(), "ledger")
	spec := parse(t, dir, pgURL, blobsURL)

	l, err := ledgerdir.OpenOn(ctx, dir, "commseal.test/pg", spec, ledger.Options{})
	require.NoError(t, err)
	require.IsType(t, &pgstore.Store{}, l.Store)
	require.Same(t, l.Store, l.Vault, "the data keys are in PostgreSQL")
	require.NotNil(t, l.Blobs)
	secret := []byte("ATTACHMENT-PLAINTEXT 0700.HK block trade")
	sum, err := l.PutBlob(ctx, secret)
	require.NoError(t, err)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	_, _, err = l.SignCheckpoint(ctx)
	require.NoError(t, err)
	vkey := l.Signing.Verifier
	require.NoError(t, l.Close())

	for _, f := range []string{layout.KeyFile, layout.VKeyFile, layout.KeyringFile, layout.KEKFile, layout.StoreFile} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	require.NoDirExists(t, filepath.Join(dir, layout.StoreDir))
	require.NoDirExists(t, filepath.Join(dir, layout.VaultDir), "no data keys in the directory")

	// The bucket holds the attachment, encrypted, under the prefix.
	list, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)
	require.Contains(t, aws.ToString(list.Contents[0].Key), "att/")
	obj, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: list.Contents[0].Key})
	require.NoError(t, err)
	var body bytes.Buffer
	_, err = body.ReadFrom(obj.Body)
	obj.Body.Close()
	require.NoError(t, err)
	require.NotContains(t, body.String(), "ATTACHMENT-PLAINTEXT")

	// Reopened: the message and the attachment come back.
	l, err = ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	require.NoError(t, err)
	a := l.Access("t", "t")
	e, err := a.Get(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", e.Message.Text)
	got, err := a.Blob(ctx, sum)
	require.NoError(t, err)
	require.Equal(t, secret, got)
	require.NoError(t, l.Close())

	// Without -blobs, or without -store: refused, nothing written.
	before := snapshot(t, dir)
	_, err = ledgerdir.OpenOn(ctx, dir, "", parse(t, dir, pgURL, ""), ledger.Options{})
	require.ErrorIs(t, err, backend.ErrMismatch)
	require.ErrorContains(t, err, "keeps its attachments in S3 bucket "+srv.Bucket)
	_, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.ErrorIs(t, err, backend.ErrMismatch)
	require.ErrorContains(t, err, "keeps its log in PostgreSQL database")
	require.Equal(t, before, snapshot(t, dir))
	// Another retention for new attachments than the directory records: refused, nothing written.
	_, err = ledgerdir.OpenOn(ctx, dir, "", parse(t, dir, pgURL, blobsURL+"&retention=30d"), ledger.Options{})
	require.ErrorIs(t, err, backend.ErrMismatch)
	require.ErrorContains(t, err, "retention=2557d, not 30d")
	require.Equal(t, before, snapshot(t, dir))

	// A new directory on the same schema would sign a second ledger there: refused, and the
	// directory is not even created.
	fresh := filepath.Join(t.TempDir(), "new")
	_, err = ledgerdir.OpenOn(ctx, fresh, "", parse(t, fresh, pgURL, blobsURL), ledger.Options{})
	require.ErrorIs(t, err, backend.ErrNotEmpty)
	require.NoDirExists(t, fresh)

	// The auditor reads PostgreSQL read-only and verifies with the verifier key alone.
	st, err := backend.OpenReader(ctx, dir, parse(t, dir, pgURL, ""), nil)
	require.NoError(t, err)
	rep, err := verify.Ledger(ctx, st, vkey, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 3, rep.Entries) // the message and the access entries of the two reads above
	require.NoError(t, st.Close())
}

// TestTwoNewDirectoriesOnOneSchema: the emptiness check cannot tell a second new ledger from the
// first while the first has not appended yet (two -shared archivers started together on a new
// schema), so the store's owner does: the second directory's ledger, with its own keys, is
// refused with ledger.ErrOtherLedger, and the first appends and verifies as if it were alone.
func TestTwoNewDirectoriesOnOneSchema(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	pgURL := backendtest.Postgres(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, err := ledgerdir.OpenOn(ctx, dirA, "", parse(t, dirA, pgURL, ""), ledger.Options{Shared: true})
	require.NoError(t, err)
	_, err = ledgerdir.OpenOn(ctx, dirB, "", parse(t, dirB, pgURL, ""), ledger.Options{Shared: true})
	require.ErrorIs(t, err, ledger.ErrOtherLedger)
	require.ErrorContains(t, err, fmt.Sprintf("claimed by %s+%08x", a.Signing.Verifier.Name(), a.Signing.Verifier.KeyHash()))
	require.Equal(t, ledgerdir.ExitRefused, ledgerdir.ExitCode(err), "a program exits 2")
	require.NoDirExists(t, dirB, "the refused directory's new keys are not left behind")
	_, err = a.Append(ctx, msg("m1"))
	require.NoError(t, err)
	vkey := a.Signing.Verifier
	require.NoError(t, a.Close())
	st, err := backend.OpenReader(ctx, dirA, parse(t, dirA, pgURL, ""), nil)
	require.NoError(t, err)
	defer st.Close()
	rep, err := verify.Ledger(ctx, st, vkey, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.Entries)
}

// A PostgreSQL server that cannot be reached leaves no trace: the directory is not created.
func TestOpenOnUnreachableStoreWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ledger")
	spec := parse(t, dir, "postgres:///db?host="+filepath.Join(t.TempDir(), "nosocket")+"&connect_timeout=2", "")
	_, err := ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	require.Error(t, err)
	require.ErrorContains(t, err, `-store PostgreSQL database "db"`)
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}
