// Package anchor anchors a ledger's checkpoints outside the firm. A signed checkpoint proves
// what the ledger held, but only by the firm's own key: the firm could re-sign a rewritten
// history, or backdate one. An Anchorer has each new signed checkpoint time-stamped by RFC 3161
// time-stamp authorities (package anchor/tsa) and cosigned by C2SP witnesses (package
// anchor/witness), and seals each token and each cosignature as an anchor entry
// (ledger.AppendAnchor, seal.Anchor), where an auditor finds them with the verifier key alone
// (package verify checks them).
//
// It runs beside the writer, never on the append path: an authority that is down delays
// anchoring (the next step tries again, with the newest checkpoint) and never blocks an
// append; Health reports each authority's last success and failure. Each step anchors only the
// newest checkpoint, and seals its anchors before it asks for the next one's, so tokens come
// in the order of their checkpoints (tsa.CheckOrder relies on it).
package anchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
)

// DefaultEvery is how often Run anchors the newest checkpoint by default: public
// time-stamp authorities limit how often one client may ask.
const DefaultEvery = time.Minute

// Options configures an Anchorer.
type Options struct {
	TSA       *tsa.Client       // the time-stamp authorities; nil: no time-stamps
	Witnesses []*witness.Client // the witnesses; none: no cosignatures
	Every     time.Duration     // how often Run steps; default DefaultEvery
	Logger    *slog.Logger      // default discards
}

// Status is what Health says of one authority.
type Status struct {
	Type      string    `json:"type"` // seal.AnchorTimestamp or seal.AnchorCosignature
	Authority string    `json:"authority"`
	Size      uint64    `json:"size"`             // the last checkpoint size it anchored (0: none yet)
	At        time.Time `json:"at,omitzero"`      // when
	Error     string    `json:"error,omitempty"`  // the last failure, if the last attempt failed
	Failing   time.Time `json:"failing,omitzero"` // since when it has been failing
	Entry     uint64    `json:"entry,omitempty"`  // the anchor entry of Size
}

// Anchorer anchors one ledger's checkpoints. It is safe for concurrent use; steps run one at a
// time.
type Anchorer struct {
	l    *ledger.Ledger
	opts Options
	log  *slog.Logger

	step sync.Mutex // held by Step; taken before mu
	mu   sync.Mutex // guards status and own
	// status is per authority, TSAs first, in configured order.
	status []Status
	// own is the ledger size just after the last step that sealed anchors. That step's
	// checkpoint size, base, is the largest Size in status (only a success sets a Size, and
	// checkpoints only grow). A checkpoint no larger than own covers nothing newer than base
	// but those anchors, so an authority that anchored base does not anchor it (an idle
	// ledger would otherwise grow by a round of anchors per checkpoint forever). One that
	// failed at base does: it covers base.
	own uint64
}

// New returns an Anchorer of l. It needs at least one authority.
func New(l *ledger.Ledger, opts Options) (*Anchorer, error) {
	if opts.TSA == nil && len(opts.Witnesses) == 0 {
		return nil, errors.New("anchor: no time-stamp authority and no witness")
	}
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	a := &Anchorer{l: l, opts: opts, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if opts.TSA != nil {
		for _, t := range opts.TSA.TSAs() {
			a.status = append(a.status, Status{Type: seal.AnchorTimestamp, Authority: t.Name})
		}
	}
	for _, w := range opts.Witnesses {
		a.status = append(a.status, Status{Type: seal.AnchorCosignature, Authority: w.Witness().Name()})
	}
	return a, nil
}

// Health returns each authority's status.
func (a *Anchorer) Health() []Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Status(nil), a.status...)
}

// Run steps every Options.Every until ctx ends, and returns ctx's error; a step's failure is
// logged and the next step tries again.
func (a *Anchorer) Run(ctx context.Context) error {
	t := time.NewTicker(a.opts.Every)
	defer t.Stop()
	for {
		if _, err := a.Step(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("anchor: step failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Step anchors the ledger's newest signed checkpoint with every authority that has not
// anchored it yet, and returns how many anchor entries it sealed. An authority's failure is
// recorded in Health and logged, not returned: only a failure to seal is (ledger errors).
func (a *Anchorer) Step(ctx context.Context) (int, error) {
	a.step.Lock()
	defer a.step.Unlock()
	note, cp, err := a.l.Checkpoint()
	if errors.Is(err, ledger.ErrNotFound) {
		return 0, nil // nothing signed yet
	}
	if err != nil {
		return 0, fmt.Errorf("anchor: %w", err)
	}
	a.mu.Lock()
	var base uint64
	for _, s := range a.status {
		base = max(base, s.Size)
	}
	var todo []int // the authorities to ask, and their statuses before this step
	var before []Status
	for i, s := range a.status {
		if s.Size < cp.Size && (cp.Size > a.own || s.Size < base) {
			todo, before = append(todo, i), append(before, s)
		}
	}
	a.mu.Unlock()
	if len(todo) == 0 {
		return 0, nil
	}
	// Each authority's anchor is sealed as soon as it comes: one that hangs holds up no other.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		sealed  int
		sealErr error
	)
	for k, i := range todo {
		wg.Go(func() {
			var entry uint64
			an, err := a.obtain(ctx, i, before[k], note, cp)
			if err == nil {
				if entry, err = a.l.AppendAnchor(ctx, *an); err != nil {
					err = fmt.Errorf("anchor: sealing %s's anchor of size %d: %w", an.Authority, cp.Size, err)
					mu.Lock()
					sealErr = errors.Join(sealErr, err)
					mu.Unlock()
				} else {
					mu.Lock()
					sealed++
					mu.Unlock()
				}
			}
			a.record(i, cp.Size, entry, err)
		})
	}
	wg.Wait()
	if sealed > 0 {
		a.mu.Lock()
		a.own = a.l.Size()
		a.mu.Unlock()
	}
	return sealed, sealErr
}

// obtain asks authority i, whose status is st, to anchor the checkpoint note (of cp).
func (a *Anchorer) obtain(ctx context.Context, i int, st Status, note []byte, cp seal.Checkpoint) (*seal.Anchor, error) {
	if st.Type == seal.AnchorTimestamp {
		tok, err := a.opts.TSA.Stamp(ctx, st.Authority, note)
		if err != nil {
			return nil, err
		}
		return &seal.Anchor{Type: seal.AnchorTimestamp, Size: cp.Size, Checkpoint: note, Authority: st.Authority,
			Time: tok.Time, Token: tok.DER}, nil
	}
	w := a.opts.Witnesses[i-(len(a.status)-len(a.opts.Witnesses))]
	cos, err := w.Cosign(ctx, note, st.Size, func(ctx context.Context, old uint64) ([]seal.Hash, error) {
		return a.l.ConsistencyProof(ctx, old, cp.Size)
	})
	if err != nil {
		return nil, err
	}
	if len(cos) == 0 {
		return nil, fmt.Errorf("anchor: witness %s returned no cosignature", st.Authority)
	}
	cosigned, err := seal.AddCosignatures(note, cos...)
	if err != nil {
		return nil, fmt.Errorf("anchor: %w", err)
	}
	return &seal.Anchor{Type: seal.AnchorCosignature, Size: cp.Size, Checkpoint: cosigned, Authority: st.Authority,
		Time: cos[0].Timestamp()}, nil
}

// record notes the outcome of authority i's attempt at size.
func (a *Anchorer) record(i int, size, entry uint64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &a.status[i]
	now := time.Now().UTC()
	if err == nil {
		s.Size, s.At, s.Entry, s.Error, s.Failing = size, now, entry, "", time.Time{}
		a.log.Info("anchor: checkpoint anchored", "type", s.Type, "authority", s.Authority, "size", size, "entry", entry)
		return
	}
	if s.Error == "" {
		s.Failing = now
	}
	s.Error = err.Error()
	a.log.Warn("anchor: checkpoint not anchored; the next step tries again", "type", s.Type, "authority", s.Authority, "size", size, "err", err)
}
