// Command retention applies a retention policy and manages legal holds on a ledger directory
// (as the quickstart or the archiver write them). Every action is sealed into the ledger.
//
//	go run ./examples/retention -dir DIR -holds
//	go run ./examples/retention -dir DIR -hold ID -tenant T [-conversation C] -reason R -by WHO
//	go run ./examples/retention -dir DIR -release ID -reason R -by WHO
//	go run ./examples/retention -dir DIR -keep 2y [-tenant T] [-kinds message,media] [-now 2029-01-01] -dry-run
//	go run ./examples/retention -dir DIR -keep 2y -authority "retention job approved by CCO"
//	go run ./examples/retention -dir DIR -list -who WHO -why REASON
//	go run ./examples/retention -dir DIR -apply-locks [-keep 7y]
//
// -keep takes years, months and days ("7y", "24m", "2y6m", "90d"); scopes (tenant × conversation
// × month) whose month ended longer ago than that, and that no legal hold covers, have their data
// keys destroyed and a shred entry sealed for each. With -kinds, a scope is shredded only when
// every kind of entry it holds is among them: a kind the rule does not name keeps the scope.
// -dry-run lists them and changes nothing. A run that shreds ends by retiring the KEK that
// wrapped the destroyed keys (a new KEK in keks/, the surviving keys rewrapped under it, the old
// one overwritten in place and removed); a run that was interrupted is finished by the next. -list decrypts and prints, one line per entry, its index,
// kind, tenant, conversation and source id (what a hold names), through an audited accessor that
// seals the access into the ledger first.
//
// Exit status (README, "Exit status"): 0 done; 1 the action failed (an append, the store, a
// hold that is not there, locks left pending); 2 the invocation was refused before anything
// was done: bad or missing flags, a bad -store or -blobs, or a directory that holds no ledger,
// keeps it elsewhere (backend.ErrMismatch), is open in another process or lacks its keys.
//
// With -blobs on S3 Object Lock (internal/backend), holds set and clear the legal hold of the
// attachments they cover, and a retention run sets their retain-until dates to the end of their
// scopes' retention. When the bucket cannot be reached, the hold or the run is still sealed and
// the program says that the locks are pending (exit 1); -apply-locks applies them (with -keep,
// under that policy's dates).
//
// -store and -blobs name where the ledger's log and attachments are when not in DIR/store
// (postgres://..., s3://...; internal/backend).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

var periodRE = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?$`)

// parsePeriod reads "2y", "24m", "2y6m", "90d".
func parsePeriod(s string) (ledger.Period, error) {
	m := periodRE.FindStringSubmatch(s)
	if m == nil || s == "" {
		return ledger.Period{}, fmt.Errorf("period %q: want years, months and days such as 7y, 24m, 2y6m or 90d", s)
	}
	n := func(x string) int { v, _ := strconv.Atoi(x); return v }
	p := ledger.Period{Years: n(m[1]), Months: n(m[2]), Days: n(m[3])}
	if p == (ledger.Period{}) {
		return p, fmt.Errorf("period %q is zero", s)
	}
	return p, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("retention", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "", "ledger directory (required)")
	holds := fl.Bool("holds", false, "list the active legal holds")
	hold := fl.String("hold", "", "place a legal hold with this `id`")
	release := fl.String("release", "", "release the legal hold with this `id`")
	tenant := fl.String("tenant", "", "tenant of a hold, or of the retention rule (default: every tenant)")
	conv := fl.String("conversation", "", "conversation id of a hold (default: the whole tenant)")
	reason := fl.String("reason", "", "reason for a hold or a release")
	by := fl.String("by", "", "who places or releases a hold")
	keep := fl.String("keep", "", "retention period of the rule to apply, e.g. 2y or 7y")
	kinds := fl.String("kinds", "", "comma-separated entry kinds the rule applies to (default: all)")
	now := fl.String("now", "", "judge expiry at this date (YYYY-MM-DD, UTC); default now")
	dry := fl.Bool("dry-run", false, "list what the policy would shred; change nothing")
	authority := fl.String("authority", "", "who authorized shredding (required without -dry-run)")
	list := fl.Bool("list", false, "list every entry's kind, tenant, conversation and source id (needs -who and -why; the access is sealed)")
	applyLocks := fl.Bool("apply-locks", false, "bring the attachments' object locks (S3 Object Lock) in line with the holds and, with -keep, the retention policy")
	who := fl.String("who", "", "with -list: who reads")
	why := fl.String("why", "", "with -list: why, recorded with the access")
	var stores backend.Flags
	stores.Register(fl)
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0 // -h: the usage was asked for
	} else if err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "retention: %s\n", msg)
		return 2
	}
	actions := 0
	for _, on := range []bool{*holds, *hold != "", *release != "", *keep != "" && !*applyLocks, *list, *applyLocks} {
		if on {
			actions++
		}
	}
	switch {
	case *dir == "":
		return usage("-dir is required")
	case fl.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fl.Arg(0)))
	case actions != 1:
		return usage("give exactly one of -holds, -hold ID, -release ID, -keep PERIOD, -list, -apply-locks")
	case *list && (*who == "" || *why == ""):
		return usage("-list needs -who and -why: the access is sealed into the ledger")
	case *hold != "" && (*tenant == "" || *reason == "" || *by == ""):
		return usage("-hold needs -tenant, -reason and -by")
	case *release != "" && (*reason == "" || *by == ""):
		return usage("-release needs -reason and -by")
	case *keep != "" && !*dry && !*applyLocks && *authority == "":
		return usage("shredding needs -authority (or -dry-run)")
	case *applyLocks && (*dry || *authority != "" || *now != ""):
		// -apply-locks changes the bucket's locks for real; a dry run of it does not exist.
		return usage("-apply-locks takes no -dry-run, -authority or -now")
	}
	var policy ledger.RetentionPolicy
	var at time.Time
	if *keep != "" {
		p, err := parsePeriod(*keep)
		if err != nil {
			return usage(err.Error())
		}
		rule := ledger.RetentionRule{Name: "keep " + *keep, Tenant: *tenant, Keep: p}
		if *kinds != "" {
			rule.Kinds = strings.Split(*kinds, ",")
		}
		policy.Rules = []ledger.RetentionRule{rule}
		if *now != "" {
			if at, err = time.Parse("2006-01-02", *now); err != nil {
				return usage(fmt.Sprintf("-now %q: want YYYY-MM-DD", *now))
			}
		}
	}
	spec, err := stores.Parse(*dir)
	if err != nil {
		return usage(err.Error())
	}
	if err := layout.Exists(*dir); err != nil { // a mistyped -dir is not laid out as a new ledger
		return usage(err.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l, err := ledgerdir.OpenOn(ctx, *dir, "", spec, ledger.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "retention: %v\n", err)
		return ledgerdir.ExitCode(err) // 2 for a directory or store that is not this run's
	}
	code := act(ctx, l, stderr, func(ctx context.Context) error {
		switch {
		case *list:
			return listEntries(ctx, l.Ledger, *who, *why, stdout, stderr)
		case *holds:
			hs, err := l.Holds(ctx)
			for _, h := range hs {
				scope := h.Tenant
				if h.Conversation != "" {
					scope += "/" + h.Conversation
				}
				fmt.Fprintf(stdout, "%s\t%s\tsince %s\tby %s\t%s\n", h.ID, scope, h.From.Format(time.RFC3339), h.By, h.Reason)
			}
			if err == nil && len(hs) == 0 {
				fmt.Fprintln(stdout, "no active legal holds")
			}
			return err
		case *hold != "":
			i, err := l.PlaceHold(ctx, ledger.Hold{ID: *hold, Tenant: *tenant, Conversation: *conv, Reason: *reason, By: *by})
			if err == nil || errors.Is(err, ledger.ErrLocksPending) {
				fmt.Fprintf(stdout, "hold %s placed: entry %d\n", *hold, i)
			}
			return locksPending(err, *dir, stores)
		case *release != "":
			i, err := l.ReleaseHold(ctx, *release, *by, *reason)
			if err == nil || errors.Is(err, ledger.ErrLocksPending) {
				fmt.Fprintf(stdout, "hold %s released: entry %d\n", *release, i)
			}
			return locksPending(err, *dir, stores)
		case *applyLocks:
			if _, locks := l.Blobs.(ledger.ObjectLocker); !locks {
				fmt.Fprintln(stdout, "object locks: none to apply: the attachments are in a store that does not lock objects (-blobs s3://… keeps them under S3 Object Lock)")
				return nil
			}
			var p *ledger.RetentionPolicy
			if *keep != "" {
				p = &policy
			}
			r, err := l.ApplyLocks(ctx, p)
			fmt.Fprintf(stdout, "object locks: %d attachments, %d retain-until dates set, %d legal holds placed, %d cleared, %d failed\n", r.Blobs, r.Retained, r.Held, r.Cleared, r.Failed)
			if errors.Is(err, ledger.ErrNoScopes) {
				return nil // a plain ledger: no scopes, nothing to lock by
			}
			return locksPending(err, *dir, stores)
		}
		kek := l.Keyring.ID()
		shreds, err := l.ApplyRetention(ctx, policy, ledger.ApplyOptions{Now: at, DryRun: *dry, Authority: *authority})
		verb := "shredded"
		if *dry {
			verb = "would shred"
		}
		for _, s := range shreds {
			if s.Resumed {
				fmt.Fprintf(stdout, "finished %s, shredded by an interrupted run (entry %d)\n", s.KeyID, s.Index)
				continue
			}
			line := fmt.Sprintf("%s %s: tenant %s, conversation %s, month %s, expired %s", verb, s.KeyID, s.Tenant, s.Conversation, s.Month, s.ExpiredAt.Format("2006-01-02"))
			if len(s.Blobs) > 0 {
				line += fmt.Sprintf(", %d attachments", len(s.Blobs))
			}
			if !*dry {
				line += fmt.Sprintf(" (entry %d)", s.Index)
			}
			fmt.Fprintln(stdout, line)
		}
		n := 0
		for _, s := range shreds {
			if !s.Resumed {
				n++
			}
		}
		fmt.Fprintf(stdout, "%d scopes %s\n", n, verb)
		if now := l.Keyring.ID(); now != kek {
			fmt.Fprintf(stdout, "KEK %s retired: the remaining data keys are now wrapped under %s\n", kek, now)
		}
		return locksPending(err, *dir, stores)
	})
	return code
}

// locksPending explains ledger.ErrLocksPending: what was asked is sealed, and the storage's locks
// are what is left to do, with the command that does it (the flags that name the stores are
// not repeated: they may hold credentials).
func locksPending(err error, dir string, stores backend.Flags) error {
	if errors.Is(err, ledger.ErrLocksPending) {
		again := ""
		if stores.Store != "" || stores.Blobs != "" {
			again = " with the same -store and -blobs"
		}
		return fmt.Errorf("%w\nthe entry is sealed; the attachments' storage locks are pending: run retention -dir %s -apply-locks%s once the bucket is reachable", err, dir, again)
	}
	return err
}

// act runs f on the open ledger and closes it (signing a final checkpoint).
func act(ctx context.Context, l *ledgerdir.Ledger, stderr io.Writer, f func(context.Context) error) int {
	err := f(ctx)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "retention: %v\n", err)
		return ledgerdir.ExitFailed
	}
	return ledgerdir.ExitOK
}

// listEntries prints every entry through an audited accessor: the access is sealed into the
// ledger before any content is read.
func listEntries(ctx context.Context, l *ledger.Ledger, who, why string, stdout, stderr io.Writer) error {
	size := l.Size()
	err := l.Access(who, why).Scan(ctx, 0, size, func(e *ledger.Entry, err error) error {
		tenant, conv, id := "-", "-", e.SourceID()
		switch {
		case e.Message != nil:
			tenant, conv = e.Message.Tenant, e.Message.Conversation.ID
		case e.Record != nil:
			tenant, conv = e.Record.Tenant, e.Record.Conversation.ID
		}
		switch {
		case errors.Is(err, ledger.ErrShredded):
			id = "shredded:" + e.Leaf.KeyID
		case err != nil:
			return err
		case id == "":
			id = "-"
		}
		fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%s\n", e.Index, e.Leaf.Kind, orDash(tenant), orDash(conv), id)
		return nil
	})
	if err == nil {
		fmt.Fprintf(stderr, "retention: this access (%s: %s) is recorded as entry %d\n", who, why, size)
	}
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
