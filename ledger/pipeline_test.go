package ledger_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// pipeStore queues batches like store/filestore's Submit: in order, each checked against the log
// the earlier ones leave, answered after a delay; every failEvery-th batch fails.
type pipeStore struct {
	*memstore.Store
	queue     chan pipeJob
	n         atomic.Int64
	failEvery int64
	batches   atomic.Int64
}

type pipeJob struct {
	b    *store.Batch
	done chan error
	fail bool
}

func newPipeStore(failEvery int64) *pipeStore {
	p := &pipeStore{Store: memstore.New(), queue: make(chan pipeJob, 64), failEvery: failEvery}
	go func() {
		for j := range p.queue {
			time.Sleep(200 * time.Microsecond) // a sync
			if j.fail {
				j.done <- errors.New("injected write failure")
				continue
			}
			j.done <- p.Store.Append(context.Background(), j.b)
		}
	}()
	return p
}

func (p *pipeStore) Submit(_ context.Context, b *store.Batch) <-chan error {
	done := make(chan error, 1)
	n := p.n.Add(1)
	p.batches.Add(1)
	p.queue <- pipeJob{b: b, done: done, fail: p.failEvery > 0 && n%p.failEvery == 0}
	return done
}

func TestPipelinedCommitsSurviveFailuresWithoutLosingAcknowledgedEntries(t *testing.T) {
	ctx := context.Background()
	ps := newPipeStore(7)
	defer close(ps.queue)
	keys := testKeys(t)
	l, err := ledger.Open(ctx, ps, ledger.Options{Signing: keys, CheckpointEvery: 50, MaxBatch: 8})
	require.NoError(t, err)
	type ack struct {
		id    string
		index uint64
	}
	var mu sync.Mutex
	var acked []ack
	failures := 0
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 40; k++ {
				m := msg(w*1000 + k)
				for attempt := 0; ; attempt++ {
					rc, err := l.Append(ctx, m)
					if err == nil {
						mu.Lock()
						acked = append(acked, ack{m.ID, rc.Index})
						mu.Unlock()
						break
					}
					mu.Lock()
					failures++
					mu.Unlock()
					if !errors.Is(err, ledger.ErrCommitAbandoned) && !isInjected(err) {
						t.Errorf("unexpected error: %v", err)
						return
					}
					require.Less(t, attempt, 50, "retries never succeed")
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, l.Close())
	require.Greater(t, failures, 0, "the injected failures happened")
	require.Greater(t, ps.batches.Load(), int64(20))
	// Every acknowledged message is in the store at the index it was given, exactly once.
	require.Len(t, acked, 32*40)
	for _, a := range acked {
		e, err := store.ReadEntry(ctx, ps, a.index)
		require.NoError(t, err)
		d, err := ledger.Decode(e)
		require.NoError(t, err)
		require.Equal(t, a.id, d.Message.ID)
	}
	size, _ := ps.Size(ctx)
	require.Equal(t, uint64(32*40), size, "no message stored twice")
	_, err = verify.Ledger(ctx, ps, keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

func isInjected(err error) bool {
	return err != nil && strings.Contains(err.Error(), "injected write failure")
}

// lookupAllFails is a memstore whose LookupAll fails while fail is set.
type lookupAllFails struct {
	*memstore.Store
	fail atomic.Bool
}

var errLookupDown = errors.New("lookup: the server is gone")

func (s *lookupAllFails) LookupAll(ctx context.Context, ids []store.Hash) (map[store.Hash]uint64, error) {
	if s.fail.Load() {
		return nil, errLookupDown
	}
	return s.Store.LookupAll(ctx, ids)
}

// TestBatchLookupFailureFailsItsRequests: on a store that looks identities up in batches, the
// pipeline's lookup failing fails the appends it was for, with its error, and appends nothing;
// once the store answers again, the same messages are appended once, and again are duplicates.
func TestBatchLookupFailureFailsItsRequests(t *testing.T) {
	ctx := context.Background()
	st := &lookupAllFails{Store: memstore.New()}
	l := openLedger(t, st, testKeys(t), 1000)
	defer l.Close()
	st.fail.Store(true)
	_, err := l.Append(ctx, msg(1))
	require.ErrorIs(t, err, errLookupDown)
	require.Zero(t, l.Size())
	st.fail.Store(false)
	rc, err := l.Append(ctx, msg(1))
	require.NoError(t, err)
	require.False(t, rc.Duplicate)
	again, err := l.Append(ctx, msg(1))
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, rc.Index, again.Index)
	require.Equal(t, uint64(1), l.Size())
}
