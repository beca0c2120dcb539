package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/commseal/commseal/store"
)

// ObjectLocker is the capability of a blob store (Options.Blobs, or the store's store.Blobs)
// whose objects the storage itself locks: WORM storage such as S3 Object Lock in COMPLIANCE
// mode (store/s3store.Blobs implements it) keeps each object at least until its retain-until
// date, and whatever its date while a legal hold is set on it. The ledger finds it by a type
// assertion on the blob store; a store without it needs nothing.
//
// An encrypted ledger sets both locks of each attachment from the scopes whose media records
// reference it (the scopes its data key is tied to, which shredding uses too):
//
//   - retain-until: the end of those scopes' retention (the latest of them: the attachment's
//     key goes with the last of its scopes) under the policy the ledger was last given, by
//     ApplyRetention or ApplyLocks. Until it knows a policy, or while the policy keeps one of
//     the scopes (a kind no rule matches), the date the store gave the object when it was
//     written stays. Dates only grow: an earlier date than the object's is refused by the
//     store, and the ledger reports the refusal (ErrLocksPending) rather than hide it, at
//     every pass. So give the store a default retention (s3store.Options.Retention) longer
//     than the time between two passes and shorter than any scope's retention, which the
//     ledger then extends.
//   - legal hold: set while an active hold covers one of those scopes (by PlaceHold, at once);
//     cleared once none does (by ReleaseHold), and only where a hold the ledger placed could
//     have set it, so that a legal hold set by someone else on attachments no hold ever
//     covered is left alone.
//
// The hold entry is sealed, and the attachment stored, before any lock is touched: a call
// that fails loses neither. ApplyLocks, which ApplyRetention runs at its end, recomputes every
// lock from the vault and the hold chain and makes again the calls that failed.
type ObjectLocker interface {
	// Retain sets the retain-until date of the blob stored under sum to until. A date later
	// than the current one extends it; the same date changes nothing; an earlier one is
	// refused with an error.
	Retain(ctx context.Context, sum store.Hash, until time.Time) error
	// RetainUntil returns the retain-until date of the blob stored under sum (zero if it has
	// none). The ledger asks it when Retain was refused: a blob already kept longer than its
	// scope needs (the store's default date, written when the blob was) is kept long enough.
	RetainUntil(ctx context.Context, sum store.Hash) (time.Time, error)
	// SetLegalHold places (on) or clears (off) the legal hold on the blob stored under sum.
	SetLegalHold(ctx context.Context, sum store.Hash, on bool) error
}

// ErrLocksPending is wrapped by the error of a call that did its own work (a hold sealed,
// keys shredded) but could not bring every object lock of the blob store in line: the store
// was unreachable or refused (the error wraps its errors too, s3store.ErrLocked among them).
// Nothing is lost; ApplyLocks, or the next ApplyRetention, makes the calls that failed again.
var ErrLocksPending = errors.New("ledger: the blob store's object locks are not all applied (ApplyLocks retries)")

// ErrNoScopes is returned by ApplyLocks for a ledger that is not encrypted: it does not know
// which scope an attachment belongs to, so it locks nothing beyond the blob store's default.
var ErrNoScopes = errors.New("ledger: object locks follow the scopes of an encrypted ledger (Options.Encryption)")

// LockReport says what a pass over the blob store's locks did.
type LockReport struct {
	Blobs    int // attachments of live scopes looked at
	Retained int // retain-until dates set
	Held     int // legal holds placed
	Cleared  int // legal holds cleared
	Failed   int // calls that failed (the error names them)
}

// objectLocks is what a ledger remembers of the blob store's locks; holdLog.lockMu guards it.
// It costs some 60 bytes of memory per attachment of a live scope (an attachment whose scopes
// are all shredded is forgotten at the next pass).
type objectLocks struct {
	policy *RetentionPolicy       // the policy last given; nil while none
	set    map[store.Hash]setLock // by stored address: what this process set
}

// setLock is what this process last set on one object.
type setLock struct {
	until int64 // the retain-until the store accepted, in Unix seconds; 0 for none
	hold  legalHold
}

type legalHold int8

const (
	holdUnknown legalHold = iota
	holdOn
	holdOff
)

// maxLockErrors bounds the errors a pass keeps to report (it counts them all), and the calls
// in a row that may fail before a pass stops (a store that is down fails every call, each
// after the client's retries; the next pass takes up what is left).
const maxLockErrors = 8

// objectLocker returns the blob store as an ObjectLocker, if it is one.
func (l *Ledger) objectLocker() (ObjectLocker, bool) {
	bs, err := l.blobs()
	if err != nil {
		return nil, false
	}
	lk, ok := bs.(ObjectLocker)
	return lk, ok
}

// ApplyLocks brings the blob store's object locks in line with the ledger: every attachment of
// a live scope is retained until the end of its scopes' retention under p, and legally held
// while an active hold covers one of its scopes (see ObjectLocker). A non-nil p becomes the
// policy the ledger knows from then on, in this process; with a nil p the one given last (to
// ApplyLocks or ApplyRetention) applies, and with none the dates are left as they are. It does
// nothing for a blob store that is no ObjectLocker, and returns ErrNoScopes for a ledger that
// is not encrypted.
//
// It is the retry of every lock call that failed before. It lists the vault (every key's
// metadata: which attachments belong to which scopes), reads the latest hold entry (the active
// holds, and those released), and calls the store only where a lock differs from what this
// process last set: a pass with nothing to change makes no call, and the first pass of a
// restarted process sends every date once again (the store takes the same date as no change)
// and clears again the legal holds that released holds covered. A call that fails is counted,
// and the error (wrapping ErrLocksPending and the store's errors) names the first few; the
// pass goes on, and stops after several failures in a row (a store that is down) to leave the
// rest to the next one. In a shared ledger, a pass during which another writer changed the
// holds is made again from the new ones (a few times, then ErrLocksPending).
func (l *Ledger) ApplyLocks(ctx context.Context, p *RetentionPolicy) (LockReport, error) {
	lk, ok := l.objectLocker()
	if !ok {
		return LockReport{}, nil
	}
	if l.dk == nil {
		return LockReport{}, ErrNoScopes
	}
	if err := l.holds.lockLocks(ctx); err != nil {
		return LockReport{}, err
	}
	defer l.holds.unlockLocks()
	if p != nil {
		l.holds.locks.policy = &RetentionPolicy{Rules: slices.Clone(p.Rules)}
	}
	return l.syncLocks(ctx, lk, l.holds.locks.policy)
}

// lockHeldBlobs brings the legal holds of the blob store in line after a hold change, if the
// store locks objects. The caller holds l.holds.lockMu.
func (l *Ledger) lockHeldBlobs(ctx context.Context) error {
	lk, ok := l.objectLocker()
	if !ok {
		return nil
	}
	if l.dk == nil {
		l.log.Warn("ledger: a hold changed, and the blob store locks objects, but a plain ledger does not know which attachments the hold covers: no legal hold is set on them")
		return nil
	}
	_, err := l.syncLocks(ctx, lk, nil)
	return err
}

// lockPass is one pass's holds, clock, tally and errors.
type lockPass struct {
	lk           ObjectLocker
	p            *RetentionPolicy
	now          time.Time
	active, past []Hold
	head         int64 // the hold entry they are from; -1 for none
	rep          LockReport
	errs         []error
	inARow       int // calls failed since the last that succeeded
	// into, in a pass over every attachment, receives what is known of each one it sees, and
	// then replaces objectLocks.set, so that the attachments shredded meanwhile are forgotten.
	into map[store.Hash]setLock
}

// syncLocks makes a pass over every attachment of a live scope: legal holds always, dates when
// p is set. The caller holds l.holds.lockMu.
func (l *Ledger) syncLocks(ctx context.Context, lk ObjectLocker, p *RetentionPolicy) (LockReport, error) {
	return l.stablePass(ctx, lk, p, func(ps *lockPass) error { return l.syncLocksOnce(ctx, ps) })
}

// stablePass makes a pass (pass, on the holds newLockPass reads) and returns its report. The
// caller holds l.holds.lockMu, which keeps this process's hold changes out of the pass; in a
// shared ledger another writer may seal one meanwhile, and a pass that read the holds before it
// would clear the legal holds it places, or keep those it releases. So when the hold chain
// moved during a pass, the pass is made again, from the new holds, up to lockRepeats times; the
// report is the last pass's.
func (l *Ledger) stablePass(ctx context.Context, lk ObjectLocker, p *RetentionPolicy, pass func(*lockPass) error) (LockReport, error) {
	for n := 0; ; n++ {
		ps, err := l.newLockPass(ctx, lk, p)
		if err != nil {
			return LockReport{}, err
		}
		if err := pass(ps); err != nil {
			return LockReport{}, err
		}
		if l.shared == nil || ps.err() != nil {
			return ps.rep, ps.err()
		}
		head, err := l.holdHead(ctx)
		if err != nil {
			return ps.rep, err
		}
		if head == ps.head {
			return ps.rep, nil
		}
		if n == lockRepeats {
			return ps.rep, fmt.Errorf("%w: the holds changed during each of %d passes (another writer's hold changes); the next pass goes on", ErrLocksPending, n+1)
		}
		l.log.Info("ledger: the holds changed during a pass over the object locks; passing again", "hold entry", head)
	}
}

// lockRepeats is how many times syncLocks passes again when the holds changed during a pass.
const lockRepeats = 3

// holdHead returns the index of the latest entry of the hold chain, -1 if there is none.
func (l *Ledger) holdHead(ctx context.Context) (int64, error) {
	i, ok, err := l.idx.lastInConversation(ctx, holdChain)
	if err != nil || !ok {
		return -1, err
	}
	return int64(i), nil
}

// syncLocksOnce makes the pass ps; it fails only if the vault cannot be listed (the calls that
// fail are in ps).
func (l *Ledger) syncLocksOnce(ctx context.Context, ps *lockPass) error {
	inv, err := l.dk.inventory(ctx)
	if err != nil {
		return err
	}
	scopes := make(map[string]*keyScope, len(inv.scopes))
	for i := range inv.scopes {
		scopes[inv.scopes[i].id] = &inv.scopes[i].scope
	}
	ids := make([]string, 0, len(inv.blobs))
	for id := range inv.blobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ps.into = make(map[store.Hash]setLock, len(l.holds.locks.set))
	whole := true
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			ps.fail(fmt.Errorf("ledger: applying object locks: %w", err))
			whole = false
			break
		}
		if ps.inARow >= maxLockErrors {
			ps.errs = append(ps.errs, fmt.Errorf("ledger: %d lock calls in a row failed: the pass stopped; the next one goes on", ps.inARow))
			whole = false
			break
		}
		var live []*keyScope
		for _, s := range inv.blobs[id] {
			if sc, ok := scopes[s]; ok {
				live = append(live, sc)
			}
		}
		l.syncBlob(ctx, ps, id, inv.addrs[id], live)
	}
	if whole {
		l.holds.locks.set = ps.into
	} else {
		maps.Copy(l.holds.locks.set, ps.into)
	}
	return nil
}

// newLockPass reads the holds for a pass.
func (l *Ledger) newLockPass(ctx context.Context, lk ObjectLocker, p *RetentionPolicy) (*lockPass, error) {
	l.holds.mu.Lock()
	active, past, head, err := l.holdSets(ctx)
	l.holds.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if l.holds.locks.set == nil {
		l.holds.locks.set = map[store.Hash]setLock{}
	}
	return &lockPass{lk: lk, p: p, now: l.opts.Now(), active: active, past: past, head: head}, nil
}

func (ps *lockPass) fail(err error) {
	ps.rep.Failed++
	ps.inARow++
	if len(ps.errs) < maxLockErrors {
		ps.errs = append(ps.errs, err)
	}
}

func (ps *lockPass) succeed() { ps.inARow = 0 }

func (ps *lockPass) err() error {
	if ps.rep.Failed == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d calls failed: %w", ErrLocksPending, ps.rep.Failed, errors.Join(ps.errs...))
}

// syncBlob brings the locks of the attachment whose key is id, stored at addr (hex), in line
// with its live scopes. The caller holds l.holds.lockMu.
func (l *Ledger) syncBlob(ctx context.Context, ps *lockPass, id, addr string, live []*keyScope) {
	a, err := hex.DecodeString(addr)
	if err != nil || len(a) != len(store.Hash{}) {
		ps.fail(fmt.Errorf("%w: blob key %s metadata has no address", store.ErrCorrupt, id))
		return
	}
	sum := store.Hash(a)
	if len(live) == 0 {
		// Untied (tied at the next pass), or every scope shredded: the object keeps the lock
		// it has, and nothing more is the ledger's to keep.
		delete(l.holds.locks.set, sum)
		return
	}
	ps.rep.Blobs++
	known := l.holds.locks.set[sum]
	defer func() {
		if ps.into != nil {
			ps.into[sum] = known
		} else {
			l.holds.locks.set[sum] = known
		}
	}()

	held := coversAny(ps.active, live)
	switch {
	case held && known.hold != holdOn:
		if err := ps.lk.SetLegalHold(ctx, sum, true); err != nil {
			ps.fail(fmt.Errorf("ledger: placing the legal hold on blob %s (key %s): %w", addr[:16], id, err))
			known.hold = holdUnknown
		} else {
			ps.succeed()
			known.hold = holdOn
			ps.rep.Held++
		}
	case !held && known.hold != holdOff && (known.hold == holdOn || coversAny(ps.past, live)):
		if err := ps.lk.SetLegalHold(ctx, sum, false); err != nil {
			ps.fail(fmt.Errorf("ledger: clearing the legal hold on blob %s (key %s): %w", addr[:16], id, err))
			// known.hold stays: on is cleared again by the next pass, unknown likewise
		} else {
			ps.succeed()
			known.hold = holdOff
			ps.rep.Cleared++
		}
	}
	if ps.p == nil {
		return
	}
	until, ok := retainUntil(ps.p, live)
	if !ok || !until.After(ps.now) || until.Unix() == known.until {
		return
	}
	if err := ps.lk.Retain(ctx, sum, until); err != nil {
		if cur, rerr := ps.lk.RetainUntil(ctx, sum); rerr == nil && !cur.Before(until) {
			ps.succeed() // already kept at least that long: the refusal was of a shortening
			known.until = until.Unix()
			return
		}
		ps.fail(fmt.Errorf("ledger: retaining blob %s (key %s) until %s: %w", addr[:16], id, until.Format(time.RFC3339), err))
		return
	}
	ps.succeed()
	known.until = until.Unix()
	ps.rep.Retained++
}

// coversAny reports whether one of holds covers one of scopes.
func coversAny(holds []Hold, scopes []*keyScope) bool {
	for i := range holds {
		for _, sc := range scopes {
			if holds[i].covers(sc) {
				return true
			}
		}
	}
	return false
}

// retainUntil returns when the last of scopes expires under p; ok is false when p keeps one
// of them (or one's month is unreadable, which retention reports).
func retainUntil(p *RetentionPolicy, scopes []*keyScope) (until time.Time, ok bool) {
	for _, sc := range scopes {
		month, err := time.Parse("2006-01", sc.Month)
		if err != nil {
			return time.Time{}, false
		}
		_, expires, ok := p.expiry(sc, month.AddDate(0, 1, 0))
		if !ok {
			return time.Time{}, false
		}
		if expires.After(until) {
			until = expires
		}
	}
	return until, true
}

// lockBlob brings the locks of one attachment in line once a record under one of its scopes
// references it: the call that makes "stored for a scope" lock the blob at once, rather than at
// the next pass. AppendRecord has the blobLocker call it after tying the blob to the record's
// scope and sealing the record; if it fails, ApplyLocks and ApplyRetention lock the blob.
// It returns nil for a blob store that does not lock objects and for a plain ledger.
func (l *Ledger) lockBlob(ctx context.Context, sum [32]byte) error {
	lk, ok := l.objectLocker()
	if !ok || l.dk == nil {
		return nil
	}
	if err := l.holds.lockLocks(ctx); err != nil {
		return err
	}
	defer l.holds.unlockLocks()
	id := blobKeyID(sum)
	bs, err := l.dk.readScope(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDestroyed) {
		return nil
	}
	if err != nil {
		return err
	}
	var live []*keyScope
	for _, s := range bs.Scopes {
		sc, err := l.dk.readScope(ctx, s)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDestroyed) {
			continue
		}
		if err != nil {
			return err
		}
		live = append(live, &sc)
	}
	_, err = l.stablePass(ctx, lk, l.holds.locks.policy, func(ps *lockPass) error {
		l.syncBlob(ctx, ps, id, bs.Blob, live)
		return nil
	})
	return err
}

// blobLocker runs lockBlob on a goroutine of its own for the attachments that media records tie
// to their scopes, one at a time, in the order they were tied.
type blobLocker struct {
	l       *Ledger
	q       chan [32]byte
	pending atomic.Int64 // queued or being locked
	cancel  context.CancelFunc
	done    chan struct{}
}

// blobLockQueue bounds the attachments waiting to be locked; beyond it they are left to the next
// ApplyLocks.
const blobLockQueue = 4096

// blobLockTimeout bounds the locking of one attachment, the wait for a pass running included:
// a blob store that hangs holds up a hold being placed (which waits for the pass lock) no
// longer than this. Close cancels it at once.
const blobLockTimeout = 30 * time.Second

func startBlobLocker(l *Ledger) *blobLocker {
	ctx, cancel := context.WithCancel(context.Background())
	b := &blobLocker{l: l, q: make(chan [32]byte, blobLockQueue), cancel: cancel, done: make(chan struct{})}
	go b.run(ctx)
	return b
}

// add queues sum to be locked, or leaves it to the next ApplyLocks if the queue is full.
func (b *blobLocker) add(sum [32]byte) {
	b.pending.Add(1)
	select {
	case b.q <- sum:
	default:
		b.pending.Add(-1)
		b.l.log.Warn("ledger: too many attachments waiting for their storage locks; the next ApplyLocks sets this one's", "sha256", hex.EncodeToString(sum[:]))
	}
}

func (b *blobLocker) run(ctx context.Context) {
	defer close(b.done)
	for {
		select {
		case <-ctx.Done():
			return
		case sum := <-b.q:
			cctx, cancel := context.WithTimeout(ctx, blobLockTimeout)
			err := b.l.lockBlob(cctx, sum)
			cancel()
			if err != nil && ctx.Err() == nil {
				b.l.log.Warn("ledger: locking an attachment in its storage; the next ApplyLocks retries", "sha256", hex.EncodeToString(sum[:]), "err", err)
			}
			b.pending.Add(-1)
		}
	}
}

// stop ends the goroutine, abandoning the locks still queued (the next ApplyLocks sets them).
func (b *blobLocker) stop() {
	b.cancel()
	<-b.done
}
