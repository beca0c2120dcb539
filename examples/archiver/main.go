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
// SIGINT or SIGTERM: the archiver stops taking frames, lets in-flight appends finish, closes
// the ledger (which signs a final checkpoint) and exits 0. Missing credentials or bad flags:
// a message and exit 2. A ledger that cannot be opened: exit 1.
package main

import (
	"context"
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
	"sync"
	"syscall"
	"time"

	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil))
}

// ready is told the addresses the archiver serves on once it runs (tests use it).
type ready func(healthURL, callbackURL string)

// config is what the flags and environment say.
type config struct {
	dir, host, callbackAddr, healthAddr string
	connections                         int
	silence, keepAlive                  time.Duration
	verbose                             bool
	id, secret                          string
	cbToken, cbAESKey, cbOwner          string
}

func parse(args []string, env func(string) string, stderr io.Writer) (*config, error) {
	fl := flag.NewFlagSet("archiver", flag.ContinueOnError)
	fl.SetOutput(stderr)
	c := &config{}
	fl.StringVar(&c.dir, "dir", "", "ledger directory (created if absent)")
	fl.StringVar(&c.host, "openapi-host", dingtalk.HostMainland, "DingTalk OpenAPI host ("+dingtalk.HostOverseas+" for overseas DingTalk)")
	fl.StringVar(&c.callbackAddr, "callback-addr", "", "also serve HTTP callback mode on this address")
	fl.StringVar(&c.healthAddr, "health-addr", "", "serve the health snapshot as JSON on this address")
	fl.IntVar(&c.connections, "connections", 2, "Stream connections to keep open")
	fl.DurationVar(&c.silence, "silence", 0, "report silence beyond this window (0: off)")
	fl.DurationVar(&c.keepAlive, "keepalive", 30*time.Second, "ping the gateway after this much silence (at least 3s)")
	fl.BoolVar(&c.verbose, "v", false, "log every capture event")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if c.dir == "" {
		return nil, errors.New("-dir is required")
	}
	if c.keepAlive < 3*time.Second {
		return nil, errors.New("-keepalive must be at least 3s (the SDK's minimum)")
	}
	if c.connections < 1 || c.connections > 50 {
		return nil, errors.New("-connections must be between 1 and 50 (DingTalk's limit per app)")
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

func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, onReady ready) int {
	c, err := parse(args, env, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "archiver: %v\n", err)
		}
		return 2
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	l, err := ledgerdir.Open(ctx, c.dir, layout.DefaultOrigin, ledger.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "archiver: opening the ledger in %s: %v\n", c.dir, err)
		return 1
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
	serve := func(addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("archiver: HTTP server failed", "addr", addr, "err", err)
			}
		})
		return "http://" + ln.Addr().String(), nil
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "archiver: "+format+"\n", args...)
		for _, s := range servers {
			_ = s.Close()
		}
		wg.Wait()
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
			_ = enc.Encode(struct {
				dingtalk.Health
				LedgerSize uint64 `json:"ledger_size"`
			}{src.Health(), l.Size()})
		})
		if healthURL, err = serve(c.healthAddr, mux); err != nil {
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
		if callbackURL, err = serve(c.callbackAddr, h); err != nil {
			return fail("callback server: %v", err)
		}
	}
	fmt.Fprintf(stdout, "archiver: capturing DingTalk app %s via %s into %s (origin %s)\n", c.id, c.host, c.dir, l.Origin())
	if healthURL != "" {
		fmt.Fprintf(stdout, "archiver: health at %s\n", healthURL)
	}
	if callbackURL != "" {
		fmt.Fprintf(stdout, "archiver: HTTP callbacks at %s\n", callbackURL)
	}
	if onReady != nil {
		onReady(healthURL, callbackURL)
	}

	// Run returns once ctx has ended and in-flight appends are finished.
	runErr := src.Run(ctx, l)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdownCtx) // finishes in-flight callbacks
	}
	wg.Wait()
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
