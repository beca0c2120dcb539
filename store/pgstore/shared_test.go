package pgstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/verify"
)

// sharedMessage is message n of writer w ("" for the pool every writer appends, as DingTalk
// redelivers a push to another connection).
func sharedMessage(w string, n int) *capture.Message {
	id := fmt.Sprintf("%s-%d", w, n)
	if w == "" {
		id = fmt.Sprintf("pool-%d", n)
	}
	return &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: id, Kind: capture.KindText,
		Conversation: capture.Conversation{ID: fmt.Sprint("cid", n%8), Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "u" + w, Name: "Trader"}, SentAt: time.Unix(1_780_000_000+int64(n), 0).UTC(),
		Text: fmt.Sprintf("order %s %d", w, n), Raw: fmt.Appendf(nil, `{"msgId":%q}`, id)}
}

// TestSharedWriterProcess is one writer process of TestSeveralProcessesOneLedger, which runs
// this test binary again with COMMSEAL_PG_WRITER set; run directly, it skips.
func TestSharedWriterProcess(t *testing.T) {
	id := os.Getenv("COMMSEAL_PG_WRITER")
	if id == "" {
		t.Skip("a child process of TestSeveralProcessesOneLedger")
	}
	ctx := context.Background()
	fail := func(err error) { fmt.Fprintln(os.Stderr, "writer", id, err); os.Exit(3) }
	st, err := pgstore.Open(ctx, os.Getenv("COMMSEAL_PG_DSN"), &pgstore.Options{Schema: "shared", MaxConns: 8})
	if err != nil {
		fail(err)
	}
	skey, err := os.ReadFile(os.Getenv("COMMSEAL_PG_KEY"))
	if err != nil {
		fail(err)
	}
	signer, err := seal.ParseSigningKey(string(skey))
	if err != nil {
		fail(err)
	}
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: signer, Shared: true, CheckpointEvery: 200, CheckpointInterval: 200 * time.Millisecond})
	if err != nil {
		fail(err)
	}
	acks, err := os.OpenFile(os.Getenv("COMMSEAL_PG_ACKS"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fail(err)
	}
	stop := os.Getenv("COMMSEAL_PG_STOP")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := g; ; n += 8 {
				m := sharedMessage(id, n)
				if n%4 == 0 {
					m = sharedMessage("", n)
				}
				for {
					if _, err := os.Stat(stop); err == nil {
						return
					}
					rc, err := l.Append(ctx, m)
					if err != nil {
						time.Sleep(20 * time.Millisecond) // the server restarts: try again
						continue
					}
					// One write(2) per acknowledgement: it survives a SIGKILL of this process.
					mu.Lock()
					_, werr := fmt.Fprintf(acks, "%s %d %t\n", m.ID, rc.Index, rc.Duplicate)
					mu.Unlock()
					if werr != nil {
						fail(werr)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		fail(err)
	}
	st.Close()
	os.Exit(0)
}

// TestSeveralProcessesOneLedger runs three writer processes on one PostgreSQL ledger under
// load, kills one with SIGKILL mid-load, then crashes and restarts the server mid-load (with
// COMMSEAL_SLOW=1, then 20 more SIGKILLs at random moments, each victim started again). Every
// message any process acknowledged is in the log exactly once at the index it was told, the
// survivors carry on through the restart, and the whole log verifies, signed by one writer at a
// time.
func TestSeveralProcessesOneLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and restarts a server")
	}
	ctx := context.Background()
	srv := pgtest.NewServer(t)
	dsn := srv.CreateDatabase(t)
	dir := t.TempDir()
	skey, vkey, err := seal.GenerateSigningKey("test.example/shared")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, stop := filepath.Join(dir, "key"), filepath.Join(dir, "stop")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	st := open(t, dsn, "shared") // migrates the schema before the writers start
	const procs = 3
	cmds := make([]*exec.Cmd, procs)
	exited := make([]chan error, procs)
	ackFile := func(w int) string { return filepath.Join(dir, fmt.Sprint("acks", w)) }
	spawn := func(w int) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "COMMSEAL_PG_WRITER="+fmt.Sprint("w", w), "COMMSEAL_PG_DSN="+dsn,
			"COMMSEAL_PG_KEY="+keyFile, "COMMSEAL_PG_ACKS="+ackFile(w), "COMMSEAL_PG_STOP="+stop)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		cmds[w], exited[w] = cmd, done
		go func() {
			err := cmd.Wait()
			if err != nil && stderr.Len() > 0 {
				err = fmt.Errorf("%w: %s", err, stderr.String())
			}
			done <- err
		}()
		t.Cleanup(func() { cmd.Process.Kill() })
	}
	for w := range procs {
		spawn(w)
	}
	acked := func(w int) int {
		b, _ := os.ReadFile(ackFile(w))
		return strings.Count(string(b), "\n")
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (acks %d %d %d)", what, acked(0), acked(1), acked(2))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("every writer to append", func() bool { return acked(0) >= 300 && acked(1) >= 300 && acked(2) >= 300 })
	if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited[0]; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("writer 0 exited with %v; want killed", err)
	}
	killedAt := acked(0)
	base1, base2 := acked(1), acked(2)
	waitFor("the survivors to go on", func() bool { return acked(1) >= base1+300 && acked(2) >= base2+300 })
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	crashed1, crashed2 := acked(1), acked(2)
	time.Sleep(300 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor("the survivors to carry on after the restart", func() bool { return acked(1) >= crashed1+300 && acked(2) >= crashed2+300 })
	if os.Getenv("COMMSEAL_SLOW") == "1" {
		// More SIGKILLs at random moments under load, each victim started again (on its own
		// acknowledgements file: it sends its messages again, and is answered duplicates).
		for r := range 20 {
			w := 1 + r%2
			time.Sleep(time.Duration(50+mrand.IntN(450)) * time.Millisecond)
			if err := cmds[w].Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exited[w]
			before := acked(w)
			spawn(w)
			waitFor(fmt.Sprintf("writer %d to append again after kill %d", w, r+1), func() bool { return acked(w) >= before+50 })
		}
	}
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for w := 1; w < procs; w++ {
		select {
		case err := <-exited[w]:
			if err != nil {
				t.Fatalf("writer %d: %v", w, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("writer %d did not stop", w)
		}
	}
	t.Logf("acknowledged: writer 0 %d before SIGKILL; writers 1 and 2 %d and %d, %d and %d before the crash, %d and %d in all",
		killedAt, base1, base2, crashed1, crashed2, acked(1), acked(2))

	// Every acknowledgement is in the log, once, where it was told.
	size, err := st.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byIdentity := map[seal.Hash]uint64{}
	for e, err := range st.Entries(ctx, 0, size) {
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := seal.ParseLeaf(e.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if i, dup := byIdentity[leaf.Identity]; dup {
			t.Fatalf("entries %d and %d have one identity: a message stored twice", i, e.Index)
		}
		byIdentity[leaf.Identity] = e.Index
	}
	var acks, dups int
	for w := range procs {
		f, err := os.Open(ackFile(w))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			idx, _ := strconv.ParseUint(fs[1], 10, 64)
			got, ok := byIdentity[seal.IdentityDigest("message", "dingtalk", "corp", fs[0])]
			if !ok || got != idx {
				t.Fatalf("writer %d acknowledged %s at %d; the log has it at %d (present %t)", w, fs[0], idx, got, ok)
			}
			acks++
			if fs[2] == "true" {
				dups++
			}
		}
		f.Close()
	}
	if dups == 0 {
		t.Fatal("no redelivery was answered as a duplicate: the pool did not overlap")
	}
	t.Logf("%d entries, %d acknowledgements (%d of them duplicates)", size, acks, dups)

	// The log verifies, with every checkpoint the writers signed; one more covers the rest.
	signer, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: signer, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.SignCheckpoint(ctx); err != nil && !errors.Is(err, ledger.ErrNotFound) {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	v, _ := seal.NewVerifier(vkey)
	rep, err := verify.Ledger(ctx, st, v, verify.Options{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var cps int
	for _, err := range st.AllCheckpoints(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		cps++
	}
	if rep.Entries != size || cps < 3 {
		t.Fatalf("verified %d of %d entries, %d checkpoints", rep.Entries, size, cps)
	}
	t.Logf("verified %d entries and %d checkpoints", rep.Entries, cps)
}

var _ store.SharedLog = (*pgstore.Store)(nil)

// TestLeaseHasOneHolder: of two stores on one schema (two processes), one holds a lease at a
// time; it passes on when the holder closes, or when the holder's session is ended by the
// server, which the holder then learns at its next call. Another schema's lease is another
// lease.
func TestLeaseHasOneHolder(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	a, b, c := open(t, dsn, "lease"), open(t, dsn, "lease"), open(t, dsn, "lease")
	other := open(t, dsn, "lease2")
	hold := func(s *pgstore.Store, want bool, what string) {
		t.Helper()
		got, err := s.HoldLease(ctx, "checkpoint")
		if err != nil || got != want {
			t.Fatalf("%s: HoldLease = %t, %v; want %t", what, got, err, want)
		}
	}
	hold(a, true, "the first to ask")
	hold(b, false, "a second store while the first holds it")
	hold(a, true, "the holder again")
	hold(other, true, "a store of another schema")
	if got, err := b.HoldLease(ctx, "other-lease"); err != nil || !got {
		t.Fatalf("another lease name: %t, %v", got, err)
	}
	a.Close()
	hold(b, true, "a second store once the holder closed")
	// The server ends b's lease session (as a restart or a network cut would).
	if n, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()`); err != nil || n == 0 {
		t.Fatalf("terminating the lease sessions: %d, %v", n, err)
	}
	// The server ends the session soon after it is told to: the lease is free once it has.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, err := c.HoldLease(ctx, "checkpoint"); err != nil || got || time.Now().After(deadline) {
			break
		}
	}
	hold(c, true, "a third store once the holder's session ended")
	hold(b, false, "the old holder, which lost its session")
}

// TestSharedLedgerLargeBatches: a shared ledger whose batches all go through COPY (the path of
// batches over 32 MiB) leaves a log that verifies.
func TestSharedLedgerLargeBatches(t *testing.T) {
	ctx := context.Background()
	st := open(t, pgtest.Start(t), "copy")
	st.SetCopyAbove(1)
	skey, vkey, err := seal.GenerateSigningKey("test.example/copy")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: signer, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for n := range 25 {
				if _, err := l.Append(ctx, sharedMessage(fmt.Sprint(w), n)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	v, _ := seal.NewVerifier(vkey)
	rep, err := verify.Ledger(ctx, st, v, verify.Options{})
	if err != nil || rep.Entries != 200 {
		t.Fatalf("verify: %d entries, %v; want 200", rep.Entries, err)
	}
}

// doneDuringCall is a context that is live when a call checks it first and done from then on: a
// caller that gives up while its call is on the wire.
type doneDuringCall struct {
	context.Context
	checks atomic.Int32
}

var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *doneDuringCall) Done() <-chan struct{} {
	if c.checks.Load() == 0 {
		return nil
	}
	return closedDone
}

func (c *doneDuringCall) Err() error {
	if c.checks.Add(1) == 1 {
		return nil
	}
	return context.Canceled
}

// TestALeaseCallGivenUpKeepsTheOtherLeases: the leases of a store share one session; a call for
// one of them that its caller gives up on while it is on the wire leaves the session, and the
// other leases, held. It used to close the session, and so free the checkpoint lease for
// another process while this one went on as its holder.
func TestALeaseCallGivenUpKeepsTheOtherLeases(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	a, b := open(t, dsn, "leases"), open(t, dsn, "leases")
	if got, err := a.HoldLease(ctx, "checkpoint"); err != nil || !got {
		t.Fatalf("HoldLease(checkpoint) = %t, %v", got, err)
	}
	if got, err := a.HoldLease(ctx, "surveillance"); err != nil || !got {
		t.Fatalf("HoldLease(surveillance) = %t, %v", got, err)
	}
	_, _ = a.HoldLease(&doneDuringCall{Context: ctx}, "surveillance")
	if got, err := b.HoldLease(ctx, "checkpoint"); err != nil || got {
		t.Fatalf("another store's HoldLease(checkpoint) after a given-up call = %t, %v; want false: the holder keeps it", got, err)
	}
	if got, err := a.HoldLease(ctx, "checkpoint"); err != nil || !got {
		t.Fatalf("the holder's HoldLease(checkpoint) = %t, %v; want true", got, err)
	}
}
