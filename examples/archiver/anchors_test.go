package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/anchor/tsa/tsatest"
	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/capture/dingtalk/dingtalktest"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger/anchor"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestArchiverAnchorsItsCheckpoints: with -tsa and -witness the archiver has its checkpoints
// time-stamped and cosigned while it captures, health reports both authorities, and the
// ledger verifies with the TSA's roots and "log key plus the witness".
func TestArchiverAnchorsItsCheckpoints(t *testing.T) {
	g := dingtalktest.New(dingtalktest.Config{})
	defer g.Close()
	ts, err := tsatest.NewServer()
	require.NoError(t, err)
	defer ts.Close()
	roots := filepath.Join(t.TempDir(), "roots.pem")
	require.NoError(t, os.WriteFile(roots, ts.CAPEM(), 0o600))
	dir := t.TempDir()
	keys, err := ledgerdir.SigningKey(dir, layout.DefaultOrigin, true) // the archiver's key, made first so the witness knows it
	require.NoError(t, err)
	wskey, wvkey, err := seal.GenerateCosignatureKey("witness.test/archiver")
	require.NoError(t, err)
	signer, err := seal.NewCosignatureSigner(wskey)
	require.NoError(t, err)
	lg, err := witness.ParseLog(layout.DefaultOrigin + " " + keys.VerifierKey)
	require.NoError(t, err)
	wst, err := witness.OpenFileStore(filepath.Join(t.TempDir(), "w"))
	require.NoError(t, err)
	defer wst.Close()
	wit, err := witness.New(witness.Options{Signer: signer, Logs: []witness.Log{lg}, Store: wst})
	require.NoError(t, err)
	wsrv := httptest.NewServer(wit)
	defer wsrv.Close()

	env := envOf(map[string]string{"DINGTALK_CLIENT_ID": dingtalktest.DefaultClientID, "DINGTALK_CLIENT_SECRET": dingtalktest.DefaultClientSecret})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var stdout, stderr syncBuffer
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-openapi-host", g.URL, "-no-scan", "-health-addr", "127.0.0.1:0",
			"-tsa", "local=" + ts.URL, "-tsa-roots", roots, "-witness", wsrv.URL + "=" + wvkey, "-anchor-every", "50ms"},
			env, &stdout, &stderr, func(h, _, _ string) { ready <- h })
	}()
	health := <-ready
	g.PushBotMessage(dingtalktest.BotMessage{MsgID: "a1", Text: "buy 100"}.JSON())
	require.NoError(t, g.Wait(context.Background()))
	// The ledger signs a checkpoint on its interval; anchoring follows. Wait until both
	// authorities have anchored one.
	require.Eventually(t, func() bool {
		resp, err := http.Get(health)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct {
			Anchors []anchor.Status `json:"anchors"`
		}
		if json.NewDecoder(resp.Body).Decode(&h) != nil || len(h.Anchors) != 2 {
			return false
		}
		return h.Anchors[0].Size > 0 && h.Anchors[1].Size > 0
	}, time.Minute, 50*time.Millisecond, "health never showed both anchors: %s", stderr.String())
	stop()
	require.Equal(t, 0, <-done, stderr.String())

	st, err := layout.OpenStore(context.Background(), dir, true, nil)
	require.NoError(t, err)
	defer st.Close()
	pol, err := seal.NewWitnessPolicy(keys.VerifierKey, 1, wvkey)
	require.NoError(t, err)
	rep, err := verify.Ledger(context.Background(), st, keys.Verifier, verify.Options{Anchors: verify.Anchors{TSARoots: ts.Roots(), Witnesses: pol}})
	require.NoError(t, err)
	stamped, witnessed := 0, 0
	for _, ac := range rep.Anchored {
		for _, s := range ac.Stamps {
			require.True(t, s.Checked)
			require.Equal(t, "local", s.TSA)
			stamped++
		}
		if ac.Quorum {
			require.Equal(t, []string{"witness.test/archiver"}, ac.Witnessed)
			witnessed++
		}
	}
	require.Positive(t, stamped, "a time-stamp sealed and checked")
	require.Positive(t, witnessed, "a cosigned checkpoint that meets the policy")
}
