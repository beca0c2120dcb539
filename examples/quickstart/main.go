// Command quickstart runs commseal end to end on the embedded file store: it captures
// realistic DingTalk bot messages (text, richText, picture, audio, file; one-to-one and group;
// English, Traditional and Simplified Chinese; some delivered twice), seals them into a ledger
// in ./commseal-data, scans them with the default lexicon and runs two behaviour rules over
// them (a Hong Kong desk's trading hours with its holidays, an external party's first contact:
// the samples trip both), seals the findings as annotations, prints the open alert queue,
// indexes them for search, verifies the whole ledger, and prints what it did and where it is.
//
//	go run ./examples/quickstart [-dir DIR] [-n N] [-messages FILE] [-store DIR2|postgres://...] [-blobs s3://...]
//
// -store and -blobs put the log, checkpoints and data keys in PostgreSQL (or another
// directory) and the attachments in an S3 bucket with Object Lock (internal/backend); the keys
// stay in DIR.
//
// -messages FILE takes the messages from a file of raw DingTalk bot payloads, one JSON object
// per line as the gateway delivers `data`. A malformed line is reported with its line number and
// skipped, the rest are kept, and the exit status is then 1.
//
// Exit status (README, "Exit status"): 0 when the ledger verifies; 1 when the run fails
// (capture, surveillance, the store, I/O) or the ledger does not verify; 2 when the invocation
// is refused before anything is written: bad flags, a -messages file that cannot be opened, a
// bad -store or -blobs, or a ledger directory or store that is not this run's (one that keeps
// its store elsewhere, backend.ErrMismatch; a new directory on a store holding a ledger,
// backend.ErrNotEmpty, or claimed by another ledger's key, ledger.ErrOtherLedger; a directory
// open in another process or missing its keys).
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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/dingtalk"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/verify"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "./commseal-data", "ledger directory (created if absent)")
	n := fl.Int("n", 200, "number of sample messages to deliver (some are redeliveries)")
	messages := fl.String("messages", "", "file of raw DingTalk bot payloads, one JSON object per line, instead of the samples")
	var stores backend.Flags
	stores.Register(fl)
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0 // -h: the usage was asked for
	} else if err != nil {
		return 2
	}
	if fl.NArg() > 0 || *n < 0 {
		fmt.Fprintln(stderr, "quickstart: usage: quickstart [-dir DIR] [-n N] [-messages FILE] [-store DIR2|postgres://...] [-blobs s3://...]")
		return 2
	}
	spec, err := stores.Parse(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "quickstart: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	var in io.Reader
	source := fmt.Sprintf("%d sample DingTalk bot messages, pushed through a local DingTalk gateway to the official Stream SDK", *n)
	if *messages != "" {
		f, err := os.Open(*messages)
		if err != nil {
			fmt.Fprintf(stderr, "quickstart: %v\n", err)
			return 2
		}
		defer f.Close()
		in, source = f, *messages+" (backfill import)"
	}

	l, err := ledgerdir.OpenOn(ctx, *dir, layout.DefaultOrigin, spec, ledger.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "quickstart: opening ledger in %s: %v\n", *dir, err)
		return ledgerdir.ExitCode(err) // 2 for a directory or store that is not this run's
	}
	start := time.Now()
	im := capture.Importer{
		Parse: func(raw []byte) (*capture.Message, error) {
			m, err := dingtalk.ParseBotMessage(raw)
			if err == nil {
				m.CapturedAt = time.Now()
			}
			return m, err
		},
		OnError: func(le *capture.LineError) error {
			fmt.Fprintf(stderr, "quickstart: %s: line %d skipped: %v\n", source, le.Line, le.Err)
			return nil
		},
	}
	tally := &tally{sink: l, kinds: map[string]int{}, convs: map[string]string{}}
	var st capture.ImportStats
	var gwRun gatewayRun
	var ierr error
	if in != nil {
		st, ierr = im.Import(ctx, in, tally)
	} else {
		gwRun, ierr = captureViaGateway(ctx, l, tally, samplePayloads(*n, 1), log)
		st.Stored, st.Duplicates = tally.stored, tally.dups
	}
	elapsed := time.Since(start)
	var rside *readSide
	if ierr == nil {
		rside, ierr = surveilAndSearch(ctx, l)
	}
	if err := l.Close(); err != nil && ierr == nil {
		ierr = err
	}
	if ierr != nil {
		fmt.Fprintf(stderr, "quickstart: %v\n", ierr)
		return ledgerdir.ExitFailed
	}

	// Verify what is on disk, as an auditor would: read-only, with the verifier key only.
	vstart := time.Now()
	rs, err := backend.OpenReader(ctx, *dir, spec, log)
	if err != nil {
		fmt.Fprintf(stderr, "quickstart: reopening for verification: %v\n", err)
		return ledgerdir.ExitFailed
	}
	defer rs.Close()
	rep, verr := verify.Ledger(ctx, rs, l.Signing.Verifier, verify.Options{})
	vel := time.Since(vstart)
	kinds, convs := tally.summary()

	w := func(label, format string, args ...any) {
		fmt.Fprintf(stdout, "  %-13s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintln(stdout, "commseal quickstart")
	w("source", "%s", source)
	if in != nil {
		w("captured", "%d new messages, %d redeliveries dropped (already sealed), %d malformed lines skipped, in %v",
			st.Stored, st.Duplicates, len(st.Skipped), elapsed.Round(time.Millisecond))
	} else {
		h := gwRun.health
		w("captured", "%d new messages, %d redeliveries dropped (already sealed), in %v", st.Stored, st.Duplicates, elapsed.Round(time.Millisecond))
		w("stream", "%d pushes acknowledged %d times with 200, each only after its message was durable;", gwRun.pushes, h.Acks["200"])
		w("", "push-to-ack p50 %v, p99 %v; %d reconnects, %d capture errors", gwRun.ackP50.Round(time.Microsecond), gwRun.ackP99.Round(time.Microsecond), h.Reconnects, h.CaptureErrors)
		w("media", "%d attachments fetched through the download API, stored encrypted and sealed", h.MediaStored)
		w("", "as media records (%d failed, %d pending)", h.MediaFailed, h.PendingMedia)
	}
	w("new by kind", "%s", kinds)
	w("conversations", "%s", convs)
	w("surveillance", "%d messages scanned with the %s lexicon off the ack path: %d flagged:", rside.scanned, rside.lexicon, rside.flagged)
	w("", "%s", ruleCounts(rside.rules))
	w("behaviour", "rules %s (trading hours with HK holidays, first external contact) over the same messages:", rside.behaviourVersion)
	w("", "%s", ruleCounts(rside.behaviour))
	w("", "%d annotation entries sealed (the findings of both, each encrypted under its message's key)", rside.new)
	w("alert queue", "%d open alerts (the queue read as an access), the first:", rside.open)
	for _, line := range rside.first {
		w("", "%s", line)
	}
	w("search", "index of %d messages in %s/%s, each sealed under its message's key;", rside.indexed, *dir, layout.IndexDir)
	w("", "%q finds %d (the query sealed as an access entry first)", rside.query, rside.hits)
	if verr != nil {
		var ve *verify.AlteredError
		if errors.As(verr, &ve) {
			w("VERIFY FAILED", "entry %d: %s", ve.Index, ve.Reason)
		} else {
			w("VERIFY FAILED", "%v", verr)
		}
		return 1
	}
	checkpoints := "signed checkpoints"
	if rep.Checkpoints == 1 {
		checkpoints = "signed checkpoint"
	}
	w("verified", "%d entries and %d %s in %v, read-only with the verifier key:",
		rep.Entries, rep.Checkpoints, checkpoints, vel.Round(time.Millisecond))
	w("", "every leaf, ciphertext hash, conversation chain, Merkle hash and signature recomputed")
	w("checkpoint", "tree size %d, root %s", rep.Latest.Size, rep.Latest.Root)
	w("ledger", "%s (origin %s)", *dir, l.Origin())
	if spec.Default {
		w("stored", "%s/store/: append-only segment files of checksummed frames (entries with", *dir)
		w("", "their raw DingTalk payloads byte for byte, encrypted), Merkle stored hashes, signed")
		w("", "checkpoints, dedup and conversation indexes; %s/%s: data keys (one per", *dir, layout.VaultDir)
		w("", "tenant, conversation and month) wrapped by the key-encryption key;")
	} else {
		w("stored", "%s:", spec.Store)
		w("", "entries (raw payloads byte for byte, encrypted), Merkle stored hashes,")
		if spec.Store.Kind == backend.Postgres {
			w("", "signed checkpoints and the data keys (wrapped by the key-encryption key);")
		} else {
			w("", "signed checkpoints; %s/%s: data keys wrapped by the key-encryption key;", *dir, layout.VaultDir)
		}
		if spec.Blobs.Kind != "" {
			w("", "attachments (encrypted, locked) in %s;", spec.Blobs)
		}
		w("", "%s/%s records where (no credentials);", *dir, layout.StoreFile)
	}
	w("", "%s/%s: checkpoint signing key (0600); %s/%s: the verifier key for auditors", *dir, layout.KeyFile, *dir, layout.VKeyFile)
	if l.DemoKEK {
		w("encryption", "XChaCha20-Poly1305; the key-encryption key is %s/%s, a DEMONSTRATION", *dir, layout.KEKFile)
		w("", "key kept beside the data: for real use start a new ledger with %s set", layout.PassphraseEnv)
		w("", "(Argon2id) or plug a KMS into ledger.Encryption")
	} else {
		w("encryption", "XChaCha20-Poly1305; data keys wrapped by a KEK derived from %s (Argon2id)", layout.PassphraseEnv)
	}
	fmt.Fprintln(stdout, "next")
	if !spec.Default {
		fmt.Fprintf(stdout, "  (give every program below the -store and -blobs you gave this one; verify takes -store alone)\n")
	}
	fmt.Fprintf(stdout, "  go run ./examples/verify -dir %s            # verify offline\n", *dir)
	fmt.Fprintf(stdout, "  go run ./examples/verify -dir %s -proof 0   # a C2SP tlog-proof for entry 0\n", *dir)
	fmt.Fprintf(stdout, "  go run ./examples/review -dir %s -who you -why \"first look\" alerts   # the alert queue\n", *dir)
	if len(st.Skipped) > 0 {
		return 1
	}
	return 0
}

// tally passes messages to the ledger and counts what was stored, by kind and conversation.
type tally struct {
	sink   capture.Sink
	mu     sync.Mutex // sources append concurrently
	kinds  map[string]int
	convs  map[string]string
	stored int
	dups   int
}

func (t *tally) Append(ctx context.Context, m *capture.Message) (capture.Receipt, error) {
	rc, err := t.sink.Append(ctx, m)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
	case rc.Duplicate:
		t.dups++
	default:
		t.stored++
		t.kinds[m.Kind]++
		t.convs[m.Conversation.ID] = m.Conversation.Type
	}
	return rc, err
}

func (t *tally) summary() (kinds, convs string) {
	var parts []string
	for name, v := range t.kinds {
		parts = append(parts, fmt.Sprintf("%s %d", name, v))
	}
	sort.Strings(parts)
	groups := 0
	for _, ty := range t.convs {
		if ty == capture.ConversationGroup {
			groups++
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	return strings.Join(parts, ", "), fmt.Sprintf("%d (%d group, %d one-to-one)", len(t.convs), groups, len(t.convs)-groups)
}
