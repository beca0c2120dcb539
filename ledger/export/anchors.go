package export

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
)

// anchorSet is the ledger's latest anchored checkpoint and its anchors (time-stamps and
// witness cosignatures), which a bundle carries as evidence.
type anchorSet struct {
	cp      seal.Checkpoint
	note    []byte // the signed note as its time-stamps hold it (else as the first cosignature does)
	entries []uint64
	anchors []seal.Anchor
}

// latestAnchors reads the anchors of the ledger's latest anchored checkpoint (plain entries of
// the ledger's own: reading them is no access), or nil if nothing is anchored.
func latestAnchors(ctx context.Context, l *ledger.Ledger) (*anchorSet, error) {
	es, err := l.LatestAnchors(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: the latest anchors: %w", err)
	}
	if len(es) == 0 {
		return nil, nil
	}
	s := &anchorSet{}
	for _, e := range es {
		s.entries, s.anchors = append(s.entries, e.Index), append(s.anchors, e.Anchor)
	}
	// The note the time-stamps stamp (their imprint is its SHA-256); with none, a cosigned
	// note, which opens with the ledger's key like the plain one.
	s.note = s.anchors[0].Checkpoint
	for _, a := range s.anchors {
		if a.Type == seal.AnchorTimestamp {
			s.note = a.Checkpoint
			break
		}
	}
	v, err := seal.NewVerifier(l.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if s.cp, err = seal.OpenCheckpoint(s.note, v); err != nil {
		return nil, fmt.Errorf("export: the latest anchored checkpoint: %w", err)
	}
	return s, nil
}

// covers reports whether the anchored checkpoint's tree holds every exported entry.
func (s *anchorSet) covers(entries []*exported) bool {
	for _, x := range entries {
		if x.e.Index >= s.cp.Size {
			return false
		}
	}
	return true
}

// evidence adds the anchors' files to a bundle proved against a checkpoint of size proved,
// whose latest checkpoint has size latest: the checkpoint, each token and cosigned note,
// the list (verify.BundleAnchors), and, unless the bundle is proved against the anchored
// checkpoint itself, the proof that its tree is a prefix of the latest one's.
func (s *anchorSet) evidence(ctx context.Context, l *ledger.Ledger, proved, latest uint64, files map[string][]byte) error {
	if s == nil {
		return nil
	}
	files[verify.BundleAnchorCheckpointPath(s.cp.Size)] = s.note
	var list []byte
	for k, a := range s.anchors {
		line := verify.BundleAnchor{Entry: s.entries[k], Type: a.Type, Size: a.Size, Authority: a.Authority, Time: a.Time,
			File: verify.BundleAnchorFilePath(s.entries[k], a.Type)}
		switch a.Type {
		case seal.AnchorTimestamp:
			files[line.File] = a.Token
			if string(a.Checkpoint) != string(s.note) {
				return fmt.Errorf("export: anchor entry %d stamps another note of size %d", s.entries[k], a.Size)
			}
		case seal.AnchorCosignature:
			files[line.File] = a.Checkpoint
		default:
			continue
		}
		b, err := json.Marshal(&line)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		list = append(append(list, b...), '\n')
	}
	files[verify.BundleAnchors] = list
	if proved != s.cp.Size {
		p, err := consistency(ctx, l, s.cp.Size, latest)
		if err != nil {
			return err
		}
		files[verify.BundleAnchorConsistencyPath(s.cp.Size)] = p
	}
	return nil
}
