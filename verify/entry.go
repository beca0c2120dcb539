package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// Entry checks a stored entry on its own, as Ledger does for every entry: its leaf decodes and
// names the entry's index, its payload matches the hash in its leaf, a plaintext payload opens
// to the leaf's content commitment, and the identity and conversation the store indexes it
// under are the leaf's. It returns the parsed leaf and its Merkle leaf hash, or an
// *AlteredError. The chain, the tree and the checkpoints need the entries around it: Ledger.
func Entry(e store.Entry) (seal.Leaf, seal.Hash, error) {
	var ck entryCheck
	checkEntry(&e, &ck) // which checks that the leaf names e.Index
	if ck.err != nil {
		return ck.leaf, ck.leafHash, ck.err
	}
	return ck.leaf, ck.leafHash, nil
}

// entryCheck is the result of the checks of one entry that need no other entry.
type entryCheck struct {
	leaf     seal.Leaf
	leafHash seal.Hash
	err      *AlteredError // why the entry fails on its own, or nil
}

func checkEntry(e *store.Entry, ck *entryCheck) {
	bad := func(reason string) { ck.err = &AlteredError{Index: e.Index, Reason: reason} }
	leaf, err := seal.ParseLeaf(e.Leaf)
	if err != nil {
		bad(err.Error())
		return
	}
	ck.leaf = leaf
	ck.leafHash = seal.LeafHash(e.Leaf)
	if leaf.Index != e.Index {
		bad("the leaf at this position is the leaf of another entry")
		return
	}
	if sha256.Sum256(e.Payload) != leaf.PayloadHash {
		bad("payload does not match the hash in its leaf (altered payload)")
		return
	}
	if leaf.KeyID == "" {
		c, err := seal.CommitEnvelope(e.Payload)
		if err != nil {
			bad("payload: " + err.Error())
			return
		}
		if c != leaf.Commitment {
			bad("content does not match the commitment in its leaf")
			return
		}
	}
	if e.Identity != leaf.Identity || e.Conversation != leaf.Conversation {
		bad("the store's index fields disagree with the leaf")
	}
}

// A chunk is an aligned block of entries that a worker reads and checks on its own: the checks
// of each entry that need no other entry, and the part of the Merkle tree inside the block (its
// leaves and every subtree of up to chunkSize leaves, against the stored hashes). Ledger
// consumes the chunks in order and does what needs the order: the conversation chains, the
// subtrees above the blocks, the checkpoints.
type chunk struct {
	start, end uint64 // the entries [start, end) the chunk should hold
	entries    []store.Entry
	checks     []entryCheck
	err        error // reading failed after entries

	hashes []store.Hash // the stored hashes of the chunk's entries, as read
	root   seal.Hash    // the root of the block, when it is whole
	above  []store.Hash // stored hashes of the last entry above the block's root, to check in order
	bad    *AlteredError
	done   chan struct{}
}

// chunkLevel sets the size of a chunk: 2^chunkLevel entries, aligned, so that the subtrees
// inside a chunk are the tree's own.
const (
	chunkLevel = 8
	chunkSize  = 1 << chunkLevel
)

// check reads and checks the chunk: run by a worker.
func (c *chunk) check(ctx context.Context, r Reader) {
	defer close(c.done)
	c.entries = make([]store.Entry, 0, c.end-c.start)
	for e, err := range r.Entries(ctx, c.start, c.end) {
		if err != nil {
			c.err = err
			break
		}
		c.entries = append(c.entries, e)
	}
	c.checks = make([]entryCheck, len(c.entries))
	for k := range c.entries {
		checkEntry(&c.entries[k], &c.checks[k])
	}
	c.tree(ctx, r)
}

// tree recomputes the part of the Merkle tree inside the chunk and compares it with the stored
// hashes: every stored hash of the chunk's entries but those above a whole chunk's root, which
// the chunk leaves in above.
func (c *chunk) tree(ctx context.Context, r Reader) {
	first, last := store.StoredHashCount(c.start), store.StoredHashCount(c.start+uint64(len(c.entries)))
	idx := make([]int64, 0, last-first)
	for x := first; x < last; x++ {
		idx = append(idx, x)
	}
	hs, err := r.ReadHashes(ctx, idx)
	if errors.Is(err, store.ErrNotFound) {
		// Some are missing: take those that are there, one by one, to say where they end.
		hs = hs[:0]
		for _, x := range idx {
			h, err := r.ReadHashes(ctx, []int64{x})
			if err != nil {
				break
			}
			hs = append(hs, h[0])
		}
	} else if err != nil {
		c.err = errors.Join(c.err, err)
		return
	}
	c.hashes = hs
	var f seal.Frontier
	var stored []seal.Hash
	off := 0
	for k := range c.entries {
		i := c.start + uint64(k)
		stored = f.Append(c.checks[k].leafHash, stored[:0])
		n := int(store.StoredHashesFor(i))
		for level, want := range stored {
			if off+level >= len(hs) {
				c.bad = &AlteredError{Index: i, Reason: fmt.Sprintf("stored hashes end before this entry's (level %d)", level)}
				return
			}
			if hs[off+level] != want {
				c.bad = &AlteredError{Index: i, Reason: fmt.Sprintf("stored hash at level %d differs from the one recomputed from the entries", level)}
				return
			}
		}
		if k == chunkSize-1 {
			// The last entry of a whole chunk: the chunk's root, and the stored hashes above it
			// that join this block to the ones before it (checked in order by Ledger).
			end := off + n
			if end > len(hs) {
				c.bad = &AlteredError{Index: i, Reason: fmt.Sprintf("stored hashes end before this entry's (level %d)", len(hs)-off)}
				return
			}
			c.above = hs[off+len(stored) : end]
			c.root = stored[len(stored)-1]
		}
		off += n
	}
}

// localRoots returns the roots of the perfect subtrees inside the chunk that make up its first
// m entries, largest first, from the chunk's checked stored hashes.
func (c *chunk) localRoots(m uint64) []seal.Hash {
	var out []seal.Hash
	base := store.StoredHashCount(c.start)
	pos := c.start
	for level := chunkLevel; level >= 0; level-- {
		if m&(1<<level) == 0 {
			continue
		}
		x := seal.StoredHashIndex(level, int64(pos>>level))
		out = append(out, c.hashes[x-base])
		pos += 1 << level
	}
	return out
}

// checkChunks streams the entries [0, size) of r as checked chunks, in order, read and checked
// on workers goroutines (GOMAXPROCS if 0). It stops when ctx ends.
func checkChunks(ctx context.Context, r Reader, size uint64, workers int) iter.Seq[*chunk] {
	return func(yield func(*chunk) bool) {
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		work := make(chan *chunk, 2*workers)
		ordered := make(chan *chunk, 2*workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					c.check(ctx, r)
				}
			}()
		}
		go func() {
			defer close(ordered)
			defer close(work)
			for start := uint64(0); start < size; start += chunkSize {
				c := &chunk{start: start, end: min(start+chunkSize, size), done: make(chan struct{})}
				select {
				case work <- c:
				case <-ctx.Done():
					return
				}
				select {
				case ordered <- c:
				case <-ctx.Done():
					return
				}
			}
		}()
		defer func() {
			// Unblock and retire the dispatcher and the workers if the consumer stopped early.
			for c := range ordered {
				<-c.done
			}
			wg.Wait()
		}()
		for c := range ordered {
			select {
			case <-c.done:
			case <-ctx.Done():
				return
			}
			if !yield(c) || c.err != nil || uint64(len(c.entries)) < c.end-c.start {
				return
			}
		}
	}
}
