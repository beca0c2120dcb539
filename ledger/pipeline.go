package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// The write path is commseal's one group-commit layer (see the package documentation). One
// goroutine, the pipeline (run), does everything that needs the order, as an event loop:
//
//   - while fewer than MaxInFlight batches are in flight, it takes every request waiting and
//     turns them into one batch (sequence), which it hands to the store;
//   - when the oldest batch in flight is durable (or failed), it publishes the new size,
//     answers the batch's callers, and tells the checkpointer (finish).
//
// While batches are in flight, requests wait and the next batch grows: under load, batches are
// as large as the store's latency makes them. Keeping one goroutine on the critical path means
// few hand-offs between goroutines for each batch, which on a machine with few cores and many
// callers decides the throughput. Signing checkpoints (a tree hash and a sync) happens on a
// goroutine of its own (checkpoint.go), off that path.

// ErrCommitAbandoned is wrapped by the error answered to appends that were in flight behind a
// failed commit: they may or may not be stored, and a retry is safe.
var ErrCommitAbandoned = errors.New("ledger: commit abandoned after an earlier failure; retry")

// sequencer is the state the pipeline goroutine owns: the tree and the chains as they will be
// once every batch handed to the store is durable, and the batches in flight.
type sequencer struct {
	next     uint64
	frontier seal.Frontier
	convs    map[seal.Hash]convHead
	pending  map[seal.Hash]uint64 // identities handed to the store, perhaps not yet durable
	pruned   uint64               // pending has forgotten identities of entries below this
	leafBuf  []byte
	stored   []seal.Hash
	flights  []*flight // handed to the store, oldest first
	forming  *flight   // sequenced, waiting for a flight to end before it goes to the store
	failed   bool      // a commit failed: no new batch until the flights drain and state reloads
	lastOut  time.Time // when a shared flight last set out
}

// convHead is the latest entry of a conversation: what the next one links to.
type convHead struct {
	seq   uint64
	hash  seal.Hash
	index uint64
}

// maxConvCache bounds the sequencer's cache of conversation heads, and maxPending its set of
// identities in flight; beyond them, what is durable is dropped and found in the index again.
const (
	maxConvCache = 1 << 16
	maxPending   = 1 << 14
)

func (s *sequencer) init(f seal.Frontier) {
	s.frontier, s.next = f, f.Size()
	s.convs = map[seal.Hash]convHead{}
	s.pending = map[seal.Hash]uint64{}
}

// flight is a batch on its way through the pipeline.
type flight struct {
	reqs    []*request
	results []result
	batch   *store.Batch
	size    uint64       // the ledger's size once this batch is durable
	errc    <-chan error // the store's answer
}

// run is the pipeline goroutine.
func (l *Ledger) run() {
	defer close(l.done)
	defer l.stopCheckpointer()
	defer func() {
		if l.appender != nil {
			l.appender.close()
		}
	}()
	s := &l.seq
	stopping := false
	for {
		// Take requests unless the forming batch is full or a failure is being undone (the
		// flights drain first); wait for the oldest flight.
		reqs := l.reqs
		if s.forming != nil && len(s.forming.reqs) >= l.opts.MaxBatch || s.failed && len(s.flights) > 0 {
			reqs = nil
		}
		var oldest <-chan error
		if len(s.flights) > 0 {
			oldest = s.flights[0].errc
		}
		stop := l.stop
		if stopping {
			stop = nil
			if len(s.flights) == 0 && s.forming == nil {
				// Finish what was handed over; requests racing with Close see l.done.
				select {
				case r := <-l.reqs:
					l.take(r)
					continue
				default:
					return
				}
			}
		}
		select {
		case r := <-reqs:
			l.take(r)
		case err := <-oldest:
			l.finish(err)
		case <-stop:
			stopping = true
		}
	}
}

// take sequences the request r and every other one waiting: into a new batch handed to the
// store at once if fewer than MaxInFlight are in flight, else into the forming batch, which
// goes to the store the moment the oldest flight is durable (finish). Sequencing the next
// batch while the store syncs the current one, and handing it over in one piece, gives each
// sync a whole batch and leaves the store idle only for the time of one write.
func (l *Ledger) take(r *request) {
	s := &l.seq
	if s.failed {
		if err := l.recover(context.Background()); err != nil {
			r.done <- result{err: fmt.Errorf("ledger: the store has not recovered from a failed commit: %w", err)}
			return
		}
	}
	if s.forming == nil {
		s.forming = &flight{}
	}
	l.sequence(s.forming, l.drain(r, l.opts.MaxBatch-len(s.forming.reqs)))
	if len(s.flights) < l.opts.MaxInFlight {
		if l.shared != nil {
			// A shared flight holds the store's lock, which the other writers wait for, for
			// a round trip and a commit whatever its size: let the callers that are waking
			// up join it first.
			l.gather()
		}
		l.launch()
	}
}

// launch hands the forming batch to the store.
func (l *Ledger) launch() {
	s := &l.seq
	fl := s.forming
	s.forming = nil
	if l.shared != nil {
		c := make(chan error, 1)
		go func() { c <- l.appendShared(fl) }()
		fl.errc = c
	} else if fl.batch == nil {
		// Nothing to write (duplicates, errors): answered once the flights before it are done,
		// since a duplicate's original may be among them.
		c := make(chan error, 1)
		c <- nil
		fl.errc = c
	} else {
		fl.errc = l.commit(context.Background(), fl.batch) // one caller's cancellation must not abort the others'
	}
	s.flights = append(s.flights, fl)
}

// gather lets the callers just answered send their next requests before the forming batch goes
// to the store, so that it carries them too: it yields the processor while each yield brings
// more requests (they are runnable now, and the pipeline goes behind them). The store waits
// for it, but a sync that carries twice the entries costs hardly more than half as many, on
// the CPU as on the device.
func (l *Ledger) gather() {
	s := &l.seq
	for len(s.forming.reqs) < l.opts.MaxBatch {
		runtime.Gosched()
		more := l.drainNow(l.opts.MaxBatch - len(s.forming.reqs))
		if len(more) == 0 {
			return
		}
		l.sequence(s.forming, more)
	}
}

// drainNow returns the requests waiting, up to n.
func (l *Ledger) drainNow(n int) []*request {
	var batch []*request
	for len(batch) < n {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// drain returns first and every other request waiting, up to n in all.
func (l *Ledger) drain(first *request, n int) []*request {
	batch := []*request{first}
	for len(batch) < n {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// sequence adds requests to the batch fl and turns them into its entries; a shared ledger's are
// turned into entries when the flight holds the store's lock (appendShared).
func (l *Ledger) sequence(fl *flight, reqs []*request) {
	fl.reqs = append(fl.reqs, reqs...)
	if l.shared == nil {
		l.lookupBatch(reqs)
		l.sequenceRest(fl)
	}
}

// lookupBatch looks the identities of reqs up among the durable entries in one call, on a store
// that takes many at once (store.IdentityBatch), where submit did not look each up on its own;
// a request with an identity fails with the lookup's error. Meanwhile no entry becomes durable
// that is not among those in flight, which entry looks at next: finish, on this goroutine, is
// what makes them durable.
func (l *Ledger) lookupBatch(reqs []*request) {
	if !l.idx.batches() {
		for _, r := range reqs {
			r.found = -1 // submit looked it up
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchLookupTimeout)
	defer cancel()
	if err := l.lookupRequests(ctx, reqs); err != nil {
		for _, r := range reqs {
			if r.identity != (seal.Hash{}) {
				r.lookupErr = err
			}
		}
	}
}

// lookupRequests looks the identities of reqs up among the durable entries, in one call to the
// store if it takes many, and sets each request's found and checked.
func (l *Ledger) lookupRequests(ctx context.Context, reqs []*request) error {
	checked := l.Size()
	ids := make([]seal.Hash, 0, len(reqs))
	for _, r := range reqs {
		r.checked, r.found = checked, -1
		if r.identity != (seal.Hash{}) {
			ids = append(ids, r.identity)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	found, err := l.idx.lookupAll(ctx, ids)
	if err != nil {
		return err
	}
	k := 0
	for _, r := range reqs {
		if r.identity != (seal.Hash{}) {
			r.found = found[k]
			k++
		}
	}
	return nil
}

// batchLookupTimeout bounds lookupBatch's call to the store, which the pipeline waits for.
const batchLookupTimeout = time.Minute

// sequenceRest turns the requests of fl not yet sequenced into entries of its batch.
func (l *Ledger) sequenceRest(fl *flight) {
	ctx := context.Background() // one caller's cancellation must not abort the others' commit
	s := &l.seq
	l.prune()
	if fl.batch == nil {
		fl.batch = &store.Batch{Entries: make([]store.Entry, 0, len(fl.reqs)-len(fl.results))}
	}
	sb := fl.batch
	for _, r := range fl.reqs[len(fl.results):] {
		fl.results = append(fl.results, l.entry(ctx, sb, r))
	}
	if len(sb.Entries) == 0 {
		fl.batch = nil
	}
	fl.size = s.next
}

// entry appends r's entry to sb (unless it is a duplicate or fails) and says what to answer.
func (l *Ledger) entry(ctx context.Context, sb *store.Batch, r *request) result {
	s := &l.seq
	if r.lookupErr != nil {
		return result{err: r.lookupErr}
	}
	if r.identity != (seal.Hash{}) {
		if r.found >= 0 {
			return result{index: uint64(r.found), dup: true}
		}
		i, dup, err := l.lookup(ctx, r)
		if err != nil {
			return result{err: err}
		}
		if dup {
			// Answered when this flight completes, which is after the original's.
			return result{index: i, dup: true}
		}
	}
	// The latest entry of r's conversation (what r links to), and of the chain r must follow,
	// which for a hold entry is the same one: read once.
	var conv convHead
	var convFound bool
	if r.conv != (seal.Hash{}) {
		var err error
		if conv, convFound, err = l.chainHead(ctx, r.conv); err != nil {
			return result{err: err}
		}
	}
	if a := r.after; a != nil {
		h, ok := conv, convFound
		if a.conv != r.conv {
			var err error
			if h, ok, err = l.chainHead(ctx, a.conv); err != nil {
				return result{err: err}
			}
		}
		head := int64(-1)
		if ok {
			head = int64(h.index)
		}
		if head != a.head {
			return result{err: errChainMoved}
		}
	}
	idx := s.next
	leaf := seal.Leaf{
		Kind: r.kind, Index: idx, Time: r.time, Identity: r.identity,
		Commitment: r.commit, PayloadHash: r.payHash, KeyID: r.keyID,
	}
	if r.conv != (seal.Hash{}) {
		leaf.Conversation, leaf.ConvSeq, leaf.ConvPrev = r.conv, conv.seq+1, conv.hash
	}
	var err error
	if s.leafBuf, err = leaf.AppendBinary(s.leafBuf[:0]); err != nil {
		return result{err: fmt.Errorf("ledger: %w", err)}
	}
	leafBytes := append([]byte(nil), s.leafBuf...)
	lh := seal.LeafHash(leafBytes)
	s.stored = s.frontier.Append(lh, s.stored[:0])
	for _, h := range s.stored {
		sb.Hashes = append(sb.Hashes, h)
	}
	// The entry is the next thing the store will hold: the entries after it build on it (a
	// failed commit reloads all this from the store).
	if r.conv != (seal.Hash{}) {
		s.convs[r.conv] = convHead{seq: leaf.ConvSeq, hash: lh, index: idx}
	}
	if r.identity != (seal.Hash{}) {
		s.pending[r.identity] = idx
	}
	sb.Entries = append(sb.Entries, store.Entry{
		Index: idx, Identity: r.identity, Conversation: r.conv, Leaf: leafBytes, Payload: r.payload,
	})
	s.next++
	return result{index: idx}
}

// commit hands a batch to the store: queued behind the batches in flight if the store is a
// store.Pipeline, else to the ledger's own appender, which calls Append for one batch at a
// time.
func (l *Ledger) commit(ctx context.Context, b *store.Batch) <-chan error {
	if p, ok := l.st.(store.Pipeline); ok {
		return p.Submit(ctx, b)
	}
	return l.appender.submit(ctx, b)
}

// prune forgets conversation heads and identities of durable entries when the caches are full:
// the index finds them again.
func (l *Ledger) prune() {
	s := &l.seq
	durable := l.Size()
	if len(s.convs) > maxConvCache {
		for c, h := range s.convs {
			if h.index < durable {
				delete(s.convs, c)
			}
		}
	}
	if len(s.pending) > maxPending {
		for id, i := range s.pending {
			if i < durable {
				delete(s.pending, id)
			}
		}
		s.pruned = durable
	}
}

// lookup finds r's identity among the entries in flight (or in this batch). The caller looked
// among the durable ones before r came here; if the pipeline has since forgotten in-flight
// identities that became durable after that look, it looks again.
func (l *Ledger) lookup(ctx context.Context, r *request) (uint64, bool, error) {
	if i, ok := l.seq.pending[r.identity]; ok {
		return i, true, nil
	}
	if l.seq.pruned > r.checked {
		return l.idx.lookup(ctx, r.identity)
	}
	return 0, false, nil
}

// chainHead returns the latest entry of a conversation, from the cache or the index, and
// whether it has one.
func (l *Ledger) chainHead(ctx context.Context, conv seal.Hash) (convHead, bool, error) {
	if h, ok := l.seq.convs[conv]; ok {
		return h, true, nil
	}
	i, ok, err := l.idx.lastInConversation(ctx, conv)
	if err != nil || !ok {
		return convHead{}, false, err
	}
	leaf, lh, err := l.idx.leaf(ctx, i)
	if err != nil {
		return convHead{}, false, fmt.Errorf("ledger: reading conversation head %d: %w", i, err)
	}
	if leaf.Conversation != conv {
		return convHead{}, false, fmt.Errorf("%w: the store's conversation index points at entry %d, which is in another conversation", store.ErrCorrupt, i)
	}
	return convHead{seq: leaf.ConvSeq, hash: lh, index: i}, true, nil
}

// recover reloads the sequencer's state from the store, whose contents after a failed commit
// only the store knows. No batch is in flight or forming. Until it succeeds, the pipeline stays
// failed and the next request tries again.
func (l *Ledger) recover(ctx context.Context) error {
	s := &l.seq
	size, err := l.st.Size(ctx)
	if err != nil {
		l.log.Error("ledger: resync: reading size", "err", err)
		return err
	}
	f, err := loadFrontier(ctx, l.st, size)
	if err != nil {
		l.log.Error("ledger: resync", "err", err)
		return err
	}
	was := l.Size()
	if size != was && l.shared == nil {
		l.log.Warn("ledger: a failed commit left entries in the store", "was", was, "now", size)
	}
	if size != was && l.idx.mem != nil { // a store with its own indexes already has them
		var found []store.Entry
		for e, err := range l.st.Entries(ctx, was, size) {
			if err != nil {
				l.log.Error("ledger: resync: reading entries", "err", err)
				return err
			}
			e.Payload = nil
			found = append(found, e)
		}
		l.idx.added(found)
	}
	s.init(f)
	s.failed = false
	s.pruned = size // what was in flight is durable or gone: look in the index
	l.size.Store(size)
	return nil
}

// finish takes the outcome of the oldest flight: on success it publishes the new size and tells
// the checkpointer; on failure it starts the undo (later flights are abandoned); then it answers
// the flight's callers.
func (l *Ledger) finish(err error) {
	s := &l.seq
	fl := s.flights[0]
	s.flights[0] = nil
	s.flights = s.flights[1:]
	if len(s.flights) == 0 {
		s.flights = s.flights[:0:0]
	}
	switch {
	case err != nil && !s.failed:
		l.log.Error("ledger: commit failed", "size", fl.size, "err", err)
		s.failed = true
		err = fmt.Errorf("ledger: commit of entries before %d: %w", fl.size, err)
	case s.failed:
		err = fmt.Errorf("%w (%v)", ErrCommitAbandoned, err)
	case fl.batch != nil:
		l.idx.added(fl.batch.Entries)
		l.raiseSize(fl.size)
		l.checkpointer.durable(fl.size)
	case fl.size > l.Size(): // a shared flight that caught up with other writers' entries only
		l.raiseSize(fl.size)
		l.checkpointer.durable(fl.size)
	}
	answer(fl, err)
	if !s.failed && s.forming != nil && len(s.flights) < l.opts.MaxInFlight {
		l.gather()
		l.launch()
	}
	if s.failed && s.forming != nil {
		// Sequenced behind the failure, never handed to the store.
		fl := s.forming
		s.forming = nil
		answer(fl, fmt.Errorf("%w (%v)", ErrCommitAbandoned, err))
	}
}

// answer sends each caller of fl its result, or err if it had none. (A shared flight whose
// append failed before its batch was built has no results.)
func answer(fl *flight, err error) {
	for k, r := range fl.reqs {
		var res result
		if k < len(fl.results) {
			res = fl.results[k]
		} else if err == nil {
			err = errors.New("ledger: internal error: a request was never sequenced")
		}
		if err != nil && res.err == nil {
			res = result{err: err}
		}
		r.done <- res
	}
}

// appendShared writes the shared flight fl: under the store's write lock, it extends the
// sequencer's state with the entries other writers appended since it last looked, then
// sequences fl's requests from there. The flight owns the sequencer while it is out: take only
// queues requests, and one flight is out at a time (MaxInFlight is 1: a flight builds on the
// one before it, which must be durable, or undone by recover, first); the go statement orders
// the pipeline's changes before it, and the channel that carries the result orders its changes
// before finish.
func (l *Ledger) appendShared(fl *flight) error {
	ctx := context.Background() // one caller's cancellation must not abort the others' commit
	if time.Since(l.seq.lastOut) > idleCatchUp {
		// Idle a while, this writer may be far behind the others: catch up with what they
		// appended before taking the lock, rather than with every writer waiting for it.
		size, err := l.st.Size(ctx)
		if err != nil {
			return fmt.Errorf("ledger: reading the shared log's size: %w", err)
		}
		if err := l.catchUp(ctx, size, nil); err != nil {
			return err
		}
	}
	l.seq.lastOut = time.Now()
	if err := l.lookupFlight(ctx, fl); err != nil {
		return err
	}
	return l.shared.AppendLocked(ctx, l.seq.next, func(size uint64, appended []store.Entry) (*store.Batch, error) {
		if err := l.catchUp(ctx, size, appended); err != nil {
			return nil, err
		}
		l.sequenceRest(fl)
		return fl.batch, nil
	})
}

// idleCatchUp is how long a shared ledger may go without a flight before its next one catches
// up with the other writers outside the store's lock.
const idleCatchUp = time.Second

// lookupFlight looks up the identities of a shared flight's requests among the durable entries,
// in one call to the store, before the flight takes the store's lock. An entry another writer
// appends after that look is at or beyond the durable size now, so catchUp brings it into the
// identities in flight, where entry finds it (or, if they were pruned since, the index).
func (l *Ledger) lookupFlight(ctx context.Context, fl *flight) error {
	return l.lookupRequests(ctx, fl.reqs)
}

// catchUp brings the sequencer from the entries it knows to the size entries of the shared log:
// each entry another writer appended extends the tree's frontier, the conversation heads and the
// identities deduplicated against. appended are entries the store read
// with its lock from where the sequencer was when the flight set out (this ledger's own
// flight before it may have sequenced some of them since); if nil, it reads them.
func (l *Ledger) catchUp(ctx context.Context, size uint64, appended []store.Entry) error {
	s := &l.seq
	if size == s.next {
		return nil
	}
	if size < s.next {
		return fmt.Errorf("%w: the shared log holds %d entries, fewer than the %d this ledger has seen", store.ErrCorrupt, size, s.next)
	}
	entries := l.st.Entries(ctx, s.next, size)
	if appended != nil {
		entries = func(yield func(store.Entry, error) bool) {
			for _, e := range appended {
				if e.Index >= s.next && !yield(e, nil) {
					return
				}
			}
		}
	}
	n := uint64(0) // (the store's own indexes find them: a shared ledger keeps no index in memory)
	for e, err := range entries {
		if err != nil {
			return fmt.Errorf("ledger: reading the entries other writers appended: %w", err)
		}
		leaf, err := seal.ParseLeaf(e.Leaf)
		if err == nil && leaf.Index != e.Index {
			err = fmt.Errorf("it holds the leaf of entry %d", leaf.Index)
		}
		if err != nil {
			return fmt.Errorf("%w: entry %d, appended by another writer: %w", store.ErrCorrupt, e.Index, err)
		}
		lh := seal.LeafHash(e.Leaf)
		s.stored = s.frontier.Append(lh, s.stored[:0])
		if leaf.Conversation != (seal.Hash{}) {
			s.convs[leaf.Conversation] = convHead{seq: leaf.ConvSeq, hash: lh, index: e.Index}
		}
		if leaf.Identity != (seal.Hash{}) {
			s.pending[leaf.Identity] = e.Index
		}
		n++
	}
	if n != size-s.next {
		return fmt.Errorf("%w: the shared log holds %d entries but yields %d after %d", store.ErrCorrupt, size, n, s.next)
	}
	s.next = size
	return nil
}

// appender gives a store that is not a store.Pipeline the pipeline's interface: it applies the
// batches handed to it with Append, one at a time and in order, on a goroutine of its own, so
// the pipeline goroutine never waits for the store.
type appender struct {
	log  store.Log
	jobs chan appendJob
}

type appendJob struct {
	ctx  context.Context
	b    *store.Batch
	done chan error
}

func newAppender(log store.Log, depth int) *appender {
	a := &appender{log: log, jobs: make(chan appendJob, depth)}
	go func() {
		for j := range a.jobs {
			j.done <- a.log.Append(j.ctx, j.b)
		}
	}()
	return a
}

func (a *appender) submit(ctx context.Context, b *store.Batch) <-chan error {
	c := make(chan error, 1)
	a.jobs <- appendJob{ctx, b, c}
	return c
}

func (a *appender) close() { close(a.jobs) }
