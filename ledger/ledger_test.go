package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func TestAppendGetDedup(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 1000)
	m := msg(1)
	rc, err := l.Append(ctx, m)
	require.NoError(t, err)
	require.Equal(t, capture.Receipt{Index: 0}, rc)
	rc2, err := l.Append(ctx, msg(1))
	require.NoError(t, err)
	require.Equal(t, capture.Receipt{Index: 0, Duplicate: true}, rc2)
	require.Equal(t, uint64(1), l.Size())

	e, err := l.Get(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, seal.KindMessage, e.Leaf.Kind)
	require.Equal(t, m.Text, e.Message.Text)
	require.Equal(t, m.Raw, e.Message.Raw)
	require.Equal(t, uint64(1), e.Leaf.ConvSeq)
	require.Equal(t, "msg-000001", e.SourceID())
	_, err = l.Get(ctx, 1)
	require.ErrorIs(t, err, ledger.ErrNotFound)

	i, ok, err := l.Lookup(ctx, m.Identity())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(0), i)

	// An invalid message is refused and nothing is written.
	_, err = l.Append(ctx, &capture.Message{Platform: "dingtalk"})
	require.ErrorIs(t, err, capture.ErrInvalidMessage)
	require.Equal(t, uint64(1), l.Size())

	// Records: deduplicated by ID when set, chained into their conversation.
	rec := &capture.Record{Kind: capture.RecordContext, Platform: "dingtalk", Tenant: "corp1", ID: "ev1",
		Conversation: m.Conversation, Body: []byte(`{"eventType":"chat_add_member"}`)}
	rr, err := l.AppendRecord(ctx, rec)
	require.NoError(t, err)
	require.Equal(t, uint64(1), rr.Index)
	rr, err = l.AppendRecord(ctx, rec)
	require.NoError(t, err)
	require.True(t, rr.Duplicate)
	e, err = l.Get(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, seal.KindContext, e.Leaf.Kind)
	require.Equal(t, uint64(2), e.Leaf.ConvSeq)
	require.Equal(t, "ev1", e.Record.ID)
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: "bogus", Platform: "x"})
	require.ErrorIs(t, err, capture.ErrInvalidMessage)

	// Blobs.
	sum, err := l.PutBlob(ctx, []byte("attachment"))
	require.NoError(t, err)
	b, err := l.Blob(ctx, sum)
	require.NoError(t, err)
	require.Equal(t, "attachment", string(b))
	_, err = l.Blob(ctx, [32]byte{9})
	require.ErrorIs(t, err, capture.ErrBlobNotFound)

	require.NoError(t, l.Close())
	_, err = l.Append(ctx, msg(2))
	require.ErrorIs(t, err, ledger.ErrClosed)
	// Close signed a checkpoint of everything.
	cp, err := st.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), cp.Size)
	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(2), rep.Entries)
	require.Zero(t, rep.Uncovered)
}

func TestConcurrentAppendsAreDenseAndDeduplicated(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 500)
	const writers, perWriter = 64, 10_000 / 64
	// Each writer appends its own messages and, every 4th call, one from a shared pool that
	// others append too: those must all get one index.
	rcs := &receipts{byID: map[string][]capture.Receipt{}}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < perWriter; k++ {
				var m *capture.Message
				if k%4 == 0 {
					m = msg(1_000_000 + k) // shared
				} else {
					m = msg(w*perWriter + k)
				}
				if err := rcs.append(ctx, l, m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, l.Close())
	seen := storedOnce(t, rcs.byID)
	require.Equal(t, uint64(len(seen)), l.Size())
	for i := uint64(0); i < l.Size(); i++ {
		id, ok := seen[i]
		if !ok {
			t.Fatalf("index %d was never given: indices must be dense", i)
		}
		e, err := l.Get(ctx, i)
		require.NoError(t, err)
		require.Equal(t, id, e.Message.ID)
	}
	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, l.Size(), rep.Entries)
	require.Equal(t, 37, rep.Conversations)
}

func TestProofsFromTheLedgerVerifyIndependently(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 100)
	for i := 0; i < 1000; i++ {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	// Sign now, rather than wait for the checkpointer: entry 999 is provable at once.
	signed, cp, err := l.SignCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1000), cp.Size)
	_, err = l.Prove(ctx, 999)
	require.NoError(t, err, "entry 999 is covered by the checkpoint at 1000")
	for _, i := range []uint64{0, 1, 99, 500, 999} {
		p, err := l.Prove(ctx, i)
		require.NoError(t, err)
		require.Equal(t, signed, p.Checkpoint)
		parsed, err := seal.ParseProof(p.Marshal())
		require.NoError(t, err)
		_, leaf, err := seal.VerifyProof(&parsed, keys.Verifier)
		require.NoError(t, err)
		require.Equal(t, i, leaf.Index)
		lh := seal.LeafHash(p.Extra)
		require.NoError(t, tdproof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, lh[:], hashesBytes(p.Hashes), cp.Root[:]))
	}
	for _, old := range []uint64{1, 100, 333, 999} {
		p, err := l.ConsistencyProof(ctx, old, 1000)
		require.NoError(t, err)
		oldRoot, err := seal.TreeHash(old, hashReaderFor(st))
		require.NoError(t, err)
		require.NoError(t, tdproof.VerifyConsistency(rfc6962.DefaultHasher, old, 1000, hashesBytes(p), oldRoot[:], cp.Root[:]))
	}
	_, err = l.InclusionProof(ctx, 5, 2000)
	require.ErrorIs(t, err, ledger.ErrNotFound)
	// An entry appended after the latest checkpoint has no proof yet.
	_, err = l.Append(ctx, msg(5000))
	require.NoError(t, err)
	_, err = l.Prove(ctx, 1000)
	require.ErrorIs(t, err, ledger.ErrNotCovered)
	require.NoError(t, l.Close())
	p, err := verify.Proof(ctx, st, 1000, keys.Verifier)
	require.NoError(t, err, "Close checkpointed the last entry")
	require.Equal(t, uint64(1000), p.Index)
}

func TestReopenContinuesAndRefusesAlteredStore(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 10)
	for i := 0; i < 25; i++ {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	l = openLedger(t, st, keys, 10)
	require.Equal(t, uint64(25), l.Size())
	rc, err := l.Append(ctx, msg(3))
	require.NoError(t, err)
	require.True(t, rc.Duplicate, "dedup survives reopening")
	rc, err = l.Append(ctx, msg(37)) // same conversation as msg(0): chain continues across reopen
	require.NoError(t, err)
	require.Equal(t, uint64(25), rc.Index)
	require.NoError(t, l.Close())
	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(26), rep.Entries)

	// Opening with another key: the stored checkpoint does not verify.
	_, err = ledger.Open(ctx, st, ledger.Options{Signing: testKeys(t)})
	require.ErrorIs(t, err, ledger.ErrInconsistent)
	_, err = ledger.Open(ctx, st, ledger.Options{})
	require.Error(t, err)
}

// failingStore fails Append while fail is set.
type failingStore struct {
	store.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) Append(ctx context.Context, b *store.Batch) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.Store.Append(ctx, b)
}

func TestStoreFailureLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	fs := &failingStore{Store: memstore.New()}
	keys := testKeys(t)
	l := openLedger(t, fs, keys, 1000)
	for i := 0; i < 10; i++ {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	fs.mu.Lock()
	fs.fail = true
	fs.mu.Unlock()
	_, err := l.Append(ctx, msg(10))
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, uint64(10), l.Size())
	fs.mu.Lock()
	fs.fail = false
	fs.mu.Unlock()
	rc, err := l.Append(ctx, msg(10))
	require.NoError(t, err)
	require.Equal(t, uint64(10), rc.Index, "the failed message is stored on retry at the next index")
	require.NoError(t, l.Close())
	_, err = verify.Ledger(ctx, fs, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

func TestCheckpointOnInterval(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: keys, CheckpointEvery: 1 << 30, CheckpointInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer l.Close()
	_, err = l.Append(ctx, msg(1))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, cp, err := l.Checkpoint()
		return err == nil && cp.Size == 1
	}, 5*time.Second, 5*time.Millisecond)
}

func TestAppendHonoursContext(t *testing.T) {
	st := memstore.New()
	l := openLedger(t, st, testKeys(t), 1000)
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Append(ctx, msg(1))
	require.ErrorIs(t, err, context.Canceled)
}

// receipts keeps the receipts of appends made from several goroutines, by message id.
type receipts struct {
	mu   sync.Mutex
	byID map[string][]capture.Receipt
}

// append appends m to l and keeps its receipt.
func (r *receipts) append(ctx context.Context, l *ledger.Ledger, m *capture.Message) error {
	rc, err := l.Append(ctx, m)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.byID[m.ID] = append(r.byID[m.ID], rc)
	r.mu.Unlock()
	return nil
}

// storedOnce checks the receipts of each message id: exactly one says it was stored, the
// duplicates all give its index, and no index went to two ids. It returns the id at each index.
func storedOnce(t *testing.T, byID map[string][]capture.Receipt) map[uint64]string {
	t.Helper()
	seen := map[uint64]string{}
	for id, rcs := range byID {
		orig := -1
		for _, rc := range rcs {
			if !rc.Duplicate {
				require.Equal(t, -1, orig, "%s stored twice", id)
				orig = int(rc.Index)
			}
		}
		require.NotEqual(t, -1, orig, "%s never stored", id)
		for _, rc := range rcs {
			require.Equal(t, uint64(orig), rc.Index, "a duplicate of %s must give the original's index", id)
		}
		_, taken := seen[uint64(orig)]
		require.False(t, taken, "index %d given twice", orig)
		seen[uint64(orig)] = id
	}
	return seen
}

func hashesBytes(hs []seal.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func hashReaderFor(st store.Store) hashReaderFunc {
	return func(idx []int64) ([]seal.Hash, error) {
		hs, err := st.ReadHashes(context.Background(), idx)
		out := make([]seal.Hash, len(hs))
		for i := range hs {
			out[i] = hs[i]
		}
		return out, err
	}
}

type hashReaderFunc func([]int64) ([]seal.Hash, error)

func (f hashReaderFunc) ReadHashes(idx []int64) ([]seal.Hash, error) { return f(idx) }

func ExampleLedger_Append() {
	ctx := context.Background()
	skey, _, _ := seal.GenerateSigningKey("example.com/hk-equities")
	keys, _ := seal.ParseSigningKey(skey)
	st := memstore.New()
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: keys})
	if err != nil {
		fmt.Println(err)
		return
	}
	m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "msg1", Kind: capture.KindText,
		Conversation: capture.Conversation{ID: "cid1", Type: capture.ConversationDirect},
		Text:         "please buy 1,000 shares of 0700.HK at market", Raw: []byte(`{"msgId":"msg1"}`)}
	rc, _ := l.Append(ctx, m)
	again, _ := l.Append(ctx, m) // delivered twice: stored once
	fmt.Println(rc.Index, again.Index, again.Duplicate)
	_ = l.Close() // signs a checkpoint covering every entry
	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	fmt.Println(rep.Entries, rep.Checkpoints, err)
	// Output:
	// 0 0 true
	// 1 1 <nil>
}

// Options.Appended gets the ledger's own copy of a message, which it may keep and change: the
// caller's message is not touched.
func TestAppendedGetsTheLedgersCopy(t *testing.T) {
	ctx := context.Background()
	var kept *capture.Message
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: testKeys(t), CheckpointInterval: time.Hour,
		Appended: func(_ uint64, _ seal.Kind, m *capture.Message) { kept = m; m.Text = "changed by the callee" }})
	require.NoError(t, err)
	m := msg(1)
	_, err = l.Append(ctx, m)
	require.NoError(t, err)
	require.NotSame(t, m, kept)
	require.Equal(t, "changed by the callee", kept.Text)
	require.Equal(t, msg(1).Text, m.Text, "the caller's message is as it was")
	e, err := l.Get(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, msg(1).Text, e.Message.Text, "what was sealed is the caller's text")
	require.NoError(t, l.Close())
}
