package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// ErrBadAnchor is wrapped by AppendAnchor for an anchor that is not whole.
var ErrBadAnchor = errors.New("ledger: bad anchor")

// anchorChain is the conversation digest that chains anchor entries (an empty platform, which
// no captured message or record may have).
var anchorChain = seal.ConversationDigest("", "commseal", "anchors")

// AppendAnchor seals a (see seal.Anchor) as an anchor entry and returns its index once it is durable. An anchor
// of the same type, authority and size already sealed is not sealed again (its index is
// returned), so a retried submission leaves one entry. The checkpoint must open with the
// ledger's verifier key and name size a.Size.
func (l *Ledger) AppendAnchor(ctx context.Context, a seal.Anchor) (uint64, error) {
	switch {
	case a.Type != seal.AnchorTimestamp && a.Type != seal.AnchorCosignature:
		return 0, fmt.Errorf("%w: type %q (want %s or %s)", ErrBadAnchor, a.Type, seal.AnchorTimestamp, seal.AnchorCosignature)
	case a.Authority == "" || a.Time.IsZero():
		return 0, fmt.Errorf("%w: no authority or time", ErrBadAnchor)
	case a.Type == seal.AnchorTimestamp && len(a.Token) == 0:
		return 0, fmt.Errorf("%w: a time-stamp without its token", ErrBadAnchor)
	}
	cp, err := seal.OpenCheckpoint(a.Checkpoint, l.opts.Signing.Verifier)
	if err != nil {
		return 0, fmt.Errorf("%w: the checkpoint: %w", ErrBadAnchor, err)
	}
	if cp.Size != a.Size || cp.Origin != l.Origin() {
		return 0, fmt.Errorf("%w: the checkpoint is of %s at size %d, not of this ledger at %d", ErrBadAnchor, cp.Origin, cp.Size, a.Size)
	}
	a.Schema, a.Time, a.Prev = seal.AnchorSchema, a.Time.UTC(), nil
	id := seal.IdentityDigest("anchor", a.Type, a.Authority, strconv.FormatUint(a.Size, 10))
	l.anchorMu.Lock() // the previous anchor entry stays the latest until this one is sealed
	defer l.anchorMu.Unlock()
	if dup, ok, err := l.idx.lookup(ctx, id); err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	} else if ok {
		return dup, nil
	}
	prev, ok, err := l.idx.lastInConversation(ctx, anchorChain)
	if err != nil {
		return 0, fmt.Errorf("ledger: finding the latest anchor entry: %w", err)
	}
	if ok {
		a.Prev = &prev
	}
	rc, err := l.submit(ctx, &request{kind: seal.KindAnchor, time: l.opts.Now().UTC(), identity: id, conv: anchorChain},
		1024+len(a.Checkpoint)+2*len(a.Token), jsonOf(a))
	return rc.Index, err
}

// maxAnchorsPerCheckpoint bounds the walk of LatestAnchors.
const maxAnchorsPerCheckpoint = 256

// AnchorEntry is an anchor entry read back: its ledger index and its anchor.
type AnchorEntry struct {
	Index uint64
	seal.Anchor
}

// LatestAnchors returns the anchor entries of the latest anchored checkpoint (its
// time-stamps and cosignatures, in ledger order), read back along the anchor chain; none if
// nothing is anchored. An export carries them (package ledger/export).
func (l *Ledger) LatestAnchors(ctx context.Context) ([]AnchorEntry, error) {
	l.anchorMu.Lock()
	i, ok, err := l.idx.lastInConversation(ctx, anchorChain)
	l.anchorMu.Unlock()
	if err != nil || !ok {
		return nil, err
	}
	var out []AnchorEntry
	size := uint64(0)
	for range maxAnchorsPerCheckpoint {
		e, err := l.Get(ctx, i)
		if err != nil {
			return nil, err
		}
		var a seal.Anchor
		if e.Leaf.Kind != seal.KindAnchor || json.Unmarshal(e.Body, &a) != nil {
			return nil, fmt.Errorf("%w: entry %d on the anchor chain is not an anchor entry", store.ErrCorrupt, i)
		}
		if len(out) > 0 && a.Size != size {
			break
		}
		size = a.Size
		out = append(out, AnchorEntry{Index: i, Anchor: a})
		if a.Prev == nil {
			break
		}
		if *a.Prev >= i {
			return nil, fmt.Errorf("%w: anchor entry %d names a later one before it", store.ErrCorrupt, i)
		}
		i = *a.Prev
	}
	slices.Reverse(out)
	return out, nil
}
