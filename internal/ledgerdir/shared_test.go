package ledgerdir_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/backend/backendtest"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/verify"
)

// Two archivers on one PostgreSQL ledger, as the operator runs them: the first directory is
// made once, copied with cp -a to the second machine, and each process opens its own copy with
// the same -store and Options.Shared. Both append at once (a redelivered message goes to either),
// each reads what the other wrote (the data keys are in PostgreSQL), and the log verifies.
func TestTwoDirectoriesShareOnePostgresLedger(t *testing.T) {
	ctx := context.Background()
	pgURL := backendtest.Postgres(t)
	a := filepath.Join(t.TempDir(), "desk-a")
	l, err := ledgerdir.OpenOn(ctx, a, "commseal.test/shared", parse(t, a, pgURL, ""), ledger.Options{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	b := filepath.Join(t.TempDir(), "desk-b")
	out, err := exec.Command("cp", "-a", a, b).CombinedOutput()
	require.NoError(t, err, "%s", out)

	open := func(dir string) *ledgerdir.Ledger {
		l, err := ledgerdir.OpenOn(ctx, dir, "", parse(t, dir, pgURL, ""), ledger.Options{Shared: true})
		require.NoError(t, err)
		return l
	}
	la, lb := open(a), open(b)
	var wg sync.WaitGroup
	for k, l := range []*ledgerdir.Ledger{la, lb} {
		for w := range 8 {
			wg.Go(func() {
				for n := range 30 {
					m := msg(fmt.Sprintf("desk%d-w%d-%d", k, w, n))
					if n%5 == 0 {
						m = msg(fmt.Sprintf("redelivered-%d-%d", w, n))
					}
					m.Conversation.ID = fmt.Sprint("cid", n%4)
					if _, err := l.Append(ctx, m); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	// Each reads an entry the other sealed: the data keys are shared through PostgreSQL.
	read := func(l *ledgerdir.Ledger, id string) {
		t.Helper()
		found := false
		require.NoError(t, l.Access("auditor", "test").Scan(ctx, 0, l.Size(), func(e *ledger.Entry, err error) error {
			require.NoError(t, err)
			if e.Message != nil && e.Message.ID == id {
				found = true
			}
			return nil
		}))
		require.True(t, found, "%s not read", id)
	}
	read(la, "desk1-w3-7")
	read(lb, "desk0-w5-9")
	vkey := la.Signing.Verifier
	require.NoError(t, la.Close())
	require.NoError(t, lb.Close())

	st, err := backend.OpenReader(ctx, a, parse(t, a, pgURL, ""), nil)
	require.NoError(t, err)
	defer st.Close()
	rep, err := verify.Ledger(ctx, st, vkey, verify.Options{})
	require.NoError(t, err)
	// 2 desks × 8 writers × 24 own messages, 8 × 6 redelivered ones stored once, 2 accesses.
	require.EqualValues(t, 2*8*24+8*6+2, rep.Entries)
}
