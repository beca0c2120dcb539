// Package pgtest runs a PostgreSQL server of its own for tests, as httptest runs an HTTP server:
// a real cluster made by initdb in a temporary directory, listening only on a Unix socket in
// that directory (no TCP port, nothing shared with a server the machine may already run), with
// fsync on, stopped and removed when the test ends.
//
// Start gives each test a fresh database on a cluster shared by the tests of the process, started
// when first needed; NewServer gives a test a cluster of its own, to stop, crash and restart:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) } // one cluster for the whole package
//
//	func TestSomething(t *testing.T) {
//		s, err := pgstore.Open(ctx, pgtest.Start(t), nil)
//		...
//	}
//
//	func TestRestart(t *testing.T) {
//		srv := pgtest.NewServer(t)
//		dsn := srv.CreateDatabase(t)
//		...
//		srv.Crash() // immediate shutdown: the next Start recovers from the WAL
//		srv.Start()
//	}
//
// When the test process runs as root, the server runs as the "postgres" user (initdb refuses
// root), in a directory made in the first of os.TempDir(), /var/tmp and /dev/shm that this user
// can reach. If the test process dies, the server is stopped with it (parent-death signal).
//
// The programs come from PATH, /usr/lib/postgresql/*/bin (newest first), /usr/local/bin or
// /usr/local/pgsql/bin. Without them, or when running as root without a "postgres" user to run
// the server as (initdb refuses root), the test is skipped with the reason, or fails when
// COMMSEAL_REQUIRE_EXTERNAL=1 (internal/testenv), as in CI.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL cluster run by a test. Its methods are safe for concurrent use.
type Server struct {
	dir  string // the temporary directory: data, sock, log
	bins string // the directory of initdb and postgres
	as   runAs  // the user the server runs as, when not this process's

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	dbs     int
	stopped bool
}

// NewServer starts a cluster of the test's own, stopped and removed when t ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, why, err := newServer()
	if why != "" {
		testenv.Missing(t, why)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// newServer makes and starts a cluster. why is set when something the machine lacks keeps it
// from running one.
func newServer() (s *Server, why string, err error) {
	bins, why := findPrograms()
	if why != "" {
		return nil, why, nil
	}
	s = &Server{bins: bins}
	var uid, gid int
	s.as, uid, gid, why = serverUser()
	if why != "" {
		return nil, why, nil
	}
	base := reachableTempDir(uid, gid)
	if base == "" {
		return nil, fmt.Sprintf("no temporary directory that user %d can reach (tried %s, /var/tmp, /dev/shm)", uid, os.TempDir()), nil
	}
	if s.dir, err = os.MkdirTemp(base, "pgtest-"); err != nil {
		return nil, "", err
	}
	if err := s.initdb(uid, gid); err != nil {
		os.RemoveAll(s.dir)
		return nil, "", err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(s.dir)
		return nil, "", err
	}
	return s, "", nil
}

// findPrograms returns the directory that holds both initdb and postgres, or why there is none.
func findPrograms() (dir, why string) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(a, b int) bool { return pgVersion(versions[a]) > pgVersion(versions[b]) })
	dirs = append(dirs, versions...)
	dirs = append(dirs, "/usr/local/bin", "/usr/local/pgsql/bin")
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, ""
		}
	}
	return "", "PostgreSQL is not installed: no initdb and postgres on PATH, in /usr/lib/postgresql/*/bin, /usr/local/bin or /usr/local/pgsql/bin (apt-get install postgresql)"
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// reachableTempDir returns a temporary directory whose every ancestor user uid (group gid) may
// search, so that a server running as that user can reach a directory made inside it.
func reachableTempDir(uid, gid int) string {
	for _, base := range []string{os.TempDir(), "/var/tmp", "/dev/shm"} {
		if searchable(base, uid, gid) {
			return base
		}
	}
	return ""
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// SocketDir is the directory of the server's Unix socket: the host of its DSNs.
func (s *Server) SocketDir() string { return filepath.Join(s.dir, "sock") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bins, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = sysProcAttr(s.as)
	return cmd
}

func (s *Server) initdb(uid, gid int) error {
	if err := chown(s.dir, uid, gid); err != nil {
		return err
	}
	if err := os.Mkdir(s.SocketDir(), 0o700); err != nil {
		return err
	}
	if err := chown(s.SocketDir(), uid, gid); err != nil {
		return err
	}
	// --no-sync: the fresh cluster's files need not survive a crash of this machine; the
	// server itself runs with fsync on.
	cmd := s.command("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// Start starts the server (again, after Stop or Crash) and waits until it takes connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: the server is running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command("postgres", "-D", s.data(), "-k", s.SocketDir(),
		"-c", "listen_addresses=", "-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "full_page_writes=on", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test process dies, the server goes with it (immediate shutdown), where the
	// system can arrange it.
	diesWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.signal(syscall.SIGQUIT)
			return fmt.Errorf("pgtest: postgres did not take connections within a minute: %v\n%s", err, s.logTail())
		}
	}
}

// Stop shuts the server down cleanly (a fast shutdown: sessions are ended, a checkpoint is
// written) and waits for it to exit.
func (s *Server) Stop() error { return s.stop(syscall.SIGINT) }

// Crash stops the server as a crash would (an immediate shutdown: no checkpoint, the next Start
// recovers from the WAL) and waits for it to exit.
func (s *Server) Crash() error { return s.stop(syscall.SIGQUIT) }

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.signal(sig)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.signal(syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
	return nil
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// DSN returns the connection string of the named database, as the superuser postgres.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", s.SocketDir(), database)
}

// CreateDatabase creates a new, empty database and returns its DSN.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("test%d", s.dbs)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return s.DSN(name)
}

// shared is the cluster that Start serves, held by the tests using it (and by Main).
var shared struct {
	mu   sync.Mutex
	srv  *Server
	refs int
}

// Start returns the DSN of a new, empty database on the cluster shared by the tests of this
// process, starting the cluster if none runs. The cluster stops when no test that called
// Start is running, unless the package's TestMain runs through Main, which keeps it until every
// test has run.
func Start(t testing.TB) string {
	t.Helper()
	srv := acquire(t)
	t.Cleanup(release)
	return srv.CreateDatabase(t)
}

func acquire(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		s, why, err := newServer()
		if why != "" {
			testenv.Missing(t, why)
		}
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		shared.srv = s
	}
	shared.refs++
	return shared.srv
}

func release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.refs--
	if shared.refs == 0 && shared.srv != nil {
		shared.srv.Close()
		shared.srv = nil
	}
}

// Main runs the package's tests with the shared cluster kept from its first use until the last
// test, then stopped and removed. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.refs++
	shared.mu.Unlock()
	m.Run() // TestMain returning exits with m.Run's code
	release()
}
