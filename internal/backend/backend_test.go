package backend_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/s3store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func s3env(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
	t.Setenv("AWS_REGION", "")
}

func TestParseDefault(t *testing.T) {
	dir := t.TempDir()
	for _, store := range []string{"", filepath.Join(dir, "store"), filepath.Join(dir, ".", "store") + "/"} {
		spec, err := backend.Parse(dir, store, "")
		require.NoError(t, err)
		require.True(t, spec.Default, store)
		require.Equal(t, backend.File, spec.Store.Kind)
		require.Equal(t, filepath.Join(dir, "store"), spec.Store.Path)
		require.Empty(t, spec.Blobs.Kind)
		require.False(t, spec.Remote())
	}
	other := filepath.Join(t.TempDir(), "elsewhere")
	spec, err := backend.Parse(dir, other, "")
	require.NoError(t, err)
	require.False(t, spec.Default)
	require.Equal(t, other, spec.Store.Path)
}

func TestParsePostgres(t *testing.T) {
	spec, err := backend.Parse("d", "postgres://alice:hunter2@db.example:6543/ledgers?schema=desk_a&sslmode=require&pool_max_conns=8", "")
	require.NoError(t, err)
	require.False(t, spec.Default)
	require.True(t, spec.Remote())
	loc := spec.Store
	require.Equal(t, backend.Postgres, loc.Kind)
	require.Equal(t, "db.example", loc.Host)
	require.EqualValues(t, 6543, loc.Port)
	require.Equal(t, "ledgers", loc.Database)
	require.Equal(t, "desk_a", loc.Schema)
	require.NotContains(t, spec.String(), "hunter2")
	require.NotContains(t, spec.String(), "alice")

	spec, err = backend.Parse("d", "postgresql:///ledgers?host=/run/postgresql", "")
	require.NoError(t, err)
	require.Equal(t, backend.DefaultSchema, spec.Store.Schema)
	require.Equal(t, "/run/postgresql", spec.Store.Host)
}

// Every value Parse refuses is ErrInvalid, with a message that names the flag and what is
// wrong, and never a password.
func TestParseRefuses(t *testing.T) {
	s3env(t)
	for _, c := range []struct{ store, blobs, want string }{
		{"mysql://u:hunter2@h/db", "", "-store mysql://...: unknown kind of store"},
		{"s3://bucket", "", "-store s3://...: unknown kind of store"},
		{"postgres://u:hunter2@h:5432/db?schema=a;drop", "", "invalid semicolon"},
		{"postgres://u:hunter2@h:5432/db?schema=a-b", "", "schema must be one name"},
		{"postgres://u:hunter2@h:5432/?sslmode=disable", "", "names no database"},
		{"postgres://u:hunter2@h:5432/db?schema=a&schema=b", "", "schema must be one name"},
		{"postgres://u:hunter2@h:notaport/db", "", "-store"},
		{"postgres://u:hunter2@h:5432/db?connect_timeout=soon", "", "-store"},
		{"postgres://u@h:5432/?sslmode=disable&password=hunter2", "", "names no database"}, // libpq's password parameter
		{"postgres://u@h:5432/db?password=hunter2&schema=a-b", "", "schema must be one name"},
		{"postgres://u@h:5432/db?password=hunter2&connect_timeout=soon", "", "-store"},
		{"postgres://u@h:5432/db?password=hunter2&schema=a;drop", "", "invalid semicolon"},
		{"", "/var/blobs", "-blobs /var/blobs: want s3://bucket"},
		{"", "gs://bucket", "-blobs gs://...: want s3://bucket"},
		{"", "s3://AKID:hunter2@bucket", "credentials do not go in the URL"},
		{"", "s3://", "want a bucket name"},
		{"", "s3://Bad_Bucket", "want a bucket name"},
		{"", "s3://bucket?endpoint=ftp://h", "endpoint=ftp://h: want http(s)"},
		{"", "s3://bucket?endpoint=http://u:hunter2@h", "without credentials"},
		{"", "s3://bucket?endpoit=http://h", `unknown parameter "endpoit"`},
		{"", "s3://bucket?retention=-1d", "retention=-1d"},
		{"", "s3://bucket?retention=forever", "retention=forever"},
		{"", "s3://bucket?path-style=maybe", "path-style=maybe"},
		{"", "s3://bucket?region=a&region=b", "give region once"},
	} {
		_, err := backend.Parse("d", c.store, c.blobs)
		require.ErrorIs(t, err, backend.ErrInvalid, "%q %q", c.store, c.blobs)
		require.ErrorContains(t, err, c.want, "%q %q", c.store, c.blobs)
		require.NotContains(t, err.Error(), "hunter2")
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err := backend.Parse("d", "", "s3://bucket")
	require.ErrorIs(t, err, backend.ErrInvalid)
	require.ErrorContains(t, err, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
}

func TestParseS3(t *testing.T) {
	s3env(t)
	spec, err := backend.Parse("d", "", "s3://evidence-bucket/desk/a/?endpoint=http://127.0.0.1:7070/&retention=30d")
	require.NoError(t, err)
	require.False(t, spec.Default)
	require.Equal(t, backend.S3, spec.Blobs.Kind)
	require.Equal(t, "evidence-bucket", spec.Blobs.Bucket)
	require.Equal(t, "desk/a/", spec.Blobs.Prefix)
	require.Equal(t, "http://127.0.0.1:7070", spec.Blobs.Endpoint)
	require.Contains(t, spec.String(), "attachments in S3 bucket evidence-bucket")
	require.NotContains(t, spec.String(), "secret-example")
}

// ledger.store is written only for a spec that is not the default, read back as written, and
// holds no credential.
func TestRecord(t *testing.T) {
	s3env(t)
	dir := t.TempDir()
	require.NoError(t, backend.Record(dir, backend.Default(dir)))
	_, err := os.Stat(filepath.Join(dir, layout.StoreFile))
	require.ErrorIs(t, err, os.ErrNotExist, "the default layout records nothing")
	_, found, err := backend.Recorded(dir)
	require.NoError(t, err)
	require.False(t, found, "an empty directory holds no ledger")

	spec, err := backend.Parse(dir, "postgres://alice:hunter2@db.example/ledgers?schema=s1", "s3://bkt/p?endpoint=http://h:1")
	require.NoError(t, err)
	require.NoError(t, backend.Record(dir, spec))
	require.NoError(t, backend.Record(dir, spec), "recording the same again is no error")
	b, err := os.ReadFile(filepath.Join(dir, layout.StoreFile))
	require.NoError(t, err)
	require.NotContains(t, string(b), "hunter2")
	require.NotContains(t, string(b), "secret-example")
	require.NotContains(t, string(b), "alice")
	rec, found, err := backend.Recorded(dir)
	require.NoError(t, err)
	require.True(t, found)
	require.NoError(t, backend.Match(dir, rec, spec, true))
	require.NoError(t, layout.Exists(dir))

	other, err := backend.Parse(dir, "postgres://alice@db.example/ledgers?schema=s2", "s3://bkt/p?endpoint=http://h:1")
	require.NoError(t, err)
	require.ErrorIs(t, backend.Record(dir, other), backend.ErrMismatch)
}

func TestMatch(t *testing.T) {
	s3env(t)
	dir := t.TempDir()
	parse := func(st, bl string) backend.Spec {
		s, err := backend.Parse(dir, st, bl)
		require.NoError(t, err)
		return s
	}
	pg := parse("postgres://u@db1:5432/ledgers?schema=a", "s3://bkt?endpoint=http://h:1")
	for _, c := range []struct {
		name  string
		given backend.Spec
		write bool // whether a writer may open with it
		read  bool // whether a reader may
		want  string
	}{
		{"same", pg, true, true, ""},
		{"other user and password", parse("postgres://v:pw@db1:5432/ledgers?schema=a", "s3://bkt?endpoint=http://h:1"), true, true, ""},
		{"a replica", parse("postgres://u@db2:5432/ledgers?schema=a", "s3://bkt?endpoint=http://h:1"), false, true, "keeps its log in PostgreSQL database \"ledgers\" on db1:5432, schema \"a\": give the -store that names it; if it moved, edit"},
		{"other schema", parse("postgres://u@db1:5432/ledgers?schema=b", "s3://bkt?endpoint=http://h:1"), false, false, "give the -store"},
		{"no -store", parse("", "s3://bkt?endpoint=http://h:1"), false, false, "keeps its log in PostgreSQL"},
		{"no -blobs", parse("postgres://u@db1:5432/ledgers?schema=a", ""), false, true, "keeps its attachments in S3 bucket bkt at http://h:1: give the -blobs"},
		{"other bucket", parse("postgres://u@db1:5432/ledgers?schema=a", "s3://bkt2?endpoint=http://h:1"), false, true, "give the -blobs"},
	} {
		err := backend.Match(dir, pg, c.given, true)
		if c.write {
			require.NoError(t, err, c.name)
		} else {
			require.ErrorIs(t, err, backend.ErrMismatch, c.name)
			require.ErrorContains(t, err, c.want, c.name)
		}
		err = backend.Match(dir, pg, c.given, false)
		if c.read {
			require.NoError(t, err, c.name)
		} else {
			require.ErrorIs(t, err, backend.ErrMismatch, c.name)
		}
	}
	// A default ledger given blobs it never had.
	err := backend.Match(dir, backend.Default(dir), parse("", "s3://bkt?endpoint=http://h:1"), true)
	require.ErrorIs(t, err, backend.ErrMismatch)
	require.ErrorContains(t, err, "keeps its attachments in its store: give no -blobs")
	// A default ledger given another store: nothing was given when it was made, nothing now
	// (and there is no ledger.store to edit).
	err = backend.Match(dir, backend.Default(dir), parse(filepath.Join(t.TempDir(), "x"), ""), true)
	require.ErrorIs(t, err, backend.ErrMismatch)
	require.ErrorContains(t, err, ": give no -store")
	require.NotContains(t, err.Error(), "edit")
}

func TestRecordedCorrupt(t *testing.T) {
	for _, body := range []string{"{", `{"version":2,"store":{"kind":"file","path":"/x"}}`, `{"version":1,"store":{"kind":"file","path":"rel"}}`,
		`{"version":1,"store":{"kind":"postgres"}}`, `{"version":1,"store":{"kind":"file","path":"/x"},"blobs":{"kind":"gcs"}}`} {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, layout.StoreFile), []byte(body), 0o600))
		_, _, err := backend.Recorded(dir)
		require.ErrorIs(t, err, backend.ErrCorruptRecord, body)
	}
}

func TestCheckFileFresh(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(t.TempDir(), "st")
	spec, err := backend.Parse(dir, other, "")
	require.NoError(t, err)
	require.NoError(t, backend.CheckFileFresh(spec))
	require.NoError(t, os.Mkdir(other, 0o700))
	require.NoError(t, backend.CheckFileFresh(spec))
	require.NoError(t, os.WriteFile(filepath.Join(other, "x"), nil, 0o600))
	require.ErrorIs(t, backend.CheckFileFresh(spec), backend.ErrNotEmpty)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "y"), nil, 0o600))
	require.NoError(t, backend.CheckFileFresh(backend.Default(dir)), "the default is checked by the layout itself")
}

// Against real servers: a PostgreSQL store (read-only and for writing, refused when a new
// ledger would land on an old one) and an S3 blob store.
func TestOpenRemote(t *testing.T) {
	ctx := context.Background()
	dsn := backendtest.Postgres(t)
	_, blobsURL := backendtest.S3(t, "blobs")
	dir := t.TempDir()
	spec, err := backend.Parse(dir, dsn+"&schema=ledger_one", blobsURL)
	require.NoError(t, err)

	// A reader before any writer: the schema does not exist yet.
	_, err = backend.OpenReader(ctx, dir, spec, nil)
	require.Error(t, err)

	s, err := backend.OpenRemote(ctx, spec, false, true, nil)
	require.NoError(t, err)
	require.IsType(t, &pgstore.Store{}, s.Store)
	require.Same(t, s.Store.(*pgstore.Store), s.Vault.(*pgstore.Store))
	require.Equal(t, "ledger_one", s.Store.(*pgstore.Store).Schema())
	sum, data := blob("attachment")
	require.NoError(t, s.Blobs.WriteBlob(ctx, sum, data))
	got, err := s.Blobs.ReadBlob(ctx, sum)
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Equal(t, "blobs/", s.Blobs.(*s3store.Blobs).Key(sum)[:6])
	require.NoError(t, s.Store.Append(ctx, oneEntry()))
	require.NoError(t, s.Close())

	// A new ledger directory on a schema that holds a ledger is refused.
	_, err = backend.OpenRemote(ctx, spec, false, true, nil)
	require.ErrorIs(t, err, backend.ErrNotEmpty)
	require.ErrorContains(t, err, `schema "ledger_one" holds 1 entries`)

	// A reader sees it, read-only.
	r, err := backend.OpenReader(ctx, dir, spec, nil)
	require.NoError(t, err)
	n, err := r.Size(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.ErrorIs(t, r.Append(ctx, oneEntry()), store.ErrReadOnly)
	require.NoError(t, r.Close())
}

// A server that cannot be reached fails the open with an error that names it, not its password.
func TestOpenRemoteUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec, err := backend.Parse("d", "postgres://u:hunter2@/db?host="+filepath.Join(t.TempDir(), "nosocket")+"&connect_timeout=2", "")
	require.NoError(t, err)
	_, err = backend.OpenRemote(ctx, spec, false, true, nil)
	require.Error(t, err)
	require.ErrorContains(t, err, `-store PostgreSQL database "db"`)
	require.NotContains(t, err.Error(), "hunter2")

	s3env(t)
	spec, err = backend.Parse("d", "", "s3://bkt?endpoint=http://127.0.0.1:1")
	require.NoError(t, err)
	_, err = backend.OpenRemote(ctx, spec, false, true, nil)
	require.Error(t, err)
	require.True(t, errors.Is(err, s3store.ErrUnavailable) || strings.Contains(err.Error(), "connect"), err.Error())
	require.ErrorContains(t, err, "-blobs S3 bucket bkt")
}

func blob(s string) (store.Hash, []byte) {
	return sha256.Sum256([]byte(s)), []byte(s)
}

// oneEntry is a batch of the first entry of a log (a store does not interpret its bytes).
func oneEntry() *store.Batch {
	return &store.Batch{Entries: []store.Entry{{Index: 0, Leaf: []byte("leaf"), Payload: []byte("payload")}}, Hashes: []store.Hash{sha256.Sum256([]byte("leaf"))}}
}
