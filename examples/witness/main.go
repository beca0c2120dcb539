// Command witness runs a C2SP tlog-witness (package anchor/witness) for commseal ledgers and
// other logs: the program a compliance officer, an auditor or a partner firm runs so that a
// ledger's operator cannot fork or roll back the record without the witness refusing to cosign.
//
//	go run ./examples/witness -genkey -name NAME -key FILE       # once: make the witness's key
//	go run ./examples/witness -key FILE -dir DIR -log LOG [-log LOG...] [-logs FILE] [-addr ADDR]
//	go run ./examples/witness -key FILE -vkey                    # print the verifier key
//
// -genkey writes a new Ed25519 signing key for the witness named NAME (a schema-less URL such
// as witness.example.com/compliance) to FILE, which must not exist, with mode 0600, and prints
// the verifier key to give to the logs and to whoever checks cosignatures.
//
// Serving, the witness listens on -addr (default localhost:7380) for POST /add-checkpoint and
// GET /<origin hash>/checkpoint, keeps each log's latest cosigned checkpoint in -dir (locked:
// one witness per directory), and prints its verifier key. Each -log is "<origin> <vkey>" or a
// lone vkey whose name is the origin (a commseal ledger's ledger.vkey); -logs FILE reads one
// such line per line ('#' starts a comment).
//
// Exit status (README, "Exit status"): 0 after SIGINT or SIGTERM (or a -genkey or -vkey done);
// 1 when the work fails (the state directory cannot be made or read, the address cannot be
// listened on, the server fails); 2 when the invocation is refused before anything is done: bad
// or missing flags, a -key file that does not hold a witness key (or, with -genkey, already
// exists), a -log or -logs that does not parse, or a state directory another witness has open.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/seal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// logFlags collects repeated -log values.
type logFlags []string

func (l *logFlags) String() string     { return strings.Join(*l, ", ") }
func (l *logFlags) Set(s string) error { *l = append(*l, s); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("witness", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "localhost:7380", "address to listen on")
	dir := fl.String("dir", "", "state directory: the latest cosigned checkpoint of each log")
	keyFile := fl.String("key", "", "the witness's signing key `file`")
	genkey := fl.Bool("genkey", false, "write a new signing key to -key and print its verifier key")
	name := fl.String("name", "", "the witness's name, for -genkey (e.g. witness.example.com/compliance)")
	printVKey := fl.Bool("vkey", false, "print the verifier key of -key and exit")
	logsFile := fl.String("logs", "", "`file` of log lines, \"<origin> <vkey>\" or \"<vkey>\"")
	var logLines logFlags
	fl.Var(&logLines, "log", "a log to witness: \"<origin> <vkey>\" or \"<vkey>\" (repeatable)")
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0 // -h: the usage was asked for
	} else if err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "witness: %s\nusage: witness -genkey -name NAME -key FILE | witness -key FILE -vkey | witness -key FILE -dir DIR -log LOG... [-logs FILE] [-addr ADDR]\n", msg)
		return 2
	}
	// refuse reports what keeps the invocation from being served, before anything is done;
	// fail what went wrong while doing it.
	refuse := func(err error) int {
		fmt.Fprintf(stderr, "witness: %v\n", err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "witness: %v\n", err)
		return 1
	}
	if fl.NArg() > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", fl.Arg(0)))
	}
	if *keyFile == "" {
		return usage("-key is required")
	}
	if *genkey {
		if *name == "" {
			return usage("-genkey needs -name")
		}
		skey, vkey, err := seal.GenerateCosignatureKey(*name)
		if err != nil {
			return refuse(err) // a name the format does not allow
		}
		if err := durable.CreateExclusive(*keyFile, []byte(skey+"\n")); errors.Is(err, fs.ErrExist) {
			return refuse(err) // never overwrite a key
		} else if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, vkey)
		return 0
	}
	skey, err := os.ReadFile(*keyFile)
	if err != nil {
		return refuse(err)
	}
	signer, err := seal.NewCosignatureSigner(string(skey))
	if err != nil {
		return refuse(fmt.Errorf("%s: %w", *keyFile, err))
	}
	if *printVKey {
		fmt.Fprintln(stdout, signer.VerifierKey())
		return 0
	}
	if *dir == "" {
		return usage("-dir is required")
	}
	var logs []witness.Log
	for _, l := range logLines {
		lg, err := witness.ParseLog(l)
		if err != nil {
			return refuse(err)
		}
		logs = append(logs, lg)
	}
	if *logsFile != "" {
		f, err := os.Open(*logsFile)
		if err != nil {
			return refuse(err)
		}
		more, err := witness.ParseLogs(f)
		f.Close()
		if err != nil {
			return refuse(fmt.Errorf("%s: %w", *logsFile, err))
		}
		logs = append(logs, more...)
	}
	if len(logs) == 0 {
		return usage("no log to witness: give -log or -logs")
	}
	store, err := witness.OpenFileStore(*dir)
	if errors.Is(err, durable.ErrLocked) {
		return refuse(fmt.Errorf("%w (another witness has it open)", err))
	} else if err != nil {
		return fail(err)
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	w, err := witness.New(witness.Options{Signer: signer, Logs: logs, Store: store, Logger: logger})
	if err != nil {
		return refuse(err) // the logs given: the same origin twice, a key that does not fit
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "witness %s listening on http://%s/\nverifier key: %s\n", signer.Name(), ln.Addr(), w.VerifierKey())
	for _, l := range logs {
		fmt.Fprintf(stdout, "log: %s\n", l.Origin)
	}
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fail(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fail(err)
	}
	fmt.Fprintln(stdout, "witness: stopped")
	return 0
}
