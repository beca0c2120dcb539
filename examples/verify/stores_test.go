package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// verify -dir D -store postgres://... checks what a writer put in PostgreSQL, read-only; the
// directory's ledger.store holds it to the same kind of store, database and schema.
func TestVerifyPostgres(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	dir := filepath.Join(t.TempDir(), "ledger")
	spec, err := backend.Parse(dir, pgURL, "")
	require.NoError(t, err)
	l, err := ledgerdir.OpenOn(ctx, dir, "commseal.test/verify-pg", spec, ledger.Options{CheckpointEvery: 10})
	require.NoError(t, err)
	for i := range 25 {
		_, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "msg-" + strings.Repeat("x", i+1),
			Kind: capture.KindText, Conversation: capture.Conversation{ID: "cid", Type: capture.ConversationGroup},
			Text: "SECRET-ORDER-TEXT", Raw: []byte(`{}`)})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())

	code, out, errs := runV("-dir", dir, "-store", pgURL)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, "OK: "+dir+": 25 entries")
	code, out, _ = runV("-dir", dir, "-store", pgURL, "-list")
	require.Equal(t, exitOK, code)
	require.Equal(t, 25, strings.Count(out, "encrypted:"))

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-dir", dir}, "keeps its log in PostgreSQL database"},
		{[]string{"-dir", dir, "-store", pgURL + "&schema=other"}, `schema "commseal": give the -store that names it`},
		{[]string{"-dir", dir, "-store", "mysql://h/db"}, "-store mysql://...: unknown kind of store"},
		{[]string{"-dir", dir, "-store", pgURL, "-blobs", "s3://b"}, "flag provided but not defined: -blobs"},
	} {
		code, out, errs := runV(c.args...)
		require.Equal(t, exitUsageErr, code, out)
		require.Contains(t, errs, c.want)
	}
}

// The auditor's program links no part of the writer, PostgreSQL or not.
func TestVerifyLinksNoWriter(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/commseal/commseal/store/pgstore")
	for _, d := range deps {
		for _, w := range []string{"github.com/commseal/commseal/ledger", "github.com/commseal/commseal/capture", "github.com/commseal/commseal/internal/ledgerdir"} {
			require.False(t, d == w || strings.HasPrefix(d, w+"/"), "verify links %s", d)
		}
	}
}
