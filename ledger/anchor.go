package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/commseal/commseal/seal"
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
	a.Schema, a.Time = seal.AnchorSchema, a.Time.UTC()
	id := seal.IdentityDigest("anchor", a.Type, a.Authority, strconv.FormatUint(a.Size, 10))
	rc, err := l.submit(ctx, &request{kind: seal.KindAnchor, time: l.opts.Now().UTC(), identity: id, conv: anchorChain},
		1024+len(a.Checkpoint)+2*len(a.Token), jsonOf(a))
	return rc.Index, err
}
