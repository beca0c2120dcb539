package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/commseal/commseal/seal"
)

// AnchorSchema names the body of an anchor entry (Anchor).
const AnchorSchema = "commseal.anchor/v1"

// Anchor types.
const (
	// AnchorTimestamp is an RFC 3161 time-stamp token whose message imprint is the SHA-256 of
	// the signed checkpoint note.
	AnchorTimestamp = "rfc3161"
	// AnchorCosignature is a witness's tlog-cosignature/v1 of the checkpoint (C2SP
	// tlog-witness): Checkpoint is the note with the witness's cosignature line.
	AnchorCosignature = "cosignature"
)

// Anchor is evidence from outside the firm about one of the ledger's signed checkpoints: a
// time-stamp authority's token that the checkpoint existed at Time, or a witness's
// cosignature that it saw the checkpoint and no other history. It is sealed as an anchor
// entry, plain like the ledger's other own entries (it holds no content), so that an auditor
// finds it with the verifier key alone.
type Anchor struct {
	Schema string `json:"schema"` // AnchorSchema (set by AppendAnchor)
	Type   string `json:"type"`   // AnchorTimestamp or AnchorCosignature
	Size   uint64 `json:"size"`   // the anchored checkpoint's tree size
	// Checkpoint is the signed checkpoint note byte for byte (a token's imprint is its
	// SHA-256); for a cosignature, with the witness's cosignature line added.
	Checkpoint []byte    `json:"checkpoint"`
	Authority  string    `json:"authority"`       // the TSA's name or the witness's key name
	Time       time.Time `json:"time"`            // the token's time, or the cosignature's
	Token      []byte    `json:"token,omitempty"` // the RFC 3161 token (DER), for AnchorTimestamp
}

// ErrBadAnchor is wrapped by AppendAnchor for an anchor that is not whole.
var ErrBadAnchor = errors.New("ledger: bad anchor")

// anchorChain is the conversation digest that chains anchor entries (an empty platform, which
// no captured message or record may have).
var anchorChain = seal.ConversationDigest("", "commseal", "anchors")

// AppendAnchor seals a as an anchor entry and returns its index once it is durable. An anchor
// of the same type, authority and size already sealed is not sealed again (its index is
// returned), so a retried submission leaves one entry. The checkpoint must open with the
// ledger's verifier key and name size a.Size.
func (l *Ledger) AppendAnchor(ctx context.Context, a Anchor) (uint64, error) {
	switch {
	case a.Type != AnchorTimestamp && a.Type != AnchorCosignature:
		return 0, fmt.Errorf("%w: type %q (want %s or %s)", ErrBadAnchor, a.Type, AnchorTimestamp, AnchorCosignature)
	case a.Authority == "" || a.Time.IsZero():
		return 0, fmt.Errorf("%w: no authority or time", ErrBadAnchor)
	case a.Type == AnchorTimestamp && len(a.Token) == 0:
		return 0, fmt.Errorf("%w: a time-stamp without its token", ErrBadAnchor)
	}
	cp, err := seal.OpenCheckpoint(a.Checkpoint, l.opts.Signing.Verifier)
	if err != nil {
		return 0, fmt.Errorf("%w: the checkpoint: %w", ErrBadAnchor, err)
	}
	if cp.Size != a.Size || cp.Origin != l.Origin() {
		return 0, fmt.Errorf("%w: the checkpoint is of %s at size %d, not of this ledger at %d", ErrBadAnchor, cp.Origin, cp.Size, a.Size)
	}
	a.Schema, a.Time = AnchorSchema, a.Time.UTC()
	id := seal.IdentityDigest("anchor", a.Type, a.Authority, strconv.FormatUint(a.Size, 10))
	rc, err := l.submit(ctx, &request{kind: seal.KindAnchor, time: l.opts.Now().UTC(), identity: id, conv: anchorChain},
		1024+len(a.Checkpoint)+2*len(a.Token), jsonOf(a))
	return rc.Index, err
}
