package verify_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/storetest"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// bufReader is a snapshot that also reads runs of entries into the caller's buffers
// (store.EntryReader), copying them from the snapshot as a store reads them from disk. It
// counts the runs and entries read, through either method.
type bufReader struct {
	*storetest.Snapshot
	runs, entries atomic.Int64
	onRun         func(run int64) // if set, called before each run is read
}

// run counts a run and calls onRun.
func (b *bufReader) run() {
	if n := b.runs.Add(1); b.onRun != nil {
		b.onRun(n)
	}
}

func (b *bufReader) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	b.run()
	return func(yield func(store.Entry, error) bool) {
		for e, err := range b.Snapshot.Entries(ctx, start, end) {
			b.entries.Add(1)
			if !yield(e, err) {
				return
			}
		}
	}
}

func (b *bufReader) ReadEntries(ctx context.Context, start, end uint64, dst []store.Entry, buf []byte) ([]store.Entry, []byte, error) {
	b.run()
	dst, buf = dst[:0], buf[:0]
	var es []store.Entry
	need := 0
	for e, err := range b.Snapshot.Entries(ctx, start, end) {
		if err != nil {
			return dst, buf, err
		}
		es = append(es, e)
		need += len(e.Leaf) + len(e.Payload)
	}
	if cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	for _, e := range es {
		at := len(buf)
		buf = append(buf, e.Leaf...)
		buf = append(buf, e.Payload...)
		e.Leaf, e.Payload = buf[at:at+len(e.Leaf):at+len(e.Leaf)], buf[at+len(e.Leaf):len(buf):len(buf)]
		dst = append(dst, e)
	}
	b.entries.Add(int64(len(dst)))
	return dst, buf, nil
}

var _ store.EntryReader = (*bufReader)(nil)

// TestVerifyThroughEntryReader: a ledger read into the verifier's own buffers verifies with
// the report Entries gives, whatever the number of workers, though the buffers are reused from
// block to block.
func TestVerifyThroughEntryReader(t *testing.T) {
	ctx := context.Background()
	base, keys := buildTamperLedger(t, 3000)
	want, err := verify.Ledger(ctx, base, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	for _, workers := range []int{1, 2, 5} {
		r := &bufReader{Snapshot: base}
		got, err := verify.Ledger(ctx, r, keys.Verifier, verify.Options{Workers: workers})
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.EqualValues(t, 3000, r.entries.Load(), "every entry read once")
		require.EqualValues(t, (3000+255)/256, r.runs.Load(), "one run per block of 256")
	}
}

// TestVerifyStopsReadingAtTheFirstBadEntry: the verifier stops reading once it has found the
// first bad entry instead of reading the rest of the ledger (it read all of it before
// returning).
func TestVerifyStopsReadingAtTheFirstBadEntry(t *testing.T) {
	ctx := context.Background()
	base, keys := buildTamperLedger(t, 10_000)
	s := base.Clone()
	s.Log[5].Payload[0] ^= 1
	r := &bufReader{Snapshot: s}
	_, err := verify.Ledger(ctx, r, keys.Verifier, verify.Options{Workers: 2})
	var ae *verify.AlteredError
	require.ErrorAs(t, err, &ae)
	require.EqualValues(t, 5, ae.Index)
	require.LessOrEqual(t, r.runs.Load(), int64(4*2+2), "blocks read after the first bad entry was found")
}

// TestVerifyCancelledOrStoppedLeavesNoGoroutine: a pass cancelled midway returns the
// context's error, and neither it nor a pass that stops at a bad entry leaves a worker behind.
func TestVerifyCancelledOrStoppedLeavesNoGoroutine(t *testing.T) {
	base, keys := buildTamperLedger(t, 5000)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &bufReader{Snapshot: base, onRun: func(n int64) {
		if n == 4 {
			cancel()
		}
	}}
	_, err := verify.Ledger(ctx, r, keys.Verifier, verify.Options{Workers: 4})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, verify.Altered(err))
	s := base.Clone()
	s.Log[3000].Leaf[30] ^= 1
	_, err = verify.Ledger(context.Background(), &bufReader{Snapshot: s}, keys.Verifier, verify.Options{Workers: 4})
	var ae *verify.AlteredError
	require.ErrorAs(t, err, &ae)
	require.EqualValues(t, 3000, ae.Index)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestVerifyFileStoreDamageNamesTheEntry: a byte flipped in an entry's frame on disk is found by
// the file store's checksum when the verifier reads it into its buffers: altered, at that entry,
// with store.ErrCorrupt as the cause.
func TestVerifyFileStoreDamageNamesTheEntry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, &filestore.Options{SegmentSize: 64 << 10})
	require.NoError(t, err)
	keys := testKeys(t)
	l := openLedger(t, st, keys, 100)
	const n = 700
	for i := range n {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	e600, err := store.ReadEntry(ctx, st, 600)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	ro, err := filestore.Open(ctx, dir, &filestore.Options{ReadOnly: true})
	require.NoError(t, err)
	rep, err := verify.Ledger(ctx, ro, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, n, rep.Entries)
	require.NoError(t, ro.Close())

	// Flip a byte of entry 600's payload where it is stored.
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	flipped := false
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		require.NoError(t, err)
		at := bytes.Index(b, e600.Payload)
		if at < 0 {
			continue
		}
		b[at+len(e600.Payload)/2] ^= 1
		require.NoError(t, os.Chmod(seg, 0o600))
		require.NoError(t, os.WriteFile(seg, b, 0o600))
		flipped = true
	}
	require.True(t, flipped)
	ro, err = filestore.Open(ctx, dir, &filestore.Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	_, err = verify.Ledger(ctx, ro, keys.Verifier, verify.Options{})
	var ae *verify.AlteredError
	require.ErrorAs(t, err, &ae)
	require.EqualValues(t, 600, ae.Index, "reason: %s", ae.Reason)
	require.True(t, errors.Is(err, store.ErrCorrupt))
	require.True(t, verify.Altered(err))
}

// TestPinnedFileStoreVerifiesAsPinned: a file store pinned while its writer goes on appending
// verifies, through its EntryReader, as it stood when pinned.
func TestPinnedFileStoreVerifiesAsPinned(t *testing.T) {
	ctx := context.Background()
	st, err := filestore.Open(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer st.Close()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 1<<20)
	for i := range 300 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	_, _, err = l.SignCheckpoint(ctx)
	require.NoError(t, err)
	pin, size, err := verify.Pin(ctx, st)
	require.NoError(t, err)
	require.EqualValues(t, 300, size)
	for i := 300; i < 450; i++ {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	rep, err := verify.Ledger(ctx, pin, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 300, rep.Entries)
	require.Zero(t, rep.Uncovered)
	require.NoError(t, l.Close())
	rep, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.EqualValues(t, 450, rep.Entries)
}
