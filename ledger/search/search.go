package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
)

// ErrClosed is returned by an Index after Close.
var ErrClosed = errors.New("search: index closed")

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
	MaxFilters   = 1000 // ids in Conversations, Senders and Kinds together
)

// Query is a search: a text expression and filters, all of which a hit satisfies.
type Query struct {
	// Text is an expression of the query language (see the package documentation); "" matches
	// every message.
	Text string `json:"text,omitempty"`
	// Conversations, Senders (ids or staff ids) and Kinds restrict hits to any of the listed
	// values, exactly; an empty list does not restrict.
	Conversations []string `json:"conversations,omitempty"`
	Senders       []string `json:"senders,omitempty"`
	Kinds         []string `json:"kinds,omitempty"`
	// From and To bound the time a message was sent: From <= sent < To; zero is unbounded.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// CapturedFrom and CapturedTo bound the time commseal captured it, likewise.
	CapturedFrom time.Time `json:"captured_from,omitzero"`
	CapturedTo   time.Time `json:"captured_to,omitzero"`
	// Offset and Limit page through the hits, which are sorted by sent time, then ledger
	// index. Limit 0 means DefaultLimit; at most MaxLimit.
	Offset int `json:"offset,omitempty"`
	Limit  int `json:"limit,omitempty"`
}

// Hit is one message a query matched: where it is in the ledger, and what identifies it. Its
// content is read through an Accessor, which records the reading.
type Hit struct {
	Index        uint64    `json:"index"`
	Sent         time.Time `json:"sent"`
	Conversation string    `json:"conversation"`
	Sender       string    `json:"sender"`
	Kind         string    `json:"kind"`
	// Records are the ledger indexes of the records sealed about the message after it that an
	// export of the message takes along (Result.Indexes), in ledger order: the media record of
	// each fetch of its attachments (the message names an attachment by a download code, the
	// record names the content stored, or why the fetch failed), and the annotations that
	// seal surveillance's findings about it.
	Records []uint64 `json:"records,omitempty"`
}

// Result is a page of hits.
type Result struct {
	Hits  []Hit `json:"hits"`
	Total int   `json:"total"` // hits before paging
	// Size is the tree size the index covered when it answered: the query saw the ledger's
	// first Size entries.
	Size uint64 `json:"size"`
}

// Indexes returns the ledger indexes an export of the page takes: each hit's, and its
// Records'.
func (r *Result) Indexes() []uint64 {
	out := make([]uint64, 0, len(r.Hits))
	for _, h := range r.Hits {
		out = append(append(out, h.Index), h.Records...)
	}
	return out
}

// TakesAlong reports whether e is a record that an export of a message takes along (see
// Hit.Records), and that message's ledger index. Programs that select messages without the
// index (a scan with filters) use it to select the same records.
func TakesAlong(ctx context.Context, l *ledger.Ledger, e *ledger.Entry) (uint64, bool) {
	var r *review
	var ok bool
	switch e.Leaf.Kind {
	case seal.KindMedia:
		r, ok = mediaFrom(ctx, l, e)
	case seal.KindAnnotation:
		r, ok = reviewFrom(ctx, l, e)
		ok = ok && r.alert
	}
	if !ok {
		return 0, false
	}
	return r.message, true
}

// Options configures an Index.
type Options struct {
	// Dir keeps the index between runs (the file docs.log, every document in it sealed under
	// its message's data key). "" keeps it in memory only, as does a ledger that is not
	// encrypted: there is no key to seal it under, and nothing of a message is written in plain.
	Dir string
	// Logger receives what the index does on its own (rebuilds, update failures); default
	// discards.
	Logger *slog.Logger
}

// chunk is how many ledger entries one update step reads before it writes and publishes.
const chunk = 8192

// Index is a search index over a ledger's messages. It is derived (Rebuild makes it again
// from the ledger), follows the ledger (Update, Run), and is safe for concurrent use.
//
// Locks: updMu serializes updates and guards the file and the covered size's advance; mu
// guards the in-memory index and covered. Order: updMu, then mu.
type Index struct {
	l   *ledger.Ledger
	d   *ledger.Deriver
	log *slog.Logger

	updMu  sync.Mutex
	file   *logFile // nil when in memory only
	closed bool

	mu      sync.RWMutex
	mem     *memIndex
	covered uint64 // the tree size the index reflects
	leaf    seal.Hash
}

// Open opens the index of l kept in opts.Dir, or builds it there, and brings it up to the
// ledger's size. A damaged or foreign index file is rebuilt from the ledger (it is derived
// state), which the log reports.
func Open(ctx context.Context, l *ledger.Ledger, opts Options) (*Index, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ix := &Index{l: l, d: l.Derive("search"), log: log, mem: newMemIndex()}
	if opts.Dir != "" && !l.Encrypted() {
		log.Info("search: the ledger is not encrypted; the index is kept in memory only")
	}
	if opts.Dir != "" && l.Encrypted() {
		if err := ix.load(ctx, opts.Dir); err != nil {
			return nil, err
		}
	}
	if _, err := ix.Update(ctx); err != nil {
		ix.Close()
		return nil, err
	}
	return ix, nil
}

// load reads the index file in dir.
func (ix *Index) load(ctx context.Context, dir string) error {
	lf, c, err := openLog(dir)
	if errors.Is(err, errLogCorrupt) {
		ix.log.Warn("search: index file damaged; rebuilding from the ledger", "err", err)
	} else if err != nil {
		return err
	}
	ix.file = lf
	if c.mark.size == 0 {
		return nil
	}
	docs, reviews, err := ix.open(ctx, c)
	if err != nil && ctx.Err() != nil {
		lf.close()
		return ctx.Err()
	}
	if err != nil {
		ix.log.Warn("search: index file does not match the ledger; rebuilding", "err", err)
		return lf.cut(0)
	}
	for _, d := range docs {
		ix.mem.add(d)
	}
	for _, r := range reviews {
		ix.mem.apply(r)
	}
	for _, k := range c.forget {
		ix.mem.forget(k)
	}
	ix.covered, ix.leaf = c.mark.size, c.mark.leaf
	return nil
}

// open checks that the file's mark is a prefix of the ledger and decrypts its documents,
// in ledger order; those whose data key was destroyed are gone.
func (ix *Index) open(ctx context.Context, c *logContent) ([]*document, []*review, error) {
	if c.mark.size > ix.l.Size() {
		return nil, nil, fmt.Errorf("the index covers %d entries, the ledger has %d", c.mark.size, ix.l.Size())
	}
	e, err := ix.l.Get(ctx, c.mark.size-1)
	if e == nil {
		return nil, nil, err
	}
	if e.LeafHash != c.mark.leaf {
		return nil, nil, fmt.Errorf("entry %d is not the one the index was built from", c.mark.size-1)
	}
	docs, err := ix.openDocs(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	reviews, err := ix.openReviews(ctx, c)
	return docs, reviews, err
}

// openReviews decrypts the file's alerts and dispositions, in ledger order.
func (ix *Index) openReviews(ctx context.Context, c *logContent) ([]*review, error) {
	var out []*review
	for _, sr := range c.reviews {
		pt, err := ix.d.Open(ctx, sr.keyID, sr.index, sr.ct)
		if errors.Is(err, ledger.ErrShredded) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r, ok := decodeReview(pt)
		if !ok || sr.index >= c.mark.size {
			return nil, fmt.Errorf("%w: review of entry %d", errLogCorrupt, sr.index)
		}
		r.entry, r.keyID = sr.index, sr.keyID
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *review) int { return cmp.Compare(a.entry, b.entry) })
	return out, nil
}

// openDocs decrypts the file's documents, in ledger order; those whose data key was destroyed
// are gone.
func (ix *Index) openDocs(ctx context.Context, c *logContent) ([]*document, error) {
	// One key after another: a data key is unwrapped once, not once per message; the sorted
	// records are cut into one contiguous part per core.
	slices.SortStableFunc(c.docs, func(a, b sealedDoc) int { return cmp.Compare(a.keyID, b.keyID) })
	parts := min(runtime.GOMAXPROCS(0), 4, max(1, len(c.docs)/1024))
	got := make([][]*document, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*len(c.docs)/parts, (p+1)*len(c.docs)/parts
		wg.Go(func() { got[p], errs[p] = ix.openPart(ctx, c.docs[lo:hi], c.mark.size) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	docs := slices.Concat(got...)
	slices.SortFunc(docs, func(a, b *document) int { return cmp.Compare(a.index, b.index) })
	docs = slices.CompactFunc(docs, func(a, b *document) bool { return a.index == b.index })
	return docs, nil
}

// openPart decrypts and decodes sealed documents; those whose data key was destroyed are gone.
func (ix *Index) openPart(ctx context.Context, sealed []sealedDoc, size uint64) ([]*document, error) {
	docs := make([]*document, 0, len(sealed))
	for _, sd := range sealed {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pt, err := ix.d.Open(ctx, sd.keyID, sd.index, sd.ct)
		if errors.Is(err, ledger.ErrShredded) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d, err := decodeDocument(pt)
		if err != nil {
			return nil, err
		}
		if d.index != sd.index || d.index >= size {
			return nil, fmt.Errorf("%w: document of entry %d filed under %d", errLogCorrupt, d.index, sd.index)
		}
		d.keyID = sd.keyID
		docs = append(docs, d)
	}
	return docs, nil
}

// Update indexes what the ledger appended since the index last looked, and returns the tree
// size the index now covers. Messages are indexed; a shred entry removes the documents under
// the key it destroyed. It reads through the ledger's Deriver: no access entry.
func (ix *Index) Update(ctx context.Context) (uint64, error) {
	ix.updMu.Lock()
	defer ix.updMu.Unlock()
	if ix.closed {
		return 0, ErrClosed
	}
	for {
		ix.mu.RLock()
		from := ix.covered
		ix.mu.RUnlock()
		to := min(ix.l.Size(), from+chunk)
		if from >= to {
			return from, nil
		}
		if err := ix.step(ctx, from, to); err != nil {
			return from, err
		}
	}
}

// step indexes entries [from, to).
func (ix *Index) step(ctx context.Context, from, to uint64) error {
	var (
		docs    []*document
		reviews []*review
		forget  []string
		last    seal.Hash
	)
	err := ix.d.Scan(ctx, from, to, func(e *ledger.Entry, err error) error {
		last = e.LeafHash
		switch {
		case errors.Is(err, ledger.ErrShredded):
			return nil
		case err != nil:
			return fmt.Errorf("search: indexing entry %d: %w", e.Index, err)
		case e.Leaf.Kind == seal.KindMessage && e.Message != nil:
			docs = append(docs, docFromMessage(e.Index, e.Leaf.KeyID, e.Message))
		case e.Leaf.Kind == seal.KindAnnotation:
			if r, ok := reviewFrom(ctx, ix.l, e); ok {
				reviews = append(reviews, r)
			}
		case e.Leaf.Kind == seal.KindMedia:
			if r, ok := mediaFrom(ctx, ix.l, e); ok {
				reviews = append(reviews, r)
			}
		case e.Leaf.Kind == seal.KindShred:
			var s ledger.Shred
			if err := json.Unmarshal(e.Body, &s); err != nil {
				return fmt.Errorf("search: shred entry %d: %w", e.Index, err)
			}
			forget = append(forget, s.KeyID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A step with nothing to keep (access entries, checkpoints) writes nothing: the next mark
	// covers it, and until then a reopened index reads those entries again.
	if ix.file != nil && len(docs)+len(reviews)+len(forget) > 0 {
		if docs, reviews, err = ix.persist(ctx, docs, reviews, forget, mark{size: to, leaf: last}); err != nil {
			return err
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, d := range docs {
		ix.mem.add(d)
	}
	for _, r := range reviews {
		ix.mem.apply(r)
	}
	for _, k := range forget {
		ix.mem.forget(k)
	}
	ix.covered, ix.leaf = to, last
	return nil
}

// persist seals and writes documents, reviews and shredded keys, with the mark, and returns
// the documents and reviews whose key still exists.
func (ix *Index) persist(ctx context.Context, docs []*document, reviews []*review, forget []string, m mark) ([]*document, []*review, error) {
	var buf []byte
	kept := docs[:0]
	for _, d := range docs {
		buf = appendDocument(buf[:0], d)
		ct, err := ix.d.Seal(ctx, d.keyID, d.index, buf)
		if errors.Is(err, ledger.ErrShredded) { // shredded since it was read: a shred entry follows
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("search: sealing entry %d: %w", d.index, err)
		}
		ix.file.doc(d.index, d.keyID, ct)
		kept = append(kept, d)
	}
	keptRev := reviews[:0]
	for _, r := range reviews {
		if r.keyID == "" {
			continue
		}
		buf = r.appendTo(buf[:0])
		ct, err := ix.d.Seal(ctx, r.keyID, r.entry, buf)
		if errors.Is(err, ledger.ErrShredded) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("search: sealing entry %d: %w", r.entry, err)
		}
		ix.file.review(r.entry, r.keyID, ct)
		keptRev = append(keptRev, r)
	}
	for _, k := range forget {
		ix.file.forget(k)
	}
	return kept, keptRev, ix.file.commit(m)
}

// Rebuild drops the index and makes it again from the whole ledger.
func (ix *Index) Rebuild(ctx context.Context) (uint64, error) {
	ix.updMu.Lock()
	if ix.closed {
		ix.updMu.Unlock()
		return 0, ErrClosed
	}
	if ix.file != nil {
		if err := ix.file.cut(0); err != nil {
			ix.updMu.Unlock()
			return 0, err
		}
	}
	ix.mu.Lock()
	ix.mem, ix.covered, ix.leaf = newMemIndex(), 0, seal.Hash{}
	ix.mu.Unlock()
	ix.updMu.Unlock()
	return ix.Update(ctx)
}

// Run keeps the index up to date, looking for new entries every interval (default one
// second), until ctx is done; it returns ctx's error. A failed update is logged and retried.
func (ix *Index) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := ix.Update(ctx); errors.Is(err, ErrClosed) {
			return err
		} else if err != nil && ctx.Err() == nil {
			ix.log.Warn("search: update failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Stats describes the index.
type Stats struct {
	Size     uint64 // the tree size covered
	Messages int    // messages indexed and not shredded
	Shredded int    // messages removed because their scope was shredded
	Grams    int    // distinct n-grams
	OnDisk   bool   // kept in a file (else in memory only)
}

// Stats returns the index's counts.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return Stats{Size: ix.covered, Messages: ix.mem.size() - ix.mem.nDead, Shredded: ix.mem.nDead,
		Grams: len(ix.mem.grams), OnDisk: ix.file != nil}
}

// Close releases the index file. The index must not be used after.
func (ix *Index) Close() error {
	ix.updMu.Lock()
	defer ix.updMu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	if ix.file != nil {
		return ix.file.close()
	}
	return nil
}
