package verify

import (
	"cmp"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/commseal/commseal/anchor/tsa"
	"github.com/commseal/commseal/seal"
	"golang.org/x/mod/sumdb/note"
)

// Anchors says how Ledger checks the ledger's anchor entries (seal.Anchor): the RFC 3161
// tokens and witness cosignatures over its checkpoints. Every anchor entry's checkpoint must
// be one of this ledger's, with the root the entries give at its size, whatever is configured.
type Anchors struct {
	// TSARoots are the roots a token's TSA certificate must chain to; nil leaves the tokens'
	// signatures unchecked (reported as such).
	TSARoots *x509.CertPool
	// Witnesses is the policy "log key plus k of n witnesses"; nil leaves cosignatures
	// unchecked. With a policy, the latest cosigned checkpoint must meet it.
	Witnesses *seal.WitnessPolicy
}

// AnchoredCheckpoint is what the anchor entries say of one checkpoint.
type AnchoredCheckpoint struct {
	Size       uint64
	Checkpoint []byte   // the signed note, as its time-stamps hold it (a token's imprint is its SHA-256), else as its first cosignature does
	Stamps     []Stamp  // its time-stamps, in ledger order
	Witnessed  []string // the names of the witnesses whose cosignatures check (with a policy)
	Cosigned   int      // the cosignature anchor entries of it
	Quorum     bool     // the witness policy is met
	Entries    []uint64 // its anchor entries
}

// Stamp is a checked time-stamp token.
type Stamp struct {
	Entry    uint64
	TSA      string    // the TSA's name as the anchor entry gives it
	Time     time.Time // the token's time
	Accuracy time.Duration
	Checked  bool   // its signature and chain were checked against Anchors.TSARoots
	Token    []byte // DER
}

// anchorEntry is an anchor entry as the pass meets it.
type anchorEntry struct {
	index uint64
	a     seal.Anchor
}

// anchor parses the plaintext of the anchor entry at index.
func parseAnchor(index uint64, plaintext []byte) (anchorEntry, *AlteredError) {
	var a seal.Anchor
	if err := json.Unmarshal(plaintext, &a); err != nil || a.Schema != seal.AnchorSchema {
		return anchorEntry{}, &AlteredError{Index: index, Reason: "anchor entry is not a " + seal.AnchorSchema + " anchor"}
	}
	return anchorEntry{index: index, a: a}, nil
}

// checkAnchors checks anchor entries, in ledger order, against the ledger's checkpoints
// (roots: the root of the ledger at each checkpoint size known to be its own) and opts. at is
// the index an order problem is reported at.
func checkAnchors(anchors []anchorEntry, v note.Verifier, opts Anchors, roots map[uint64]seal.Hash, at uint64) ([]AnchoredCheckpoint, error) {
	byCP := map[uint64]*AnchoredCheckpoint{}
	var order []tsa.Anchor
	for _, ae := range anchors {
		a := ae.a
		bad := func(format string, args ...any) error {
			return &AlteredError{Index: ae.index, Reason: "anchor entry: " + fmt.Sprintf(format, args...)}
		}
		cp, err := seal.OpenCheckpoint(a.Checkpoint, v)
		if err != nil {
			return nil, bad("its checkpoint does not open with the ledger's key: %v", err)
		}
		if cp.Size != a.Size {
			return nil, bad("names size %d, its checkpoint %d", a.Size, cp.Size)
		}
		root, ok := roots[cp.Size]
		if !ok {
			return nil, bad("its checkpoint of size %d is not among the ledger's checkpoints", cp.Size)
		}
		if root != cp.Root {
			return nil, bad("its checkpoint of size %d has another root than the ledger's: the authority saw another tree (forked or rewritten)", cp.Size)
		}
		ac := byCP[cp.Size]
		if ac == nil {
			ac = &AnchoredCheckpoint{Size: cp.Size}
			byCP[cp.Size] = ac
		}
		ac.Entries = append(ac.Entries, ae.index)
		switch a.Type {
		case seal.AnchorTimestamp:
			st := Stamp{Entry: ae.index, TSA: a.Authority, Time: a.Time, Token: a.Token}
			if len(ac.Stamps) == 0 {
				ac.Checkpoint = a.Checkpoint
			}
			if opts.TSARoots != nil {
				tok, err := tsa.Verify(a.Token, a.Checkpoint, opts.TSARoots)
				if err != nil {
					return nil, bad("time-stamp of %s: %v", a.Authority, err)
				}
				st.Time, st.Accuracy, st.Checked = tok.Time, tok.Accuracy, true
			}
			ac.Stamps = append(ac.Stamps, st)
			order = append(order, tsa.Anchor{Size: cp.Size, Time: st.Time, Accuracy: st.Accuracy, TSA: a.Authority})
		case seal.AnchorCosignature:
			ac.Cosigned++
			if ac.Checkpoint == nil {
				ac.Checkpoint = a.Checkpoint
			}
		default:
			return nil, bad("unknown type %q", a.Type)
		}
	}
	if back := tsa.CheckOrder(order); len(back) > 0 {
		return nil, &AlteredError{Index: at, Reason: "anchors: " + back[0].Error(), Err: &back[0]}
	}
	out := make([]AnchoredCheckpoint, 0, len(byCP))
	for _, ac := range byCP {
		out = append(out, *ac)
	}
	slices.SortFunc(out, func(a, b AnchoredCheckpoint) int { return cmp.Compare(a.Size, b.Size) })
	if pol := opts.Witnesses; pol != nil {
		if err := checkWitnesses(anchors, pol, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// checkWitnesses gathers each checkpoint's cosignatures from its anchor entries and checks
// them with the policy; the latest cosigned checkpoint must meet it.
func checkWitnesses(anchors []anchorEntry, pol *seal.WitnessPolicy, cps []AnchoredCheckpoint) error {
	cos := map[uint64][]seal.Cosignature{}
	for _, ae := range anchors {
		if ae.a.Type != seal.AnchorCosignature {
			continue
		}
		_, cs, err := pol.Check(ae.a.Checkpoint)
		if err != nil && !errors.Is(err, seal.ErrQuorum) {
			return &AlteredError{Index: ae.index, Reason: "anchor entry: cosignature: " + err.Error()}
		}
		cos[ae.a.Size] = append(cos[ae.a.Size], cs...)
	}
	latest := -1
	for k := range cps {
		ac := &cps[k]
		if ac.Cosigned == 0 {
			continue
		}
		merged, err := seal.AddCosignatures(ac.Checkpoint, cos[ac.Size]...)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		_, valid, err := pol.Check(merged)
		for _, c := range valid {
			if !slices.Contains(ac.Witnessed, c.Name) {
				ac.Witnessed = append(ac.Witnessed, c.Name)
			}
		}
		ac.Quorum = err == nil
		latest = k
	}
	if latest < 0 {
		return fmt.Errorf("%w: no checkpoint is cosigned by a witness of the policy", ErrWitnessPolicy)
	}
	if !cps[latest].Quorum {
		return fmt.Errorf("%w: the latest cosigned checkpoint (size %d) has %d of the witnesses the policy needs", ErrWitnessPolicy, cps[latest].Size, len(cps[latest].Witnessed))
	}
	return nil
}

// ErrWitnessPolicy is returned by Ledger when Options.Anchors.Witnesses is set and the latest
// checkpoint cosigned by the ledger's witnesses does not meet it (or none is cosigned).
var ErrWitnessPolicy = errors.New("verify: witness policy not met")
