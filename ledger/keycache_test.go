package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// stuck is how long a test waits for something that must not be blocked before it calls it a
// deadlock; unblocked, it takes milliseconds.
const stuck = 30 * time.Second

// putVault is a key vault that counts PutKey calls per key id and can hold them up.
type putVault struct {
	store.KeyVault
	mu   sync.Mutex
	puts map[string]int
	hook func(ctx context.Context, k store.WrappedKey) error // before the real PutKey
}

func newPutVault() *putVault {
	return &putVault{KeyVault: &memstore.KeyVault{}, puts: map[string]int{}}
}

func (v *putVault) PutKey(ctx context.Context, k store.WrappedKey) error {
	v.mu.Lock()
	v.puts[k.ID]++
	hook := v.hook
	v.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, k); err != nil {
			return err
		}
	}
	return v.KeyVault.PutKey(ctx, k)
}

func (v *putVault) setHook(h func(ctx context.Context, k store.WrappedKey) error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.hook = h
}

// putCounts returns the number of PutKey calls per key id, and in all.
func (v *putVault) putCounts() (map[string]int, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	out := map[string]int{}
	for id, c := range v.puts {
		out[id] = c
		n += c
	}
	return out, n
}

// holdPuts makes every PutKey wait for release; entered is closed when the first one waits.
func holdPuts(v *putVault) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	v.setHook(func(ctx context.Context, _ store.WrappedKey) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return entered, release
}

// TestCachedScopeDoesNotWaitForANewKey is the regression test of the drill's stall: while the
// vault is slow to store one scope's new key (a month rollover creates thousands), appends to a
// scope whose key is cached, and reads of its entries, go on. The key cache used to create keys
// holding its lock for writing, so every append and read waited for every key being created.
func TestCachedScopeDoesNotWaitForANewKey(t *testing.T) {
	ctx := context.Background()
	v := newPutVault()
	e := newEncWith(t, v)
	july := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	_, err := e.Append(ctx, secretMsg(0, "cid-a", july, "first of a"))
	require.NoError(t, err)

	entered, release := holdPuts(v)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	blocked := make(chan error, 1)
	go func() {
		_, err := e.Append(ctx, secretMsg(0, "cid-b", july, "first of b"))
		blocked <- err
	}()
	<-entered

	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for i := 1; i <= 3; i++ {
				if _, err := e.Append(ctx, secretMsg(i, "cid-a", july.Add(time.Duration(i)*time.Minute), fmt.Sprint("more of a ", i))); err != nil {
					return err
				}
			}
			en, err := e.Access("auditor", "check").Get(ctx, 0)
			if err != nil {
				return err
			}
			if en.Message == nil || en.Message.Text != "first of a" {
				return fmt.Errorf("entry 0 read back as %+v", en.Message)
			}
			return nil
		}()
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(stuck):
		unblock()
		t.Fatal("appends to a cached scope, and a read of it, waited for another scope's key being stored")
	}
	select {
	case err := <-blocked:
		t.Fatalf("the append whose key is held up returned before its key was stored: %v", err)
	default:
	}
	unblock()
	require.NoError(t, <-blocked)
	puts, n := v.putCounts()
	require.Equal(t, 2, n, "one key per scope: %v", puts)
	var texts []string
	require.NoError(t, e.Access("auditor", "check").Scan(ctx, 0, e.Size(), func(en *ledger.Entry, err error) error {
		if err == nil && en.Message != nil {
			texts = append(texts, en.Message.Text)
		}
		return err
	}))
	require.ElementsMatch(t, []string{"first of a", "more of a 1", "more of a 2", "more of a 3", "first of b"}, texts)
}

// TestNewScopesAreCreatedConcurrently: the keys of different new scopes are stored at the same
// time, not one after another (each PutKey here waits until four are in progress together).
func TestNewScopesAreCreatedConcurrently(t *testing.T) {
	ctx := context.Background()
	v := newPutVault()
	e := newEncWith(t, v)
	const n = 4
	var in atomic.Int32
	all := make(chan struct{})
	v.setHook(func(ctx context.Context, k store.WrappedKey) error {
		if in.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
			return nil
		case <-time.After(stuck):
			return fmt.Errorf("PutKey(%s) was never joined by the other %d new scopes' keys: key creation is serialized", k.ID, n-1)
		}
	})
	july := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.Append(ctx, secretMsg(i, fmt.Sprintf("cid-%d", i), july, "hello"))
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	puts, total := v.putCounts()
	require.Equal(t, n, total, "%v", puts)
}

// TestOneKeyForAScopeOpenedByManyAppendsAtOnce: 64 appends that open the same new scope at the
// same time create its key once (the vault sees one PutKey), and every entry reads back.
func TestOneKeyForAScopeOpenedByManyAppendsAtOnce(t *testing.T) {
	ctx := context.Background()
	v := newPutVault()
	e := newEncWith(t, v)
	// Widen the window in which the others find the key being created.
	v.setHook(func(context.Context, store.WrappedKey) error { time.Sleep(20 * time.Millisecond); return nil })
	july := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	const n = 64
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.Append(ctx, secretMsg(i, "cid-new", july.Add(time.Duration(i)*time.Second), fmt.Sprint("message ", i)))
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	puts, total := v.putCounts()
	require.Equal(t, 1, total, "PutKey calls per key: %v", puts)
	seen := map[string]bool{}
	require.NoError(t, e.Access("auditor", "check").Scan(ctx, 0, e.Size(), func(en *ledger.Entry, err error) error {
		if err == nil && en.Message != nil {
			seen[en.Message.Text] = true
		}
		return err
	}))
	for i := range n {
		require.True(t, seen[fmt.Sprint("message ", i)], "message %d did not read back", i)
	}
}

// TestWaiterForANewKeyCanGiveUp: an append waiting for a scope's key that another append is
// creating returns when its context ends, and the creation is not disturbed by it.
func TestWaiterForANewKeyCanGiveUp(t *testing.T) {
	ctx := context.Background()
	v := newPutVault()
	e := newEncWith(t, v)
	entered, release := holdPuts(v)
	july := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	first := make(chan error, 1)
	go func() {
		_, err := e.Append(ctx, secretMsg(0, "cid-new", july, "first"))
		first <- err
	}()
	<-entered
	cctx, cancel := context.WithCancel(ctx)
	waiter := make(chan error, 1)
	go func() {
		_, err := e.Append(cctx, secretMsg(1, "cid-new", july, "second"))
		waiter <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it reach the wait (if it has not, the test proves less)
	cancel()
	select {
	case err := <-waiter:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(stuck):
		close(release)
		t.Fatal("an append waiting for a key being created did not return when its context was cancelled")
	}
	close(release)
	require.NoError(t, <-first)
	_, err := e.Append(ctx, secretMsg(1, "cid-new", july, "second"))
	require.NoError(t, err)
	puts, total := v.putCounts()
	require.Equal(t, 1, total, "%v", puts)
}
