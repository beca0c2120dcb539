package witness_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/seal"
)

// post sends a raw add-checkpoint body and returns the status, content type and body.
func post(t *testing.T, f *fixture, body []byte) (int, string, string) {
	t.Helper()
	resp, err := f.srv.Client().Post(f.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func req(old uint64, proof []seal.Hash, signed []byte) []byte {
	return (&witness.Request{OldSize: old, Proof: proof, Checkpoint: signed}).Marshal()
}

// stateFile returns the bytes of the log's state file (nil if none).
func stateFile(t *testing.T, f *fixture, origin string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, originHash(origin)+".checkpoint"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAddCheckpointAnswers walks the spec's answers one by one, over HTTP, with raw bodies.
func TestAddCheckpointAnswers(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	fresh := newTestLog(t, "log.example/fresh")
	f := newFixture(t, lg, fresh)
	wv := f.signer.Verifier()

	// 200: first checkpoint, from 0 with no proof; the body is cosignature lines that verify.
	cp5 := lg.checkpoint(t, 5)
	code, ctype, body := post(t, f, req(0, nil, cp5))
	if code != http.StatusOK {
		t.Fatalf("first checkpoint: %d %s", code, body)
	}
	text := string(cp5[:bytes.LastIndex(cp5, []byte("\n\n"))+1])
	if !strings.HasPrefix(body, "— witness.example/w1 ") || strings.Count(body, "\n") != 1 {
		t.Fatalf("200 body %q (%s), want one cosignature line", body, ctype)
	}
	c, err := wv.VerifyLine(text, body)
	if err != nil || c.Time != 1767225600 {
		t.Fatalf("cosignature %+v: %v", c, err)
	}

	// 409: the old size is not the witness's; the body is its size as text/x.tlog.size.
	for _, old := range []uint64{0, 3} {
		code, ctype, body = post(t, f, req(old, lg.proof(t, old, 7), lg.checkpoint(t, 7)))
		if code != http.StatusConflict || ctype != witness.SizeContentType || body != "5\n" {
			t.Errorf("old %d against known 5: %d %q %q, want 409 text/x.tlog.size \"5\\n\"", old, code, ctype, body)
		}
	}

	// 200: growing with a proof from the known size.
	if code, _, body = post(t, f, req(5, lg.proof(t, 5, 9), lg.checkpoint(t, 9))); code != http.StatusOK {
		t.Fatalf("5 -> 9: %d %s", code, body)
	}
	// 200: the same checkpoint again (same size, same root, no proof).
	if code, _, body = post(t, f, req(9, nil, lg.checkpoint(t, 9))); code != http.StatusOK {
		t.Fatalf("9 -> 9: %d %s", code, body)
	}

	other := newTestLog(t, "log.example/ledger") // same origin, another key
	unknownKeyOnly := other.checkpoint(t, 12)
	badSig := corruptLastSignature(t, lg.checkpoint(t, 12))
	longProof := make([]seal.Hash, 64)
	for _, tc := range []struct {
		name string
		body []byte
		code int
	}{
		{"unknown origin", req(0, nil, newTestLog(t, "log.example/unknown").checkpoint(t, 3)), http.StatusNotFound},
		{"signed by another key only", req(9, lg.proof(t, 9, 12), unknownKeyOnly), http.StatusForbidden},
		{"known key, bad signature", req(9, lg.proof(t, 9, 12), badSig), http.StatusForbidden},
		{"no signature lines", req(9, lg.proof(t, 9, 12), []byte(strings.Split(string(lg.checkpoint(t, 12)), "\n\n")[0]+"\n")), http.StatusBadRequest},
		{"old size above the checkpoint's", req(10, nil, lg.checkpoint(t, 9)), http.StatusBadRequest},
		{"no old line", []byte("9\n\n" + string(lg.checkpoint(t, 9))), http.StatusBadRequest},
		{"old with leading zero", []byte("old 09\n\n" + string(lg.checkpoint(t, 9))), http.StatusBadRequest},
		{"old negative", []byte("old -1\n\n" + string(lg.checkpoint(t, 9))), http.StatusBadRequest},
		{"proof line not a hash", []byte("old 5\nAAAA\n\n" + string(lg.checkpoint(t, 9))), http.StatusBadRequest},
		{"64 proof lines", req(5, longProof, lg.checkpoint(t, 9)), http.StatusBadRequest},
		{"no empty line", []byte("old 9\n" + string(lg.checkpoint(t, 9))), http.StatusBadRequest},
		{"no checkpoint", []byte("old 9\n\n"), http.StatusBadRequest},
		{"too large", append([]byte("old 9\n\n"), bytes.Repeat([]byte("x"), witness.MaxRequestSize)...), http.StatusBadRequest},
		{"bad consistency proof", req(9, lg.proof(t, 5, 12), lg.checkpoint(t, 12)), http.StatusUnprocessableEntity},
		{"no proof from 9 to 12", req(9, nil, lg.checkpoint(t, 12)), http.StatusUnprocessableEntity},
		{"same size, other root", req(9, nil, lg.signedCheckpoint(t, 9, sha256.Sum256([]byte("x")))), http.StatusUnprocessableEntity},
		{"same size, same root, a proof", req(9, lg.proof(t, 5, 9), lg.checkpoint(t, 9)), http.StatusUnprocessableEntity},
		{"proof from 0", req(0, fresh.proof(t, 2, 4), fresh.checkpoint(t, 4)), http.StatusUnprocessableEntity},
		{"empty tree with another root", req(0, nil, fresh.signedCheckpoint(t, 0, sha256.Sum256([]byte("x")))), http.StatusUnprocessableEntity},
	} {
		before := stateFile(t, f, lg.origin)
		beforeFresh := stateFile(t, f, fresh.origin)
		code, _, body := post(t, f, tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.code)
		}
		if !bytes.Equal(stateFile(t, f, lg.origin), before) || !bytes.Equal(stateFile(t, f, fresh.origin), beforeFresh) {
			t.Errorf("%s: the stored state changed", tc.name)
		}
	}

	// 200: an empty tree with the empty root.
	empty := sha256.Sum256(nil)
	if code, _, body = post(t, f, req(0, nil, fresh.signedCheckpoint(t, 0, empty))); code != http.StatusOK {
		t.Errorf("empty tree: %d %s", code, body)
	}
	// A checkpoint signed by the log and others: unknown signatures are ignored.
	cp12 := lg.checkpoint(t, 12)
	both, err := seal.AddCosignatures(cp12, mustCosign(t, newSigner(t, "someone.else/w"), cp12))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body = post(t, f, req(9, lg.proof(t, 9, 12), both)); code != http.StatusOK {
		t.Errorf("checkpoint with an extra unknown signature: %d %s", code, body)
	}

	// A checkpoint with 16 more signatures of unknown keys, each the size of an ML-DSA-44
	// cosignature: signed-note says to accept at least 16 signatures.
	var many []byte = cp12
	for i := range 16 {
		sig := make([]byte, 4+8+2420)
		sig[0] = byte(i)
		many = fmt.Appendf(bytes.Clone(many), "— pq%d.example/w %s\n", i, base64.StdEncoding.EncodeToString(sig))
	}
	if code, _, body = post(t, f, req(12, nil, many)); code != http.StatusOK {
		t.Errorf("checkpoint with 16 ML-DSA-sized unknown signatures (%d bytes): %d %s", len(many), code, body)
	}

	// Only POST, and only /add-checkpoint.
	resp, err := f.srv.Client().Get(f.srv.URL + "/add-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /add-checkpoint: %d, want 405", resp.StatusCode)
	}
}

func mustCosign(t *testing.T, s *seal.CosignatureSigner, signed []byte) seal.Cosignature {
	t.Helper()
	c, err := s.Cosign(string(signed[:bytes.LastIndex(signed, []byte("\n\n"))+1]), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMonitoringCheckpoint: GET /<origin hash>/checkpoint serves the latest cosigned
// checkpoint, with the log's signature and the witness's cosignature, or 404.
func TestMonitoringCheckpoint(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	f := newFixture(t, lg)
	get := func(path string) (int, string) {
		resp, err := f.srv.Client().Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/" + originHash(lg.origin) + "/checkpoint"); code != http.StatusNotFound {
		t.Errorf("before any cosignature: %d, want 404", code)
	}
	if _, err := f.client.AddCheckpoint(context.Background(), 0, nil, lg.checkpoint(t, 4)); err != nil {
		t.Fatal(err)
	}
	code, body := get("/" + originHash(lg.origin) + "/checkpoint")
	if code != http.StatusOK {
		t.Fatalf("GET checkpoint: %d %s", code, body)
	}
	p, err := seal.NewWitnessPolicy(lg.vkey, 1, f.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if c, _, err := p.Check([]byte(body)); err != nil || c.Size != 4 {
		t.Errorf("served checkpoint does not pass log + 1 of 1: %v (%+v)", err, c)
	}
	if code, _ := get("/" + originHash("nope") + "/checkpoint"); code != http.StatusNotFound {
		t.Errorf("unknown origin: %d, want 404", code)
	}
}

// TestForkRefused: a second tree of the same origin and key (a fork) is refused at the same
// size and at a larger size, and the stored state stays byte for byte what it was.
func TestForkRefused(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	fork := lg.fork(t, "evil ")
	f := newFixture(t, lg)
	ctx := context.Background()
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, lg.checkpoint(t, 8)); err != nil {
		t.Fatal(err)
	}
	before := stateFile(t, f, lg.origin)
	if before == nil {
		t.Fatal("no state file after a cosignature")
	}
	// Same size, another tree.
	if _, err := f.client.AddCheckpoint(ctx, 8, nil, fork.checkpoint(t, 8)); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("fork at the same size: %v, want ErrInconsistent", err)
	}
	// Larger, with the fork's own (valid for the fork) proof from 8.
	if _, err := f.client.AddCheckpoint(ctx, 8, fork.proof(t, 8, 13), fork.checkpoint(t, 13)); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("fork at a larger size: %v, want ErrInconsistent", err)
	}
	// The fork sharing a prefix: consistent up to 5, diverging after, is still refused.
	prefixFork := lg.fork(t, "")
	prefixFork.grow(5)
	prefixFork.salt = "later "
	if _, err := f.client.AddCheckpoint(ctx, 8, prefixFork.proof(t, 8, 11), prefixFork.checkpoint(t, 11)); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("fork after a shared prefix: %v, want ErrInconsistent", err)
	}
	if after := stateFile(t, f, lg.origin); !bytes.Equal(after, before) {
		t.Errorf("state changed by refused forks:\n%s\nwas\n%s", after, before)
	}
	// The real log goes on.
	if _, err := f.client.AddCheckpoint(ctx, 8, lg.proof(t, 8, 13), lg.checkpoint(t, 13)); err != nil {
		t.Errorf("the log itself after the forks: %v", err)
	}
}

// TestRollbackRefused: a checkpoint smaller than the one cosigned is refused whatever old
// size is claimed, and the state is unchanged.
func TestRollbackRefused(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	f := newFixture(t, lg)
	ctx := context.Background()
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, lg.checkpoint(t, 10)); err != nil {
		t.Fatal(err)
	}
	before := stateFile(t, f, lg.origin)
	if _, err := f.client.AddCheckpoint(ctx, 10, nil, lg.checkpoint(t, 6)); !errors.Is(err, witness.ErrMalformedRequest) {
		t.Errorf("old 10, size 6: %v, want ErrMalformedRequest (400)", err)
	}
	var conflict *witness.ConflictError
	if _, err := f.client.AddCheckpoint(ctx, 6, nil, lg.checkpoint(t, 6)); !errors.As(err, &conflict) || conflict.Size != 10 {
		t.Errorf("old 6, size 6: %v, want ConflictError{10}", err)
	}
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, lg.checkpoint(t, 6)); !errors.Is(err, witness.ErrConflict) {
		t.Errorf("old 0, size 6: %v, want ErrConflict", err)
	}
	// Cosign cannot roll back either: the witness is ahead of the checkpoint.
	if _, err := f.client.Cosign(ctx, lg.checkpoint(t, 6), 0, lg.prove(t, 6)); !errors.As(err, &conflict) || conflict.Size != 10 {
		t.Errorf("Cosign of size 6 against known 10: %v, want ConflictError{10}", err)
	}
	if !bytes.Equal(stateFile(t, f, lg.origin), before) {
		t.Error("state changed by a refused rollback")
	}
}

// TestRestartKeepsState: after the witness and its store are closed and opened again, the
// witness knows the size it cosigned, and still refuses a fork and a rollback.
func TestRestartKeepsState(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	f := newFixture(t, lg)
	ctx := context.Background()
	if _, err := f.client.Cosign(ctx, lg.checkpoint(t, 7), 0, lg.prove(t, 7)); err != nil {
		t.Fatal(err)
	}
	f.stop()
	f.start(t)
	var conflict *witness.ConflictError
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, lg.checkpoint(t, 9)); !errors.As(err, &conflict) || conflict.Size != 7 {
		t.Fatalf("after restart, old 0: %v, want ConflictError{7}", err)
	}
	if _, err := f.client.AddCheckpoint(ctx, 7, nil, lg.fork(t, "x").checkpoint(t, 7)); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("after restart, fork at 7: %v, want ErrInconsistent", err)
	}
	if _, err := f.client.AddCheckpoint(ctx, 7, nil, lg.checkpoint(t, 5)); !errors.Is(err, witness.ErrMalformedRequest) {
		t.Errorf("after restart, rollback to 5: %v, want ErrMalformedRequest", err)
	}
	if _, err := f.client.Cosign(ctx, lg.checkpoint(t, 9), 0, lg.prove(t, 9)); err != nil {
		t.Errorf("after restart, Cosign from 0 (retry from 7): %v", err)
	}
}

// TestFileStoreLockedAndCorrupt: one process per directory; a state file that does not parse
// is an error (500), never taken for a new log.
func TestFileStoreLockedAndCorrupt(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	f := newFixture(t, lg)
	if _, err := witness.OpenFileStore(f.dir); !errors.Is(err, durable.ErrLocked) {
		t.Errorf("second OpenFileStore: %v, want durable.ErrLocked", err)
	}
	ctx := context.Background()
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, lg.checkpoint(t, 3)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, originHash(lg.origin)+".checkpoint")
	for name, content := range map[string]string{
		"truncated":    string(stateFile(t, f, lg.origin)[:10]),
		"empty":        "",
		"other origin": string(newTestLog(t, "other").checkpoint(t, 3)),
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, body := post(t, f, req(0, nil, lg.checkpoint(t, 3)))
		if code != http.StatusInternalServerError {
			t.Errorf("%s state: %d %s, want 500", name, code, body)
		}
		if _, err := f.store.Load(ctx, lg.origin); !errors.Is(err, witness.ErrCorruptState) {
			t.Errorf("%s state: Load = %v, want ErrCorruptState", name, err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s state was overwritten", name)
		}
	}
}

// TestStoreCompareAndSwap: the swap happens only from the expected state.
func TestStoreCompareAndSwap(t *testing.T) {
	s, err := witness.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	lg := newTestLog(t, "log.example/ledger")
	st := func(n uint64) witness.State {
		return witness.State{Size: n, Root: lg.root(n), Note: lg.checkpoint(t, n)}
	}
	if err := s.CompareAndSwap(ctx, lg.origin, witness.State{}, st(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.CompareAndSwap(ctx, lg.origin, witness.State{}, st(4)); !errors.Is(err, witness.ErrStateChanged) {
		t.Errorf("swap from a stale empty state: %v, want ErrStateChanged", err)
	}
	if err := s.CompareAndSwap(ctx, lg.origin, st(3), st(5)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, lg.origin); err != nil || got.Size != 5 || got.Root != lg.root(5) {
		t.Errorf("Load = %+v, %v", got, err)
	}
	bad := st(6)
	bad.Size = 7
	if err := s.CompareAndSwap(ctx, lg.origin, st(5), bad); err == nil {
		t.Error("stored a state whose note says another size")
	}
}

// TestConcurrentSubmissions runs under -race: racing first submissions from size 0 get
// exactly one cosignature (the others a 409 naming the winner's size); then racing Cosign
// calls of many sizes never move the witness backwards, and it ends at the largest.
func TestConcurrentSubmissions(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	f := newFixture(t, lg)
	ctx := context.Background()
	const n = 16
	lg.grow(200)
	cps := make([][]byte, 201)
	for i := 1; i <= 200; i++ {
		cps[i] = lg.checkpoint(t, uint64(i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, map[uint64]int{}
	for i := range n {
		wg.Go(func() {
			_, err := f.client.AddCheckpoint(ctx, 0, nil, cps[10+i])
			mu.Lock()
			defer mu.Unlock()
			var c *witness.ConflictError
			switch {
			case err == nil:
				wins++
			case errors.As(err, &c):
				conflicts[c.Size]++
			default:
				t.Errorf("size %d: %v", 10+i, err)
			}
		})
	}
	wg.Wait()
	st, err := f.store.Load(ctx, lg.origin)
	if err != nil {
		t.Fatal(err)
	}
	if wins != 1 || conflicts[st.Size] != n-1 {
		t.Fatalf("%d wins, conflicts %v, stored size %d; want 1 win and %d conflicts naming it", wins, conflicts, st.Size, n-1)
	}

	// Racing Cosign of sizes 30..199, ten goroutines of ten sizes each: each call either gets
	// a cosignature that verifies or finds the witness ahead of its checkpoint.
	var maxOK uint64
	for i := 30; i < 200; i += 10 {
		wg.Go(func() {
			for size := uint64(i); size < uint64(i)+10; size++ {
				cos, err := f.client.Cosign(ctx, cps[size], 0, lg.prove(t, size))
				var c *witness.ConflictError
				switch {
				case err == nil:
					if _, err := f.signer.Verifier().VerifyLine((&seal.Checkpoint{Origin: lg.origin, Size: size, Root: lg.root(size)}).Text(), cos[0].Line()); err != nil {
						t.Errorf("cosignature of %d: %v", size, err)
					}
					mu.Lock()
					maxOK = max(maxOK, size)
					mu.Unlock()
				case errors.As(err, &c):
				default:
					t.Errorf("Cosign %d: %v", size, err)
				}
			}
		})
	}
	wg.Wait()
	st, err = f.store.Load(ctx, lg.origin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != maxOK || st.Root != lg.root(st.Size) {
		t.Errorf("stored size %d, largest cosigned %d", st.Size, maxOK)
	}
}

// TestClientAnswers: the client turns each status back into its error, ignores lines of other
// keys, and refuses a bad cosignature of the witness's key or an answer without one.
func TestClientAnswers(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	cp := lg.checkpoint(t, 5)
	w := newSigner(t, "witness.example/w1")
	good := mustCosign(t, w, cp)
	forged := good
	forged.Signature[0] ^= 1
	stranger := mustCosign(t, newSigner(t, "stranger.example/w"), cp)
	for _, tc := range []struct {
		name        string
		code        int
		ctype, body string
		want        error
		cosigs      int
	}{
		{"ok", 200, "text/plain", good.Line(), nil, 1},
		{"ok with a stranger", 200, "text/plain", stranger.Line() + good.Line(), nil, 1},
		{"ml-dsa line of the same name ignored", 200, "", "— witness.example/w1 " + base64.StdEncoding.EncodeToString(make([]byte, 4+8+2420)) + "\n" + good.Line(), nil, 1},
		{"only a stranger", 200, "", stranger.Line(), seal.ErrCosignature, 0},
		{"forged", 200, "", forged.Line(), seal.ErrCosignature, 0},
		{"empty 200", 200, "", "", seal.ErrMalformedCosignature, 0},
		{"not lines", 200, "", "hello\n", seal.ErrMalformedCosignature, 0},
		{"409", 409, witness.SizeContentType, "12\n", witness.ErrConflict, 0},
		{"409 without type", 409, "text/plain", "12\n", nil, 0},
		{"409 bad size", 409, witness.SizeContentType, "012\n", nil, 0},
		{"400", 400, "", "bad", witness.ErrMalformedRequest, 0},
		{"403", 403, "", "sig", witness.ErrLogSignature, 0},
		{"404", 404, "", "who", witness.ErrUnknownLog, 0},
		{"422", 422, "", "fork", witness.ErrInconsistent, 0},
		{"500", 500, "", "oops", nil, 0},
	} {
		srv := newFakeWitness(t, tc.code, tc.ctype, tc.body)
		c, err := witness.NewClient(srv+"/", w.VerifierKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		cos, err := c.AddCheckpoint(context.Background(), 0, nil, cp)
		switch {
		case tc.want == nil && tc.cosigs > 0:
			if err != nil || len(cos) != tc.cosigs || cos[0] != good {
				t.Errorf("%s: %v %+v", tc.name, err, cos)
			}
		case tc.want == nil:
			if err == nil || errors.Is(err, witness.ErrConflict) {
				t.Errorf("%s: %v, want a plain error", tc.name, err)
			}
		default:
			if !errors.Is(err, tc.want) || cos != nil {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		var conflict *witness.ConflictError
		if tc.name == "409" && (!errors.As(err, &conflict) || conflict.Size != 12) {
			t.Errorf("409: %v, want ConflictError{12}", err)
		}
	}
}

func TestParseLog(t *testing.T) {
	lg := newTestLog(t, "log.example/ledger")
	l, err := witness.ParseLog(lg.vkey)
	if err != nil || l.Origin != lg.origin || len(l.Verifiers) != 1 {
		t.Fatalf("lone vkey: %+v, %v", l, err)
	}
	other := newTestLog(t, "log.example/ledger")
	l, err = witness.ParseLog("origin.example/x " + lg.vkey + " " + other.vkey)
	if err != nil || l.Origin != "origin.example/x" || len(l.Verifiers) != 2 {
		t.Fatalf("origin and two keys: %+v, %v", l, err)
	}
	logs, err := witness.ParseLogs(strings.NewReader("# logs\n\n" + lg.vkey + "\n  other.example " + other.vkey + "  \n"))
	if err != nil || len(logs) != 2 || logs[1].Origin != "other.example" {
		t.Fatalf("ParseLogs: %+v, %v", logs, err)
	}
	for _, bad := range []string{"", "origin notakey", "origin " + lg.vkey + " x"} {
		if _, err := witness.ParseLog(bad); err == nil {
			t.Errorf("ParseLog(%q) accepted", bad)
		}
	}
	if _, err := witness.ParseLogs(strings.NewReader(lg.vkey + "\nbad line\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ParseLogs with a bad line 2: %v", err)
	}
	// New refuses a log configured twice, or without a key.
	s := newSigner(t, "w.example/w")
	st, err := witness.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := witness.New(witness.Options{Signer: s, Store: st, Logs: []witness.Log{lg.witnessLog(t), lg.witnessLog(t)}}); err == nil {
		t.Error("New accepted one origin twice")
	}
	if _, err := witness.New(witness.Options{Signer: s, Store: st, Logs: []witness.Log{{Origin: "x"}}}); err == nil {
		t.Error("New accepted a log without a key")
	}
}

func FuzzParseRequest(f *testing.F) {
	lg := newTestLog(f, "log.example/ledger")
	f.Add(req(0, nil, lg.checkpoint(f, 3)))
	f.Add(req(3, lg.proof(f, 3, 7), lg.checkpoint(f, 7)))
	f.Add([]byte("old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— x y\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := witness.ParseRequest(body)
		if err != nil {
			if !errors.Is(err, witness.ErrMalformedRequest) {
				t.Fatalf("error %v does not wrap ErrMalformedRequest", err)
			}
			return
		}
		if len(r.Proof) > witness.MaxProofLines || len(r.Checkpoint) == 0 {
			t.Fatalf("accepted %d proof lines, checkpoint %q", len(r.Proof), r.Checkpoint)
		}
		if got := r.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("Marshal of the parsed request differs:\n%q\n%q", got, body)
		}
	})
}

// FuzzAddCheckpoint sends arbitrary bodies to a witness that has cosigned size 5: it answers
// one of the spec's codes, and cosigns only a checkpoint that extends its state.
func FuzzAddCheckpoint(f *testing.F) {
	lg := newTestLog(f, "log.example/ledger")
	fx := newFixture(f, lg)
	if _, err := fx.client.AddCheckpoint(context.Background(), 0, nil, lg.checkpoint(f, 5)); err != nil {
		f.Fatal(err)
	}
	f.Add(req(5, lg.proof(f, 5, 8), lg.checkpoint(f, 8)))
	f.Add(req(5, nil, lg.checkpoint(f, 5)))
	f.Add(req(5, lg.proof(f, 5, 9), lg.fork(f, "x").checkpoint(f, 9)))
	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := fx.store.Load(context.Background(), lg.origin)
		if err != nil {
			t.Fatal(err)
		}
		r, perr := witness.ParseRequest(body)
		cos, err := fx.w.AddCheckpoint(context.Background(), r.OldSize, r.Proof, r.Checkpoint)
		after, lerr := fx.store.Load(context.Background(), lg.origin)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if err != nil || perr != nil {
			if err == nil { // parse failed but the fields happened to pass: nothing to check
				return
			}
			if !after.Same(before) {
				t.Fatalf("refused (%v) but state moved from %d to %d", err, before.Size, after.Size)
			}
			return
		}
		if after.Size < before.Size || len(cos) != 1 {
			t.Fatalf("accepted a rollback from %d to %d", before.Size, after.Size)
		}
		if after.Size != before.Size || after.Root != before.Root {
			if after.Root != lg.root(after.Size) {
				t.Fatalf("accepted a tree of size %d that is not the log's", after.Size)
			}
		}
	})
}

// corruptLastSignature flips a bit of the last signature of a signed note.
func corruptLastSignature(t *testing.T, signed []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(signed, []byte(" ")) + 1
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(signed[i:]), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	return append(bytes.Clone(signed[:i]), base64.StdEncoding.EncodeToString(raw)+"\n"...)
}

// newFakeWitness serves one fixed answer to every request and returns its URL.
func newFakeWitness(t *testing.T, code int, ctype, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if ctype != "" {
			rw.Header().Set("Content-Type", ctype)
		}
		rw.WriteHeader(code)
		io.WriteString(rw, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
