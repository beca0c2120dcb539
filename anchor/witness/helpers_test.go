package witness_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/seal"
)

// testLog is a log built with transparency-dev/merkle's reference tree (not seal's code), with
// an Ed25519 note key whose name is the origin.
type testLog struct {
	origin string
	skey   string
	vkey   string
	signer note.Signer
	tree   *testonly.Tree
	salt   string // leaves differ between logs of one origin with different salts: forks
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := seal.GenerateSigningKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	return newTestLogWithKey(t, origin, skey, vkey, "")
}

func newTestLogWithKey(t testing.TB, origin, skey, vkey, salt string) *testLog {
	t.Helper()
	s, err := seal.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{origin: origin, skey: skey, vkey: vkey, signer: s, tree: testonly.New(rfc6962.DefaultHasher), salt: salt}
}

// fork returns a log of the same origin and key whose leaves differ from l's.
func (l *testLog) fork(t testing.TB, salt string) *testLog {
	return newTestLogWithKey(t, l.origin, l.skey, l.vkey, salt)
}

// grow appends leaves until the tree has n.
func (l *testLog) grow(n uint64) {
	for l.tree.Size() < n {
		l.tree.AppendData(fmt.Appendf(nil, "%sleaf %d", l.salt, l.tree.Size()))
	}
}

// root returns the root of the tree of size n (grown if need be).
func (l *testLog) root(n uint64) seal.Hash {
	l.grow(n)
	return seal.Hash(l.tree.HashAt(n))
}

// checkpoint returns the log's signed checkpoint of size n.
func (l *testLog) checkpoint(t testing.TB, n uint64) []byte {
	t.Helper()
	return l.signedCheckpoint(t, n, l.root(n))
}

func (l *testLog) signedCheckpoint(t testing.TB, n uint64, root seal.Hash) []byte {
	t.Helper()
	signed, err := seal.SignCheckpoint(seal.Checkpoint{Origin: l.origin, Size: n, Root: root}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// proof returns the consistency proof from old to n.
func (l *testLog) proof(t testing.TB, old, n uint64) []seal.Hash {
	t.Helper()
	l.grow(n)
	if old == 0 || old == n {
		return nil
	}
	p, err := l.tree.ConsistencyProof(old, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]seal.Hash, len(p))
	for i, h := range p {
		out[i] = seal.Hash(h)
	}
	return out
}

func (l *testLog) prove(t testing.TB, n uint64) func(context.Context, uint64) ([]seal.Hash, error) {
	return func(_ context.Context, old uint64) ([]seal.Hash, error) { return l.proof(t, old, n), nil }
}

func (l *testLog) witnessLog(t testing.TB) witness.Log {
	t.Helper()
	wl, err := witness.ParseLog(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return wl
}

// fixture is a witness over a FileStore in a temporary directory, served by httptest.
type fixture struct {
	dir    string
	store  *witness.FileStore
	signer *seal.CosignatureSigner
	w      *witness.Witness
	srv    *httptest.Server
	client *witness.Client
	logs   []witness.Log
}

func newSigner(t testing.TB, name string) *seal.CosignatureSigner {
	t.Helper()
	skey, _, err := seal.GenerateCosignatureKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newFixture(t testing.TB, logs ...*testLog) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), signer: newSigner(t, "witness.example/w1")}
	for _, l := range logs {
		f.logs = append(f.logs, l.witnessLog(t))
	}
	f.start(t)
	return f
}

// start opens the store and serves the witness; stop undoes it (a restart is stop, start).
func (f *fixture) start(t testing.TB) {
	t.Helper()
	var err error
	if f.store, err = witness.OpenFileStore(f.dir); err != nil {
		t.Fatal(err)
	}
	f.w, err = witness.New(witness.Options{
		Signer: f.signer, Logs: f.logs, Store: f.store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.Unix(1767225600, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.w)
	if f.client, err = witness.NewClient(f.srv.URL, f.signer.VerifierKey(), f.srv.Client()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
}

func (f *fixture) stop() {
	if f.srv != nil {
		f.srv.Close()
		f.store.Close()
		f.srv = nil
	}
}

func originHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return fmt.Sprintf("%x", h)
}
