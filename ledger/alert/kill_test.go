package alert

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

const childEnv = "COMMSEAL_ALERT_OUTBOX_CHILD"

// TestHelperOutboxChild is the process TestOutboxSurvivesKill kills: it queues alerts without
// end and prints each id once Alert has returned.
func TestHelperOutboxChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("helper process for TestOutboxSurvivesKill")
	}
	o, err := OpenOutbox(dir, newWebhook(t, "http://127.0.0.1:1/never"), OutboxOptions{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := uint64(0); ; i++ {
		a := sampleAlert(i)
		if err := o.Alert(context.Background(), a); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println(a.ID)
	}
}

// TestOutboxSurvivesKill: a process killed with SIGKILL while queuing loses no alert whose
// Alert had returned, and leaves nothing that Open cannot read (a half-written temporary file
// is removed, never quarantined or mistaken for a record).
func TestOutboxSurvivesKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOutboxChild$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[string]bool{}
		sc := bufio.NewScanner(out)
		for len(acked) < 50+round*40 && sc.Scan() {
			line := sc.Text()
			if len(line) > 5 && line[:5] == "error" {
				t.Fatalf("child: %s", line)
			}
			if len(line) > 2 && line[:2] == "a-" { // an alert id (skip test framework lines)
				acked[line] = true
			}
		}
		cmd.Process.Kill() // SIGKILL, mid-write with some luck
		go func() {
			for sc.Scan() {
			}
		}()
		cmd.Wait()
		if len(acked) < 50 {
			t.Fatalf("child acknowledged only %d alerts", len(acked))
		}

		o := openOutbox(t, dir, newWebhook(t, "http://127.0.0.1:1/never"), fastOptions(t))
		st := o.Stats()
		if st.Quarantined != 0 {
			t.Fatalf("round %d: %d files quarantined after a kill", round, st.Quarantined)
		}
		o.mu.Lock()
		for id := range acked {
			if o.pending[id] == nil {
				t.Errorf("round %d: acknowledged alert %s lost", round, id)
			}
		}
		o.mu.Unlock()
		for _, name := range queueFiles(t, dir, queueDir) {
			if name[0] == '.' {
				t.Errorf("round %d: temporary file %s left", round, name)
			}
		}
		o.Close()
	}
}
