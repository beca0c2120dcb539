package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/testio"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/seal"
)

// syncBuffer is written by the program or server under test while the test reads it.
type syncBuffer = testio.Buffer

func runW(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func genkey(t *testing.T) (keyFile, vkey string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "witness.key")
	code, out, errs := runW("-genkey", "-name", "auditor.example.com/witness", "-key", keyFile)
	if code != 0 {
		t.Fatalf("-genkey: %d %s", code, errs)
	}
	return keyFile, strings.TrimSpace(out)
}

func TestGenkeyAndVKey(t *testing.T) {
	keyFile, vkey := genkey(t)
	if _, err := seal.NewCosignatureVerifier(vkey); err != nil {
		t.Fatalf("-genkey printed %q: %v", vkey, err)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", st.Mode(), err)
	}
	key, _ := os.ReadFile(keyFile)
	// A second -genkey never overwrites the key.
	if code, _, errs := runW("-genkey", "-name", "x.example/w", "-key", keyFile); code != 2 || !strings.Contains(errs, "exist") {
		t.Errorf("-genkey over an existing key: %d %s", code, errs)
	}
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(again, key) {
		t.Error("the key file changed")
	}
	if code, out, _ := runW("-key", keyFile, "-vkey"); code != 0 || strings.TrimSpace(out) != vkey {
		t.Errorf("-vkey: %d %q, want %q", code, out, vkey)
	}
}

func TestUsageErrors(t *testing.T) {
	keyFile, _ := genkey(t)
	_, logVKey, _ := seal.GenerateSigningKey("ledger.example/l")
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	badLogs := filepath.Join(t.TempDir(), "logs")
	os.WriteFile(badLogs, []byte(logVKey+"\nnot a key\n"), 0o600)
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"no -key":          {"-dir", dir, "-log", logVKey},
		"-genkey no -name": {"-genkey", "-key", filepath.Join(dir, "k")},
		"no -dir":          {"-key", keyFile, "-log", logVKey},
		"no log":           {"-key", keyFile, "-dir", dir},
		"bad log":          {"-key", keyFile, "-dir", dir, "-log", "origin nokey"},
		"bad logs file":    {"-key", keyFile, "-dir", dir, "-logs", badLogs},
		"missing key file": {"-key", filepath.Join(dir, "none"), "-dir", dir, "-log", logVKey},
		"bad key file":     {"-key", bad, "-dir", dir, "-log", logVKey},
		"extra argument":   {"-key", keyFile, "-dir", dir, "-log", logVKey, "extra"},
		"unknown flag":     {"-nope"},
	} {
		if code, _, errs := runW(args...); code != 2 || errs == "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, errs)
		}
	}
}

// serve runs the program until the returned stop is called, and returns its URL.
func serve(t *testing.T, args ...string) (url string, stdout *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout = new(syncBuffer)
	stderr := new(syncBuffer)
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), stdout, stderr) }()
	re := regexp.MustCompile(`listening on (http://\S+)/`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("witness exited with %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("witness did not start")
		}
	}
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	return url, stdout, stop
}

// TestServeAndRestart: the program cosigns a ledger's checkpoints, prints its verifier key,
// stops cleanly on cancellation, and after a restart remembers the size it cosigned.
func TestServeAndRestart(t *testing.T) {
	keyFile, vkey := genkey(t)
	logSKey, logVKey, _ := seal.GenerateSigningKey("ledger.example/broker1")
	logSigner, _ := seal.NewSigner(logSKey)
	dir := filepath.Join(t.TempDir(), "state")
	logsFile := filepath.Join(t.TempDir(), "logs.txt")
	os.WriteFile(logsFile, []byte("# the ledgers we witness\n"+logVKey+"\n"), 0o600)

	// A tree of 10 leaves, with its stored hashes for proofs.
	var f seal.Frontier
	var stored []seal.Hash
	cps := map[uint64][]byte{}
	for i := range 10 {
		stored = f.Append(sha256.Sum256([]byte{byte(i)}), stored)
		cps[f.Size()], _ = seal.SignCheckpoint(seal.Checkpoint{Origin: "ledger.example/broker1", Size: f.Size(), Root: f.Root()}, logSigner)
	}
	hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	prove := func(n uint64) func(context.Context, uint64) ([]seal.Hash, error) {
		return func(_ context.Context, old uint64) ([]seal.Hash, error) { return seal.ConsistencyProof(n, old, hashes) }
	}
	policy, err := seal.NewWitnessPolicy(logVKey, 1, vkey)
	if err != nil {
		t.Fatal(err)
	}

	url, stdout, stop := serve(t, "-dir", dir, "-key", keyFile, "-log", logVKey)
	if !strings.Contains(stdout.String(), "verifier key: "+vkey+"\n") || !strings.Contains(stdout.String(), "log: ledger.example/broker1\n") {
		t.Errorf("stdout does not show the verifier key and the log:\n%s", stdout.String())
	}
	c, err := witness.NewClient(url, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []uint64{4, 7} {
		cos, err := c.Cosign(ctx, cps[n], 0, prove(n))
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		cosigned, _ := seal.AddCosignatures(cps[n], cos...)
		if _, _, err := policy.Check(cosigned); err != nil {
			t.Errorf("size %d: %v", n, err)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after cancellation", code)
	}

	// Restarted with the logs file: the witness is at 7.
	url, _, _ = serve(t, "-dir", dir, "-key", keyFile, "-logs", logsFile)
	c, _ = witness.NewClient(url, vkey, nil)
	var conflict *witness.ConflictError
	if _, err := c.AddCheckpoint(ctx, 0, nil, cps[10]); !errors.As(err, &conflict) || conflict.Size != 7 {
		t.Fatalf("after restart: %v, want ConflictError{7}", err)
	}
	if _, err := c.AddCheckpoint(ctx, 7, nil, cps[5]); !errors.Is(err, witness.ErrMalformedRequest) {
		t.Errorf("rollback to 5 after restart: %v", err)
	}
	if _, err := c.Cosign(ctx, cps[10], 7, prove(10)); err != nil {
		t.Errorf("7 -> 10 after restart: %v", err)
	}
	// The state directory is locked while a witness runs on it.
	if code, _, errs := runW("-addr", "127.0.0.1:0", "-dir", dir, "-key", keyFile, "-log", logVKey); code != 2 || !strings.Contains(errs, "locked") {
		t.Errorf("second witness on one directory: %d %s", code, errs)
	}
}

// TestExitStatus (README, "Exit status"): 2 for an invocation refused before anything was done,
// including a state directory another witness has open; 1 for a witness that fails at work.
func TestExitStatus(t *testing.T) {
	keyFile, _ := genkey(t)
	_, logVKey, _ := seal.GenerateSigningKey("ledger.example/l")
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	held := t.TempDir()
	other, err := witness.OpenFileStore(held)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"no flags", nil, 2},
		{"no -dir", []string{"-key", keyFile, "-log", logVKey}, 2},
		{"a state directory another witness has open", []string{"-key", keyFile, "-dir", held, "-log", logVKey, "-addr", "127.0.0.1:0"}, 2},
		{"-dir is a file: the state directory cannot be made", []string{"-key", keyFile, "-dir", notDir, "-log", logVKey}, 1},
		{"the address is taken: serving fails", []string{"-key", keyFile, "-dir", t.TempDir(), "-log", logVKey, "-addr", busy.Addr().String()}, 1},
	} {
		if code, _, errs := runW(c.args...); code != c.want || errs == "" {
			t.Errorf("%s: exit %d, stderr %q; want %d and a message", c.name, code, errs, c.want)
		}
	}
}
