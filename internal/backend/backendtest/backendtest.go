// Package backendtest gives the tests of the programs under examples/ real servers to point
// -store and -blobs at: a PostgreSQL database (store/pgstore/pgtest) as a postgres:// URL, and
// a versitygw S3 bucket with Object Lock (store/s3store/s3test) as an s3:// URL, with the
// credentials in the environment as the programs read them. Each skips the test when its
// server is not installed, or fails it when COMMSEAL_REQUIRE_EXTERNAL=1 (internal/testenv).
// RefusesBadFlags, RefusesOtherLedgers and RefusesAnotherLedgersStore check, for any program,
// that a bad -store or -blobs and a ledger directory or store that is not the run's are refused
// with exit status 2 (internal/ledgerdir.ExitCode) and leave nothing written.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
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

// RefusesOtherLedgers checks the rule every program that opens a ledger directory keeps: a
// directory or store that is not this run's to use is refused with exit 2 (ledgerdir.ExitCode),
// with a message that names the program, and nothing is written. It makes a ledger whose file
// store is in a directory of its own (-store DIR2) and runs the program on it
//
//   - without -store, which the directory records otherwise (backend.ErrMismatch);
//   - in a new directory with that -store, which holds a ledger (backend.ErrNotEmpty, or
//     layout.ErrNoLedger for a program that never lays out a new ledger);
//   - while the ledger is open to write in this process (ledgerdir.ErrInUse).
//
// run runs the program with -dir dir, flags and whatever else it needs to get as far as
// opening the ledger, and returns its exit code and standard error.
func RefusesOtherLedgers(t *testing.T, program string, run func(dir string, flags ...string) (code int, stderr string)) {
	t.Helper()
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir, other := filepath.Join(t.TempDir(), "ledger"), filepath.Join(t.TempDir(), "log")
	spec, err := backend.Parse(dir, other, "")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	before := snapshot(t, dir, other)
	check := func(what string, code int, stderr string) {
		t.Helper()
		if code != ledgerdir.ExitRefused {
			t.Errorf("%s, %s: exit %d, want 2 (refused): %s", program, what, code, stderr)
		}
		if !strings.Contains(stderr, program+": ") {
			t.Errorf("%s, %s: the error does not name the program: %s", program, what, stderr)
		}
	}
	code, stderr := run(dir)
	check("a directory whose store is elsewhere, without -store", code, stderr)
	if !strings.Contains(stderr, backend.ErrMismatch.Error()) {
		t.Errorf("%s: the error does not say %q: %s", program, backend.ErrMismatch, stderr)
	}
	code, stderr = run(fresh, "-store", other)
	check("a new directory on another ledger's store", code, stderr)
	if !strings.Contains(stderr, backend.ErrNotEmpty.Error()) && !strings.Contains(stderr, layout.ErrNoLedger.Error()) {
		t.Errorf("%s: the error says neither %q nor %q: %s", program, backend.ErrNotEmpty, layout.ErrNoLedger, stderr)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: %s was created (stat: %v)", program, fresh, err)
	}
	l, err = ledgerdir.OpenOn(ctx, dir, "", spec, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, stderr = run(dir, "-store", other)
	check("a directory open in another process", code, stderr)
	if !strings.Contains(stderr, ledgerdir.ErrInUse.Error()) {
		t.Errorf("%s: the error does not say %q: %s", program, ledgerdir.ErrInUse, stderr)
	}
	if got := snapshot(t, dir, other); !maps.Equal(got, before) {
		t.Errorf("%s: a refused run wrote in the ledger: before %v, after %v", program, before, got)
	}
}

// RefusesAnotherLedgersStore checks that a program laying out a new ledger directory on a
// PostgreSQL store that another ledger has claimed, before that one appended anything, is
// refused with exit 2 (ledger.ErrOtherLedger), and writes nothing in the store. run runs the
// program with -dir dir and flags (-store among them). It skips without PostgreSQL (Postgres).
func RefusesAnotherLedgersStore(t *testing.T, program string, run func(dir string, flags ...string) (code int, stderr string)) {
	t.Helper()
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	pgURL := Postgres(t)
	a := filepath.Join(t.TempDir(), "a")
	spec, err := backend.Parse(a, pgURL, "")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledgerdir.OpenOn(ctx, a, "", spec, ledger.Options{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, stderr := run(filepath.Join(t.TempDir(), "b"), "-store", pgURL)
	if code != ledgerdir.ExitRefused {
		t.Errorf("%s on another ledger's PostgreSQL store: exit %d, want 2 (refused): %s", program, code, stderr)
	}
	if !strings.Contains(stderr, ledger.ErrOtherLedger.Error()) {
		t.Errorf("%s: the error does not say %q: %s", program, ledger.ErrOtherLedger, stderr)
	}
	if n := l.Size(); n != 0 {
		t.Errorf("%s: the refused run appended %d entries to the other ledger", program, n)
	}
}

// snapshot maps every file under dirs (but the directory's lock file) to its size and
// modification time.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() == layout.LockFile {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			out[p] = fmt.Sprint(fi.Size(), " ", fi.ModTime())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}
