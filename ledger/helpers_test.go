package ledger_test

import (
	"context"
	"fmt"
	"iter"
	"math"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/stretchr/testify/require"
)

const origin = "commseal.test/ledger"

func testKeys(t testing.TB) *seal.Keys {
	t.Helper()
	skey, _, err := seal.GenerateKey(origin)
	require.NoError(t, err)
	k, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	return k
}

func msg(i int) *capture.Message {
	return &capture.Message{
		Platform: capture.PlatformDingTalk, Tenant: "corp1", ID: fmt.Sprintf("msg-%06d", i),
		Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%02d", i%37), Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "u1", Name: "Trader"},
		SentAt:       time.Unix(1700000000+int64(i), 0).UTC(),
		CapturedAt:   time.Unix(1700000000+int64(i), 5).UTC(),
		Kind:         capture.KindText, Text: fmt.Sprintf("buy %d lots of 0700.HK", i),
		Raw: []byte(fmt.Sprintf(`{"msgId":"msg-%06d"}`, i)),
	}
}

func openLedger(t testing.TB, st store.Store, keys *seal.Keys, every uint64) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), st, ledger.Options{Keys: keys, CheckpointEvery: every, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	return l
}

// snapshot is a ledger's stored state as plain slices, served through verify.Reader, so tests
// can tamper with it the way someone with write access to the storage could.
type snapshot struct {
	entries []store.Entry
	hashes  []store.Hash
	cps     []store.Checkpoint
}

func takeSnapshot(t testing.TB, st store.Store) *snapshot {
	ctx := context.Background()
	s := &snapshot{}
	for e, err := range st.Entries(ctx, 0, math.MaxUint64) {
		require.NoError(t, err)
		s.entries = append(s.entries, e)
	}
	size, err := st.Size(ctx)
	require.NoError(t, err)
	idx := make([]int64, store.StoredHashCount(size))
	for i := range idx {
		idx[i] = int64(i)
	}
	s.hashes, err = st.ReadHashes(ctx, idx)
	require.NoError(t, err)
	for c, err := range st.AllCheckpoints(ctx) {
		require.NoError(t, err)
		s.cps = append(s.cps, c)
	}
	return s
}

func (s *snapshot) clone() *snapshot {
	c := &snapshot{hashes: append([]store.Hash(nil), s.hashes...)}
	for _, e := range s.entries {
		e.Leaf = append([]byte(nil), e.Leaf...)
		e.Payload = append([]byte(nil), e.Payload...)
		c.entries = append(c.entries, e)
	}
	for _, cp := range s.cps {
		cp.Note = append([]byte(nil), cp.Note...)
		c.cps = append(c.cps, cp)
	}
	return c
}

func (s *snapshot) Size(context.Context) (uint64, error) { return uint64(len(s.entries)), nil }
func (s *snapshot) Entries(_ context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for i := start; i < min(end, uint64(len(s.entries))); i++ {
			if !yield(s.entries[i], nil) {
				return
			}
		}
	}
}
func (s *snapshot) ReadHashes(_ context.Context, idx []int64) ([]store.Hash, error) {
	out := make([]store.Hash, len(idx))
	for k, x := range idx {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, store.ErrNotFound
		}
		out[k] = s.hashes[x]
	}
	return out, nil
}
func (s *snapshot) LatestCheckpoint(context.Context) (store.Checkpoint, error) {
	if len(s.cps) == 0 {
		return store.Checkpoint{}, store.ErrNotFound
	}
	return s.cps[len(s.cps)-1], nil
}
func (s *snapshot) AllCheckpoints(context.Context) iter.Seq2[store.Checkpoint, error] {
	return func(yield func(store.Checkpoint, error) bool) {
		for _, c := range s.cps {
			if !yield(c, nil) {
				return
			}
		}
	}
}
