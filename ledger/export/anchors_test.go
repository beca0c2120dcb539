package export_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/tsa/tsatest"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestExportCarriesTheLatestAnchors: a bundle carries the time-stamp and the witness
// cosignature of the ledger's latest anchored checkpoint, against which it is proved when
// that checkpoint covers its entries (else with a proof that the anchored tree is a prefix of
// the latest); verify.BundleWith checks the token against the TSA's roots and the
// cosignature against the witness policy, offline; the token and checkpoint files check on
// their own; an altered list or proof is caught.
func TestExportCarriesTheLatestAnchors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ts, err := tsatest.NewServer()
	require.NoError(t, err)
	defer ts.Close()
	tc, err := tsa.NewClient(ts.Roots(), []tsa.TSA{{Name: "tsa-1", URL: ts.URL}}, tsa.Options{})
	require.NoError(t, err)
	wskey, wvkey, err := seal.GenerateCosignatureKey("witness.test/export")
	require.NoError(t, err)
	w, err := seal.NewCosignatureSigner(wskey)
	require.NoError(t, err)

	note, cp, err := f.l.SignCheckpoint(ctx)
	require.NoError(t, err)
	tok, err := tc.Stamp(ctx, "tsa-1", note)
	require.NoError(t, err)
	ts1, err := f.l.AppendAnchor(ctx, seal.Anchor{Type: seal.AnchorTimestamp, Size: cp.Size, Checkpoint: note, Authority: "tsa-1", Time: tok.Time, Token: tok.DER})
	require.NoError(t, err)
	c, err := w.Cosign(cp.Text(), time.Now())
	require.NoError(t, err)
	cosigned, err := seal.AddCosignatures(note, c)
	require.NoError(t, err)
	cs1, err := f.l.AppendAnchor(ctx, seal.Anchor{Type: seal.AnchorCosignature, Size: cp.Size, Checkpoint: cosigned, Authority: w.Name(), Time: c.Timestamp()})
	require.NoError(t, err)
	newer, err := f.l.Append(ctx, msg(20, "cid-a", time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC), "after the anchor"))
	require.NoError(t, err)

	// The request's entries are all older than the anchored checkpoint: the bundle is proved
	// against it, and carries its token and cosignature.
	dir := filepath.Join(t.TempDir(), "bundle")
	_, err = export.Write(ctx, f.l, dir, f.request())
	require.NoError(t, err)
	pol, err := seal.NewWitnessPolicy(f.keys.VerifierKey, 1, wvkey)
	require.NoError(t, err)
	withAnchors := verify.BundleOptions{Anchors: verify.Anchors{TSARoots: ts.Roots(), Witnesses: pol}}
	rep, err := verify.BundleWith(dir, f.keys.VerifierKey, withAnchors)
	require.NoError(t, err)
	require.Equal(t, cp.Size, rep.TreeSize, "proved against the anchored checkpoint")
	require.Len(t, rep.Anchored, 1)
	ac := rep.Anchored[0]
	require.Equal(t, cp.Size, ac.Size)
	require.Equal(t, []uint64{ts1, cs1}, ac.Entries)
	require.Len(t, ac.Stamps, 1)
	require.True(t, ac.Stamps[0].Checked)
	require.True(t, ac.Quorum)
	require.Equal(t, []string{"witness.test/export"}, ac.Witnessed)
	_, err = os.Stat(filepath.Join(dir, filepath.FromSlash(verify.BundleAnchorConsistencyPath(cp.Size))))
	require.ErrorIs(t, err, os.ErrNotExist, "no proof needed: it is the bundle's checkpoint")
	tokFile, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(verify.BundleAnchorFilePath(ts1, seal.AnchorTimestamp))))
	require.NoError(t, err)
	cpFile, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(verify.BundleAnchorCheckpointPath(cp.Size))))
	require.NoError(t, err)
	_, err = tsa.Verify(tokFile, cpFile, ts.Roots())
	require.NoError(t, err, "the token file checks against the checkpoint file on its own")

	// Plain Bundle checks the anchored checkpoint, not tokens or cosignatures.
	_, err = verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	// Another TSA's roots: the token does not check.
	other, err := tsatest.NewAuthority()
	require.NoError(t, err)
	_, err = verify.BundleWith(dir, f.keys.VerifierKey, verify.BundleOptions{Anchors: verify.Anchors{TSARoots: other.Roots()}})
	require.True(t, verify.Altered(err), "%v", err)
	// A list that names another size: caught.
	bad := copyDir(t, dir)
	rewrite(t, bad, verify.BundleAnchors, func(b []byte) []byte {
		return []byte(strings.ReplaceAll(string(b), fmt.Sprintf(`"size":%d`, cp.Size), fmt.Sprintf(`"size":%d`, cp.Size-1)))
	})
	resign(t, f, bad)
	_, err = verify.Bundle(bad, f.keys.VerifierKey)
	require.True(t, verify.Altered(err), "%v", err)

	// An entry newer than the anchored checkpoint: the bundle is proved against a new one,
	// and carries the anchors with the proof that the anchored tree is a prefix of the latest.
	dir2 := filepath.Join(t.TempDir(), "bundle2")
	req := f.request()
	req.Indexes = append(req.Indexes, newer.Index)
	_, err = export.Write(ctx, f.l, dir2, req)
	require.NoError(t, err)
	rep, err = verify.BundleWith(dir2, f.keys.VerifierKey, withAnchors)
	require.NoError(t, err)
	require.Greater(t, rep.TreeSize, cp.Size)
	require.Len(t, rep.Anchored, 1)
	bad = copyDir(t, dir2)
	name := filepath.Join(bad, filepath.FromSlash(verify.BundleAnchorConsistencyPath(cp.Size)))
	b, err := os.ReadFile(filepath.Join(bad, filepath.FromSlash(verify.BundleConsistency)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(name, b, 0o600))
	resign(t, f, bad)
	_, err = verify.Bundle(bad, f.keys.VerifierKey)
	require.True(t, verify.Altered(err), "%v", err)
	require.ErrorContains(t, err, verify.BundleAnchorConsistencyPath(cp.Size))
}
