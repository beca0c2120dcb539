package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// Accessor reads decrypted content on behalf of someone, for a stated reason, and records every
// read in the ledger itself as an access entry before it returns any content: the audit trail
// of access is part of the sealed record.
type Accessor struct {
	l        *Ledger
	who, why string
	purpose  string
}

// Access returns an accessor for who (a person or system) reading for why (a case, a request).
func (l *Ledger) Access(who, why string) *Accessor { return &Accessor{l: l, who: who, why: why} }

// MaxPurposeLen bounds the purpose an accessor records.
const MaxPurposeLen = 64

// For returns a copy of a whose access entries also name what the reads are for (for example
// "export", "query", "review"), so that the audit trail tells an export from a reading. A
// purpose longer than MaxPurposeLen bytes makes every read fail.
func (a *Accessor) For(purpose string) *Accessor {
	c := *a
	c.purpose = purpose
	return &c
}

type accessBody struct {
	Who   string   `json:"who"`
	Why   string   `json:"why"`
	Op    string   `json:"op"`
	For   string   `json:"for,omitempty"`
	From  uint64   `json:"from"`
	To    uint64   `json:"to"` // exclusive
	Blobs []string `json:"blobs,omitempty"`
	At    string   `json:"at"`
	// Query is what a search asked for: encrypted under the state key QueryKey names on an
	// encrypted ledger (a query names what a case is about), in clear on a plain one.
	Query    string `json:"query,omitempty"`
	QueryKey string `json:"query_key,omitempty"`
	// Entries lists the entries a Read read, as ascending ranges ("3-9,12,15-20"), and Count
	// how many.
	Entries string `json:"entries,omitempty"`
	Count   int    `json:"count,omitempty"`
}

// queryKeyName names the state key that encrypts the queries in access entries.
const queryKeyName = "access-query"

// Query records that a searched the first size entries with query, and returns when the access
// entry is durable: call it before any result leaves. On an encrypted ledger the query is
// sealed in the entry encrypted under a state key (the audit trail names what was searched
// without showing it to whoever reads the ledger's plain entries); a plain ledger keeps it in
// clear like everything else.
func (a *Accessor) Query(ctx context.Context, query string, size uint64) error {
	q, key := query, ""
	if a.l.dk != nil {
		dek, err := a.l.StateKey(ctx, queryKeyName)
		if err != nil {
			return fmt.Errorf("ledger: recording access: %w", err)
		}
		key = stateKeyID(queryKeyName)
		rnd := a.l.rand()
		ct, err := seal.EncryptPayload(rnd, dek, key, []byte(query))
		a.l.putRand(rnd)
		if err != nil {
			return fmt.Errorf("ledger: recording access: %w", err)
		}
		q = base64.StdEncoding.EncodeToString(ct)
	}
	return a.recordBody(ctx, "query", 0, size, func(b *accessBody) { b.Query, b.QueryKey = q, key })
}

// record appends an access entry and returns when it is durable.
func (a *Accessor) record(ctx context.Context, op string, from, to uint64, blob string) error {
	return a.recordBody(ctx, op, from, to, func(b *accessBody) {
		if blob != "" {
			b.Blobs = []string{blob}
		}
	})
}

// recordBody appends an access entry, completed by fill, and returns when it is durable.
func (a *Accessor) recordBody(ctx context.Context, op string, from, to uint64, fill func(*accessBody)) error {
	if a.who == "" || a.why == "" {
		return errors.New("ledger: an accessor needs who and why")
	}
	if len(a.purpose) > MaxPurposeLen {
		return fmt.Errorf("ledger: an access purpose is at most %d bytes, got %d", MaxPurposeLen, len(a.purpose))
	}
	b := accessBody{Who: a.who, Why: a.why, Op: op, For: a.purpose, From: from, To: to, At: a.l.opts.Now().UTC().Format(time.RFC3339Nano)}
	fill(&b)
	_, err := a.l.submit(ctx, &request{kind: seal.KindAccess, time: a.l.opts.Now().UTC()}, 512, jsonOf(b))
	if err != nil {
		return fmt.Errorf("ledger: recording access: %w", err)
	}
	return nil
}

// Get records the access, then reads, decrypts, checks and decodes entry i. A shredded entry
// returns its leaf (commitment, key id) and an error wrapping ErrShredded.
func (a *Accessor) Get(ctx context.Context, i uint64) (*Entry, error) {
	if i >= a.l.Size() {
		return nil, fmt.Errorf("%w: %d (size %d)", ErrNotFound, i, a.l.Size())
	}
	if err := a.record(ctx, "get", i, i+1, ""); err != nil {
		return nil, err
	}
	return a.l.read(ctx, i)
}

// Scan records one access for the range [from, to), then calls fn with every entry in it,
// decrypted; shredded entries come with Body nil and their error passed to fn.
func (a *Accessor) Scan(ctx context.Context, from, to uint64, fn func(*Entry, error) error) error {
	to = min(to, a.l.Size())
	if from >= to {
		return nil
	}
	if err := a.record(ctx, "scan", from, to, ""); err != nil {
		return err
	}
	return a.l.scan(ctx, from, to, fn)
}

// Read records one access naming every entry in indexes, then calls fn with each of them in
// ascending order (repeats read once), decrypted; a shredded entry comes with Body nil and its
// error. An export reads its selection this way, so that the audit trail holds one entry per
// export however scattered the selection. An index beyond the ledger's size fails before
// anything is recorded.
func (a *Accessor) Read(ctx context.Context, indexes []uint64, fn func(*Entry, error) error) error {
	idx := slices.Compact(slices.Sorted(slices.Values(indexes)))
	if len(idx) == 0 {
		return nil
	}
	if last := idx[len(idx)-1]; last >= a.l.Size() {
		return fmt.Errorf("%w: %d (size %d)", ErrNotFound, last, a.l.Size())
	}
	fill := func(b *accessBody) { b.Entries, b.Count = ranges(idx), len(idx) }
	if err := a.recordBody(ctx, "read", idx[0], idx[len(idx)-1]+1, fill); err != nil {
		return err
	}
	for _, i := range idx {
		e, err := a.l.read(ctx, i)
		if err != nil && e == nil {
			return err
		}
		if err := fn(e, err); err != nil {
			return err
		}
	}
	return nil
}

// ranges writes ascending, distinct indexes as "a-b,c,d-e".
func ranges(idx []uint64) string {
	var b []byte
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, idx[i], 10)
		if j > i {
			b = strconv.AppendUint(append(b, '-'), idx[j], 10)
		}
		i = j + 1
	}
	return string(b)
}

// Blob records the access, then returns the attachment content with the given SHA-256.
func (a *Accessor) Blob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if err := a.record(ctx, "blob", 0, 0, hex.EncodeToString(sum[:])); err != nil {
		return nil, err
	}
	return a.l.blob(ctx, sum)
}

// Blobs records one access naming every attachment in sums, then calls fn with each in turn
// (repeats read once): its content, or the error reading it (capture.ErrBlobNotFound,
// ErrShredded). An export reads its attachments this way: one access entry, however many.
func (a *Accessor) Blobs(ctx context.Context, sums [][32]byte, fn func(sum [32]byte, data []byte, err error) error) error {
	uniq := slices.CompactFunc(slices.SortedFunc(slices.Values(sums), func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) }),
		func(x, y [32]byte) bool { return x == y })
	if len(uniq) == 0 {
		return nil
	}
	names := make([]string, len(uniq))
	for i, s := range uniq {
		names[i] = hex.EncodeToString(s[:])
	}
	if err := a.recordBody(ctx, "blobs", 0, 0, func(b *accessBody) { b.Blobs, b.Count = names, len(names) }); err != nil {
		return err
	}
	for _, s := range uniq {
		data, err := a.l.blob(ctx, s)
		if err := fn(s, data, err); err != nil {
			return err
		}
	}
	return nil
}

// read reads entry i and decodes it, decrypting when needed.
func (l *Ledger) read(ctx context.Context, i uint64) (*Entry, error) {
	e, err := store.ReadEntry(ctx, l.st, i)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading entry %d: %w", i, err)
	}
	return l.decode(ctx, e)
}

// scan reads entries [from, to) in one pass over the store and calls fn with each, in order,
// decoded and decrypted when needed, as read does; a missing entry is an error. Decoding (the
// decryption and JSON of each entry, most of a read's work) runs on up to four goroutines
// while fn receives the entries in order, so a long scan uses every core.
func (l *Ledger) scan(ctx context.Context, from, to uint64, fn func(*Entry, error) error) error {
	workers := min(runtime.GOMAXPROCS(0), 4)
	if workers < 2 || to-from < 2*scanChunk {
		return l.scanSerial(ctx, from, to, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ordered := make(chan *scanBatch, 2*workers)
	work := make(chan *scanBatch, 2*workers)
	wg.Go(func() {
		defer close(ordered)
		defer close(work)
		l.readBatches(ctx, from, to, work, ordered)
	})
	for range workers {
		wg.Go(func() {
			for b := range work {
				b.out = make([]*Entry, len(b.entries))
				b.errs = make([]error, len(b.entries))
				for i, e := range b.entries {
					b.out[i], b.errs[i] = l.decode(ctx, e)
				}
				close(b.done)
			}
		})
	}
	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.err != nil {
			return b.err
		}
		for i, out := range b.out {
			if out == nil {
				return b.errs[i]
			}
			if err := fn(out, b.errs[i]); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// scanChunk is how many entries one decoding goroutine takes at a time.
const scanChunk = 256

// scanBatch is a run of stored entries, decoded by a worker; err ends the scan after it.
type scanBatch struct {
	entries []store.Entry
	out     []*Entry
	errs    []error
	err     error
	done    chan struct{}
}

// readBatches reads [from, to) from the store in batches, handing each to the workers and, in
// order, to the consumer; a read error or a gap is the last batch's err.
func (l *Ledger) readBatches(ctx context.Context, from, to uint64, work, ordered chan<- *scanBatch) {
	errStop := errors.New("stop")
	send := func(b *scanBatch) error {
		if b.err != nil {
			close(b.done)
		} else {
			select {
			case work <- b:
			case <-ctx.Done():
				return errStop
			}
		}
		select {
		case ordered <- b:
			return nil
		case <-ctx.Done():
			return errStop
		}
	}
	b := &scanBatch{done: make(chan struct{})}
	err := l.entries(ctx, from, to, func(e store.Entry) error {
		b.entries = append(b.entries, e)
		if len(b.entries) < scanChunk {
			return nil
		}
		full := b
		b = &scanBatch{done: make(chan struct{})}
		return send(full)
	})
	if errors.Is(err, errStop) {
		return
	}
	if len(b.entries) > 0 && send(b) != nil { // what was read before an error is delivered first
		return
	}
	if err != nil {
		send(&scanBatch{err: err, done: make(chan struct{})})
	}
}

// scanSerial is scan on one goroutine.
func (l *Ledger) scanSerial(ctx context.Context, from, to uint64, fn func(*Entry, error) error) error {
	return l.entries(ctx, from, to, func(e store.Entry) error {
		out, err := l.decode(ctx, e)
		if err != nil && out == nil {
			return err
		}
		return fn(out, err)
	})
}

// entries calls fn with every stored entry in [from, to), in order, as the store reads them;
// a read error, an entry out of place or one missing ends it with an error.
func (l *Ledger) entries(ctx context.Context, from, to uint64, fn func(store.Entry) error) error {
	next := from
	for e, err := range l.st.Entries(ctx, from, to) {
		if err != nil {
			return fmt.Errorf("ledger: reading entry %d: %w", next, err)
		}
		if e.Index != next {
			return fmt.Errorf("%w: ledger: entry %d where %d was expected", store.ErrCorrupt, e.Index, next)
		}
		next++
		if err := fn(e); err != nil {
			return err
		}
	}
	if next < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: ledger: entry %d is missing", store.ErrCorrupt, next)
	}
	return nil
}

// decode decodes a stored entry, decrypting when needed.
func (l *Ledger) decode(ctx context.Context, e store.Entry) (*Entry, error) {
	out, err := Decode(e)
	if !errors.Is(err, ErrEncrypted) {
		return out, err
	}
	env, err := l.openPayload(ctx, &out.Leaf, e.Payload)
	if err != nil {
		return out, err
	}
	if err := decodeEnvelope(out, env); err != nil {
		return out, err
	}
	return out, nil
}
