package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/tsa/tsatest"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// anchored is a ledger with anchors sealed by hand: time-stamps from a local TSA and
// cosignatures from a witness key.
type anchored struct {
	st   *memstore.Store
	l    *ledger.Ledger
	keys *seal.SigningKey
	ts   *tsatest.Server
	tc   *tsa.Client
	w    *seal.CosignatureSigner
	n    int
}

func newAnchored(t *testing.T) *anchored {
	a := &anchored{st: memstore.New(), keys: testKeys(t)}
	a.l = openLedger(t, a.st, a.keys, 1<<20)
	var err error
	a.ts, err = tsatest.NewServer()
	require.NoError(t, err)
	t.Cleanup(a.ts.Close)
	a.tc, err = tsa.NewClient(a.ts.Roots(), []tsa.TSA{{Name: "tsa-1", URL: a.ts.URL}}, tsa.Options{})
	require.NoError(t, err)
	skey, _, err := seal.GenerateCosignatureKey("witness.test/w1")
	require.NoError(t, err)
	a.w, err = seal.NewCosignatureSigner(skey)
	require.NoError(t, err)
	return a
}

// checkpoint appends n messages and signs a checkpoint.
func (a *anchored) checkpoint(t *testing.T, n int) ([]byte, seal.Checkpoint) {
	ctx := context.Background()
	for range n {
		_, err := a.l.Append(ctx, msg(a.n))
		require.NoError(t, err)
		a.n++
	}
	note, cp, err := a.l.SignCheckpoint(ctx)
	require.NoError(t, err)
	return note, cp
}

func (a *anchored) stamp(t *testing.T, note []byte, cp seal.Checkpoint) {
	tok, err := a.tc.Stamp(context.Background(), "tsa-1", note)
	require.NoError(t, err)
	_, err = a.l.AppendAnchor(context.Background(), seal.Anchor{Type: seal.AnchorTimestamp, Size: cp.Size, Checkpoint: note,
		Authority: "tsa-1", Time: tok.Time, Token: tok.DER})
	require.NoError(t, err)
}

func (a *anchored) cosign(t *testing.T, note []byte, cp seal.Checkpoint) {
	c, err := a.w.Cosign(cp.Text(), time.Now())
	require.NoError(t, err)
	cosigned, err := seal.AddCosignatures(note, c)
	require.NoError(t, err)
	_, err = a.l.AppendAnchor(context.Background(), seal.Anchor{Type: seal.AnchorCosignature, Size: cp.Size, Checkpoint: cosigned,
		Authority: a.w.Name(), Time: c.Timestamp()})
	require.NoError(t, err)
}

func (a *anchored) verify(t *testing.T, anchors verify.Anchors) (*verify.Report, error) {
	_, _, err := a.l.SignCheckpoint(context.Background()) // cover the anchors
	require.NoError(t, err)
	return verify.Ledger(context.Background(), a.st, a.keys.Verifier, verify.Options{Anchors: anchors})
}

// TestAnchorsVerify: time-stamps check against the TSA's roots and in order, cosignatures meet
// "log key plus 1 of 1", and the report lists each anchored checkpoint; without roots the
// stamps are listed unchecked; a policy that needs a second witness fails.
func TestAnchorsVerify(t *testing.T) {
	a := newAnchored(t)
	n1, cp1 := a.checkpoint(t, 5)
	a.stamp(t, n1, cp1)
	a.cosign(t, n1, cp1)
	n2, cp2 := a.checkpoint(t, 5)
	a.stamp(t, n2, cp2)
	a.cosign(t, n2, cp2)

	one, err := seal.NewWitnessPolicy(a.keys.VerifierKey, 1, a.w.VerifierKey())
	require.NoError(t, err)
	rep, err := a.verify(t, verify.Anchors{TSARoots: a.ts.Roots(), Witnesses: one})
	require.NoError(t, err)
	require.Len(t, rep.Anchored, 2)
	for k, cp := range []seal.Checkpoint{cp1, cp2} {
		ac := rep.Anchored[k]
		require.Equal(t, cp.Size, ac.Size)
		require.Len(t, ac.Stamps, 1)
		require.True(t, ac.Stamps[0].Checked)
		require.Equal(t, "tsa-1", ac.Stamps[0].TSA)
		require.Equal(t, []string{"witness.test/w1"}, ac.Witnessed)
		require.True(t, ac.Quorum)
	}

	rep, err = a.verify(t, verify.Anchors{})
	require.NoError(t, err)
	require.False(t, rep.Anchored[0].Stamps[0].Checked, "no roots: listed, not checked")

	_, w2vkey, err := seal.GenerateCosignatureKey("witness.test/w2")
	require.NoError(t, err)
	two, err := seal.NewWitnessPolicy(a.keys.VerifierKey, 2, a.w.VerifierKey(), w2vkey)
	require.NoError(t, err)
	_, err = a.verify(t, verify.Anchors{Witnesses: two})
	require.ErrorIs(t, err, verify.ErrWitnessPolicy)
	require.False(t, verify.Altered(err), "an unmet policy is not an alteration")

	other, err := tsatest.NewAuthority()
	require.NoError(t, err)
	_, err = a.verify(t, verify.Anchors{TSARoots: other.Roots()})
	require.True(t, verify.Altered(err), "%v", err)
	require.ErrorContains(t, err, "time-stamp of tsa-1")
}

// TestAnchorOfAForkIsCaught: a checkpoint of the same origin and size but another tree (a
// fork the firm signed), cosigned and sealed as an anchor, is caught: the witness saw another
// history than the ledger holds.
func TestAnchorOfAForkIsCaught(t *testing.T) {
	a := newAnchored(t)
	a.checkpoint(t, 4)
	fork := &anchored{st: memstore.New(), keys: a.keys, w: a.w}
	fork.l = openLedger(t, fork.st, a.keys, 1<<20)
	fork.n = 100 // other messages
	fn, fcp := fork.checkpoint(t, 4)
	a.cosign(t, fn, fcp)
	_, err := a.verify(t, verify.Anchors{})
	require.True(t, verify.Altered(err), "%v", err)
	require.ErrorContains(t, err, "another root")
}

// TestBackdatedStampIsCaught: a token over a later checkpoint dated before an earlier
// checkpoint's token is flagged.
func TestBackdatedStampIsCaught(t *testing.T) {
	a := newAnchored(t)
	n1, cp1 := a.checkpoint(t, 3)
	a.stamp(t, n1, cp1)
	n2, cp2 := a.checkpoint(t, 3)
	a.ts.SetClock(func() time.Time { return time.Now().Add(-time.Hour) })
	a.stamp(t, n2, cp2)
	_, err := a.verify(t, verify.Anchors{TSARoots: a.ts.Roots()})
	require.True(t, verify.Altered(err), "%v", err)
	require.ErrorIs(t, err, tsa.ErrBackdated)
}
