package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// countingStore counts the entries read through Entries.
type countingStore struct {
	*memstore.Store
	read atomic.Int64
}

func (s *countingStore) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for e, err := range s.Store.Entries(ctx, start, end) {
			s.read.Add(1)
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestHoldsReadOneEntry: the holds are chained, and Holds reads only the latest entry of the
// chain however many entries the ledger holds (issue #9 item 5: it read every entry from 0).
func TestHoldsReadOneEntry(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: memstore.New()}
	keys := testKeys(t)
	l := openLedger(t, st, keys, 100)
	_, err := l.PlaceHold(ctx, ledger.Hold{ID: "h1", Tenant: "corp1", Conversation: "cid-01", Reason: "SFC inquiry", By: "counsel"})
	require.NoError(t, err)
	for i := range 500 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, err = l.PlaceHold(ctx, ledger.Hold{ID: "h2", Tenant: "corp2", Reason: "dispute", By: "legal"})
	require.NoError(t, err)
	_, err = l.PlaceHold(ctx, ledger.Hold{ID: "h3", Tenant: "corp1", Conversation: "cid-02", Reason: "audit", By: "legal"})
	require.NoError(t, err)
	_, err = l.ReleaseHold(ctx, "h2", "legal", "settled")
	require.NoError(t, err)
	for i := 500; i < 1000; i++ {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	st.read.Store(0)
	holds, err := l.Holds(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"h1", "h3"}, holdIDs(holds))
	require.Equal(t, int64(1), st.read.Load(), "Holds read %d entries of %d", st.read.Load(), l.Size())

	// The chain is a conversation: every hold entry links to the previous one, and verify
	// checks it; each entry carries the set after it.
	require.NoError(t, l.Close())
	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(4), rep.Kinds["hold"])
	var chain []*ledger.Entry
	for i := range rep.Entries {
		e, err := l.Get(ctx, i)
		require.NoError(t, err)
		if e.Leaf.Kind == seal.KindHold {
			chain = append(chain, e)
		}
	}
	require.Len(t, chain, 4)
	for k, e := range chain {
		require.Equal(t, uint64(k+1), e.Leaf.ConvSeq)
		require.Equal(t, chain[0].Leaf.Conversation, e.Leaf.Conversation)
		if k > 0 {
			require.Equal(t, chain[k-1].LeafHash, e.Leaf.ConvPrev)
		}
	}
	var last struct {
		ID       string
		Released bool
		Active   []ledger.Hold
	}
	require.NoError(t, json.Unmarshal(chain[3].Body, &last))
	require.Equal(t, "h2", last.ID)
	require.True(t, last.Released)
	require.Equal(t, []string{"h1", "h3"}, holdIDs(last.Active))

	// Reopened, it reads the same, still from one entry.
	l = openLedger(t, st, keys, 100)
	defer l.Close()
	st.read.Store(0)
	holds, err = l.Holds(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"h1", "h3"}, holdIDs(holds))
	require.Equal(t, int64(1), st.read.Load())
	// Placing a hold with an active id replaces it.
	_, err = l.PlaceHold(ctx, ledger.Hold{ID: "h1", Tenant: "corp1", Reason: "widened to the tenant", By: "counsel"})
	require.NoError(t, err)
	holds, err = l.Holds(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"h1", "h3"}, holdIDs(holds))
	require.Equal(t, "", holds[0].Conversation)
}

func holdIDs(hs []ledger.Hold) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}

// hookVault calls onDestroy before the first DestroyKey of a key whose id it is given.
type hookVault struct {
	*memstore.KeyVault
	mu        sync.Mutex
	onDestroy func(id string)
	failOnce  map[string]bool // ids whose next DestroyKey fails
}

func (v *hookVault) DestroyKey(ctx context.Context, id string) error {
	v.mu.Lock()
	hook, fail := v.onDestroy, v.failOnce[id]
	v.onDestroy = nil
	delete(v.failOnce, id)
	v.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	if fail {
		return fmt.Errorf("hookVault: destroying %s: the disk said no", id)
	}
	return v.KeyVault.DestroyKey(ctx, id)
}

// TestHoldPlacedDuringRetentionWins: a hold sealed while ApplyRetention runs stops the shreds
// it covers that are not sealed yet (issue #9 item 3: holds were read once, at the start).
func TestHoldPlacedDuringRetentionWins(t *testing.T) {
	ctx := context.Background()
	vault := &hookVault{KeyVault: &memstore.KeyVault{}}
	e := newEncWith(t, vault)
	old := time.Date(2023, 1, 5, 0, 0, 0, 0, time.UTC)
	var idx []uint64
	for _, c := range []string{"cid-a", "cid-b", "cid-c"} {
		rc, err := e.Append(ctx, secretMsg(1, c, old, "expired order in "+c))
		require.NoError(t, err)
		idx = append(idx, rc.Index)
	}
	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}}
	dry, err := e.ApplyRetention(ctx, policy, ledger.ApplyOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, dry, 3, "all three scopes are due")
	// While the first key is being destroyed, counsel places a hold on the conversation whose
	// key comes last; it is sealed (durable) before the hook returns.
	last := dry[2].Conversation
	var held uint64
	vault.onDestroy = func(string) {
		done := make(chan error)
		go func() {
			var err error
			held, err = e.PlaceHold(ctx, ledger.Hold{ID: "late", Tenant: "corp1", Conversation: last, Reason: "subpoena", By: "counsel"})
			done <- err
		}()
		require.NoError(t, <-done)
	}
	shreds, err := e.ApplyRetention(ctx, policy, ledger.ApplyOptions{Authority: "retention job"})
	require.NoError(t, err)
	require.Len(t, shreds, 2, "the held scope is not shredded")
	for _, s := range shreds {
		require.NotEqual(t, last, s.Conversation)
	}
	require.Greater(t, shreds[1].Index, held, "the second shred was sealed after the hold, which it saw")
	acc := e.Access("auditor", "hold check")
	for k, c := range []string{"cid-a", "cid-b", "cid-c"} {
		got, err := acc.Get(ctx, idx[k])
		if c == last {
			require.NoError(t, err, "the held conversation survives")
			require.Equal(t, "expired order in "+c, got.Message.Text)
		} else {
			require.ErrorIs(t, err, ledger.ErrShredded)
		}
	}
}

// TestNoShredEntryFollowsAHoldThatCoversIt races holds against a retention run over many
// scopes and checks the rule itself on the sealed record: no shred entry of a scope is sealed
// after a hold entry that covers it (run with -race).
func TestNoShredEntryFollowsAHoldThatCoversIt(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	old := time.Date(2022, 3, 5, 0, 0, 0, 0, time.UTC)
	const n = 40
	for i := range n {
		_, err := e.Append(ctx, secretMsg(i, fmt.Sprintf("cid-%02d", i), old, "x"))
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := n - 1; i >= 0; i -= 3 {
			_, err := e.PlaceHold(ctx, ledger.Hold{ID: fmt.Sprint("h", i), Tenant: "corp1", Conversation: fmt.Sprintf("cid-%02d", i), Reason: "r", By: "b"})
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	shreds, err := e.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1y", Keep: ledger.Period{Years: 1}}}},
		ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	wg.Wait()
	heldAt := map[string]uint64{}
	shredAt := map[string]uint64{}
	for i := range e.Size() {
		en, err := e.Get(ctx, i)
		if err != nil {
			continue // encrypted messages
		}
		switch en.Leaf.Kind {
		case seal.KindHold:
			var h ledger.Hold
			require.NoError(t, json.Unmarshal(en.Body, &h))
			heldAt[h.Conversation] = i
		case seal.KindShred:
			var s ledger.Shred
			require.NoError(t, json.Unmarshal(en.Body, &s))
			shredAt[s.Conversation] = i
		}
	}
	require.Len(t, shredAt, len(shreds))
	for c, s := range shredAt {
		if h, ok := heldAt[c]; ok {
			require.Less(t, s, h, "the shred of %s (entry %d) was sealed after the hold on it (entry %d)", c, s, h)
		}
	}
	for c := range heldAt {
		got := 0
		for _, s := range shreds {
			if s.Conversation == c {
				got++
			}
		}
		if _, ok := shredAt[c]; !ok {
			require.Zero(t, got)
		}
	}
}
