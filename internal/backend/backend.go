// Package backend turns the -store and -blobs flags of the programs under examples/ into the
// stores a ledger runs on, in one place, so that every program chooses them the same way:
//
//	-store DIR                       the file store (store/filestore) in DIR; default: the
//	                                 ledger directory's store/ (the layout of package layout)
//	-store postgres://USER@HOST:PORT/DB[?schema=NAME&...]
//	                                 the log, checkpoints and key vault in PostgreSQL
//	                                 (store/pgstore), in schema NAME (default "commseal"); the
//	                                 other parameters are libpq's and pgx's (sslmode,
//	                                 pool_max_conns, host=/socket/dir, ...); postgresql:// too
//	-blobs s3://BUCKET[/PREFIX][?endpoint=URL&region=R&retention=DUR&path-style=BOOL]
//	                                 attachments in an S3 bucket with Object Lock
//	                                 (store/s3store), passed to the ledger as
//	                                 ledger.Options.Blobs; default: in the store
//
// A password goes in the PostgreSQL URL, in PGPASSWORD or in ~/.pgpass, as libpq takes it. S3
// credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), never
// from the URL. The region defaults to AWS_REGION, then us-east-1; endpoint defaults to AWS's
// own; path-style addressing defaults to on when an endpoint is given (most servers other than
// AWS want it); retention (a Go duration, or days as "2557d") defaults to
// s3store.DefaultRetention; PREFIX names the objects PREFIX/<sha256 hex>.
//
// # Where things live
//
// The ledger directory (-dir) keeps what is secret or local whatever the store: the checkpoint
// signing key (ledger.key), the verifier key (ledger.vkey), the keyring and its key-encryption
// keys (ledger.keyring, ledger.kek, keks/), the search index (index/) and the surveillance
// cursor. With a file store the wrapped data keys are in DIR/keys (store/keydir), as before;
// with PostgreSQL they are in the store's key vault, beside the entries (store/pgstore
// implements store.KeyVault), so that every process writing to the ledger sees the same keys,
// while the KEKs that unwrap them stay out of the database.
//
// A ledger directory whose store is not the default records where it is, in ledger.store
// (layout.StoreFile, JSON, no credentials): the kind, and for PostgreSQL host, port, database and
// schema, for a file store its directory, for S3 endpoint, bucket and prefix, and the bucket's
// region, path-style addressing and retention. A writer must then be given the same -store and
// -blobs (ErrMismatch otherwise, before anything is opened): a log or attachments opened in the
// wrong place would start a second ledger under the same signing key. Of the S3 settings, a writer
// may leave out what it likes and gets what is recorded (Settled), but one it gives must be the
// recorded one: a writer started with another retention= would lock new attachments for another
// period. (A ledger.store written before it recorded them holds writers to none.) If a database or
// bucket moves, edit ledger.store. A reader (verify) is only held to the kind of store and, for
// PostgreSQL, the database and schema: it may read a replica on another host, and trusts nothing
// but the verifier key anyway. The default layout (file store in DIR/store, blobs in it) writes no
// ledger.store: it is exactly what it was. A new ledger directory given a store that already holds
// a ledger (entries or checkpoints) is refused with ErrNotEmpty: its keys are elsewhere.
//
// Several processes: a ledger directory is opened to write by one process at a time
// (layout.LockFile). Processes that append to one PostgreSQL ledger each need a directory of
// their own holding copies of ledger.key, ledger.vkey, ledger.keyring, its KEK files and
// ledger.store; a KEK rotation (retention) in one of them must then be copied to the others
// before they restart. Coordinating them (one checkpoint signer) is the ledger's business, not
// this package's: it passes ledger.Options through unchanged.
//
// This package opens stores; it links no part of the writer (package ledger), so an auditor's
// program uses it too.
package backend

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/s3store"
)

// Kinds of store.
const (
	File     = "file"
	Postgres = "postgres"
	S3       = "s3"
)

// DefaultSchema is the PostgreSQL schema of a ledger whose -store URL names none.
const DefaultSchema = "commseal"

// Errors callers branch on with errors.Is.
var (
	// ErrInvalid is returned by Parse for a -store or -blobs value it cannot use: the
	// programs report it as a usage error (exit status 2) before anything is opened or
	// written.
	ErrInvalid = errors.New("backend: invalid -store or -blobs")
	// ErrMismatch is returned when the ledger directory records another store or blob store
	// (ledger.store) than the one given.
	ErrMismatch = errors.New("backend: the ledger directory's store is elsewhere")
	// ErrNotEmpty is returned when a new ledger directory is given a store that already holds
	// a ledger: that ledger's keys are in another directory.
	ErrNotEmpty = errors.New("backend: the store already holds a ledger")
	// ErrCorruptRecord is returned for a ledger.store that cannot be read.
	ErrCorruptRecord = errors.New("backend: ledger.store is corrupt")
)

// Flags are the values of -store and -blobs.
type Flags struct {
	Store string
	Blobs string
}

// Register adds -store and -blobs to fl.
func (f *Flags) Register(fl *flag.FlagSet) {
	f.RegisterStore(fl)
	fl.StringVar(&f.Blobs, "blobs", "", "where attachments live: s3://`bucket`[/prefix]?endpoint=URL&region=R (Object Lock; credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); default: in the store")
}

// RegisterStore adds -store alone to fl, for a program that reads no attachments (verify).
func (f *Flags) RegisterStore(fl *flag.FlagSet) {
	fl.StringVar(&f.Store, "store", "", "where the log, checkpoints and data keys live: a `directory` (the file store; default DIR/store) or postgres://user@host:port/db?schema=NAME")
}

// Parse parses the flags for the ledger directory dir (see Parse).
func (f *Flags) Parse(dir string) (Spec, error) { return Parse(dir, f.Store, f.Blobs) }

// Location is where one store is. Only the fields of its Kind are set. It holds no credential
// except in DSN, which is never printed or recorded.
type Location struct {
	Kind string `json:"kind"`
	// File: the store's directory, absolute.
	Path string `json:"path,omitempty"`
	// PostgreSQL: where the server is and which ledger in it.
	Host     string `json:"host,omitempty"`
	Port     uint16 `json:"port,omitempty"`
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema,omitempty"`
	// S3: the endpoint ("" for AWS's), the bucket and the object name prefix.
	Endpoint string `json:"endpoint,omitempty"`
	Bucket   string `json:"bucket,omitempty"`
	Prefix   string `json:"prefix,omitempty"`

	dsn       string // PostgreSQL: the URL to connect with, without the schema parameter
	region    string
	pathStyle bool
	retention time.Duration // 0: s3store.DefaultRetention
	given     s3Given       // which of the three the -blobs URL set (the rest are defaults)
	recorded  bool          // the three are from ledger.store, which recorded them
	creds     aws.Credentials
}

// s3Given says which S3 settings a -blobs URL gave; the others were defaults.
type s3Given struct{ region, pathStyle, retention bool }

// s3Settings are the S3 settings that ledger.store records beside where the bucket is: a
// writer given none of them takes these, and one given others is refused (ErrMismatch), so
// that attachments are not locked for another period, or sent to another region, by the
// writer that happens to run.
type s3Settings struct {
	Region    string `json:"region"`
	PathStyle bool   `json:"path_style"`
	Retention string `json:"retention"` // days ("2557d") or a Go duration, as -blobs takes it
}

// settings returns the S3 settings of l, with the default retention resolved.
func (l Location) settings() s3Settings {
	r := l.retention
	if r == 0 {
		r = s3store.DefaultRetention
	}
	ret := r.String()
	if r%(24*time.Hour) == 0 {
		ret = strconv.FormatInt(int64(r/(24*time.Hour)), 10) + "d"
	}
	return s3Settings{Region: l.region, PathStyle: l.pathStyle, Retention: ret}
}

// String describes the location for messages, without credentials.
func (l Location) String() string {
	switch l.Kind {
	case File:
		return "the file store in " + l.Path
	case Postgres:
		return fmt.Sprintf("PostgreSQL database %q on %s, schema %q", l.Database, hostPort(l.Host, l.Port), l.Schema)
	case S3:
		s := "S3 bucket " + l.Bucket
		if l.Prefix != "" {
			s += ", prefix " + l.Prefix
		}
		if l.Endpoint != "" {
			s += " at " + l.Endpoint
		}
		return s
	}
	return "the ledger's store"
}

func hostPort(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return "socket " + host + " port " + strconv.Itoa(int(port))
	}
	return host + ":" + strconv.Itoa(int(port))
}

// Spec is where a ledger's stores are: the store (log, checkpoints; the key vault too on
// PostgreSQL) and, if Blobs.Kind is set, the blob store of its attachments.
type Spec struct {
	Store Location
	Blobs Location // Kind "": the attachments are in the store
	// Default is set for the file store in DIR/store with its own blobs: the layout of
	// package layout, which records nothing in ledger.store.
	Default bool
}

// Remote reports whether some store is outside the ledger directory's file system: a server
// reached over the network, which can be reached before anything is written in the directory.
func (s Spec) Remote() bool { return s.Store.Kind == Postgres || s.Blobs.Kind == S3 }

// String describes the spec for messages, without credentials.
func (s Spec) String() string {
	out := s.Store.String()
	if s.Blobs.Kind != "" {
		out += ", attachments in " + s.Blobs.String()
	}
	return out
}

// Default returns the spec of the layout's default: the file store in DIR/store, blobs in it.
func Default(dir string) Spec {
	return Spec{Store: Location{Kind: File, Path: absPath(filepath.Join(dir, layout.StoreDir))}, Default: true}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// bucketName is S3's rule for bucket names, less the rarer exclusions (the server has the last
// word).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Parse parses the values of -store and -blobs for the ledger directory dir. It reads the
// environment (PG* variables, S3 credentials) but opens and writes nothing; every error wraps
// ErrInvalid and names the flag and what is wrong, never a password.
func Parse(dir, storeFlag, blobsFlag string) (Spec, error) {
	spec := Default(dir)
	switch {
	case storeFlag == "":
	case strings.HasPrefix(storeFlag, "postgres://") || strings.HasPrefix(storeFlag, "postgresql://"):
		loc, err := parsePostgres(storeFlag)
		if err != nil {
			return Spec{}, err
		}
		spec.Store, spec.Default = loc, false
	case strings.Contains(storeFlag, "://"):
		scheme, _, _ := strings.Cut(storeFlag, "://")
		return Spec{}, fmt.Errorf("%w: -store %s://...: unknown kind of store; give a directory (the file store) or postgres://user@host:port/db", ErrInvalid, scheme)
	default:
		p := absPath(storeFlag)
		if p != spec.Store.Path {
			spec.Store, spec.Default = Location{Kind: File, Path: p}, false
		}
	}
	switch {
	case blobsFlag == "":
	case strings.HasPrefix(blobsFlag, "s3://"):
		loc, err := parseS3(blobsFlag)
		if err != nil {
			return Spec{}, err
		}
		spec.Blobs, spec.Default = loc, false
	default:
		what := blobsFlag
		if scheme, _, ok := strings.Cut(blobsFlag, "://"); ok {
			what = scheme + "://..."
		}
		return Spec{}, fmt.Errorf("%w: -blobs %s: want s3://bucket[/prefix]?endpoint=URL (attachments are otherwise kept in the store)", ErrInvalid, what)
	}
	return spec, nil
}

// redacted is u as an error may show it: without the password of its user part (as
// url.URL.Redacted) nor a password given as a parameter (libpq reads ?password=).
func redacted(u *url.URL) string {
	c := *u
	if q, err := url.ParseQuery(c.RawQuery); err == nil && q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	} else if err != nil {
		c.RawQuery = ""
	}
	return c.Redacted()
}

func parsePostgres(s string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w: -store: "+format, append([]any{ErrInvalid}, args...)...)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a PostgreSQL URL (postgres://user@host:port/db?schema=NAME)")
	}
	loc := Location{Kind: Postgres, Schema: DefaultSchema}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("%s: its parameters: %v", redacted(u), err)
	}
	if vs, ok := q["schema"]; ok {
		if len(vs) != 1 || !schemaName.MatchString(vs[0]) {
			return bad("%s: schema must be one name of letters, digits and _ (at most 63), not starting with a digit", redacted(u))
		}
		loc.Schema = vs[0]
		q.Del("schema")
		u.RawQuery = q.Encode()
	}
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		// pgconn's parse errors redact the password.
		return bad("%s: %v", redacted(u), err)
	}
	cc := cfg.ConnConfig
	if cc.Database == "" {
		return bad("%s names no database (postgres://user@host:port/DB)", redacted(u))
	}
	loc.Host, loc.Port, loc.Database, loc.dsn = cc.Host, cc.Port, cc.Database, u.String()
	return loc, nil
}

func parseS3(s string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w: -blobs: "+format, append([]any{ErrInvalid}, args...)...)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not an S3 URL (s3://bucket[/prefix]?endpoint=URL)")
	}
	if u.User != nil {
		return bad("credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	loc := Location{Kind: S3, Bucket: u.Host}
	if !bucketName.MatchString(loc.Bucket) || strings.Contains(loc.Bucket, "..") {
		return bad("s3://%s: want a bucket name of 3 to 63 lower-case letters, digits, dots and hyphens: s3://bucket[/prefix]", loc.Bucket)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		loc.Prefix = p + "/"
	}
	loc.region = os.Getenv("AWS_REGION")
	if loc.region == "" {
		loc.region = "us-east-1"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("%s: its parameters: %v", redacted(u), err)
	}
	for name, vs := range q {
		if len(vs) != 1 || vs[0] == "" {
			return bad("%s: give %s once, with a value", redacted(u), name)
		}
		v := vs[0]
		switch name {
		case "endpoint":
			e, err := url.Parse(v)
			switch {
			case err != nil:
				return bad("endpoint: want http(s)://host[:port]")
			case (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil:
				return bad("endpoint=%s: want http(s)://host[:port], without credentials", e.Redacted())
			}
			loc.Endpoint = strings.TrimSuffix(e.String(), "/")
			loc.pathStyle = true
		case "region":
			loc.region, loc.given.region = v, true
		case "path-style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("path-style=%s: want true or false", v)
			}
			loc.pathStyle = b
		case "retention":
			d, err := parseRetention(v)
			if err != nil {
				return bad("retention=%s: %v", v, err)
			}
			loc.retention, loc.given.retention = d, true
		default:
			return bad("unknown parameter %q (endpoint, region, path-style, retention)", name)
		}
	}
	if q.Has("path-style") { // an explicit setting wins over the endpoint's default
		loc.pathStyle, _ = strconv.ParseBool(q.Get("path-style"))
		loc.given.pathStyle = true
	}
	loc.creds = aws.Credentials{
		AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment",
	}
	if loc.creds.AccessKeyID == "" || loc.creds.SecretAccessKey == "" {
		return bad("%s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the bucket's credentials)", redacted(u))
	}
	return loc, nil
}

// parseRetention takes a Go duration or a number of days ("2557d").
func parseRetention(v string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 100*366 {
			return 0, errors.New("want a number of days such as 2557d, or a duration such as 8760h")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			return 0, errors.New("want a number of days such as 2557d, or a duration such as 8760h")
		}
	}
	return d, nil
}

// record is the JSON of ledger.store.
type record struct {
	Version int       `json:"version"`
	Store   Location  `json:"store"`
	Blobs   *Location `json:"blobs,omitempty"`
	// S3 is the bucket's settings (written since commseal's ledger.store records them; a
	// record without them holds writers to none).
	S3 *s3Settings `json:"s3,omitempty"`
}

const recordVersion = 1

// Recorded returns what the ledger directory records of its stores: the spec in ledger.store,
// or, without that file, the default when the directory holds a file store (DIR/store), with
// found set in both cases. found is false for a directory that holds no ledger yet.
func Recorded(dir string) (spec Spec, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, layout.StoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		if st, err := os.Stat(filepath.Join(dir, layout.StoreDir)); err == nil && st.IsDir() {
			return Default(dir), true, nil
		}
		return Spec{}, false, nil
	}
	if err != nil {
		return Spec{}, false, fmt.Errorf("backend: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Spec{}, false, fmt.Errorf("%w: %s: %v", ErrCorruptRecord, filepath.Join(dir, layout.StoreFile), err)
	}
	if r.Version != recordVersion {
		return Spec{}, false, fmt.Errorf("%w: %s has version %d, which this program does not know", ErrCorruptRecord, filepath.Join(dir, layout.StoreFile), r.Version)
	}
	spec = Spec{Store: r.Store}
	if r.Blobs != nil {
		spec.Blobs = *r.Blobs
	}
	if r.S3 != nil && spec.Blobs.Kind == S3 {
		d, err := parseRetention(r.S3.Retention)
		if err != nil || r.S3.Region == "" {
			return Spec{}, false, fmt.Errorf("%w: %s: its S3 settings (region %q, retention %q)", ErrCorruptRecord, filepath.Join(dir, layout.StoreFile), r.S3.Region, r.S3.Retention)
		}
		spec.Blobs.region, spec.Blobs.pathStyle, spec.Blobs.retention = r.S3.Region, r.S3.PathStyle, d
		spec.Blobs.recorded = true
	}
	switch {
	case spec.Store.Kind == File && filepath.IsAbs(spec.Store.Path),
		spec.Store.Kind == Postgres && spec.Store.Database != "" && spec.Store.Schema != "":
	default:
		return Spec{}, false, fmt.Errorf("%w: %s names no usable store", ErrCorruptRecord, filepath.Join(dir, layout.StoreFile))
	}
	if spec.Blobs.Kind != "" && (spec.Blobs.Kind != S3 || spec.Blobs.Bucket == "") {
		return Spec{}, false, fmt.Errorf("%w: %s names no usable blob store", ErrCorruptRecord, filepath.Join(dir, layout.StoreFile))
	}
	spec.Default = spec.Store.Kind == File && spec.Store.Path == Default(dir).Store.Path && spec.Blobs.Kind == ""
	return spec, true, nil
}

// Record writes ledger.store for a new ledger directory whose spec is not the default (for
// the default it does nothing). It is written once (durable.CreateExclusive); an existing one
// that says the same is no error.
func Record(dir string, spec Spec) error {
	if spec.Default {
		return nil
	}
	r := record{Version: recordVersion, Store: spec.Store}
	if spec.Blobs.Kind != "" {
		b := spec.Blobs
		r.Blobs = &b
	}
	if spec.Blobs.Kind == S3 {
		st := spec.Blobs.settings()
		r.S3 = &st
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	err := durable.CreateExclusive(filepath.Join(dir, layout.StoreFile), append(b, '\n'))
	if errors.Is(err, fs.ErrExist) {
		rec, found, rerr := Recorded(dir)
		if rerr != nil {
			return rerr
		}
		if found {
			return Match(dir, rec, spec, true)
		}
	}
	if err != nil {
		return fmt.Errorf("backend: writing %s: %w", layout.StoreFile, err)
	}
	return nil
}

// where is how a mismatch names a recorded location: rec, or, for none, instead.
func where(rec Location, instead string) string {
	if rec.Kind == "" {
		return instead
	}
	return rec.String()
}

// Match reports, as ErrMismatch, a spec given to open a ledger directory that records another
// one (Recorded). A writer is held to the same location of every store; a reader (write unset)
// to the same kind of store and, for PostgreSQL, the same database and schema.
func Match(dir string, recorded, given Spec, write bool) error {
	same := func(a, b Location) bool {
		if a.Kind != b.Kind {
			return false
		}
		switch {
		case a.Kind == Postgres && !write:
			return a.Database == b.Database && a.Schema == b.Schema
		case !write:
			return true
		}
		return a.Path == b.Path && a.Host == b.Host && a.Port == b.Port && a.Database == b.Database &&
			a.Schema == b.Schema && a.Endpoint == b.Endpoint && a.Bucket == b.Bucket && a.Prefix == b.Prefix
	}
	mismatch := func(what, flagName string, rec Location) error {
		hint := ""
		if write {
			hint = "; if it moved, edit " + filepath.Join(dir, layout.StoreFile)
		}
		if rec.Kind == "" || recorded.Default { // nothing given when it was made: nothing now
			return fmt.Errorf("%w: %s keeps its %s in %s: give no %s", ErrMismatch, dir, what, where(rec, "its store"), flagName)
		}
		return fmt.Errorf("%w: %s keeps its %s in %s: give the %s that names it%s", ErrMismatch, dir, what, rec, flagName, hint)
	}
	if !same(recorded.Store, given.Store) {
		return mismatch("log", "-store", recorded.Store)
	}
	if write && !same(recorded.Blobs, given.Blobs) {
		return mismatch("attachments", "-blobs", recorded.Blobs)
	}
	if write && recorded.Blobs.Kind == S3 && recorded.Blobs.recorded {
		rec, giv := recorded.Blobs.settings(), given.Blobs.settings()
		for _, c := range []struct {
			name     string
			set      bool
			rec, giv string
		}{
			{"region", given.Blobs.given.region, rec.Region, giv.Region},
			{"path-style", given.Blobs.given.pathStyle, strconv.FormatBool(rec.PathStyle), strconv.FormatBool(giv.PathStyle)},
			{"retention", given.Blobs.given.retention, rec.Retention, giv.Retention},
		} {
			if c.set && c.rec != c.giv {
				return fmt.Errorf("%w: %s keeps its attachments in %s with %s=%s, not %s: give that, or leave %s out of -blobs", ErrMismatch, dir, recorded.Blobs, c.name, c.rec, c.giv, c.name)
			}
		}
	}
	return nil
}

// Settled returns given with the S3 settings it left to their defaults taken from recorded
// (Recorded), which Match has found it agrees with: a writer given -blobs s3://bucket locks new
// attachments for the retention, and reaches the region, that the directory recorded.
func Settled(recorded, given Spec) Spec {
	r, g := recorded.Blobs, &given.Blobs
	if r.Kind != S3 || g.Kind != S3 || !r.recorded {
		return given
	}
	if !g.given.region {
		g.region = r.region
	}
	if !g.given.pathStyle {
		g.pathStyle = r.pathStyle
	}
	if !g.given.retention {
		g.retention = r.retention
	}
	return given
}

// Stores are the stores of a spec, open. Close closes them.
type Stores struct {
	// Store is the log and checkpoints: a *filestore.Store or a *pgstore.Store.
	Store store.Store
	// Vault is the key vault when the store keeps it (PostgreSQL); nil for a file store,
	// whose vault is DIR/keys.
	Vault store.KeyVault
	// Blobs is the blob store given with -blobs (an *s3store.Blobs), for
	// ledger.Options.Blobs; nil when the attachments are in the store.
	Blobs store.Blobs
}

// Close closes the blob store and the store.
func (s *Stores) Close() error {
	var err error
	if c, ok := s.Blobs.(interface{ Close() error }); ok {
		err = c.Close()
	}
	if s.Store != nil {
		err = errors.Join(err, s.Store.Close())
	}
	return err
}

// OpenRemote opens the stores of spec that are reached over the network (PostgreSQL, S3);
// the file store is left to OpenFile. A writer's PostgreSQL schema is created or migrated
// (store/pgstore); an S3 bucket must have Object Lock enabled. With fresh set (a new ledger
// directory), a store that already holds entries or checkpoints fails with ErrNotEmpty.
func OpenRemote(ctx context.Context, spec Spec, readOnly, fresh bool, log *slog.Logger) (*Stores, error) {
	s := &Stores{}
	if spec.Blobs.Kind == S3 {
		b, err := openS3(ctx, spec.Blobs)
		if err != nil {
			return nil, err
		}
		s.Blobs = b
	}
	if spec.Store.Kind == Postgres {
		pg, err := pgstore.Open(ctx, spec.Store.dsn, &pgstore.Options{Schema: spec.Store.Schema, ReadOnly: readOnly, Logger: log})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("-store %s: %w", spec.Store, err)
		}
		s.Store, s.Vault = pg, pg
		if fresh {
			if err := checkEmpty(ctx, pg, spec.Store); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	return s, nil
}

// checkEmpty fails with ErrNotEmpty if st holds entries or checkpoints.
func checkEmpty(ctx context.Context, st store.Store, loc Location) error {
	n, err := st.Size(ctx)
	if err != nil {
		return err
	}
	_, cerr := st.LatestCheckpoint(ctx)
	if cerr != nil && !errors.Is(cerr, store.ErrNotFound) {
		return cerr
	}
	if n > 0 || cerr == nil {
		return fmt.Errorf("%w: %s holds %d entries; open it with the ledger directory that holds its keys, or give a new schema (?schema=NAME)", ErrNotEmpty, loc, n)
	}
	return nil
}

func openS3(ctx context.Context, loc Location) (*s3store.Blobs, error) {
	creds := loc.creds
	o := s3.Options{
		Region:       loc.region,
		UsePathStyle: loc.pathStyle,
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
	}
	if loc.Endpoint != "" {
		o.BaseEndpoint = aws.String(loc.Endpoint)
	}
	b, err := s3store.Open(ctx, s3.New(o), s3store.Options{Bucket: loc.Bucket, Prefix: loc.Prefix, Retention: loc.retention})
	if err != nil {
		return nil, fmt.Errorf("-blobs %s: %w", loc, err)
	}
	return b, nil
}

// CheckFileFresh fails with ErrNotEmpty when the file store of a new ledger directory is in a
// directory of its own (-store DIR2) that already holds files.
func CheckFileFresh(spec Spec) error {
	if spec.Store.Kind != File || spec.Default {
		return nil
	}
	ents, err := os.ReadDir(spec.Store.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backend: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%w: %s is not empty; open it with the ledger directory that holds its keys", ErrNotEmpty, spec.Store.Path)
	}
	return nil
}

// OpenFile opens the file store of spec (a writer creates it if absent). A read-only one must
// exist: layout.ErrNoLedger otherwise.
func OpenFile(ctx context.Context, spec Spec, readOnly bool, log *slog.Logger) (*filestore.Store, error) {
	if readOnly {
		if st, err := os.Stat(spec.Store.Path); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%w: no file store in %s", layout.ErrNoLedger, spec.Store.Path)
		}
	}
	return filestore.Open(ctx, spec.Store.Path, &filestore.Options{ReadOnly: readOnly, Logger: log})
}

// OpenReader opens the store of spec read-only, for an auditor's program: beside a running
// writer, without the blob store, and without any part of the writer. When dir holds a ledger,
// spec must match what it records (Match, as a reader).
func OpenReader(ctx context.Context, dir string, spec Spec, log *slog.Logger) (store.Store, error) {
	rec, found, err := Recorded(dir)
	if err != nil {
		return nil, err
	}
	if found {
		if err := Match(dir, rec, spec, false); err != nil {
			return nil, err
		}
		if rec.Store.Kind == File && spec.Default {
			spec.Store.Path = rec.Store.Path // -store not given: the directory the ledger records
		}
	}
	if spec.Store.Kind == File {
		return OpenFile(ctx, spec, true, log)
	}
	s, err := OpenRemote(ctx, Spec{Store: spec.Store}, true, false, log)
	if err != nil {
		return nil, err
	}
	return s.Store, nil
}
