// Command verify checks a commseal ledger offline, with nothing but its verifier key.
//
//	go run ./examples/verify -dir DIR [-store DIR2|postgres://...] [-key VKEY|-key-file FILE] [-trusted FILE] [-allow-unsigned]
//	go run ./examples/verify -dir DIR -vkey | -checkpoint | -proof N | -list
//	go run ./examples/verify -bundle PATH -key VKEY|-key-file FILE
//
// With no action flag it verifies the whole ledger: every leaf, payload hash, content
// commitment, conversation chain, Merkle stored hash, checkpoint signature and the consistency
// of every checkpoint with the entries. Exit status (README, "Exit status"): 0 intact; 1
// altered or damaged, in any way (the first bad index and the reason are printed); 2 the
// invocation was refused or the check could not be made, which says nothing about the ledger:
// bad or missing flags, a key or -trusted file that does not parse, a bad -store, a directory
// that holds no ledger (layout.ErrNoLedger) or records another kind of store
// (backend.ErrMismatch), and an I/O error while reading. The last is this program's deliberate
// exception to the programs' convention (where a failed read is 1): an auditor's exit status 1
// means "altered" and nothing else. The decision is package verify's (verify.Altered); this
// program only prints it. Entries after the latest checkpoint (a writer that stopped before its next
// signature) are verified and reported; a ledger with entries and no signed checkpoint at all
// fails unless -allow-unsigned is given.
//
// The verifier key is read from DIR/ledger.vkey unless -key or -key-file gives the one you
// received out of band; an auditor should always pass it, since whoever can alter the directory
// can replace that file too. -trusted FILE names a signed checkpoint you obtained earlier (for
// example with -checkpoint): a ledger rolled back or forked since then fails.
//
// -vkey prints the verifier key; -checkpoint the latest signed checkpoint; -proof N a C2SP
// tlog-proof@v1 for entry N against the latest checkpoint, whose extra line is the base64 of the
// exact leaf bytes; -list one line per entry: "<index> <source message id>", where an encrypted
// entry shows its key id (examples/retention -list decrypts the ids through an audited
// accessor).
//
// Anchors (package ledger/anchor: RFC 3161 time-stamps and witness cosignatures over the
// checkpoints, sealed as anchor entries) are always checked against the ledger's own
// checkpoints; -tsa-roots FILE (PEM) checks each token's signature and chain and their order
// (a token dated before an earlier checkpoint's is altered); -witness VKEY (repeatable) with
// -witness-quorum K (default: all) requires the latest cosigned checkpoint to carry the log's
// signature and K of those witnesses' cosignatures (exit 1 if not). The program prints, per
// anchored checkpoint, its size, each token's time and TSA, and the witnesses. -anchors DIR
// writes each anchored checkpoint (DIR/<size>.checkpoint, the signed note byte for byte) and
// each token (DIR/<size>.<entry>.tsr, DER), which a third party checks with
//
//	openssl ts -verify -data DIR/<size>.checkpoint -in DIR/<size>.<entry>.tsr -token_in -CAfile TSA-ROOT.pem -untrusted TSA-CERT.pem
//
// -bundle PATH checks an export bundle (package ledger/export) instead of a ledger, with
// verify.Bundle: the manifest's signature, every file's size and hash, the checkpoint, each
// entry's proof and commitment opening, and messages.jsonl against the opened content. The
// verifier key must be given (-key or -key-file): a bundle carries no key to trust. Exit status
// as for a ledger.
//
// -store names the store when it is not DIR/store: another directory, or postgres://... for a
// ledger in PostgreSQL (internal/backend), opened read-only (a read-only role, or a replica,
// will do). A directory whose ledger.store records another kind of store, or another database
// or schema, is refused (exit 2). The verifier key is still read from DIR unless given.
//
// This program is what an auditor runs: it opens the store read-only, beside a running writer
// if need be, and links no part of the writer (package ledger).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/verify"
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
	allowUnsigned := fl.Bool("allow-unsigned", false, "accept a ledger that holds entries but no signed checkpoint")
	printVKey := fl.Bool("vkey", false, "print the ledger's verifier key")
	printCP := fl.Bool("checkpoint", false, "print the latest signed checkpoint")
	proof := fl.Int64("proof", -1, "print a C2SP tlog-proof@v1 for entry `N` against the latest checkpoint")
	list := fl.Bool("list", false, "print one line per entry: <index> <source message id>")
	quiet := fl.Bool("q", false, "print nothing when the ledger verifies")
	bundle := fl.String("bundle", "", "check the export bundle in directory `PATH` instead of a ledger (needs -key or -key-file)")
	tsaRoots := fl.String("tsa-roots", "", "PEM `FILE` of the roots time-stamp authorities' certificates must chain to: check every token")
	var witnesses multiFlag
	fl.Var(&witnesses, "witness", "a witness's verifier `VKEY` (repeatable): the latest cosigned checkpoint must meet the witness policy")
	quorum := fl.Int("witness-quorum", 0, "how many of the -witness keys must cosign (default: all)")
	anchorsDir := fl.String("anchors", "", "write each anchored checkpoint and its tokens as files into `DIR`, for openssl ts -verify")
	var stores backend.Flags
	stores.RegisterStore(fl)
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return exitOK // -h: the usage was asked for
	} else if err != nil {
		return exitUsageErr
	}
	if *bundle != "" {
		return runBundle(fl, *bundle, *key, *keyFile, *quiet, bundleAnchors{*tsaRoots, witnesses, *quorum}, stdout, stderr)
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "verify: %s\nusage: verify -dir DIR [-store DIR2|postgres://...] [-key VKEY|-key-file FILE] [-trusted FILE] [-allow-unsigned] [-vkey|-checkpoint|-proof N|-list]\n", msg)
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
	if fl.Lookup("proof").Value.String() != "-1" && *proof < 0 {
		return usage("-proof takes an entry index >= 0")
	}
	spec, err := stores.Parse(*dir)
	if err != nil {
		return usage(err.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// fail reports an error: the ledger is altered if package verify says so, else the request
	// or the machine is at fault.
	fail := func(err error) int {
		if verify.Altered(err) {
			fmt.Fprintf(stdout, "ALTERED: %s: %v\n", *dir, err)
			return exitAltered
		}
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
		if vkey, err = layout.VerifierKey(*dir); err != nil {
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
	opts := verify.Options{AllowUnsigned: *allowUnsigned}
	if opts.Anchors, err = anchorPolicy(vkey, *tsaRoots, witnesses, *quorum); err != nil {
		return fail(err)
	}
	if *trusted != "" {
		if opts.Trusted, err = os.ReadFile(*trusted); err != nil {
			return fail(err)
		}
		if _, err := seal.OpenCheckpoint(opts.Trusted, v); err != nil {
			return fail(fmt.Errorf("-trusted %s: %w: %w", *trusted, verify.ErrTrusted, err))
		}
	}

	st, err := backend.OpenReader(ctx, *dir, spec, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return fail(err)
	}
	defer st.Close()

	switch {
	case *printCP:
		c, err := st.LatestCheckpoint(ctx)
		if errors.Is(err, store.ErrNotFound) {
			fmt.Fprintf(stderr, "verify: the ledger has no checkpoint yet\n")
			return exitUsageErr
		}
		if err != nil {
			return fail(err)
		}
		if _, err := seal.OpenCheckpoint(c.Note, v); err != nil {
			return fail(&verify.AlteredError{Index: c.Size, Reason: fmt.Sprintf("the latest checkpoint does not verify: %v", err)})
		}
		stdout.Write(c.Note)
		return exitOK
	case *proof >= 0:
		p, err := verify.Proof(ctx, st, uint64(*proof), v)
		if err != nil {
			return fail(err)
		}
		stdout.Write(p.Marshal())
		return exitOK
	case *list:
		return listEntries(ctx, st, stdout, stderr, fail)
	}

	start := time.Now()
	rep, err := verify.Ledger(ctx, st, v, opts)
	var ae *verify.AlteredError
	if errors.As(err, &ae) {
		fmt.Fprintf(stdout, "ALTERED: %s: the first bad entry is %d: %s\n", *dir, ae.Index, ae.Reason)
		return exitAltered
	}
	if errors.Is(err, verify.ErrWitnessPolicy) {
		fmt.Fprintf(stdout, "NOT WITNESSED: %s: %v\n", *dir, err)
		return exitAltered
	}
	if err != nil {
		return fail(err)
	}
	if !*quiet {
		el := time.Since(start)
		cps := "signed checkpoints"
		if rep.Checkpoints == 1 {
			cps = "signed checkpoint"
		}
		fmt.Fprintf(stdout, "OK: %s: %d entries, %d %s verified in %v (%.0f MB/s)\n",
			*dir, rep.Entries, rep.Checkpoints, cps, el.Round(time.Millisecond), float64(rep.Bytes)/1e6/el.Seconds())
		if rep.Checkpoints > 0 {
			fmt.Fprintf(stdout, "  latest checkpoint: %s, tree size %d, root %s\n", rep.Latest.Origin, rep.Latest.Size, rep.Latest.Root)
		}
		if rep.Uncovered > 0 {
			fmt.Fprintf(stdout, "  %d entries after the latest checkpoint are verified but nobody has signed for them yet (a writer that stopped before its next signature, or one still running)\n", rep.Uncovered)
		}
		if rep.Encrypted > 0 {
			fmt.Fprintf(stdout, "  %d encrypted entries: their content commitments need the data keys to check\n", rep.Encrypted)
		}
		fmt.Fprintf(stdout, "  verifier key %s\n", keySource)
		printAnchors(stdout, rep.Anchored)
	}
	if *anchorsDir != "" {
		if err := writeAnchors(*anchorsDir, rep.Anchored); err != nil {
			return fail(err)
		}
	}
	return exitOK
}

// listEntries prints "<index> <source message id>" for every entry; an encrypted entry shows
// its key id.
func listEntries(ctx context.Context, st verify.Reader, stdout, stderr io.Writer, fail func(error) int) int {
	code, encrypted := exitOK, 0
	size, err := st.Size(ctx)
	if err != nil {
		return fail(err)
	}
	for e, err := range st.Entries(ctx, 0, size) {
		if err != nil {
			return fail(err)
		}
		leaf, _, err := verify.Entry(e)
		if err != nil {
			fmt.Fprintf(stderr, "verify: entry %d: %v\n", e.Index, err)
			code = exitAltered
			continue
		}
		if leaf.KeyID != "" {
			encrypted++
			fmt.Fprintf(stdout, "%d encrypted:%s\n", e.Index, leaf.KeyID)
			continue
		}
		fmt.Fprintf(stdout, "%d %s\n", e.Index, plainSourceID(e.Payload))
	}
	if encrypted > 0 {
		fmt.Fprintf(stderr, "verify: %d entries are encrypted; examples/retention -list -who NAME -why REASON decrypts their ids and records that access\n", encrypted)
	}
	return code
}

// plainSourceID returns the source id in a plaintext entry's envelope, or "-".
func plainSourceID(envelope []byte) string {
	_, body, err := seal.OpenEnvelope(envelope)
	if err != nil {
		return "-"
	}
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &v) != nil || v.ID == "" {
		return "-"
	}
	return v.ID
}

// runBundle checks an export bundle; no flag of a ledger check applies.
// bundleAnchors are the anchor flags for -bundle.
type bundleAnchors struct {
	roots     string
	witnesses []string
	quorum    int
}

func runBundle(fl *flag.FlagSet, dir, key, keyFile string, quiet bool, ba bundleAnchors, stdout, stderr io.Writer) int {
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "verify: %s\nusage: verify -bundle PATH -key VKEY|-key-file FILE [-tsa-roots FILE] [-witness VKEY]... [-witness-quorum K] [-q]\n", msg)
		return exitUsageErr
	}
	bad := ""
	fl.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "bundle", "key", "key-file", "q", "tsa-roots", "witness", "witness-quorum":
		default:
			bad = f.Name
		}
	})
	switch {
	case bad != "":
		return usage("-" + bad + " does not apply to -bundle")
	case fl.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fl.Arg(0)))
	case (key == "") == (keyFile == ""):
		return usage("-bundle needs the verifier key you were given: -key or -key-file")
	}
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			fmt.Fprintf(stderr, "verify: %v\n", err)
			return exitUsageErr
		}
		key = strings.TrimSpace(string(b))
	}
	anchors, err := anchorPolicy(key, ba.roots, ba.witnesses, ba.quorum)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsageErr
	}
	rep, err := verify.BundleWith(dir, key, verify.BundleOptions{Anchors: anchors})
	if err != nil {
		if verify.Altered(err) {
			fmt.Fprintf(stdout, "ALTERED: %s: %v\n", dir, err)
			return exitAltered
		}
		if errors.Is(err, verify.ErrWitnessPolicy) {
			fmt.Fprintf(stdout, "NOT WITNESSED: %s: %v\n", dir, err)
			return exitAltered
		}
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsageErr
	}
	if !quiet {
		fmt.Fprintf(stdout, "OK: bundle %s: %d entries (%d opened, %d shredded) and %d attachments proved against %s at tree size %d, consistent with tree size %d; exported by %q for %q at %s\n",
			dir, len(rep.Entries), rep.Opened, rep.Shredded, rep.Attachments, rep.Origin, rep.TreeSize, rep.LatestSize,
			rep.Request.Who, rep.Request.Why, rep.Request.When.UTC().Format(time.RFC3339))
		printAnchors(stdout, rep.Anchored)
	}
	return exitOK
}
