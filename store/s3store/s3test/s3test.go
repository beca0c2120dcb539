// Package s3test runs a real S3 server for tests: versitygw (github.com/versity/versitygw) with
// its posix backend, on a free loopback port, over a temporary directory, with a bucket that has
// Object Lock enabled. It works like net/http/httptest: New starts it and stops it when the
// test ends; Stop and Start take the endpoint down and bring it back over the same data, to
// test what an outage does.
//
// versitygw takes minutes to build, so the kit never builds it: it looks for an installed
// binary (on PATH, then in ~/go/bin and $(go env GOPATH)/bin), and otherwise ends the test
// through internal/testenv.Missing with the line that installs it (Install): a skip on a
// developer's machine, a failure in CI (COMMSEAL_REQUIRE_EXTERNAL=1).
package s3test

import (
	"bytes"
	"context"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/commseal/commseal/internal/testenv"
)

// Install is the command that installs the server the kit runs.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// The server's root credentials and region.
const (
	AccessKey = "commseal-test-access"
	SecretKey = "commseal-test-secret-key"
	Region    = "us-east-1"
)

// Server is a running versitygw with one bucket that has Object Lock enabled.
type Server struct {
	// URL is the endpoint, http://127.0.0.1:port.
	URL string
	// Bucket has Object Lock (and so versioning) enabled.
	Bucket string
	// Dir is the posix backend's root: one directory per bucket, one file per object.
	Dir string

	t        testing.TB
	bin      string
	addr     string
	versions string
	buckets  atomic.Int64

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *lockedBuffer
}

// Program returns the path of an installed versitygw, or ends the test through
// testenv.Missing with Install.
func Program(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var dirs []string
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	if gp := build.Default.GOPATH; gp != "" {
		for _, d := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	return testenv.Program(t, "versitygw", Install, dirs...)
}

// New starts a server in a temporary directory, creates its bucket with Object Lock enabled,
// and stops the server when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	bin := Program(t)
	dir := t.TempDir()
	s := &Server{t: t, bin: bin, Dir: filepath.Join(dir, "gw"), versions: filepath.Join(dir, "versions")}
	for _, d := range []string{s.Dir, s.versions} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("s3test: %v", err)
		}
	}
	s.addr = freeAddr(t)
	s.URL = "http://" + s.addr
	t.Cleanup(s.Stop)
	s.Start()
	s.Bucket = s.NewBucket(true)
	return s
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: finding a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Start starts the server (again, after Stop) over the same directories and address, and
// returns once it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	s.logs = &lockedBuffer{}
	cmd := exec.Command(s.bin,
		"--port", s.addr,
		"--access", AccessKey, "--secret", SecretKey,
		"--region", Region,
		"posix", "--versioning-dir", s.versions, s.Dir)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=", "ROOT_SECRET_ACCESS_KEY=")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("s3test: starting %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("s3test: versitygw exited at start: %s", s.logs.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond); err == nil {
			c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = s.Client().ListBuckets(ctx, &s3.ListBucketsInput{})
			cancel()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("s3test: versitygw did not answer on %s within 30s: %s", s.addr, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (the endpoint goes down as in a crash of its host process) and waits
// for it to exit. The data stays for Start. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Logs returns what the server printed since it was last started.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// Client returns a client of the server with its root credentials, path-style addressing and
// two attempts per call (a test of an outage should not wait through long back-offs).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.URL),
		Region:       Region,
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey, Source: "s3test"}, nil
		}),
		RetryMaxAttempts: 2,
	})
}

// NewBucket creates a new bucket, with Object Lock enabled if lock is set, and returns its
// name.
func (s *Server) NewBucket(lock bool) string {
	s.t.Helper()
	name := "commseal-test-" + strconv.FormatInt(s.buckets.Add(1), 10)
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, in); err != nil {
		s.t.Fatalf("s3test: creating bucket %s: %v\n%s", name, err, s.Logs())
	}
	return name
}

// lockedBuffer is a bytes.Buffer safe for the server's output and a test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // enough to diagnose; a long run must not fill memory
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
