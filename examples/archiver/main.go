// Command archiver is the daemon a firm runs to capture its DingTalk bot's conversations into a
// commseal ledger on the embedded file store: Stream mode through the official SDK, optionally
// HTTP callback mode beside it, attachments fetched and stored as blobs, and capture health
// served as JSON.
//
//	DINGTALK_CLIENT_ID=... DINGTALK_CLIENT_SECRET=... go run ./examples/archiver -dir DIR
//
// Flags:
//
//	-dir DIR              ledger directory (created if absent): DIR/store, DIR/ledger.key,
//	                      DIR/ledger.vkey, DIR/keys and DIR/ledger.keyring (encryption at rest:
//	                      set COMMSEAL_PASSPHRASE before the first run, or a demonstration
//	                      key file DIR/ledger.kek is made), and DIR/media-journal for pending
//	                      attachment fetches (encrypted under the ledger's "media-journal"
//	                      state key)
//	-store DIR2|URL       the log, checkpoints and data keys elsewhere: a directory, or
//	                      postgres://user@host:port/db?schema=NAME (internal/backend); the
//	                      keys and local state stay in DIR
//	-shared               other archivers append to the same PostgreSQL -store at once
//	                      (several machines on one DingTalk app): PostgreSQL orders their
//	                      batches, one of them signs the checkpoints (a lease). Each has its
//	                      own copy of DIR (cp -a: the keys, ledger.store). One of them scans
//	                      at a time, the whole ledger: the holder of the store's surveillance
//	                      lease; when it stops, another takes over (-lease-every)
//	-lease-every D        with -shared: how often an archiver checks or tries to take the
//	                      surveillance lease (default 5s)
//	-blobs s3://BUCKET    attachments in an S3 bucket with Object Lock
//	                      (s3://bucket/prefix?endpoint=URL&region=R; credentials from
//	                      AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)
//	-openapi-host URL     DingTalk OpenAPI host: https://api.dingtalk.com (mainland, default) or
//	                      https://api.dingtalk.io (overseas DingTalk; check which one a Hong Kong
//	                      tenant's developer console uses)
//	-callback-addr ADDR   also serve HTTP callback mode on ADDR (e.g. 127.0.0.1:8080, behind the
//	                      firm's TLS proxy); needs DINGTALK_CALLBACK_TOKEN,
//	                      DINGTALK_CALLBACK_AES_KEY and DINGTALK_CALLBACK_OWNER_KEY
//	-health-addr ADDR     serve the capture health snapshot as JSON at http://ADDR/health
//	-connections N        Stream connections to keep open (default 2)
//	-keepalive D          ping the gateway after D of silence, give up 5 s later (default 30s;
//	                      a dead connection the gateway still routes to is found within D+5s)
//	-silence D            report silence when no message or event arrives for D (default 0: off)
//	-v                    log every capture event, not only warnings
//
// In the last hour of each month (UTC) the archiver makes the next month's data keys for the
// month's conversations (ledger.PrepareMonth), so that their first messages after midnight do
// not all wait at once for a key to be made and stored.
//
// Surveillance (package ledger/surveil), off the ack path: every captured message is scanned
// and its findings sealed as annotation entries, from the cursor DIR/surveil.cursor; each
// finding is logged (references and severities, never content):
//
//	-lexicon FILE         the lexicon (default: the embedded one); a change to the file (looked
//	                      at every 2 s) or SIGHUP reloads it, a bad file keeping the one in
//	                      force, and a new version is run over history
//	-rules FILE           behaviour rules (package scan/behaviour) run beside it; their
//	                      capture source (source_silence, reconnect_storm) is the app,
//	                      dingtalk/CLIENT_ID, whose reconnects are its Stream connections'
//	-no-scan              do not scan
//	-alert-webhook URL    also deliver alerts to URL (JSON, X-Commseal-Signature HMAC-SHA256,
//	                      Idempotency-Key) through the durable outbox DIR/alerts/webhook, with
//	-alert-secret-file F  the shared secret
//	-alert-dingtalk URL   also deliver alerts to a DingTalk group robot (its webhook URL with
//	                      access_token) through DIR/alerts/dingtalk, signed with the secret in
//	-alert-dingtalk-secret-file F
//
// Alerts carry references and severities (ledger index, message id, conversation, sender, rule,
// severity, lexicon version), never message content; a receiver that is down loses nothing.
//
// The read side (package ledger/api), for officers' and auditors' tools while the archiver
// owns the ledger; a search index is kept in DIR/index (encrypted, derived, rebuildable) and
// follows the ledger:
//
//	-api-addr ADDR        serve the API on ADDR; needs -api-tokens or -api-client-ca
//	-api-tokens FILE      bearer tokens: lines "SHA256HEX NAME ROLE" (role officer, auditor or
//	                      admin; `printf %s TOKEN | sha256sum` gives the digest)
//	-api-tls-cert FILE    serve HTTPS with this certificate (PEM) and
//	-api-tls-key FILE     its key (PEM)
//	-api-client-ca FILE   accept client certificates issued by these CAs (PEM; mTLS, needs
//	                      -api-tls-cert); required unless -api-tokens is given too
//	-api-cert-roles FILE  roles of client certificates: lines "NAME ROLE", NAME the subject
//	                      CN or an email address (needed with -api-client-ca)
//
// Anchors (package ledger/anchor), off the append path: each new signed checkpoint (at most
// one every -anchor-every) is time-stamped and cosigned, and each token and cosignature sealed
// as an anchor entry that `verify -tsa-roots … -witness …` checks; health reports each
// authority's last anchor and failure:
//
//	-tsa NAME=URL         an RFC 3161 time-stamp authority (repeatable), with
//	-tsa-roots FILE       the roots its certificate chains to (PEM)
//	-witness URL=VKEY     a C2SP tlog-witness and its verifier key (repeatable)
//	-anchor-every D       how often to anchor the newest checkpoint (default 1m)
//
// The compliance console (package ledger/console; see examples/console) on the same ledger and
// index, with capture health on its integrity page:
//
//	-console-addr ADDR    serve the console on ADDR; needs -console-accounts and TLS
//	-console-accounts F   the users: lines "NAME ROLE ARGON2ID-HASH" (`console -hash-password`)
//	-console-tls-cert F   serve it over HTTPS with this certificate (PEM) and
//	-console-tls-key F    its key; required unless
//	-console-insecure-http  plain HTTP with cookies that are not Secure, on a loopback
//	                      address only (a demonstration)
//
// SIGINT or SIGTERM: the archiver stops taking frames, lets in-flight appends finish, closes
// the ledger (which signs a final checkpoint) and exits 0. Exit status (README, "Exit
// status"): 2 when the invocation is refused before anything is captured: missing credentials,
// bad flags, a bad token, role or TLS file, a bad -store or -blobs, or a ledger directory or
// store that is not this run's (one that keeps its store elsewhere, backend.ErrMismatch; a new
// directory on a store holding a ledger, backend.ErrNotEmpty, or claimed by another ledger's
// key, ledger.ErrOtherLedger; a directory open in another process or missing its keys); 1 when
// the run fails (the ledger cannot be opened or closed, a server cannot listen).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/anchor"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/console"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil))
}

// ready is told the addresses the archiver serves on once it runs (tests use it).
type ready func(healthURL, callbackURL, apiURL string)

// config is what the flags and environment say.
type config struct {
	dir, host, callbackAddr, healthAddr string
	connections                         int
	silence, keepAlive                  time.Duration
	verbose                             bool
	id, secret                          string
	cbToken, cbAESKey, cbOwner          string

	stores backend.Flags
	spec   backend.Spec

	apiAddr, apiTokens, apiCert, apiKey, apiClientCA, apiCertRoles string

	consoleAddr, consoleAccounts, consoleCert, consoleKey string
	consoleInsecure                                       bool

	lexicon, rules string
	noScan         bool
	shared         bool
	leaseEvery     time.Duration

	alertWebhook, alertSecret, alertDingTalk, alertDingTalkSecret string

	tsas, witnesses listFlag
	tsaRoots        string
	anchorEvery     time.Duration
}

func parse(args []string, env func(string) string, stderr io.Writer) (*config, error) {
	fl := flag.NewFlagSet("archiver", flag.ContinueOnError)
	fl.SetOutput(stderr)
	c := &config{}
	fl.StringVar(&c.dir, "dir", "", "ledger directory (created if absent)")
	c.stores.Register(fl)
	fl.StringVar(&c.host, "openapi-host", dingtalk.HostMainland, "DingTalk OpenAPI host ("+dingtalk.HostOverseas+" for overseas DingTalk)")
	fl.StringVar(&c.callbackAddr, "callback-addr", "", "also serve HTTP callback mode on this address")
	fl.StringVar(&c.healthAddr, "health-addr", "", "serve the health snapshot as JSON on this address")
	fl.IntVar(&c.connections, "connections", 2, "Stream connections to keep open")
	fl.DurationVar(&c.silence, "silence", 0, "report silence beyond this window (0: off)")
	fl.DurationVar(&c.keepAlive, "keepalive", 30*time.Second, "ping the gateway after this much silence (at least 3s)")
	fl.BoolVar(&c.verbose, "v", false, "log every capture event")
	fl.StringVar(&c.lexicon, "lexicon", "", "scan captured messages with this lexicon file (default: the embedded lexicon; SIGHUP reloads it)")
	fl.StringVar(&c.rules, "rules", "", "also run these behaviour rules (JSON, package scan/behaviour)")
	fl.BoolVar(&c.noScan, "no-scan", false, "do not scan captured messages")
	fl.BoolVar(&c.shared, "shared", false, "other archivers append to the same PostgreSQL -store at once (ledger.Options.Shared)")
	fl.DurationVar(&c.leaseEvery, "lease-every", 5*time.Second, "with -shared: how often to check, or try to take, the lease of the archiver that scans")
	fl.StringVar(&c.alertWebhook, "alert-webhook", "", "deliver alerts to this webhook URL (JSON, HMAC-SHA256 signed; needs -alert-secret-file)")
	fl.StringVar(&c.alertSecret, "alert-secret-file", "", "the webhook's shared secret (a file)")
	fl.StringVar(&c.alertDingTalk, "alert-dingtalk", "", "deliver alerts to this DingTalk group robot webhook URL (needs -alert-dingtalk-secret-file)")
	fl.StringVar(&c.alertDingTalkSecret, "alert-dingtalk-secret-file", "", "the robot's signing secret (a file holding SEC…)")
	fl.StringVar(&c.apiAddr, "api-addr", "", "serve the read-side API on this address")
	fl.StringVar(&c.apiTokens, "api-tokens", "", "API bearer tokens file (SHA256HEX NAME ROLE per line)")
	fl.StringVar(&c.apiCert, "api-tls-cert", "", "serve the API over TLS with this certificate (PEM)")
	fl.StringVar(&c.apiKey, "api-tls-key", "", "the key of -api-tls-cert (PEM)")
	fl.StringVar(&c.apiClientCA, "api-client-ca", "", "accept API client certificates issued by these CAs (PEM)")
	fl.StringVar(&c.apiCertRoles, "api-cert-roles", "", "roles of API client certificates (NAME ROLE per line)")
	fl.Var(&c.tsas, "tsa", "time-stamp each new checkpoint with this RFC 3161 authority, `NAME=URL` (repeatable; needs -tsa-roots)")
	fl.StringVar(&c.tsaRoots, "tsa-roots", "", "the roots the time-stamp authorities' certificates chain to (PEM `FILE`)")
	fl.Var(&c.witnesses, "witness", "have each new checkpoint cosigned by this C2SP witness, `URL=VKEY` (repeatable)")
	fl.DurationVar(&c.anchorEvery, "anchor-every", anchor.DefaultEvery, "how often to anchor the newest checkpoint")
	fl.StringVar(&c.consoleAddr, "console-addr", "", "serve the compliance console on this address")
	fl.StringVar(&c.consoleAccounts, "console-accounts", "", "console accounts file (NAME ROLE ARGON2ID-HASH per line)")
	fl.StringVar(&c.consoleCert, "console-tls-cert", "", "serve the console over TLS with this certificate (PEM)")
	fl.StringVar(&c.consoleKey, "console-tls-key", "", "the key of -console-tls-cert (PEM)")
	fl.BoolVar(&c.consoleInsecure, "console-insecure-http", false, "serve the console on plain HTTP (loopback only, a demonstration)")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if c.dir == "" {
		return nil, errors.New("-dir is required")
	}
	var err error
	if c.spec, err = c.stores.Parse(c.dir); err != nil {
		return nil, err
	}
	if c.leaseEvery <= 0 {
		return nil, fmt.Errorf("-lease-every %v: want a positive duration", c.leaseEvery)
	}
	if c.shared && c.spec.Store.Kind != backend.Postgres {
		return nil, errors.New("-shared needs -store postgres://…: a store that several processes can append to at once")
	}
	if c.keepAlive < 3*time.Second {
		return nil, errors.New("-keepalive must be at least 3s (the SDK's minimum)")
	}
	if c.connections < 1 || c.connections > 50 {
		return nil, errors.New("-connections must be between 1 and 50 (DingTalk's limit per app)")
	}
	if (c.alertWebhook == "") != (c.alertSecret == "") {
		return nil, errors.New("-alert-webhook and -alert-secret-file go together")
	}
	if (c.alertDingTalk == "") != (c.alertDingTalkSecret == "") {
		return nil, errors.New("-alert-dingtalk and -alert-dingtalk-secret-file go together")
	}
	if c.noScan && (c.alertWebhook != "" || c.alertDingTalk != "") {
		return nil, errors.New("alerts need scanning: drop -no-scan")
	}
	if err := c.checkAPI(); err != nil {
		return nil, err
	}
	if err := c.checkConsole(); err != nil {
		return nil, err
	}
	c.id, c.secret = env("DINGTALK_CLIENT_ID"), env("DINGTALK_CLIENT_SECRET")
	if c.id == "" || c.secret == "" {
		return nil, errors.New("DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET must be set (the app's AppKey and AppSecret)")
	}
	if c.callbackAddr != "" {
		c.cbToken, c.cbAESKey, c.cbOwner = env("DINGTALK_CALLBACK_TOKEN"), env("DINGTALK_CALLBACK_AES_KEY"), env("DINGTALK_CALLBACK_OWNER_KEY")
		if c.cbToken == "" || c.cbAESKey == "" || c.cbOwner == "" {
			return nil, errors.New("-callback-addr needs DINGTALK_CALLBACK_TOKEN, DINGTALK_CALLBACK_AES_KEY and DINGTALK_CALLBACK_OWNER_KEY")
		}
	}
	return c, nil
}

// checkAPI checks that the -api flags go together.
func (c *config) checkAPI() error {
	if c.apiAddr == "" {
		if c.apiTokens != "" || c.apiCert != "" || c.apiKey != "" || c.apiClientCA != "" || c.apiCertRoles != "" {
			return errors.New("the -api-* options need -api-addr")
		}
		return nil
	}
	switch {
	case c.apiTokens == "" && c.apiClientCA == "":
		return errors.New("-api-addr needs -api-tokens or -api-client-ca (the API never serves without authentication)")
	case (c.apiCert == "") != (c.apiKey == ""):
		return errors.New("-api-tls-cert and -api-tls-key go together")
	case c.apiClientCA != "" && c.apiCert == "":
		return errors.New("-api-client-ca needs -api-tls-cert and -api-tls-key")
	case (c.apiClientCA == "") != (c.apiCertRoles == ""):
		return errors.New("-api-client-ca and -api-cert-roles go together")
	}
	return nil
}

// apiSetup is the API's authentication and TLS, read from the files the flags name.
type apiSetup struct {
	auth api.Authenticator
	tls  *tls.Config // nil: plain HTTP
}

// loadAPI reads the token, role, certificate and CA files.
func (c *config) loadAPI() (*apiSetup, error) {
	var auths []api.Authenticator
	if c.apiTokens != "" {
		t, err := api.LoadTokens(c.apiTokens)
		if err != nil {
			return nil, err
		}
		auths = append(auths, t)
	}
	s := &apiSetup{}
	if c.apiCert != "" {
		cert, err := tls.LoadX509KeyPair(c.apiCert, c.apiKey)
		if err != nil {
			return nil, fmt.Errorf("API TLS certificate: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.apiClientCA != "" {
		pem, err := os.ReadFile(c.apiClientCA)
		if err != nil {
			return nil, fmt.Errorf("API client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("API client CA: no PEM certificate in %s", c.apiClientCA)
		}
		roles, err := api.LoadRoles(c.apiCertRoles)
		if err != nil {
			return nil, err
		}
		s.tls.ClientCAs = pool
		s.tls.ClientAuth = tls.RequireAndVerifyClientCert
		if c.apiTokens != "" {
			s.tls.ClientAuth = tls.VerifyClientCertIfGiven // a token without a certificate works too
		}
		auths = append(auths, &api.Certificates{Roles: roles})
	}
	s.auth = api.AnyOf(auths...)
	return s, nil
}

func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, onReady ready) int {
	c, err := parse(args, env, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: the usage was asked for
		}
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		return 2
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var sv *surveillance
	if !c.noScan {
		if sv, err = c.loadSurveillance(); err != nil {
			fmt.Fprintf(stderr, "archiver: %v\n", err)
			return 2
		}
	}
	var apiCfg *apiSetup
	if c.apiAddr != "" {
		if apiCfg, err = c.loadAPI(); err != nil {
			fmt.Fprintf(stderr, "archiver: %v\n", err)
			return 2
		}
	}
	var conCfg *consoleSetup
	if c.consoleAddr != "" {
		if conCfg, err = c.loadConsole(); err != nil {
			fmt.Fprintf(stderr, "archiver: %v\n", err)
			return 2
		}
	}

	opts := ledger.Options{Logger: log, Shared: c.shared}
	if sv != nil {
		opts.Appended = sv.feed.Appended // surveillance scans what is sealed without reading it back
	}
	l, err := ledgerdir.OpenOn(ctx, c.dir, layout.DefaultOrigin, c.spec, opts)
	if err != nil {
		fmt.Fprintf(stderr, "archiver: opening the ledger in %s: %v\n", c.dir, err)
		return ledgerdir.ExitCode(err) // 2 for a directory or store that is not this run's
	}
	closeLedger := func() int {
		if err := l.Close(); err != nil {
			fmt.Fprintf(stderr, "archiver: closing the ledger: %v\n", err)
			return 1
		}
		return 0
	}
	// Pending fetches name files and conversations: the journal is encrypted under a key the
	// ledger keeps wrapped in its key vault.
	jkey, err := l.StateKey(ctx, "media-journal")
	if err != nil {
		fmt.Fprintf(stderr, "archiver: media journal key: %v\n", err)
		closeLedger()
		return 1
	}
	journal, err := dingtalk.NewDirJournal(filepath.Join(c.dir, "media-journal"), jkey)
	clear(jkey)
	if err != nil {
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		closeLedger()
		return 1
	}
	src, err := dingtalk.NewSource(dingtalk.Options{
		ClientID: c.id, ClientSecret: c.secret, OpenAPIHost: c.host,
		Connections: c.connections, SilenceWindow: c.silence, KeepAlive: c.keepAlive,
		Media:  dingtalk.MediaOptions{Journal: journal},
		Logger: log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		closeLedger()
		return 2
	}

	var servers []*http.Server
	var wg sync.WaitGroup
	serve := func(addr string, h http.Handler, tlsCfg *tls.Config) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", err
		}
		scheme := "http://"
		if tlsCfg != nil {
			ln, scheme = tls.NewListener(ln, tlsCfg), "https://"
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("archiver: HTTP server failed", "addr", addr, "err", err)
			}
		})
		return scheme + ln.Addr().String(), nil
	}
	// The search index follows the ledger on its own goroutine until stopIndex.
	var ix *search.Index
	indexCtx, stopIndex := context.WithCancel(ctx)
	defer stopIndex()
	closeIndex := func() {
		stopIndex()
		if ix != nil {
			if err := ix.Close(); err != nil {
				log.Error("archiver: closing the search index", "err", err)
			}
		}
	}
	closeAlerts := func() {}
	anch, err := c.anchorer(l, log)
	if err != nil {
		fmt.Fprintf(stderr, "archiver: %v\n", err)
		closeLedger()
		return 2
	}
	// anchorHealth is each authority's last anchor and failure, for /health and the console.
	anchorHealth := func() []anchor.Status {
		if anch == nil {
			return nil
		}
		return anch.Health()
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "archiver: "+format+"\n", args...)
		for _, s := range servers {
			_ = s.Close()
		}
		stopIndex()
		wg.Wait()
		closeAlerts()
		closeIndex()
		closeLedger()
		return 1
	}

	var healthURL, callbackURL string
	if c.healthAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
			metrics.Read(live)
			var heap uint64
			if live[0].Value.Kind() == metrics.KindUint64 {
				heap = live[0].Value.Uint64()
			}
			_ = enc.Encode(struct {
				dingtalk.Health
				LedgerSize uint64          `json:"ledger_size"`
				HeapBytes  uint64          `json:"heap_live_bytes"` // the heap that survived the last collection
				Goroutines int             `json:"goroutines"`
				Anchors    []anchor.Status `json:"anchors,omitempty"` // each authority's last anchor and failure
			}{src.Health(), l.Size(), heap, runtime.NumGoroutine(), anchorHealth()})
		})
		if healthURL, err = serve(c.healthAddr, mux, nil); err != nil {
			return fail("health server: %v", err)
		}
		healthURL += "/health"
	}
	if c.callbackAddr != "" {
		h, err := dingtalk.NewCallbackHandler(dingtalk.CallbackOptions{
			Token: c.cbToken, AESKey: c.cbAESKey, OwnerKey: c.cbOwner,
			Sink: l, Records: l, Logger: log,
		})
		if err != nil {
			return fail("callback mode: %v", err)
		}
		if callbackURL, err = serve(c.callbackAddr, h, nil); err != nil {
			return fail("callback server: %v", err)
		}
	}
	if sv != nil {
		notify, err := c.alerts(indexCtx, &wg, log)
		if err != nil {
			return fail("alerts: %v", err)
		}
		closeAlerts = notify.close
		source := capture.PlatformDingTalk + "/" + c.id // the app this archiver captures
		var monitor func() *surveil.Monitor
		if c.shared {
			leases, ok := l.Store.(store.Leases)
			if !ok { // parse lets -shared through only for PostgreSQL, which grants leases
				return fail("surveillance: -shared needs a store that grants leases; %T does not", l.Store)
			}
			if monitor, err = sv.startLeased(indexCtx, &wg, l.Ledger, leases, c.leaseEvery, c.dir, source, log, notify.onSealed); err != nil {
				return fail("surveillance: %v", err)
			}
		} else {
			m, err := sv.start(indexCtx, &wg, l.Ledger, c.dir, source, log, notify.onSealed)
			if err != nil {
				return fail("surveillance: %v", err)
			}
			monitor = func() *surveil.Monitor { return m }
		}
		if sv.rules != nil { // reconnect storms are a behaviour rule's
			reconnects := func() int64 { return src.Health().Reconnects }
			seen := reconnects()
			wg.Go(func() { watchReconnects(indexCtx, reconnects, seen, monitor, source, log) })
		}
	}
	wg.Go(func() { prepareMonths(indexCtx, l.Ledger, log, time.Now, prepareAhead) })
	if anch != nil {
		wg.Go(func() { _ = anch.Run(indexCtx) })
	}
	var apiURL, consoleURL string
	if apiCfg != nil || conCfg != nil {
		if ix, err = search.Open(ctx, l.Ledger, search.Options{Dir: filepath.Join(c.dir, layout.IndexDir), Logger: log}); err != nil {
			return fail("search index: %v", err)
		}
		wg.Go(func() { _ = ix.Run(indexCtx, time.Second) })
	}
	if conCfg != nil {
		o := conCfg.opts
		o.Ledger, o.Index, o.Signer, o.Store, o.Logger = l.Ledger, ix, l.Signing.Signer, l.Store, log
		o.Health = func() any {
			return struct {
				dingtalk.Health
				Anchors []anchor.Status `json:"anchors,omitempty"`
			}{src.Health(), anchorHealth()}
		}
		o.HealthHistory = console.NewHealthHistory(o.Health, time.Minute, 24*60) // a day, charted on the integrity page
		wg.Go(func() { _ = o.HealthHistory.Run(indexCtx) })
		h, err := console.New(o)
		if err != nil {
			return fail("console: %v", err)
		}
		if consoleURL, err = serve(c.consoleAddr, h, conCfg.tls); err != nil {
			return fail("console server: %v", err)
		}
	}
	if apiCfg != nil {
		h := api.New(api.Options{Ledger: l.Ledger, Index: ix, Auth: apiCfg.auth, Signer: l.Signing.Signer,
			Store: l.Store, Logger: log})
		if apiURL, err = serve(c.apiAddr, h, apiCfg.tls); err != nil {
			return fail("API server: %v", err)
		}
	}
	fmt.Fprintf(stdout, "archiver: capturing DingTalk app %s via %s into %s (origin %s)\n", c.id, c.host, c.dir, l.Origin())
	if healthURL != "" {
		fmt.Fprintf(stdout, "archiver: health at %s\n", healthURL)
	}
	if callbackURL != "" {
		fmt.Fprintf(stdout, "archiver: HTTP callbacks at %s\n", callbackURL)
	}
	if apiURL != "" {
		fmt.Fprintf(stdout, "archiver: API at %s\n", apiURL)
	}
	if consoleURL != "" {
		fmt.Fprintf(stdout, "archiver: console at %s\n", consoleURL)
	}
	if onReady != nil {
		onReady(healthURL, callbackURL, apiURL)
	}

	// Run returns once ctx has ended and in-flight appends are finished.
	runErr := src.Run(ctx, l)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdownCtx) // finishes in-flight callbacks and API requests
	}
	stopIndex()
	wg.Wait()
	closeAlerts()
	closeIndex()
	h := src.Health()
	size := l.Size()
	code := closeLedger()
	if runErr != nil {
		fmt.Fprintf(stderr, "archiver: %v\n", runErr)
		return 1
	}
	fmt.Fprintf(stdout, "archiver: stopped: %d messages, %d events, %d capture errors, %d duplicates dropped, %d media pending; ledger size %d\n",
		h.Messages, h.Events, h.CaptureErrors, h.Duplicates, h.PendingMedia, size)
	return code
}
