package keyfile_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keyfile"
	"github.com/commseal/commseal/store/storetest"
)

const childVar = "COMMSEAL_KEYFILE_KILL_CHILD"

// TestHelperKilledWriter is the process TestKilledWriterLosesNothingAcknowledged kills: it
// puts, rewraps and destroys keys from several goroutines and prints a line for each
// operation once it has returned nil. It does nothing unless started by that test.
func TestHelperKilledWriter(t *testing.T) {
	path := os.Getenv(childVar)
	if path == "" {
		t.Skip("started by TestKilledWriterLosesNothingAcknowledged")
	}
	ctx := context.Background()
	v, err := keyfile.Open(path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ack := func(op, id string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, op, id)
		out.Flush()
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-w%d-%05d", os.Getenv(childVar+"_ROUND"), w, i)
				if v.PutKey(ctx, storetest.KeyAt(id, 1)) != nil {
					return
				}
				ack("put", id)
				if v.Rewrap(ctx, id, "kek-2", storetest.WrappedAt(id, 2)) != nil {
					return
				}
				ack("rewrap", id)
				if i%2 == 0 {
					if v.DestroyKey(ctx, id) != nil {
						return
					}
					ack("destroy", id)
				}
			}
		})
	}
	wg.Wait()
}

// TestKilledWriterLosesNothingAcknowledged kills a process writing to a vault (SIGKILL, at a
// different point each round) and reopens the file: every operation the process saw return
// nil is there, and no wrapped bytes that an acknowledged Rewrap or DestroyKey superseded are
// left in the file.
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs a child process to kill")
	}
	path := filepath.Join(t.TempDir(), "keys.vault")
	acked := map[string]string{} // id -> last acknowledged op
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), childVar+"="+path, fmt.Sprintf("%s_ROUND=%d", childVar, round))
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		for n := 0; n < 100+150*round && sc.Scan(); n++ {
			op, id, _ := strings.Cut(sc.Text(), " ")
			acked[id] = op
		}
		must(t, cmd.Process.Kill())
		for sc.Scan() { // what it printed before it died was acknowledged too
			if op, id, ok := strings.Cut(sc.Text(), " "); ok && (op == "put" || op == "rewrap" || op == "destroy") {
				acked[id] = op
			}
		}
		cmd.Wait()
		if len(acked) == 0 {
			t.Fatal("the child acknowledged nothing")
		}

		v, err := keyfile.Open(path)
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		for id, op := range acked {
			k, err := v.Key(context.Background(), id)
			switch op {
			case "put":
				if err != nil && !errors.Is(err, store.ErrDestroyed) {
					t.Fatalf("round %d: acknowledged put of %q: %v", round, id, err)
				}
			case "rewrap":
				if err == nil && k.KEK != "kek-2" || err != nil && !errors.Is(err, store.ErrDestroyed) {
					t.Fatalf("round %d: acknowledged rewrap of %q: KEK %q, %v", round, id, k.KEK, err)
				}
				if filesHolding(t, path, storetest.WrappedAt(id, 1)) != 0 {
					t.Fatalf("round %d: the wrapping an acknowledged rewrap of %q superseded is in the file", round, id)
				}
			case "destroy":
				if !errors.Is(err, store.ErrDestroyed) {
					t.Fatalf("round %d: acknowledged destroy of %q: %v", round, id, err)
				}
				if filesHolding(t, path, storetest.WrappedAt(id, 2)) != 0 {
					t.Fatalf("round %d: the wrapped bytes of %q, destroyed, are in the file", round, id)
				}
			}
		}
		t.Logf("round %d: %d keys acknowledged, Recovery %+v", round, len(acked), v.Recovery())
		must(t, v.Close())
	}
}
