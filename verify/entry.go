package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

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
	*ck = entryCheck{}
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
// subtrees above the blocks, the checkpoints. A chunk's memory is reused for a later block once
// Ledger is done with it.
type chunk struct {
	start, end uint64 // the entries [start, end) the chunk should hold
	entries    []store.Entry
	buf        []byte // the entries' bytes, when the store reads into it (store.EntryReader)
	checks     []entryCheck
	err        error // reading failed after entries

	idx    []int64      // the stored-hash indexes of the chunk's entries
	hashes []store.Hash // the stored hashes of the chunk's entries, as read
	root   seal.Hash    // the root of the block, when it is whole
	above  []store.Hash // stored hashes of the last entry above the block's root, to check in order
	bad    *AlteredError
	stored []seal.Hash // scratch for the stored hashes each entry adds
	done   chan struct{}
}

// chunkLevel sets the size of a chunk: 2^chunkLevel entries, aligned, so that the subtrees
// inside a chunk are the tree's own.
const (
	chunkLevel = 8
	chunkSize  = 1 << chunkLevel
)

// reset makes c the chunk of the entries [start, end), keeping its memory.
func (c *chunk) reset(start, end uint64) {
	c.start, c.end = start, end
	c.entries = c.entries[:0]
	c.checks = c.checks[:0]
	c.err, c.bad = nil, nil
	c.root, c.above = seal.Hash{}, nil
}

// check reads and checks the chunk: run by a worker. er, if not nil, is r's store.EntryReader
// and limit the size r is pinned at.
func (c *chunk) check(ctx context.Context, r Reader, er store.EntryReader, limit uint64) {
	defer func() { c.done <- struct{}{} }()
	c.read(ctx, r, er, limit)
	if cap(c.checks) < len(c.entries) {
		c.checks = make([]entryCheck, len(c.entries))
	}
	c.checks = c.checks[:len(c.entries)]
	for k := range c.entries {
		checkEntry(&c.entries[k], &c.checks[k])
	}
	c.tree(ctx, r)
}

// read reads the chunk's entries: into the chunk's own buffers when the store can (er), else
// through Entries.
func (c *chunk) read(ctx context.Context, r Reader, er store.EntryReader, limit uint64) {
	if er != nil {
		if err := ctx.Err(); err != nil {
			c.err = err
			return
		}
		c.entries, c.buf, c.err = er.ReadEntries(ctx, c.start, min(c.end, limit), c.entries, c.buf)
		return
	}
	for e, err := range r.Entries(ctx, c.start, c.end) {
		if err != nil {
			c.err = err
			break
		}
		c.entries = append(c.entries, e)
	}
}

// entryReader returns the store.EntryReader under r, if there is one, and the size r is pinned
// at (Pin), beyond which it must not read.
func entryReader(r Reader) (store.EntryReader, uint64) {
	limit := uint64(math.MaxUint64)
	for {
		switch x := r.(type) {
		case *pinned:
			limit, r = min(limit, x.size), x.r
		case store.EntryReader:
			return x, limit
		default:
			return nil, 0
		}
	}
}

// tree recomputes the part of the Merkle tree inside the chunk and compares it with the stored
// hashes: every stored hash of the chunk's entries but those above a whole chunk's root, which
// the chunk leaves in above.
func (c *chunk) tree(ctx context.Context, r Reader) {
	first, last := store.StoredHashCount(c.start), store.StoredHashCount(c.start+uint64(len(c.entries)))
	idx := c.idx[:0]
	for x := first; x < last; x++ {
		idx = append(idx, x)
	}
	c.idx = idx
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
	stored := c.stored[:0]
	defer func() { c.stored = stored }()
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

// checkChunks streams the entries [0, size) of r as checked chunks, in order, checked by
// workers goroutines (GOMAXPROCS if 0): the caller's, which folds the chunks as they come and
// checks the next one itself whenever the one it needs is not ready yet, and workers-1 others.
// So a verifier that gets only one core at a time (a busy machine) still runs at the speed of
// one core, instead of waiting for goroutines to be scheduled to hand each block over. It stops
// when ctx ends. A chunk is valid until the next is yielded: its memory is then reused for a
// later block.
func checkChunks(ctx context.Context, r Reader, size uint64, workers int) iter.Seq[*chunk] {
	return func(yield func(*chunk) bool) {
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		er, limit := entryReader(r)
		blocks := (size + chunkSize - 1) / chunkSize
		// Block k is checked in ring[k%len(ring)] once block k-len(ring) has been folded: a
		// block may start only with a token, and the fold of a block returns its token. Four
		// blocks a worker keep the workers busy while the caller checks a block of its own.
		ring := make([]*chunk, 4*workers+1)
		tokens := make(chan struct{}, len(ring))
		for k := range ring {
			ring[k] = &chunk{done: make(chan struct{}, 1)}
			tokens <- struct{}{}
		}
		var next atomic.Uint64 // the next block to start
		// start claims the next block not yet started with a token the caller holds, or returns
		// the token and false if every block has been started.
		start := func() (*chunk, bool) {
			k := next.Add(1) - 1
			if k >= blocks {
				tokens <- struct{}{}
				return nil, false
			}
			c := ring[k%uint64(len(ring))]
			c.reset(k*chunkSize, min((k+1)*chunkSize, size))
			return c, true
		}
		quit := make(chan struct{}) // closed when the caller is done, however it ends
		var wg sync.WaitGroup
		for range workers - 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-quit: // first: a token may be free too
						return
					default:
					}
					select {
					case <-tokens:
					case <-quit:
						return
					}
					c, ok := start()
					if !ok {
						return
					}
					c.check(ctx, r, er, limit)
				}
			}()
		}
		defer func() {
			// Retire the workers: no new block is started, and those under way are waited for.
			close(quit)
			wg.Wait()
		}()
		for k := range blocks {
			c := ring[k%uint64(len(ring))]
			if !c.wait(ctx, func() bool {
				select {
				case <-tokens:
				default:
					return false
				}
				d, ok := start()
				if ok {
					d.check(ctx, r, er, limit)
				}
				return ok
			}) {
				return
			}
			if !yield(c) || c.err != nil || uint64(len(c.entries)) < c.end-c.start {
				return
			}
			tokens <- struct{}{}
		}
	}
}

// wait waits until c has been checked, running help meanwhile as long as it finds something to
// do (it returns false when it does not). It returns false if ctx ends first.
func (c *chunk) wait(ctx context.Context, help func() bool) bool {
	for {
		select {
		case <-c.done:
			return true
		case <-ctx.Done():
			return false
		default:
		}
		if !help() {
			break
		}
	}
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
		return false
	}
}
