package witness_test

// Interoperability with filippo.io/torchwood, an independent implementation of the same
// specs: our Client against its litewitness, and our Witness's cosignatures checked with its
// cosignature verifier.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/internal/testio"

	"filippo.io/torchwood"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/internal/testenv"
	"github.com/commseal/commseal/seal"
)

// litewitnessInstall is how to get the programs the litewitness test runs.
const litewitnessInstall = "go install filippo.io/torchwood/cmd/litewitness@v0.6.1; apt-get install sqlite3"

// goBinDirs are where go install puts programs, searched before PATH.
func goBinDirs() []string {
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	return dirs
}

// witnessKey is a witness's Ed25519 key as seal reads it and as raw bytes for torchwood and
// the ssh-agent.
type witnessKey struct {
	name   string
	skey   string
	priv   ed25519.PrivateKey
	signer *seal.CosignatureSigner
}

func newWitnessKey(t *testing.T, name string) witnessKey {
	t.Helper()
	skey, _, err := seal.GenerateCosignatureKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.SplitN(skey, "+", 5) // PRIVATE+KEY+name+id+base64(0x01 || seed)
	raw, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(raw) != 33 {
		t.Fatalf("skey %q: %v", skey, err)
	}
	return witnessKey{name: name, skey: skey, priv: ed25519.NewKeyFromSeed(raw[1:]), signer: s}
}

// startLitewitness runs litewitness on a fresh database that knows the given logs (the
// statements witnessctl add-log and add-key run), with its key served by an in-process
// ssh-agent, and returns its URL.
func startLitewitness(t *testing.T, key witnessKey, logs ...*testLog) string {
	t.Helper()
	dirs := goBinDirs()
	lw := testenv.Program(t, "litewitness", litewitnessInstall, dirs...)
	sqlite := testenv.Program(t, "sqlite3", litewitnessInstall, dirs...)

	dir, err := os.MkdirTemp("", "lw") // short: a unix socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	// The database: litewitness's schema, then each log at size 0 with its key.
	empty := sha256.Sum256(nil)
	sql := `CREATE TABLE IF NOT EXISTS log (origin TEXT PRIMARY KEY, tree_size INTEGER NOT NULL, tree_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key (origin TEXT NOT NULL, key TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin));
`
	for _, l := range logs {
		sql += fmt.Sprintf("INSERT INTO log (origin, tree_size, tree_hash) VALUES ('%s', 0, '%s');\n", l.origin, base64.StdEncoding.EncodeToString(empty[:]))
		sql += fmt.Sprintf("INSERT INTO key (origin, key) VALUES ('%s', '%s');\n", l.origin, l.vkey)
	}
	db := filepath.Join(dir, "lw.db")
	cmd := exec.Command(sqlite, db)
	cmd.Stdin = strings.NewReader(sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}

	// The ssh-agent holding the witness key.
	sock := filepath.Join(dir, "a.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key.priv}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { agent.ServeAgent(keyring, c); c.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	pub, err := ssh.NewPublicKey(key.priv.Public())
	if err != nil {
		t.Fatal(err)
	}

	// A free port, then litewitness on it.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pl.Addr().String()
	pl.Close()
	var stderr syncBuffer
	lwCmd := exec.Command(lw, "-db", db, "-ssh-agent", sock, "-name", key.name,
		"-key", ssh.FingerprintSHA256(pub), "-listen", addr)
	lwCmd.Stderr = &stderr
	if err := lwCmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- lwCmd.Wait() }()
	t.Cleanup(func() {
		lwCmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			lwCmd.Process.Kill()
			<-exited
		}
		t.Logf("litewitness log:\n%s", stderr.String())
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("litewitness exited: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("litewitness did not listen on %s:\n%s", addr, stderr.String())
		}
	}
	// litewitness prints its verifier key: the same as ours for the same key.
	if want := "vkey=" + key.signer.VerifierKey(); !strings.Contains(stderr.String(), want) {
		t.Errorf("litewitness's log does not show %s:\n%s", want, stderr.String())
	}
	return "http://" + addr
}

// syncBuffer is written by the program or server under test while the test reads it.
type syncBuffer = testio.Buffer

// TestInteropClientLitewitness: our Client against torchwood's litewitness v0.6.1: its
// cosignatures verify with our verifier and policy, its 409 drives our retry, and it refuses
// forks and unknown logs as ours does.
func TestInteropClientLitewitness(t *testing.T) {
	lg := newTestLog(t, "log.example/interop")
	key := newWitnessKey(t, "witness.example/litewitness")
	url := startLitewitness(t, key, lg)
	ctx := context.Background()
	c, err := witness.NewClient(url, key.signer.VerifierKey(), nil)
	if err != nil {
		t.Fatal(err)
	}

	cp5 := lg.checkpoint(t, 5)
	cos, err := c.AddCheckpoint(ctx, 0, nil, cp5)
	if err != nil {
		t.Fatalf("litewitness, first checkpoint: %v", err)
	}
	t.Logf("litewitness cosigned size 5: %s", strings.TrimSpace(cos[0].Line()))
	if d := time.Since(cos[0].Timestamp()); d < -time.Minute || d > time.Minute {
		t.Errorf("cosignature time %v is not now", cos[0].Timestamp())
	}
	cosigned, err := seal.AddCosignatures(cp5, cos...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := seal.NewWitnessPolicy(lg.vkey, 1, key.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Check(cosigned); err != nil {
		t.Errorf("log + 1 of 1 over litewitness's cosignature: %v", err)
	}

	// 409: the client learns litewitness's size; Cosign retries from it.
	var conflict *witness.ConflictError
	if _, err := c.AddCheckpoint(ctx, 0, nil, lg.checkpoint(t, 9)); !errors.As(err, &conflict) || conflict.Size != 5 {
		t.Fatalf("old 0 against 5: %v, want ConflictError{5}", err)
	}
	cp9 := lg.checkpoint(t, 9)
	if _, err := c.Cosign(ctx, cp9, 0, lg.prove(t, 9)); err != nil {
		t.Fatalf("Cosign 9 from an unknown size: %v", err)
	}

	// Forks and bad proofs: 422.
	if _, err := c.AddCheckpoint(ctx, 9, nil, lg.fork(t, "x").checkpoint(t, 9)); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("fork at 9: %v, want ErrInconsistent", err)
	}
	if _, err := c.AddCheckpoint(ctx, 9, lg.proof(t, 5, 12), lg.checkpoint(t, 12)); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("bad proof 9 -> 12: %v, want ErrInconsistent", err)
	}
	// A bad signature of the log's key: 403.
	if _, err := c.AddCheckpoint(ctx, 9, lg.proof(t, 9, 12), corruptLastSignature(t, lg.checkpoint(t, 12))); !errors.Is(err, witness.ErrLogSignature) {
		t.Errorf("bad log signature: %v, want ErrLogSignature", err)
	}
	// An unknown log: the current spec says 404; litewitness v0.6.1 answers 403, as the spec
	// did before. Either is a refusal the client names.
	_, err = c.AddCheckpoint(ctx, 0, nil, newTestLog(t, "log.example/unknown").checkpoint(t, 2))
	if !errors.Is(err, witness.ErrUnknownLog) && !errors.Is(err, witness.ErrLogSignature) {
		t.Errorf("unknown log: %v, want ErrUnknownLog or ErrLogSignature", err)
	}
	t.Logf("litewitness on an unknown log: %v", err)

	// Our witness and litewitness cosign the same checkpoint: log + 2 of 2.
	f := newFixture(t, lg)
	ours, err := f.client.Cosign(ctx, cp9, 0, lg.prove(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := c.Cosign(ctx, cp9, 9, lg.prove(t, 9))
	if err != nil {
		t.Fatalf("litewitness, the same checkpoint again: %v", err)
	}
	both, err := seal.AddCosignatures(cp9, append(ours, theirs...)...)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := seal.NewWitnessPolicy(lg.vkey, 2, key.signer.VerifierKey(), f.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, cs, err := p2.Check(both); err != nil || len(cs) != 2 {
		t.Errorf("log + 2 of 2 (ours and litewitness): %v, %d cosignatures", err, len(cs))
	}
	t.Logf("checkpoint cosigned by both witnesses:\n%s", both)
}

// TestInteropTorchwoodVerifiesOurWitness: our witness cosigns checkpoints of a log built with
// other code (transparency-dev/merkle's reference tree, torchwood's checkpoint text, a plain
// note signer, request bodies written by hand), and torchwood's cosignature verifier accepts
// every cosignature.
func TestInteropTorchwoodVerifiesOurWitness(t *testing.T) {
	lg := newTestLog(t, "log.example/other-impl")
	key := newWitnessKey(t, "witness.example/ours")
	f := newFixture(t, lg)
	// The fixture's witness with key's signer instead of its random one.
	f.stop()
	f.signer = key.signer
	f.start(t)
	tw, err := torchwood.NewCosignatureSigner(key.name, key.priv)
	if err != nil {
		t.Fatal(err)
	}
	if tw.Verifier().String() != f.w.VerifierKey() {
		t.Fatalf("torchwood derives vkey %s, our witness says %s", tw.Verifier(), f.w.VerifierKey())
	}
	logSigner, err := note.NewSigner(lg.skey)
	if err != nil {
		t.Fatal(err)
	}
	old := uint64(0)
	for _, size := range []uint64{1, 2, 7, 8, 100, 100, 1023, 1024} {
		lg.grow(size)
		text := torchwood.Checkpoint{Origin: lg.origin, Tree: lgTree(lg, size)}.String()
		signed, err := note.Sign(&note.Note{Text: text}, logSigner)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		fmt.Fprintf(&body, "old %d\n", old)
		if old != 0 && old != size {
			hs, err := lg.tree.ConsistencyProof(old, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs {
				body.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
			}
		}
		body.WriteString("\n")
		body.Write(signed)
		resp, err := http.Post(f.srv.URL+"/add-checkpoint", "text/plain", strings.NewReader(body.String()))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("size %d from %d: %s %s", size, old, resp.Status, answer)
		}
		n, err := note.Open(append(bytes.Clone(signed), answer...), note.VerifierList(tw.Verifier()))
		if err != nil {
			t.Fatalf("size %d: torchwood's verifier refuses our cosignature: %v\n%s", size, err, answer)
		}
		ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
		if err != nil || ts != 1767225600 {
			t.Errorf("size %d: torchwood reads timestamp %d, %v", size, ts, err)
		}
		old = size
	}
	t.Logf("torchwood verified our witness's cosignatures of 8 checkpoints up to size 1024")
}

func lgTree(l *testLog, n uint64) tlog.Tree {
	return tlog.Tree{N: int64(n), Hash: tlog.Hash(l.tree.HashAt(n))}
}
