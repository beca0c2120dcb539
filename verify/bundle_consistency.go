package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/commseal/commseal/seal"
	"golang.org/x/mod/sumdb/note"
)

// BundleConsistencyProof is evidence/consistency: the RFC 6962 proof that the tree of
// evidence/checkpoint (OldSize) is a prefix of the tree of evidence/latest-checkpoint (NewSize),
// the newest checkpoint the ledger had signed when the bundle was written.
//
// Its text is a first line "<old size> <new size>" (decimal, one space) and then one standard
// base64 SHA-256 hash per line, every line ending in a newline. When both sizes are the same
// the proof is empty: the file is the first line alone and both checkpoints have the same root.
type BundleConsistencyProof struct {
	OldSize, NewSize uint64
	Hashes           []seal.Hash
}

// maxConsistencyHashes bounds a consistency proof: RFC 6962 proofs of trees below 2^63 leaves
// have fewer than 2*63 hashes.
const maxConsistencyHashes = 128

// Marshal returns the file's text.
func (p *BundleConsistencyProof) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d %d\n", p.OldSize, p.NewSize)
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseBundleConsistency parses evidence/consistency strictly: canonical decimal sizes with
// 0 < old <= new, hashes of exactly 32 bytes in canonical base64, no hash when the sizes are
// equal, a newline after every line and nothing else. It does not check the proof.
func ParseBundleConsistency(b []byte) (*BundleConsistencyProof, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("empty, or the last line does not end in a newline")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if len(lines)-1 > maxConsistencyHashes {
		return nil, fmt.Errorf("%d hashes, more than any proof has", len(lines)-1)
	}
	olds, news, ok := strings.Cut(lines[0], " ")
	if !ok {
		return nil, errors.New(`first line is not "<old size> <new size>"`)
	}
	p := &BundleConsistencyProof{}
	var err error
	if p.OldSize, err = canonicalUint(olds); err != nil {
		return nil, fmt.Errorf("old size: %w", err)
	}
	if p.NewSize, err = canonicalUint(news); err != nil {
		return nil, fmt.Errorf("new size: %w", err)
	}
	if p.OldSize == 0 || p.OldSize > p.NewSize {
		return nil, fmt.Errorf("sizes %d and %d: want 0 < old <= new", p.OldSize, p.NewSize)
	}
	if p.OldSize == p.NewSize && len(lines) > 1 {
		return nil, errors.New("hashes in a proof between equal sizes")
	}
	for k, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != len(seal.Hash{}) || base64.StdEncoding.EncodeToString(h) != l {
			return nil, fmt.Errorf("hash %d is not 32 bytes in base64", k+1)
		}
		p.Hashes = append(p.Hashes, seal.Hash(h))
	}
	return p, nil
}

// canonicalUint parses a decimal number with no sign and no leading zero.
func canonicalUint(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not a canonical decimal number", s)
	}
	return n, nil
}

// checkBundleConsistency checks evidence/latest-checkpoint against the verifier key and the
// consistency proof from cp (evidence/checkpoint, already checked) to it, and returns the
// latest checkpoint.
func checkBundleConsistency(files map[string][]byte, cp seal.Checkpoint, v note.Verifier) (seal.Checkpoint, error) {
	lb, ok := files[BundleLatestCheckpoint]
	if !ok {
		return seal.Checkpoint{}, bad(BundleLatestCheckpoint, "missing", nil)
	}
	latest, err := seal.OpenCheckpoint(lb, v)
	if err != nil {
		return seal.Checkpoint{}, bad(BundleLatestCheckpoint, "does not verify", err)
	}
	if latest.Origin != cp.Origin {
		return seal.Checkpoint{}, bad(BundleLatestCheckpoint, "names another origin than "+BundleCheckpoint, nil)
	}
	if err := checkPrefix(files, BundleConsistency, cp, latest); err != nil {
		return seal.Checkpoint{}, err
	}
	return latest, nil
}

// checkPrefix checks the consistency proof in file name (BundleConsistencyProof) that old's
// tree is a prefix of latest's.
func checkPrefix(files map[string][]byte, name string, old, latest seal.Checkpoint) error {
	pb, ok := files[name]
	if !ok {
		return bad(name, "missing", nil)
	}
	p, err := ParseBundleConsistency(pb)
	if err != nil {
		return bad(name, "malformed", err)
	}
	if p.OldSize != old.Size || p.NewSize != latest.Size {
		return bad(name, fmt.Sprintf("is from %d to %d, the checkpoints are of %d and %d", p.OldSize, p.NewSize, old.Size, latest.Size), nil)
	}
	if p.OldSize == p.NewSize {
		if latest.Root != old.Root {
			return bad(name, "the two checkpoints have the same size and other roots", nil)
		}
		return nil
	}
	if err := seal.CheckConsistency(p.Hashes, latest.Size, latest.Root, old.Size, old.Root); err != nil {
		return bad(name, "does not verify", err)
	}
	return nil
}

// bundleAnchors checks the bundle's anchors (BundleAnchors): the anchored checkpoint is the
// bundle's own checkpoint (cp) or proved a prefix of the latest one (already checked), and
// the anchors are checked as the ledger pass checks them.
func bundleAnchors(files map[string][]byte, cp, latest seal.Checkpoint, v note.Verifier, opts Anchors) ([]AnchoredCheckpoint, error) {
	list, ok := files[BundleAnchors]
	if !ok {
		for name := range files {
			if strings.HasPrefix(name, BundleAnchorDir+"/") {
				return nil, bad(name, "an anchor file without "+BundleAnchors, nil)
			}
		}
		if opts.Witnesses != nil {
			return nil, fmt.Errorf("%w: the bundle carries no cosigned checkpoint", ErrWitnessPolicy)
		}
		return nil, nil
	}
	var anchors []anchorEntry
	named := map[string]bool{}
	if err := eachLine(BundleAnchors, list, func(line []byte) error {
		var ba BundleAnchor
		if err := strictJSON(line, &ba); err != nil {
			return bad(BundleAnchors, "malformed line", err)
		}
		if ba.File != BundleAnchorFilePath(ba.Entry, ba.Type) {
			return bad(BundleAnchors, fmt.Sprintf("anchor entry %d: file %q is not where its type goes", ba.Entry, ba.File), nil)
		}
		b, ok := files[ba.File]
		if !ok {
			return bad(BundleAnchors, "names "+ba.File+", which the bundle lacks", nil)
		}
		named[ba.File] = true
		a := seal.Anchor{Schema: seal.AnchorSchema, Type: ba.Type, Size: ba.Size, Authority: ba.Authority, Time: ba.Time}
		switch ba.Type {
		case seal.AnchorTimestamp:
			cpFile := BundleAnchorCheckpointPath(ba.Size)
			if a.Checkpoint, ok = files[cpFile]; !ok {
				return bad(BundleAnchors, "a time-stamp without "+cpFile, nil)
			}
			named[cpFile] = true
			a.Token = b
		case seal.AnchorCosignature:
			a.Checkpoint = b
		default:
			return bad(BundleAnchors, fmt.Sprintf("anchor entry %d: unknown type %q", ba.Entry, ba.Type), nil)
		}
		anchors = append(anchors, anchorEntry{index: ba.Entry, a: a})
		return nil
	}); err != nil {
		return nil, err
	}
	roots := map[uint64]seal.Hash{cp.Size: cp.Root}
	for _, ae := range anchors {
		acp, err := seal.OpenCheckpoint(ae.a.Checkpoint, v)
		if err != nil {
			return nil, bad(BundleAnchorFilePath(ae.index, ae.a.Type), "its checkpoint does not verify", err)
		}
		if _, done := roots[acp.Size]; done {
			continue
		}
		name := BundleAnchorConsistencyPath(acp.Size)
		named[name] = true
		if err := checkPrefix(files, name, acp, latest); err != nil {
			return nil, err
		}
		roots[acp.Size] = acp.Root
	}
	for name := range files {
		if strings.HasPrefix(name, BundleAnchorDir+"/") && name != BundleAnchors && !named[name] {
			return nil, bad(name, "no anchor names this file", nil)
		}
	}
	out, err := checkAnchors(anchors, v, opts, roots, anchors[len(anchors)-1].index)
	var ae *AlteredError
	if errors.As(err, &ae) {
		return nil, &BundleError{File: BundleAnchors, Entry: &ae.Index, Reason: ae.Reason, Err: ae.Err}
	}
	return out, err
}
