package ledger_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// TestDerivedDataGoesWithItsScope: what a Deriver seals for an entry opens under that entry's
// key only (not for another entry, not under another label), reads seal no access entry, and
// once retention shreds the entry's scope the derived data is unreadable with ErrShredded.
func TestDerivedDataGoesWithItsScope(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	defer e.Close()
	old, err := e.Append(ctx, secretMsg(1, "cid-old", time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC), "old order 內幕"))
	require.NoError(t, err)
	kept, err := e.Append(ctx, secretMsg(2, "cid-new", time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), "new order"))
	require.NoError(t, err)

	d := e.Derive("search")
	size := e.Size()
	var read []*ledger.Entry
	require.NoError(t, d.Scan(ctx, 0, size, func(en *ledger.Entry, err error) error {
		require.NoError(t, err)
		read = append(read, en)
		return nil
	}))
	require.Equal(t, size, e.Size(), "deriving seals no access entry")
	require.Len(t, read, 2)
	require.Equal(t, "old order 內幕", read[0].Message.Text)

	ctOld, err := d.Seal(ctx, read[0].Leaf.KeyID, old.Index, []byte("derived from old"))
	require.NoError(t, err)
	require.NotContains(t, string(ctOld), "derived")
	ctNew, err := d.Seal(ctx, read[1].Leaf.KeyID, kept.Index, []byte("derived from new"))
	require.NoError(t, err)

	got, err := d.Open(ctx, read[0].Leaf.KeyID, old.Index, ctOld)
	require.NoError(t, err)
	require.Equal(t, "derived from old", string(got))
	_, err = d.Open(ctx, read[0].Leaf.KeyID, kept.Index, ctOld)
	require.ErrorIs(t, err, seal.ErrDecrypt, "bound to its entry")
	_, err = e.Derive("other").Open(ctx, read[0].Leaf.KeyID, old.Index, ctOld)
	require.ErrorIs(t, err, seal.ErrDecrypt, "bound to its label")
	_, err = d.Seal(ctx, "", 0, []byte("x"))
	require.Error(t, err)
	_, err = d.Open(ctx, "dk1.2020-01.000000000000000000000000", 0, ctOld)
	require.Error(t, err, "an unknown key is an error, never created")

	_, err = e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "job"})
	require.NoError(t, err)
	_, err = d.Open(ctx, read[0].Leaf.KeyID, old.Index, ctOld)
	require.ErrorIs(t, err, ledger.ErrShredded)
	got, err = d.Open(ctx, read[1].Leaf.KeyID, kept.Index, ctNew)
	require.NoError(t, err)
	require.Equal(t, "derived from new", string(got))

	var shredded int
	require.NoError(t, d.Scan(ctx, 0, e.Size(), func(en *ledger.Entry, err error) error {
		if en.Index == old.Index {
			require.ErrorIs(t, err, ledger.ErrShredded)
			shredded++
		}
		return nil
	}))
	require.Equal(t, 1, shredded)
}

// TestDerivingNeedsAnEncryptedLedger: a plain ledger has no key to seal derived data under.
func TestDerivingNeedsAnEncryptedLedger(t *testing.T) {
	l := openLedger(t, memstore.New(), testKeys(t), 100)
	defer l.Close()
	_, err := l.Derive("search").Seal(context.Background(), "k", 0, []byte("x"))
	require.ErrorIs(t, err, ledger.ErrNotEncrypted)
}

// TestAQueryIsSealedEncrypted: a query's access entry names who, why, the tree size searched
// and the query, which is encrypted on an encrypted ledger and opens with the ledger's state
// key; nothing is recorded without who and why.
func TestAQueryIsSealedEncrypted(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	defer e.Close()
	_, err := e.Append(ctx, secretMsg(1, "cid-a", time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), "buy"))
	require.NoError(t, err)
	const q = `sender:u1 "WhatsApp" 微信`
	require.NoError(t, e.Access("alice", "SFC 2026-117").Query(ctx, q, 1))
	en, err := e.Get(ctx, e.Size()-1)
	require.NoError(t, err)
	require.Equal(t, seal.KindAccess, en.Leaf.Kind)
	require.NotContains(t, string(en.Body), "WhatsApp")
	require.NotContains(t, string(en.Body), "微信")
	var b struct {
		Who, Why, Op, Query string
		To                  uint64
		QueryKey            string `json:"query_key"`
	}
	require.NoError(t, json.Unmarshal(en.Body, &b))
	require.Equal(t, "alice", b.Who)
	require.Equal(t, "SFC 2026-117", b.Why)
	require.Equal(t, "query", b.Op)
	require.Equal(t, uint64(1), b.To)
	require.True(t, strings.HasPrefix(b.QueryKey, "state1."))
	ct, err := base64.StdEncoding.DecodeString(b.Query)
	require.NoError(t, err)
	dek, err := e.StateKey(ctx, strings.TrimPrefix(b.QueryKey, "state1."))
	require.NoError(t, err)
	pt, err := seal.DecryptPayload(dek, b.QueryKey, ct)
	require.NoError(t, err)
	require.Equal(t, q, string(pt))

	size := e.Size()
	require.Error(t, e.Access("", "why").Query(ctx, q, 1))
	require.Equal(t, size, e.Size())
}

// TestOneAccessEntryPerRead: Read seals one access entry naming every entry it reads, as
// ranges, before reading them in order; an index beyond the ledger records nothing.
func TestOneAccessEntryPerRead(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	defer e.Close()
	for i := range 10 {
		_, err := e.Append(ctx, secretMsg(i, "cid-r", time.Date(2026, 6, 1, i, 0, 0, 0, time.UTC), "order"))
		require.NoError(t, err)
	}
	size := e.Size()
	var got []uint64
	require.NoError(t, e.Access("alice", "case 9").For("export").Read(ctx, []uint64{9, 2, 3, 4, 7, 3, 0}, func(en *ledger.Entry, err error) error {
		require.NoError(t, err)
		require.Equal(t, "order", en.Message.Text)
		got = append(got, en.Index)
		return nil
	}))
	require.Equal(t, []uint64{0, 2, 3, 4, 7, 9}, got)
	require.Equal(t, size+1, e.Size(), "one access entry")
	en, err := e.Get(ctx, size)
	require.NoError(t, err)
	var b struct {
		Op, Entries, For string
		From, To         uint64
		Count            int
	}
	require.NoError(t, json.Unmarshal(en.Body, &b))
	require.Equal(t, "read", b.Op)
	require.Equal(t, "0,2-4,7,9", b.Entries)
	require.Equal(t, 6, b.Count)
	require.Equal(t, uint64(0), b.From)
	require.Equal(t, uint64(10), b.To)
	require.Equal(t, "export", b.For)

	err = e.Access("alice", "case 9").Read(ctx, []uint64{1, 1000}, func(*ledger.Entry, error) error { return nil })
	require.ErrorIs(t, err, ledger.ErrNotFound)
	require.Equal(t, size+1, e.Size(), "nothing recorded")
}

// TestALongScanDeliversInOrder: a scan long enough to decode on several goroutines delivers
// every entry once, in order, decrypted; an error from fn stops it at once; a cancelled
// context ends it with the context's error (run with -race).
func TestALongScanDeliversInOrder(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	defer e.Close()
	const n = 2000
	for i := range n {
		_, err := e.Append(ctx, secretMsg(i, fmt.Sprintf("cid-%d", i%7), time.Date(2026, 6, 1, 0, 0, i, 0, time.UTC), fmt.Sprintf("order %d", i)))
		require.NoError(t, err)
	}
	var got []uint64
	require.NoError(t, e.Derive("t").Scan(ctx, 0, n, func(en *ledger.Entry, err error) error {
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("order %d", en.Index), en.Message.Text)
		got = append(got, en.Index)
		return nil
	}))
	require.Len(t, got, n)
	require.True(t, slices.IsSorted(got))

	calls := 0
	stop := errors.New("stop here")
	err := e.Derive("t").Scan(ctx, 0, n, func(en *ledger.Entry, err error) error {
		calls++
		if en.Index == 1000 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1001, calls)

	cctx, cancel := context.WithCancel(ctx)
	err = e.Derive("t").Scan(cctx, 0, n, func(en *ledger.Entry, err error) error {
		if en.Index == 700 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
}

// flipStore alters the payload of one entry as it is read.
type flipStore struct {
	*memstore.Store
	at atomic.Int64
}

func (f *flipStore) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		for e, err := range f.Store.Entries(ctx, start, end) {
			if err == nil && int64(e.Index) == f.at.Load() {
				e.Payload = slices.Clone(e.Payload)
				e.Payload[len(e.Payload)-1] ^= 1
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestALongScanHandsOverADamagedEntryWithItsError: a damaged entry reaches fn in its place,
// with an error wrapping store.ErrCorrupt, as in a short scan; the others are untouched.
func TestALongScanHandsOverADamagedEntryWithItsError(t *testing.T) {
	ctx := context.Background()
	st := &flipStore{Store: memstore.New()}
	st.at.Store(-1)
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: testKeys(t), CheckpointEvery: 1000, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	defer l.Close()
	for i := range 1500 {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
	}
	st.at.Store(900)
	var got, bad []uint64
	err = l.Derive("t").Scan(ctx, 0, 1500, func(en *ledger.Entry, err error) error {
		got = append(got, en.Index)
		if err != nil {
			require.ErrorIs(t, err, store.ErrCorrupt)
			bad = append(bad, en.Index)
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 1500)
	require.True(t, slices.IsSorted(got))
	require.Equal(t, []uint64{900}, bad)
}

// TestAppendedSeesEachNewMessageOnce: Options.Appended is told every entry once it is
// durable, with its index and kind, and the message for a message; nothing for a duplicate;
// Deriver.Kinds names every entry's kind as Appended did, without decrypting.
func TestAppendedSeesEachNewMessageOnce(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[uint64]string{}
	told := map[uint64]seal.Kind{}
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: testKeys(t), CheckpointEvery: 1000, CheckpointInterval: time.Hour,
		Appended: func(i uint64, k seal.Kind, m *capture.Message) {
			mu.Lock()
			defer mu.Unlock()
			require.Less(t, i, uint64(1000))
			_, again := told[i]
			require.False(t, again, "entry %d told twice", i)
			told[i] = k
			require.Equal(t, k == seal.KindMessage, m != nil, "the message with a message only")
			if m != nil {
				seen[i] = m.ID
			}
		}})
	require.NoError(t, err)
	defer l.Close()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 10 {
				_, err := l.Append(ctx, msg(w*10+i))
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	rc, err := l.Append(ctx, msg(3)) // a redelivery
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordContext, Platform: "dingtalk", Tenant: "corp1", At: time.Now()})
	require.NoError(t, err)
	require.Len(t, seen, 80)
	require.Len(t, told, 81, "80 messages and the record; not the duplicate")
	kinds := map[seal.Kind]int{}
	require.NoError(t, l.Derive("t").Kinds(ctx, 0, l.Size(), func(i uint64, k seal.Kind) error {
		kinds[k]++
		require.Equal(t, told[i], k, "entry %d", i)
		if k == seal.KindMessage {
			en, err := l.Get(ctx, i)
			require.NoError(t, err)
			require.Equal(t, en.Message.ID, seen[i], "the index handed over is the message's")
		}
		return nil
	}))
	require.Equal(t, 80, kinds[seal.KindMessage])
	require.Equal(t, 1, kinds[seal.KindContext])
}
