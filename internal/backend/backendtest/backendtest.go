// Package backendtest gives the tests of the programs under examples/ real servers to point
// -store and -blobs at: a PostgreSQL database (store/pgstore/pgtest) as a postgres:// URL, and
// a versitygw S3 bucket with Object Lock (store/s3store/s3test) as an s3:// URL, with the
// credentials in the environment as the programs read them. Each skips the test when its
// server is not installed, or fails it when COMMSEAL_REQUIRE_EXTERNAL=1 (internal/testenv).
package backendtest

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/store/s3store/s3test"
)

// Postgres returns the -store URL of a new, empty database on the cluster that pgtest shares
// among the tests of the process (run the package's tests through pgtest.Main to keep one
// cluster for all of them).
func Postgres(t testing.TB) string {
	t.Helper()
	return URL(t, pgtest.Start(t))
}

// URL turns a key=value DSN of pgtest ("host=... port=... user=... dbname=... sslmode=...")
// into the postgres:// URL that -store takes.
func URL(t testing.TB, dsn string) string {
	t.Helper()
	q := url.Values{}
	db := ""
	for _, kv := range strings.Fields(dsn) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("backendtest: cannot read DSN %q", dsn)
		}
		if k == "dbname" {
			db = v
			continue
		}
		q.Set(k, v)
	}
	return (&url.URL{Scheme: "postgres", Path: "/" + db, RawQuery: q.Encode()}).String()
}

// S3 starts a versitygw server for the test (stopped when it ends), sets AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION to its credentials for the test (so the test must not
// be parallel), and returns the server and the -blobs URL of its bucket under prefix (which
// may be empty).
func S3(t testing.TB, prefix string) (*s3test.Server, string) {
	t.Helper()
	srv := s3test.New(t)
	setenv(t, "AWS_ACCESS_KEY_ID", s3test.AccessKey)
	setenv(t, "AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	setenv(t, "AWS_REGION", s3test.Region)
	u := url.URL{Scheme: "s3", Host: srv.Bucket, Path: "/" + prefix, RawQuery: url.Values{"endpoint": {srv.URL}}.Encode()}
	return srv, u.String()
}

func setenv(t testing.TB, k, v string) {
	t.Helper()
	if tt, ok := t.(interface{ Setenv(string, string) }); ok {
		tt.Setenv(k, v)
		return
	}
	t.Fatalf("backendtest: S3 needs a *testing.T or *testing.B to set %s", k)
}

// RefusesBadFlags checks the rule every program keeps for -store and -blobs: a value it cannot
// use is a usage error (exit 2) whose message names the program and the flags, and nothing is
// created at the ledger directory. run runs the program with -dir dir and flags, and returns
// its exit code and standard error.
func RefusesBadFlags(t *testing.T, program string, run func(dir string, flags ...string) (code int, stderr string)) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nothing")
	for _, flags := range [][]string{{"-store", "mysql://h/db"}, {"-blobs", "s3://NO"}} {
		code, stderr := run(dir, flags...)
		if code != 2 {
			t.Errorf("%s %v: exit %d, want 2 (a usage error): %s", program, flags, code, stderr)
		}
		if want := program + ": backend: invalid -store or -blobs"; !strings.Contains(stderr, want) {
			t.Errorf("%s %v: the error does not say %q: %s", program, flags, want, stderr)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s %v: %s was created (stat: %v)", program, flags, dir, err)
		}
	}
}
