package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/verify"
)

// TestCrashRecovery runs loadgen as a child process, SIGKILLs it at a random moment, and checks
// that every append it reported durable is in the reopened ledger at its index, that the ledger
// verifies, and that the next round appends on. A few rounds by default; 50 with COMMSEAL_SLOW=1.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a child process")
	}
	rounds := 4
	if os.Getenv("COMMSEAL_SLOW") == "1" {
		rounds = 50
	}
	bin := filepath.Join(t.TempDir(), "loadgen")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "ledger")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	reported := map[uint64]string{} // every append any round reported durable
	for round := range rounds {
		conc := []string{"1", "8", "64"}[rng.IntN(3)]
		cmd := exec.Command(bin, "-dir", dir, "-duration", "60s", "-concurrency", conc, "-size", strconv.Itoa(50+rng.IntN(600)))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := make(chan []string)
		go func() {
			var ls []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				ls = append(ls, sc.Text())
			}
			got <- ls
		}()
		// Kill at a random moment: sometimes while it is still opening, mostly mid-stream.
		time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		lines := <-got
		cmd.Wait()
		for _, l := range lines {
			idx, id, ok := strings.Cut(l, " ")
			i, err := strconv.ParseUint(idx, 10, 64)
			if !ok || err != nil || !strings.HasPrefix(id, "lg-") {
				t.Fatalf("round %d: malformed line %q", round, l)
			}
			reported[i] = id
		}
		n := checkLedger(t, dir, reported)
		t.Logf("round %d: concurrency %s, %d lines reported, ledger has %d entries", round, conc, len(lines), n)
		if t.Failed() {
			t.Logf("loadgen stderr:\n%s", stderr.String())
			return
		}
	}
	// After all the kills, a clean run appends on and exits cleanly.
	out, err := exec.Command(bin, "-dir", dir, "-n", "200", "-concurrency", "8", "-warmup=false").Output()
	if err != nil {
		t.Fatalf("final loadgen run: %v", err)
	}
	if got := strings.Count(string(out), "\n"); got != 200 {
		t.Fatalf("final run reported %d appends; want 200", got)
	}
	checkLedger(t, dir, reported)
}

// checkLedger reopens the ledger in dir (recovering the store), checks every reported append and
// verifies the whole ledger. It returns the ledger's size.
func checkLedger(t *testing.T, dir string, reported map[uint64]string) uint64 {
	t.Helper()
	ctx := context.Background()
	led, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	if err != nil {
		t.Fatalf("reopen ledger: %v", err)
	}
	for _, c := range led.Store.(*filestore.Store).Recovery().Cut {
		if c.Entries > 0 || c.Bytes > 0 {
			t.Logf("recovery cut %d bytes (%d entry frames) at %s:%d: %s", c.Bytes, c.Entries, filepath.Base(c.File), c.Offset, c.Reason)
		}
	}
	n := led.Size()
	ids := map[uint64]string{}
	err = led.Access("crash test", "check every reported append").Scan(ctx, 0, n, func(e *ledger.Entry, err error) error {
		if err != nil {
			return err
		}
		if e.Message != nil {
			ids[e.Index] = e.Message.ID
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the ledger: %v", err)
	}
	for i, id := range reported {
		if i >= n {
			t.Fatalf("entry %d (%s) was reported durable, but the ledger has %d entries", i, id, n)
		}
		at, ok, err := led.Lookup(ctx, capture.Identity{Platform: capture.PlatformDingTalk, Tenant: "loadgen", ID: id})
		if err != nil || !ok || at != i {
			t.Fatalf("message %s was reported durable at %d; Lookup = %d, %v, %v", id, i, at, ok, err)
		}
		if ids[i] != id {
			t.Fatalf("entry %d holds message %q; want %s", i, ids[i], id)
		}
	}
	if err := led.Ledger.Close(); err != nil {
		t.Fatalf("close ledger: %v", err)
	}
	defer led.Close() // the store and the directory lock (the ledger is closed above)
	if _, err := verify.Ledger(ctx, led.Store, led.Signing.Verifier, verify.Options{}); err != nil {
		t.Fatalf("ledger of %d entries does not verify after the crash: %v", n, err)
	}
	return n
}

// TestLoadgenWritesTheSharedLayout: what loadgen writes is a ledger directory like every
// other example's, which `verify -dir` checks with the verifier key beside it.
func TestLoadgenWritesTheSharedLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lg")
	var out, errOut bytes.Buffer
	if code := run([]string{"-dir", dir, "-n", "300", "-concurrency", "8", "-warmup=false"}, &out, &errOut); code != 0 {
		t.Fatalf("loadgen: exit status %d\n%s", code, errOut.String())
	}
	ctx := context.Background()
	vkey, err := layout.VerifierKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := seal.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := layout.OpenStore(ctx, dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := verify.Ledger(ctx, st, v, verify.Options{})
	if err != nil || rep.Entries != 300 || rep.Encrypted != 300 || rep.Uncovered != 0 {
		t.Fatalf("verify: %+v, %v; want 300 encrypted entries, all signed for", rep, err)
	}
	if exposed, err := leakcheck.Exposed(dir); err != nil || len(exposed) > 0 {
		t.Fatalf("exposed files: %v, %v", exposed, err)
	}
}

func TestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-concurrency", "0"}, &out, &errOut); code != 2 {
		t.Fatalf("run without -dir: exit status %d; want 2", code)
	}
	dir := filepath.Join(t.TempDir(), "l")
	if code := run([]string{"-dir", dir, "-n", "50", "-concurrency", "4", "-size", "10", "-warmup=false"}, &out, &errOut); code != 0 {
		t.Fatalf("run: exit status %d\n%s", code, errOut.String())
	}
	if got := strings.Count(out.String(), "\n"); got != 50 {
		t.Fatalf("%d lines on stdout; want 50", got)
	}
	for _, want := range []string{"appends/s", "p50", "p99", "syncs/s"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	seen := map[string]bool{}
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var i uint64
		var id string
		if _, err := fmt.Sscanf(l, "%d %s", &i, &id); err != nil || seen[id] {
			t.Fatalf("bad or repeated line %q", l)
		}
		seen[id] = true
	}
}
