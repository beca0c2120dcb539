package seal

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Frontier is the right edge of a Merkle tree: the roots of the perfect subtrees that make up a
// tree of n leaves, one per set bit of n. It is all an appender or a streaming verifier needs to
// produce stored hashes and the root hash, in memory that grows with log2(n), not n.
//
// The zero value is the empty tree.
type Frontier struct {
	n     uint64
	roots []Hash // roots of the perfect subtrees, largest (leftmost) first
}

// Size returns the number of leaves.
func (f *Frontier) Size() uint64 { return f.n }

// Append adds a leaf with the given leaf hash and appends to out the stored hashes it creates,
// in the order and layout of tlog.StoredHashes: the leaf hash, then the root of every subtree
// the leaf completes.
func (f *Frontier) Append(leafHash Hash, out []Hash) []Hash {
	out, _ = f.AppendSubtree(0, leafHash, append(out, leafHash)) // a leaf can follow any tree
	return out
}

// AppendSubtree adds a perfect subtree of 2^level leaves whose root hash is h, as if its
// leaves were appended one by one, and appends to out the stored hashes that this completes
// above the subtree's root (the hashes inside the subtree are the caller's). The tree's size
// must be a multiple of 2^level. A verifier that checks aligned blocks of leaves in parallel
// uses it to join the blocks in order.
func (f *Frontier) AppendSubtree(level int, h Hash, out []Hash) ([]Hash, error) {
	if level < 0 || level > 62 || f.n&(1<<level-1) != 0 {
		return out, fmt.Errorf("seal: a subtree of 2^%d leaves cannot follow %d leaves", level, f.n)
	}
	for n := f.n >> level; n&1 == 1; n >>= 1 {
		left := f.roots[len(f.roots)-1]
		f.roots = f.roots[:len(f.roots)-1]
		h = NodeHash(left, h)
		out = append(out, h)
	}
	f.roots = append(f.roots, h)
	f.n += 1 << level
	return out, nil
}

// Root returns the RFC 6962 root hash of the tree; for the empty tree, SHA-256 of nothing.
func (f *Frontier) Root() Hash {
	if len(f.roots) == 0 {
		return sha256.Sum256(nil) // RFC 6962: the hash of the empty tree
	}
	h := f.roots[len(f.roots)-1]
	for i := len(f.roots) - 2; i >= 0; i-- {
		h = NodeHash(f.roots[i], h)
	}
	return h
}

// Clone returns an independent copy of f, for rolling back a failed batch.
func (f *Frontier) Clone() Frontier {
	return Frontier{n: f.n, roots: append([]Hash(nil), f.roots...)}
}

// FrontierIndexes returns the stored-hash indexes of the subtree roots of a tree of n leaves,
// largest first: the hashes LoadFrontier needs.
func FrontierIndexes(n uint64) []int64 {
	var idx []int64
	for level := bits.Len64(n) - 1; level >= 0; level-- {
		if n&(1<<level) == 0 {
			continue
		}
		// The subtree at this level is the (n>>level)-1'th of its level.
		idx = append(idx, tlog.StoredHashIndex(level, int64(n>>level)-1))
	}
	return idx
}

// LoadFrontier returns the frontier of a tree of n leaves from the hashes at FrontierIndexes(n).
func LoadFrontier(n uint64, hashes []Hash) (Frontier, error) {
	if len(hashes) != bits.OnesCount64(n) {
		return Frontier{}, fmt.Errorf("seal: frontier of %d leaves needs %d hashes, got %d", n, bits.OnesCount64(n), len(hashes))
	}
	return Frontier{n: n, roots: append([]Hash(nil), hashes...)}, nil
}

// StoredHashIndex returns the index of the stored hash of the subtree at the given level and
// position (tlog.StoredHashIndex).
func StoredHashIndex(level int, n int64) int64 { return tlog.StoredHashIndex(level, n) }

// StoredHashCount returns the number of stored hashes of a tree of n leaves.
func StoredHashCount(n uint64) int64 { return tlog.StoredHashCount(int64(n)) }

// TreeHash computes the root hash of the tree of n leaves from stored hashes.
func TreeHash(n uint64, r tlog.HashReader) (Hash, error) {
	if n > 1<<62 {
		return Hash{}, fmt.Errorf("seal: tree size %d out of range", n)
	}
	return tlog.TreeHash(int64(n), r)
}

// ErrProof is wrapped by every proof check failure.
var ErrProof = errors.New("seal: proof does not verify")

// InclusionProof returns the proof that leaf i is in the tree of size n.
func InclusionProof(n, i uint64, r tlog.HashReader) ([]Hash, error) {
	if i >= n || n > 1<<62 {
		return nil, fmt.Errorf("seal: no inclusion proof for leaf %d in a tree of %d", i, n)
	}
	p, err := tlog.ProveRecord(int64(n), int64(i), r)
	return p, err
}

// CheckInclusion verifies that leafHash is leaf i of the tree of size n with root root.
func CheckInclusion(proof []Hash, n uint64, root Hash, i uint64, leafHash Hash) error {
	if i >= n || n > 1<<62 {
		return fmt.Errorf("%w: leaf %d is outside a tree of %d", ErrProof, i, n)
	}
	if err := tlog.CheckRecord(proof, int64(n), root, int64(i), leafHash); err != nil {
		return fmt.Errorf("%w: inclusion of leaf %d in tree %d: %v", ErrProof, i, n, err)
	}
	return nil
}

// ConsistencyProof returns the proof that the tree of size m is a prefix of the tree of size n.
func ConsistencyProof(n, m uint64, r tlog.HashReader) ([]Hash, error) {
	if m == 0 || m > n || n > 1<<62 {
		return nil, fmt.Errorf("seal: no consistency proof from %d to %d", m, n)
	}
	p, err := tlog.ProveTree(int64(n), int64(m), r)
	return p, err
}

// CheckConsistency verifies that the tree of size m with root mRoot is a prefix of the tree of
// size n with root nRoot.
func CheckConsistency(proof []Hash, n uint64, nRoot Hash, m uint64, mRoot Hash) error {
	if m == 0 || m > n || n > 1<<62 {
		return fmt.Errorf("%w: no consistency between sizes %d and %d", ErrProof, m, n)
	}
	if err := tlog.CheckTree(proof, int64(n), nRoot, int64(m), mRoot); err != nil {
		return fmt.Errorf("%w: consistency of %d with %d: %v", ErrProof, m, n, err)
	}
	return nil
}
