// Command console serves the compliance console (package ledger/console) on a ledger directory
// (as the quickstart or the archiver write it): officers search, read, review and export;
// auditors check integrity and the access log.
//
//	go run ./examples/console -hash-password -name alice -role officer < password.txt >> accounts
//	go run ./examples/console -dir DIR -accounts accounts -tls-cert cert.pem -tls-key key.pem -addr :8443
//	go run ./examples/console -dir DIR -accounts accounts -insecure-http -addr 127.0.0.1:8080   (a demo)
//
// Flags:
//
//	-dir DIR             the ledger directory (it must exist: the console never lays out a new
//	                     ledger); the console opens it for writing (access entries and
//	                     dispositions are sealed in it), so it cannot run beside another
//	                     process that has it open: use `archiver -console-addr` there
//	-addr ADDR           listen address (default 127.0.0.1:8443)
//	-accounts FILE       the users: lines "NAME ROLE HASH" (role officer, auditor or admin;
//	                     HASH an Argon2id PHC string, or "-" for a proxy-only account)
//	-tls-cert FILE       serve HTTPS with this certificate (PEM) and
//	-tls-key FILE        its key; required, because session cookies are Secure, unless
//	-insecure-http       plain HTTP with cookies that are not Secure: allowed only on a
//	                     loopback address, for a demonstration
//	-proxy-header NAME   take the user's name from this header (single sign-on) when the
//	-proxy-trusted CIDRS request comes from these addresses (comma-separated)
//	-hash-password       read a password from standard input (one line) and print its
//	                     Argon2id hash; with -name and -role, the whole accounts line
//	-v                   log every request
//	-store DIR2|URL      where the ledger's log is when not in DIR/store (postgres://...)
//	-blobs s3://BUCKET   where its attachments are when not in the store (internal/backend)
//
// Exit status (README, "Exit status"): 0 stopped by SIGINT or SIGTERM; 1 the ledger could not
// be opened or served (I/O, the store, the listen address); 2 the invocation was refused before
// anything was done: bad flags, a bad accounts or TLS file, a bad -store or -blobs, or a
// directory that holds no ledger, keeps it elsewhere (backend.ErrMismatch), is open in another
// process (run the console inside the archiver then) or lacks its keys.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/ledger/search"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, nil))
}

// config is what the flags say.
type config struct {
	dir, addr, accounts, cert, key string
	insecure, hash, verbose        bool
	name, role                     string
	proxyHeader, proxyTrusted      string
	stores                         backend.Flags
	spec                           backend.Spec
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fl := flag.NewFlagSet("console", flag.ContinueOnError)
	fl.SetOutput(stderr)
	c := &config{}
	fl.StringVar(&c.dir, "dir", "", "ledger directory")
	fl.StringVar(&c.addr, "addr", "127.0.0.1:8443", "listen address")
	fl.StringVar(&c.accounts, "accounts", "", "accounts file (NAME ROLE ARGON2ID-HASH per line)")
	fl.StringVar(&c.cert, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&c.key, "tls-key", "", "TLS key (PEM)")
	fl.BoolVar(&c.insecure, "insecure-http", false, "serve plain HTTP on a loopback address (a demonstration)")
	fl.BoolVar(&c.hash, "hash-password", false, "hash a password read from standard input and exit")
	fl.StringVar(&c.name, "name", "", "with -hash-password: the account's name")
	fl.StringVar(&c.role, "role", "", "with -hash-password: the account's role")
	fl.StringVar(&c.proxyHeader, "proxy-header", "", "take the user's name from this header of a trusted proxy")
	fl.StringVar(&c.proxyTrusted, "proxy-trusted", "", "the proxy's addresses (CIDRs, comma-separated)")
	fl.BoolVar(&c.verbose, "v", false, "log every request")
	c.stores.Register(fl)
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if c.hash {
		if (c.name == "") != (c.role == "") {
			return nil, errors.New("-name and -role go together")
		}
		return c, nil
	}
	switch {
	case c.dir == "":
		return nil, errors.New("-dir is required")
	case c.accounts == "":
		return nil, errors.New("-accounts is required")
	case (c.cert == "") != (c.key == ""):
		return nil, errors.New("-tls-cert and -tls-key go together")
	case c.cert == "" && !c.insecure:
		return nil, errors.New("-tls-cert and -tls-key are required (session cookies are Secure); -insecure-http serves a loopback demo")
	case c.cert != "" && c.insecure:
		return nil, errors.New("-insecure-http and -tls-cert exclude each other")
	case (c.proxyHeader == "") != (c.proxyTrusted == ""):
		return nil, errors.New("-proxy-header and -proxy-trusted go together")
	}
	if c.insecure && !loopback(c.addr) {
		return nil, fmt.Errorf("-insecure-http serves only a loopback address, not %q", c.addr)
	}
	var err error
	if c.spec, err = c.stores.Parse(c.dir); err != nil {
		return nil, err
	}
	return c, nil
}

// loopback reports whether addr's host is a loopback address or localhost.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// hashPassword prints the hash of the password on stdin's first line.
func hashPassword(c *config, stdin io.Reader, stdout io.Writer) error {
	sc := bufio.NewScanner(stdin)
	if !sc.Scan() {
		return errors.New("no password on standard input")
	}
	pw := strings.TrimRight(sc.Text(), "\r")
	if pw == "" {
		return errors.New("an empty password")
	}
	h, err := console.HashPassword(pw)
	if err != nil {
		return err
	}
	if c.name != "" {
		if _, err := api.ParseRole(c.role); err != nil {
			return err
		}
		line := c.name + " " + c.role + " " + h
		if _, err := console.ParseAccounts(strings.NewReader(line), "the line"); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, line)
		return err
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}

// options reads the accounts and proxy configuration.
func (c *config) options() (console.Options, error) {
	accts, err := console.LoadAccounts(c.accounts)
	if err != nil {
		return console.Options{}, err
	}
	o := console.Options{Accounts: accts, InsecureCookies: c.insecure}
	if c.proxyHeader != "" {
		p := &console.Proxy{Header: c.proxyHeader}
		for _, s := range strings.Split(c.proxyTrusted, ",") {
			pf, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return o, fmt.Errorf("-proxy-trusted: %w", err)
			}
			p.Trusted = append(p.Trusted, pf)
		}
		o.Proxy = p
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, ready func(url string)) int {
	c, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: the usage was asked for
		}
		fmt.Fprintf(stderr, "console: %v\n", err)
		return 2
	}
	if c.hash {
		if err := hashPassword(c, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "console: %v\n", err)
			return 2
		}
		return 0
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts, err := c.options()
	if err != nil {
		fmt.Fprintf(stderr, "console: %v\n", err)
		return 2
	}
	var tlsCfg *tls.Config
	if c.cert != "" {
		cert, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			fmt.Fprintf(stderr, "console: TLS certificate: %v\n", err)
			return 2
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := layout.Exists(c.dir); err != nil {
		fmt.Fprintf(stderr, "console: %v\n", err)
		return ledgerdir.ExitRefused
	}
	l, err := ledgerdir.OpenOn(ctx, c.dir, "", c.spec, ledger.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "console: opening the ledger in %s: %v\n", c.dir, err)
		return ledgerdir.ExitCode(err) // 2 for a directory or store that is not this run's
	}
	defer func() {
		if err := l.Close(); err != nil {
			fmt.Fprintf(stderr, "console: closing the ledger: %v\n", err)
		}
	}()
	ix, err := search.Open(ctx, l.Ledger, search.Options{Dir: filepath.Join(c.dir, layout.IndexDir), Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "console: search index: %v\n", err)
		return 1
	}
	defer ix.Close()
	opts.Ledger, opts.Index, opts.Signer, opts.Store, opts.Logger = l.Ledger, ix, l.Signing.Signer, l.Store, log
	h, err := console.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "console: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		fmt.Fprintf(stderr, "console: %v\n", err)
		return 1
	}
	scheme := "http://"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https://"
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	var wg sync.WaitGroup
	indexCtx, stopIndex := context.WithCancel(ctx)
	defer stopIndex()
	wg.Go(func() { _ = ix.Run(indexCtx, time.Second) })
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	url := scheme + ln.Addr().String()
	fmt.Fprintf(stdout, "console: serving %s (origin %s) at %s\n", c.dir, l.Origin(), url)
	if ready != nil {
		ready(url)
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		fmt.Fprintf(stderr, "console: %v\n", err)
		code = 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	stopIndex()
	wg.Wait()
	return code
}
