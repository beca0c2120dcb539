package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/verify"
	"golang.org/x/mod/sumdb/tlog"
)

// latest returns the latest signed checkpoint (Size 0 if none).
func (l *Ledger) latest() seal.Checkpoint {
	l.cpMu.RLock()
	defer l.cpMu.RUnlock()
	return l.cp
}

// Checkpoint returns the latest signed checkpoint and its parsed form, or ErrNotFound if the
// ledger has none yet.
func (l *Ledger) Checkpoint() ([]byte, seal.Checkpoint, error) {
	l.cpMu.RLock()
	defer l.cpMu.RUnlock()
	if l.cpNote == nil {
		return nil, seal.Checkpoint{}, fmt.Errorf("%w: no checkpoint yet", ErrNotFound)
	}
	return append([]byte(nil), l.cpNote...), l.cp, nil
}

// SignCheckpoint signs a checkpoint of every durable entry now, unless the latest one already
// covers them all, and returns the latest checkpoint: after Append returns, SignCheckpoint makes
// the entry provable at once (Prove), without waiting for the policy.
func (l *Ledger) SignCheckpoint(ctx context.Context) ([]byte, seal.Checkpoint, error) {
	reply := make(chan error, 1)
	select {
	case l.checkpointer.signs <- reply:
	case <-l.checkpointer.done:
		return nil, seal.Checkpoint{}, ErrClosed
	case <-ctx.Done():
		return nil, seal.Checkpoint{}, ctx.Err()
	}
	select {
	case err := <-reply:
		if err != nil {
			return nil, seal.Checkpoint{}, err
		}
	case <-ctx.Done():
		return nil, seal.Checkpoint{}, ctx.Err()
	}
	return l.Checkpoint()
}

// checkpointer signs checkpoints on the policy (every CheckpointEvery entries, after
// CheckpointInterval with entries uncovered), on SignCheckpoint, and a last one on Close, on a
// goroutine of its own: the pipeline tells it each new durable size and goes on.
type checkpointer struct {
	l     *Ledger
	kick  chan struct{}   // a new durable size (l.Size); buffered, one pending kick is enough
	signs chan chan error // SignCheckpoint
	stop  chan struct{}
	done  chan struct{}
	err   error // of the last checkpoint, returned by Close
	at    time.Time
}

func newCheckpointer(l *Ledger) *checkpointer {
	c := &checkpointer{l: l, kick: make(chan struct{}, 1), signs: make(chan chan error), stop: make(chan struct{}), done: make(chan struct{}), at: l.opts.Now()}
	go c.run()
	return c
}

// durable tells the checkpointer that the ledger holds size entries, durably.
func (c *checkpointer) durable(size uint64) {
	if size < c.l.latest().Size+c.l.opts.CheckpointEvery { // the latest may cover more (Shared)
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	l := c.l
	tick := time.NewTicker(max(l.opts.CheckpointInterval/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.kick:
			if l.Size() >= l.latest().Size+l.opts.CheckpointEvery {
				_ = c.sign(false) // logged; the entries are durable either way
			}
		case <-tick.C:
			size := l.Size()
			if l.shared != nil {
				ctx, cancel := context.WithTimeout(context.Background(), sharedCallTimeout)
				size = l.sharedSize(ctx) // the other writers' entries count too
				cancel()
			}
			due := l.opts.Now().Sub(c.at) >= l.opts.CheckpointInterval
			if latest := l.latest().Size; size > latest && (due || size >= latest+l.opts.CheckpointEvery) {
				_ = c.sign(false) // logged; retried at the next tick
			}
		case reply := <-c.signs:
			reply <- c.sign(true)
		case <-c.stop:
			c.err = c.sign(true)
			return
		}
	}
}

// sign signs a checkpoint now; asked is set for SignCheckpoint and Close, which sign in a shared
// ledger whoever holds the lease (see checkpointNow).
func (c *checkpointer) sign(asked bool) error {
	err := c.l.checkpointNow(asked)
	if err == nil {
		c.at = c.l.opts.Now()
	}
	return err
}

// stopCheckpointer signs a last checkpoint of everything durable and stops the checkpointer.
func (l *Ledger) stopCheckpointer() {
	close(l.checkpointer.stop)
	<-l.checkpointer.done
	l.closeErr = l.checkpointer.err
}

// sharedCallTimeout bounds the store calls a shared ledger's checkpointer makes (the lease, the
// latest checkpoint, the log's size), so that a server that stops answering does not stop the
// checkpointer, nor Close.
const sharedCallTimeout = 30 * time.Second

// sharedSize returns the size of the shared log (this ledger's own if the store cannot say).
func (l *Ledger) sharedSize(ctx context.Context) uint64 {
	size, err := l.st.Size(ctx)
	if err != nil {
		l.log.Warn("ledger: reading the shared log's size", "err", err)
		return l.Size()
	}
	return max(size, l.Size())
}

// checkpointNow signs and stores a checkpoint of the durable tree. It runs on the checkpointer.
//
// A shared ledger signs the whole log, the other writers' entries too, when it holds the
// checkpoint lease or when asked (SignCheckpoint, Close: a caller who needs its entries covered
// now); otherwise it takes the latest checkpoint another writer stored. Two writers signing at
// once is safe: both compute the one tree from the one store, each checks that it extends the
// latest checkpoint stored, and the store keeps checkpoints in order (a smaller one is refused).
func (l *Ledger) checkpointNow(asked bool) error {
	ctx := context.Background()
	size := l.Size()
	if l.shared != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sharedCallTimeout)
		defer cancel()
		signer, err := l.sharedSigner(ctx)
		if err != nil || !signer && !asked {
			return err
		}
		size = l.sharedSize(ctx)
	}
	prev := l.latest()
	if size == 0 || size <= prev.Size {
		return nil
	}
	hr := verify.Hashes(ctx, l.st)
	root, err := seal.TreeHash(size, hr)
	if err != nil {
		l.log.Error("ledger: computing the tree hash for a checkpoint", "size", size, "err", err)
		return fmt.Errorf("ledger: tree hash at %d: %w", size, err)
	}
	cp := seal.Checkpoint{Origin: l.Origin(), Size: size, Root: root}
	// Never sign a head that does not extend the previous one.
	if err := extends(cp, prev, hr); err != nil {
		l.log.Error("ledger: refusing to sign an inconsistent checkpoint", "size", cp.Size, "previous", prev.Size, "err", err)
		return fmt.Errorf("%w: %w", ErrInconsistent, err)
	}
	signed, err := seal.SignCheckpoint(cp, l.keys.Signer)
	if err != nil {
		return fmt.Errorf("ledger: signing checkpoint: %w", err)
	}
	if err := l.st.PutCheckpoint(ctx, store.Checkpoint{Size: cp.Size, Note: signed}); err != nil {
		if l.shared != nil && errors.Is(err, store.ErrOutOfOrder) {
			// Another writer stored a checkpoint as large since this one looked: take it.
			return l.adoptStored(ctx)
		}
		l.log.Error("ledger: storing checkpoint failed", "size", cp.Size, "err", err)
		return fmt.Errorf("ledger: storing checkpoint at %d: %w", cp.Size, err)
	}
	l.cpMu.Lock()
	l.cp, l.cpNote = cp, signed
	l.cpMu.Unlock()
	l.raiseSize(cp.Size)
	l.log.Debug("ledger: checkpoint", "size", cp.Size, "root", cp.Root.String())
	return nil
}

// sharedSigner says whether this writer of a shared log signs checkpoints now. A writer that
// holds the store's checkpoint lease does (and so does every writer of a store without leases);
// before it signs, it takes the latest checkpoint stored by any writer, so that what it signs
// is checked against that one. A writer without the lease only takes it.
func (l *Ledger) sharedSigner(ctx context.Context) (bool, error) {
	signer := true
	if l.leases != nil {
		var err error
		if signer, err = l.leases.HoldLease(ctx, CheckpointLease); err != nil {
			l.log.Warn("ledger: the checkpoint lease", "err", err)
			signer = false
		}
	}
	return signer, l.adoptStored(ctx)
}

// extends checks, with a consistency proof from the stored hashes hr, that the tree of cp
// extends the tree of prev (trivially when prev is empty).
func extends(cp, prev seal.Checkpoint, hr tlog.HashReader) error {
	if prev.Size == 0 {
		return nil
	}
	p, err := seal.ConsistencyProof(cp.Size, prev.Size, hr)
	if err == nil {
		err = seal.CheckConsistency(p, cp.Size, cp.Root, prev.Size, prev.Root)
	}
	return err
}

// CheckpointLease is the name of the store lease (store.Leases) whose holder signs the
// checkpoints of a shared log (Options.Shared).
const CheckpointLease = "checkpoint"

// adoptStored makes the latest checkpoint in the store the ledger's own, if it is newer, once
// its signature is checked with the ledger's key, the stored tree reproduces its root, and it
// extends the checkpoint the ledger had: another writer of a shared log signed it.
func (l *Ledger) adoptStored(ctx context.Context) error {
	sc, err := l.st.LatestCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: reading latest checkpoint: %w", err)
	}
	prev := l.latest()
	if sc.Size <= prev.Size {
		return nil
	}
	cp, err := l.openStored(ctx, sc, sc.Size)
	if err == nil {
		if err = extends(cp, prev, verify.Hashes(ctx, l.st)); err != nil {
			err = fmt.Errorf("%w: the stored checkpoint of %d entries does not extend this ledger's of %d: %w", ErrInconsistent, cp.Size, prev.Size, err)
		}
	}
	if err != nil {
		l.log.Error("ledger: refusing a stored checkpoint", "size", sc.Size, "err", err)
		return err
	}
	l.cpMu.Lock()
	if cp.Size > l.cp.Size {
		l.cp, l.cpNote = cp, sc.Note
	}
	l.cpMu.Unlock()
	l.raiseSize(cp.Size)
	return nil
}

// raiseSize makes the durable size at least n: a shared ledger's checkpoint (signed here or
// taken from the store) may cover other writers' entries this ledger has not caught up with,
// and they are durable; proofs up to the checkpoint need the size to cover them.
func (l *Ledger) raiseSize(n uint64) {
	for {
		cur := l.size.Load()
		if n <= cur || l.size.CompareAndSwap(cur, n) {
			return
		}
	}
}
