package verify

import (
	"context"
	"crypto/sha256"
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
	checkEntry(&e, &ck)
	if ck.err != nil {
		return ck.leaf, ck.leafHash, ck.err
	}
	if ck.leaf.Index != e.Index {
		return ck.leaf, ck.leafHash, &AlteredError{Index: e.Index, Reason: "the leaf is the leaf of another entry"}
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

// A chunk is a run of consecutive entries with the results of the checks that need no order.
// Workers fill checks in parallel; Ledger consumes chunks in order and does the rest.
type chunk struct {
	start   uint64
	entries []store.Entry
	checks  []entryCheck
	err     error // reading failed after entries
	done    chan struct{}
}

const chunkEntries = 256

// checkChunks streams the entries [0, size) of r as checked chunks, in order, checking them on
// workers goroutines (GOMAXPROCS if 0). It stops when ctx ends.
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
					for k := range c.entries {
						checkEntry(&c.entries[k], &c.checks[k])
					}
					close(c.done)
				}
			}()
		}
		go func() {
			defer close(ordered)
			defer close(work)
			send := func(c *chunk) bool {
				c.checks = make([]entryCheck, len(c.entries))
				select {
				case work <- c:
				case <-ctx.Done():
					return false
				}
				select {
				case ordered <- c:
					return true
				case <-ctx.Done():
					return false
				}
			}
			c := &chunk{done: make(chan struct{}), entries: make([]store.Entry, 0, chunkEntries)}
			for e, err := range r.Entries(ctx, 0, size) {
				if err != nil {
					c.err = err
					break
				}
				c.entries = append(c.entries, e)
				if len(c.entries) == chunkEntries {
					if !send(c) {
						return
					}
					c = &chunk{start: c.start + chunkEntries, done: make(chan struct{}), entries: make([]store.Entry, 0, chunkEntries)}
				}
			}
			send(c)
		}()
		defer func() {
			// Unblock and retire the reader and the workers if the consumer stopped early.
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
			if !yield(c) || c.err != nil {
				return
			}
		}
	}
}
