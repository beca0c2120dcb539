package anchor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/tsa/tsatest"
	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/anchor"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

const origin = "anchor.test/ledger"

type env struct {
	l        *ledger.Ledger
	keys     *seal.SigningKey
	ts       *tsatest.Server
	wvkey    string
	wit      *witness.Witness
	a        *anchor.Anchorer
	appended int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey(origin)
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	e := &env{keys: keys}
	e.l, err = ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys, CheckpointEvery: 1 << 20, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { e.l.Close() })

	e.ts, err = tsatest.NewServer()
	require.NoError(t, err)
	t.Cleanup(e.ts.Close)
	tc, err := tsa.NewClient(e.ts.Roots(), []tsa.TSA{{Name: "test-tsa", URL: e.ts.URL}}, tsa.Options{Timeout: time.Minute})
	require.NoError(t, err)

	wskey, wvkey, err := seal.GenerateCosignatureKey("witness.test/w1")
	require.NoError(t, err)
	signer, err := seal.NewCosignatureSigner(wskey)
	require.NoError(t, err)
	lg, err := witness.ParseLog(origin + " " + keys.VerifierKey)
	require.NoError(t, err)
	st, err := witness.OpenFileStore(filepath.Join(t.TempDir(), "witness"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	e.wit, err = witness.New(witness.Options{Signer: signer, Logs: []witness.Log{lg}, Store: st})
	require.NoError(t, err)
	srv := httptest.NewServer(e.wit)
	t.Cleanup(srv.Close)
	wc, err := witness.NewClient(srv.URL, wvkey, srv.Client())
	require.NoError(t, err)
	e.wvkey = wvkey

	e.a, err = anchor.New(e.l, anchor.Options{TSA: tc, Witnesses: []*witness.Client{wc}})
	require.NoError(t, err)
	return e
}

// grow appends n messages and signs a checkpoint of them.
func (e *env) grow(t *testing.T, n int) seal.Checkpoint {
	t.Helper()
	ctx := context.Background()
	for range n {
		e.appended++
		_, err := e.l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "t", ID: fmt.Sprint("m", e.appended),
			Conversation: capture.Conversation{ID: "c"}, Kind: capture.KindText, Text: "x", SentAt: time.Now(), Raw: []byte(`{}`)})
		require.NoError(t, err)
	}
	_, cp, err := e.l.SignCheckpoint(ctx)
	require.NoError(t, err)
	return cp
}

// anchors reads every anchor entry of the ledger.
func (e *env) anchors(t *testing.T) []seal.Anchor {
	t.Helper()
	var out []seal.Anchor
	require.NoError(t, e.l.Access("auditor", "anchors").Scan(context.Background(), 0, e.l.Size(), func(en *ledger.Entry, err error) error {
		require.NoError(t, err)
		if en.Leaf.Kind == seal.KindAnchor {
			var a seal.Anchor
			require.NoError(t, json.Unmarshal(en.Body, &a))
			out = append(out, a)
		}
		return nil
	}))
	return out
}

// TestAnchorsCheckpointsWithATSAAndAWitness: each new checkpoint gets a token that verifies
// over the sealed note and a cosignature that meets "log key plus 1 of 1"; the witness follows
// the ledger with consistency proofs; an idle ledger is not anchored again and again.
func TestAnchorsCheckpointsWithATSAAndAWitness(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	n, err := e.a.Step(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing signed yet... or only the empty checkpoint")

	cp1 := e.grow(t, 5)
	n, err = e.a.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = e.a.Step(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the same checkpoint is not anchored twice")

	cp2 := e.grow(t, 7)
	n, err = e.a.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// The anchors of the latest anchored checkpoint, found along the anchor chain.
	latest, err := e.l.LatestAnchors(ctx)
	require.NoError(t, err)
	require.Len(t, latest, 2)
	var types []string
	for _, a := range latest {
		require.Equal(t, cp2.Size, a.Size)
		require.NotNil(t, a.Prev, "each names the anchor before it")
		types = append(types, a.Type)
	}
	require.ElementsMatch(t, []string{seal.AnchorTimestamp, seal.AnchorCosignature}, types)
	require.Less(t, latest[0].Index, latest[1].Index)

	// Idle: a checkpoint that covers only the anchors is not anchored.
	_, cp3, err := e.l.SignCheckpoint(ctx)
	require.NoError(t, err)
	require.Greater(t, cp3.Size, cp2.Size)
	n, err = e.a.Step(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "anchoring anchors would grow an idle ledger forever")
	for _, s := range e.a.Health() {
		require.Equal(t, cp2.Size, s.Size, s.Authority)
		require.Empty(t, s.Error)
	}

	policy, err := seal.NewWitnessPolicy(e.keys.VerifierKey, 1, e.wvkey)
	require.NoError(t, err)
	var sizes []uint64
	for _, a := range e.anchors(t) {
		sizes = append(sizes, a.Size)
		require.Equal(t, seal.AnchorSchema, a.Schema)
		switch a.Type {
		case seal.AnchorTimestamp:
			tok, err := tsa.Verify(a.Token, a.Checkpoint, e.ts.Roots())
			require.NoError(t, err)
			require.WithinDuration(t, tok.Time, a.Time, time.Second)
		case seal.AnchorCosignature:
			cp, cos, err := policy.Check(a.Checkpoint)
			require.NoError(t, err)
			require.Equal(t, a.Size, cp.Size)
			require.Len(t, cos, 1)
		default:
			t.Fatalf("anchor type %q", a.Type)
		}
	}
	require.Equal(t, []uint64{cp1.Size, cp1.Size, cp2.Size, cp2.Size}, sizes)

	// Reading them was an access entry: content of the ledger's own, which the next
	// checkpoint covers and is anchored.
	e.l.SignCheckpoint(ctx)
	n, err = e.a.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// TestAnAuthorityThatIsDownDelaysOnlyItself: while the TSA hangs, appends go on, the witness
// anchors, and Health names the failure; once the TSA is back, the next step anchors the
// newest checkpoint, which covers the one it missed.
func TestAnAuthorityThatIsDownDelaysOnlyItself(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cp1 := e.grow(t, 3)
	e.ts.SetFault(tsatest.Hang)
	sctx, cancel := context.WithCancel(ctx)
	stepped := make(chan error, 1)
	go func() { _, err := e.a.Step(sctx); stepped <- err }()
	for e.ts.Requests() == 0 { // the step holds cp1 and waits for the TSA
		time.Sleep(time.Millisecond)
	}
	e.grow(t, 3) // appends and a checkpoint while the TSA hangs
	require.Eventually(t, func() bool { return e.a.Health()[1].Size == cp1.Size }, time.Minute, time.Millisecond,
		"the witness's anchor is sealed while the TSA hangs")
	select {
	case <-stepped:
		t.Fatal("the step ended before the appends: they waited for it")
	default:
	}
	cancel() // the TSA never answers: the step gives up
	require.NoError(t, <-stepped)
	h := e.a.Health()
	require.Equal(t, seal.AnchorTimestamp, h[0].Type)
	require.Contains(t, h[0].Error, "test-tsa")
	require.False(t, h[0].Failing.IsZero())
	require.Zero(t, h[0].Size)
	require.Equal(t, cp1.Size, h[1].Size, "the witness anchored")

	e.ts.SetFault(tsatest.None)
	cp := e.grow(t, 1)
	n, err := e.a.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	h = e.a.Health()
	require.Equal(t, cp.Size, h[0].Size)
	require.Empty(t, h[0].Error)
	require.True(t, h[0].Failing.IsZero())
}

func TestNewNeedsAnAuthority(t *testing.T) {
	e := newEnv(t)
	_, err := anchor.New(e.l, anchor.Options{})
	require.Error(t, err)
}

// TestAppendAnchorRefusesBadAnchors: a checkpoint of another ledger, of another size, an
// unknown type and a time-stamp without its token are refused, and nothing is sealed.
func TestAppendAnchorRefusesBadAnchors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cp := e.grow(t, 2)
	note, _, err := e.l.Checkpoint()
	require.NoError(t, err)
	other := newEnv(t)
	other.grow(t, 2)
	otherNote, _, err := other.l.Checkpoint()
	require.NoError(t, err)
	size := e.l.Size()
	good := seal.Anchor{Type: seal.AnchorTimestamp, Size: cp.Size, Checkpoint: note, Authority: "x", Time: time.Now(), Token: []byte{1}}
	for name, mod := range map[string]func(a *seal.Anchor){
		"another ledger": func(a *seal.Anchor) { a.Checkpoint = otherNote },
		"another size":   func(a *seal.Anchor) { a.Size++ },
		"unknown type":   func(a *seal.Anchor) { a.Type = "sundial" },
		"no token":       func(a *seal.Anchor) { a.Token = nil },
		"no authority":   func(a *seal.Anchor) { a.Authority = "" },
		"not a note":     func(a *seal.Anchor) { a.Checkpoint = []byte("hello") },
	} {
		a := good
		mod(&a)
		_, err := e.l.AppendAnchor(ctx, a)
		require.ErrorIs(t, err, ledger.ErrBadAnchor, name)
	}
	require.Equal(t, size, e.l.Size(), "nothing sealed")
	i, err := e.l.AppendAnchor(ctx, good)
	require.NoError(t, err)
	j, err := e.l.AppendAnchor(ctx, good)
	require.NoError(t, err)
	require.Equal(t, i, j, "the same anchor again is a duplicate")
}

// TestAnAuthorityThatFailedAnchorsTheNextIdleCheckpoint: when the TSA fails at a checkpoint
// the witness anchors, the next checkpoint covers nothing newer but the witness's anchor;
// the witness does not anchor it again, but the TSA, which has nothing yet of that history,
// does.
func TestAnAuthorityThatFailedAnchorsTheNextIdleCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	cp1 := e.grow(t, 3)
	e.ts.SetFault(tsatest.HTTP500)
	n, err := e.a.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the witness anchors, the TSA fails")
	h := e.a.Health()
	require.NotEmpty(t, h[0].Error)
	require.Equal(t, cp1.Size, h[1].Size)

	e.ts.SetFault(tsatest.None)
	_, cp2, err := e.l.SignCheckpoint(ctx) // covers only the witness's anchor entry
	require.NoError(t, err)
	require.Greater(t, cp2.Size, cp1.Size)
	n, err = e.a.Step(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the TSA anchors the checkpoint it missed, the witness does not")
	h = e.a.Health()
	require.Equal(t, cp2.Size, h[0].Size)
	require.Empty(t, h[0].Error)
	require.Equal(t, cp1.Size, h[1].Size)
}
