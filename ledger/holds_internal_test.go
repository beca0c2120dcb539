package ledger

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// TestUnchainedHoldsOfEarlierVersionsAreRead: a ledger written before holds were chained holds
// hold entries outside the chain. Holds reads them (while the chain is empty); the first
// chained entry carries their set, and from then on only the chain is read.
func TestUnchainedHoldsOfEarlierVersionsAreRead(t *testing.T) {
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey("commseal.test/holds")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	st := memstore.New()
	l, err := Open(ctx, st, Options{Signing: keys})
	require.NoError(t, err)
	// What earlier versions sealed: a hold entry with the Hold as its body, in no conversation.
	unchained := func(h Hold) {
		t.Helper()
		_, err := l.submit(ctx, &request{kind: seal.KindHold, time: time.Now().UTC()}, 512, jsonOf(h))
		require.NoError(t, err)
	}
	unchained(Hold{ID: "old-1", Tenant: "corp", Conversation: "c1", Reason: "r", By: "b"})
	unchained(Hold{ID: "old-2", Tenant: "corp", Reason: "r", By: "b"})
	unchained(Hold{ID: "old-3", Tenant: "corp", Conversation: "c3", Reason: "r", By: "b"})
	unchained(Hold{ID: "old-2", Released: true, By: "b", Reason: "done"})
	require.NoError(t, l.Close())

	l, err = Open(ctx, st, Options{Signing: keys})
	require.NoError(t, err)
	defer l.Close()
	hs, err := l.Holds(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"old-1", "old-3"}, ids(hs))
	_, err = l.ReleaseHold(ctx, "old-1", "counsel", "closed")
	require.NoError(t, err)
	_, err = l.PlaceHold(ctx, Hold{ID: "new-1", Tenant: "corp", Conversation: "c9", Reason: "r", By: "b"})
	require.NoError(t, err)
	hs, err = l.Holds(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"old-3", "new-1"}, ids(hs))

	// The chain now carries the set: a reopened ledger reads it without scanning.
	l2, err := Open(ctx, st, Options{Signing: keys})
	require.NoError(t, err)
	defer l2.Close()
	hs, err = l2.Holds(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"old-3", "new-1"}, ids(hs))
	require.False(t, l2.holds.scanned, "with a chain, no entry is scanned for unchained holds")
}

func ids(hs []Hold) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}

type countEntries struct {
	*memstore.Store
	read int
}

func (s *countEntries) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for e, err := range s.Store.Entries(ctx, start, end) {
			s.read++
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestHoldsOfALedgerWithoutAChainAreReadOncePerOpen: a ledger that never had a chained hold is
// read for unchained hold entries once, at the first call; later calls read nothing, however
// many entries are appended.
func TestHoldsOfALedgerWithoutAChainAreReadOncePerOpen(t *testing.T) {
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey("commseal.test/holds")
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	st := &countEntries{Store: memstore.New()}
	l, err := Open(ctx, st, Options{Signing: keys})
	require.NoError(t, err)
	defer l.Close()
	add := func(n int) {
		for range n {
			_, err := l.submit(ctx, &request{kind: seal.KindAccess, time: time.Now().UTC()}, 64, jsonOf(map[string]int{"n": n}))
			require.NoError(t, err)
		}
	}
	add(100)
	st.read = 0
	hs, err := l.Holds(ctx)
	require.NoError(t, err)
	require.Empty(t, hs)
	require.Equal(t, 100, st.read, "the first call reads the ledger for unchained holds")
	add(100)
	st.read = 0
	for range 3 {
		_, err := l.Holds(ctx)
		require.NoError(t, err)
	}
	require.Zero(t, st.read, "later calls read nothing")
}
