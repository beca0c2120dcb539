// Command verify checks a commseal ledger offline, with nothing but its verifier key.
//
//	go run ./examples/verify -dir DIR [-key VKEY|-key-file FILE] [-trusted FILE]
//	go run ./examples/verify -dir DIR -vkey | -checkpoint | -proof N | -list
//
// With no action flag it verifies the whole ledger: every leaf, payload hash, content
// commitment, conversation chain, Merkle stored hash, checkpoint signature and the consistency
// of every checkpoint with the entries. Exit status: 0 intact; 1 altered (the first bad index
// and the reason are printed); 2 usage or I/O error.
//
// The verifier key is read from DIR/ledger.vkey unless -key or -key-file gives the one you
// received out of band; an auditor should always pass it, since whoever can alter the directory
// can replace that file too. -trusted FILE names a signed checkpoint you obtained earlier (for
// example with -checkpoint): a ledger rolled back or forked since then fails.
//
// -vkey prints the verifier key; -checkpoint the latest signed checkpoint; -proof N a C2SP
// tlog-proof@v1 for entry N against the latest checkpoint, whose extra line is the base64 of the
// exact leaf bytes; -list one line per entry: "<index> <source message id>", where an encrypted
// entry shows its key id unless -who and -why are given: then the ids are decrypted through an
// audited accessor, which seals the access into the ledger first (this needs the ledger's keys
// and no writer running).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const (
	exitOK       = 0
	exitAltered  = 1
	exitUsageErr = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("verify", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "", "ledger directory (required)")
	key := fl.String("key", "", "verifier key (sumdb/note format); default: DIR/ledger.vkey")
	keyFile := fl.String("key-file", "", "file holding the verifier key")
	trusted := fl.String("trusted", "", "file holding a signed checkpoint obtained earlier: the ledger must extend it")
	printVKey := fl.Bool("vkey", false, "print the ledger's verifier key")
	printCP := fl.Bool("checkpoint", false, "print the latest signed checkpoint")
	proof := fl.Int64("proof", -1, "print a C2SP tlog-proof@v1 for entry `N` against the latest checkpoint")
	list := fl.Bool("list", false, "print one line per entry: <index> <source message id>")
	who := fl.String("who", "", "with -list: decrypt source ids as this person, recording the access in the ledger (needs the keys and no running writer)")
	why := fl.String("why", "", "with -who: the reason for the access, recorded with it")
	quiet := fl.Bool("q", false, "print nothing when the ledger verifies")
	if err := fl.Parse(args); err != nil {
		return exitUsageErr
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "verify: %s\nusage: verify -dir DIR [-key VKEY|-key-file FILE] [-trusted FILE] [-vkey|-checkpoint|-proof N|-list]\n", msg)
		return exitUsageErr
	}
	if *dir == "" {
		return usage("-dir is required")
	}
	if fl.NArg() > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", fl.Arg(0)))
	}
	actions := 0
	for _, on := range []bool{*printVKey, *printCP, *proof >= 0, *list} {
		if on {
			actions++
		}
	}
	if actions > 1 {
		return usage("-vkey, -checkpoint, -proof and -list are exclusive")
	}
	if *key != "" && *keyFile != "" {
		return usage("give -key or -key-file, not both")
	}
	if (*who == "") != (*why == "") || (*who != "" && !*list) {
		return usage("-who and -why go together, with -list")
	}
	if fl.Lookup("proof").Value.String() != "-1" && *proof < 0 {
		return usage("-proof takes an entry index >= 0")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsageErr
	}

	vkey := *key
	keySource := "given with -key"
	switch {
	case *keyFile != "":
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fail(err)
		}
		vkey, keySource = strings.TrimSpace(string(b)), *keyFile
	case vkey == "":
		var err error
		if vkey, err = ledgerdir.VerifierKey(*dir); err != nil {
			return fail(err)
		}
		keySource = "read from the ledger directory; pass -key to check against the key you were given"
	}
	v, err := seal.NewVerifier(vkey)
	if err != nil {
		return fail(err)
	}
	if *printVKey {
		fmt.Fprintln(stdout, vkey)
		return exitOK
	}

	if *list && *who != "" {
		return listDecrypted(ctx, *dir, *who, *why, stdout, stderr)
	}

	st, err := ledgerdir.OpenStore(ctx, *dir, true, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return fail(err)
	}
	defer st.Close()

	switch {
	case *printCP:
		c, err := st.LatestCheckpoint(ctx)
		if err != nil {
			return fail(fmt.Errorf("no checkpoint: %w", err))
		}
		if _, err := seal.OpenCheckpoint(c.Note, v); err != nil {
			fmt.Fprintf(stderr, "verify: the latest checkpoint does not verify: %v\n", err)
			return exitAltered
		}
		stdout.Write(c.Note)
		return exitOK
	case *proof >= 0:
		p, err := ledger.Prove(ctx, st, uint64(*proof), v)
		if errors.Is(err, seal.ErrCheckpointSignature) || errors.Is(err, seal.ErrMalformedCheckpoint) {
			fmt.Fprintf(stderr, "verify: the latest checkpoint does not verify: %v\n", err)
			return exitAltered
		}
		if err != nil {
			return fail(err)
		}
		stdout.Write(p.Marshal())
		return exitOK
	case *list:
		code, encrypted := exitOK, 0
		for e, err := range st.Entries(ctx, 0) {
			if err != nil {
				return fail(err)
			}
			d, err := ledger.Decode(e)
			switch {
			case errors.Is(err, ledger.ErrEncrypted):
				encrypted++
				fmt.Fprintf(stdout, "%d encrypted:%s\n", e.Index, d.Leaf.KeyID)
				continue
			case err != nil:
				fmt.Fprintf(stderr, "verify: entry %d: %v\n", e.Index, err)
				code = exitAltered
				continue
			}
			id := d.SourceID()
			if id == "" {
				id = "-"
			}
			fmt.Fprintf(stdout, "%d %s\n", e.Index, id)
		}
		if encrypted > 0 {
			fmt.Fprintf(stderr, "verify: %d entries are encrypted; -who NAME -why REASON decrypts their ids and records that access\n", encrypted)
		}
		return code
	}

	opts := ledger.VerifyOptions{}
	if *trusted != "" {
		if opts.Trusted, err = os.ReadFile(*trusted); err != nil {
			return fail(err)
		}
	}
	start := time.Now()
	rep, err := ledger.Verify(ctx, st, v, opts)
	var ve *ledger.VerifyError
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(stdout, "ALTERED: %s: the first bad entry is %d: %s\n", *dir, ve.Index, ve.Reason)
		return exitAltered
	case errors.Is(err, seal.ErrCheckpointSignature) || errors.Is(err, seal.ErrMalformedCheckpoint):
		fmt.Fprintf(stdout, "ALTERED: %s: %v\n", *dir, err)
		return exitAltered
	case err != nil:
		return fail(err)
	}
	if !*quiet {
		el := time.Since(start)
		fmt.Fprintf(stdout, "OK: %s: %d entries, %d signed checkpoints verified in %v (%.0f MB/s)\n",
			*dir, rep.Entries, rep.Checkpoints, el.Round(time.Millisecond), float64(rep.Bytes)/1e6/el.Seconds())
		fmt.Fprintf(stdout, "  latest checkpoint: %s, tree size %d, root %s\n", rep.Latest.Origin, rep.Latest.Size, rep.Latest.Root)
		if rep.Uncovered > 0 {
			fmt.Fprintf(stdout, "  %d entries after the latest checkpoint are verified but not yet signed for\n", rep.Uncovered)
		}
		if rep.Encrypted > 0 {
			fmt.Fprintf(stdout, "  %d encrypted entries: their content commitments need the data keys to check\n", rep.Encrypted)
		}
		fmt.Fprintf(stdout, "  verifier key %s\n", keySource)
	}
	return exitOK
}

// listDecrypted lists source ids through an audited accessor: the access is sealed into the
// ledger before any content is read, so it opens the ledger for writing.
func listDecrypted(ctx context.Context, dir, who, why string, stdout, stderr io.Writer) int {
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsageErr
	}
	size := l.Size()
	code := exitOK
	err = l.Access(who, why).Scan(ctx, 0, size, func(e *ledger.Entry, err error) error {
		id := e.SourceID()
		switch {
		case errors.Is(err, ledger.ErrShredded):
			id = "shredded:" + e.Leaf.KeyID
		case err != nil:
			fmt.Fprintf(stderr, "verify: entry %d: %v\n", e.Index, err)
			code = exitAltered
			return nil
		case id == "":
			id = "-"
		}
		fmt.Fprintf(stdout, "%d %s\n", e.Index, id)
		return nil
	})
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsageErr
	}
	fmt.Fprintf(stderr, "verify: this access (%s: %s) is recorded as entry %d\n", who, why, size)
	return code
}
