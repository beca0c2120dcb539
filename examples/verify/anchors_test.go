package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/tsa/tsatest"
	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/internal/testenv"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
)

// TestVerifyAnchors: a ledger whose checkpoints carry a time-stamp and a witness cosignature
// verifies with the TSA's roots and the witness policy, prints each anchored checkpoint, and
// writes the checkpoint and token files that openssl ts -verify accepts; a policy asking for a
// witness that never cosigned is exit 1.
func TestVerifyAnchors(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ledger")
	l, err := ledgerdir.Open(ctx, dir, "commseal.test/verify-anchors", ledger.Options{CheckpointEvery: 1 << 20, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	ts, err := tsatest.NewServer()
	require.NoError(t, err)
	defer ts.Close()
	tc, err := tsa.NewClient(ts.Roots(), []tsa.TSA{{Name: "tsa-1", URL: ts.URL}}, tsa.Options{})
	require.NoError(t, err)
	wskey, wvkey, err := seal.GenerateCosignatureKey("witness.test/w1")
	require.NoError(t, err)
	w, err := seal.NewCosignatureSigner(wskey)
	require.NoError(t, err)
	var sizes []uint64
	for round := range 2 {
		for i := range 5 {
			_, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "t", ID: fmt.Sprint("m", round, i),
				Conversation: capture.Conversation{ID: "c"}, Kind: capture.KindText, Text: "x", SentAt: time.Now(), Raw: []byte(`{}`)})
			require.NoError(t, err)
		}
		note, cp, err := l.SignCheckpoint(ctx)
		require.NoError(t, err)
		tok, err := tc.Stamp(ctx, "tsa-1", note)
		require.NoError(t, err)
		_, err = l.AppendAnchor(ctx, seal.Anchor{Type: seal.AnchorTimestamp, Size: cp.Size, Checkpoint: note, Authority: "tsa-1", Time: tok.Time, Token: tok.DER})
		require.NoError(t, err)
		c, err := w.Cosign(cp.Text(), time.Now())
		require.NoError(t, err)
		cosigned, err := seal.AddCosignatures(note, c)
		require.NoError(t, err)
		_, err = l.AppendAnchor(ctx, seal.Anchor{Type: seal.AnchorCosignature, Size: cp.Size, Checkpoint: cosigned, Authority: w.Name(), Time: c.Timestamp()})
		require.NoError(t, err)
		sizes = append(sizes, cp.Size)
	}
	require.NoError(t, l.Close())
	roots := filepath.Join(t.TempDir(), "roots.pem")
	require.NoError(t, os.WriteFile(roots, ts.CAPEM(), 0o600))
	tsaCert := filepath.Join(t.TempDir(), "tsa.pem")
	require.NoError(t, os.WriteFile(tsaCert, ts.CertificatePEM(), 0o600))
	out := filepath.Join(t.TempDir(), "anchors")

	code, stdout, errs := runV("-dir", dir, "-tsa-roots", roots, "-witness", wvkey, "-anchors", out)
	require.Equal(t, exitOK, code, errs+stdout)
	require.Contains(t, stdout, "2 anchored checkpoints")
	for _, s := range sizes {
		require.Regexp(t, fmt.Sprintf(`size %d: time-stamped \S+ by tsa-1 \(token checked\); cosigned by witness.test/w1 \(policy met\)`, s), stdout)
	}

	// A third party checks the files with OpenSSL alone.
	openssl := testenv.Program(t, "openssl", "apt-get install openssl")
	tokens, err := filepath.Glob(filepath.Join(out, "*.tsr"))
	require.NoError(t, err)
	require.Len(t, tokens, 2)
	for _, s := range sizes {
		tok, err := filepath.Glob(filepath.Join(out, fmt.Sprintf("%d.*.tsr", s)))
		require.NoError(t, err)
		require.Len(t, tok, 1)
		res, err := exec.Command(openssl, "ts", "-verify", "-data", filepath.Join(out, fmt.Sprintf("%d.checkpoint", s)),
			"-in", tok[0], "-token_in", "-CAfile", roots, "-untrusted", tsaCert).CombinedOutput()
		require.NoError(t, err, "%s", res)
		require.Contains(t, string(res), "Verification: OK")
	}

	// An export bundle carries the latest anchors; verify -bundle checks them offline.
	l, err = ledgerdir.Open(ctx, dir, "commseal.test/verify-anchors", ledger.Options{})
	require.NoError(t, err)
	bundle := filepath.Join(t.TempDir(), "bundle")
	_, err = export.Write(ctx, l.Ledger, bundle, export.Request{Who: "auditor", Why: "anchors", Indexes: []uint64{0, 1}, Signer: l.Signing.Signer})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	code, stdout, errs = runV("-bundle", bundle, "-key", l.Signing.VerifierKey, "-tsa-roots", roots, "-witness", wvkey)
	require.Equal(t, exitOK, code, errs+stdout)
	require.Regexp(t, fmt.Sprintf(`size %d: time-stamped \S+ by tsa-1 \(token checked\); cosigned by witness.test/w1 \(policy met\)`, sizes[1]), stdout)
	// The bundle's own token and checkpoint files check with OpenSSL alone.
	btok, err := filepath.Glob(filepath.Join(bundle, "evidence", "anchors", "*.tsr"))
	require.NoError(t, err)
	require.Len(t, btok, 1)
	res, err := exec.Command(openssl, "ts", "-verify", "-data", filepath.Join(bundle, "evidence", "anchors", fmt.Sprintf("%d.checkpoint", sizes[1])),
		"-in", btok[0], "-token_in", "-CAfile", roots, "-untrusted", tsaCert).CombinedOutput()
	require.NoError(t, err, "%s", res)
	require.Contains(t, string(res), "Verification: OK")

	// A policy that needs a witness that never cosigned.
	_, other, err := seal.GenerateCosignatureKey("witness.test/w2")
	require.NoError(t, err)
	code, stdout, errs = runV("-dir", dir, "-witness", wvkey, "-witness", other)
	require.Equal(t, exitAltered, code, stdout+errs)
	require.Contains(t, stdout, "NOT WITNESSED")
	require.Contains(t, stdout, "witness policy not met")

	// Another TSA's roots: the tokens do not check.
	otherTSA, err := tsatest.NewAuthority()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(roots, otherTSA.CAPEM(), 0o600))
	code, stdout, _ = runV("-dir", dir, "-tsa-roots", roots)
	require.Equal(t, exitAltered, code, stdout)
	require.Contains(t, stdout, "time-stamp of tsa-1")
}
