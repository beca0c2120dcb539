package ledger

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
	"golang.org/x/mod/sumdb/note"
)

// Reader is the read side of a store that Verify and the offline tools need. Every
// store.Store is one; a store opened read-only can be one too.
type Reader interface {
	Size(ctx context.Context) (uint64, error)
	HashCount(ctx context.Context) (int64, error)
	Entry(ctx context.Context, i uint64) (store.Entry, error)
	Entries(ctx context.Context, start uint64) iter.Seq2[store.Entry, error]
	ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error)
	LatestCheckpoint(ctx context.Context) (store.Checkpoint, error)
	AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error]
}

// ErrTampered is matched (errors.Is) by every *VerifyError.
var ErrTampered = errors.New("ledger: verification failed")

// VerifyError says where a ledger first fails to verify and why.
type VerifyError struct {
	Index  uint64 // the first bad entry (for a checkpoint problem, the tree size it names)
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("ledger does not verify at entry %d: %s", e.Index, e.Reason)
}

// Is reports ErrTampered.
func (e *VerifyError) Is(target error) bool { return target == ErrTampered }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Trusted is a signed checkpoint the verifier obtained earlier from this ledger (a receipt,
	// a published head). The ledger must contain its tree; a ledger rolled back to before it, or
	// forked from it, fails. Without it, a ledger truncated together with its checkpoints to an
	// earlier consistent state cannot be told from that earlier state.
	Trusted []byte
	// Progress, if set, is called every 65,536 entries with the number verified.
	Progress func(entries uint64)
}

// Report summarizes a verified ledger.
type Report struct {
	Entries       uint64            // entries verified
	Bytes         int64             // leaf and payload bytes hashed
	Checkpoints   int               // signed checkpoints verified
	Latest        seal.Checkpoint   // the latest checkpoint
	Uncovered     uint64            // entries after the latest checkpoint (appended since, or before a crash)
	Kinds         map[string]uint64 // entries by kind
	Conversations int               // distinct conversations whose chains were checked
	Encrypted     uint64            // entries whose content commitment needs a key to check
}

// Verify checks a whole stored ledger in one streaming pass with nothing but its verifier key:
// every leaf decodes and names its own index; every payload matches its hash and, when not
// encrypted, its content commitment; every conversation's sequence and back-links are unbroken;
// every stored Merkle hash is recomputed; every checkpoint is signed by v, names a strictly
// larger tree than the one before, and its root equals the root recomputed from the entries
// (which proves each checkpoint consistent with every earlier one); no checkpoint covers more
// entries than the ledger holds.
//
// Memory is bounded by the number of conversations (one head each), not the number of entries.
// It returns a *VerifyError (errors.Is ErrTampered) for the first problem, or an I/O error.
func Verify(ctx context.Context, r Reader, v note.Verifier, opts VerifyOptions) (*Report, error) {
	rep := &Report{Kinds: map[string]uint64{}}
	size, err := r.Size(ctx)
	if err != nil {
		return rep, fmt.Errorf("ledger: verify: reading size: %w", err)
	}
	hashCount, err := r.HashCount(ctx)
	if err != nil {
		return rep, fmt.Errorf("ledger: verify: reading stored hash count: %w", err)
	}
	var trusted *seal.Checkpoint
	if opts.Trusted != nil {
		c, err := seal.OpenCheckpoint(opts.Trusted, v)
		if err != nil {
			return rep, fmt.Errorf("ledger: verify: trusted checkpoint: %w", err)
		}
		trusted = &c
		if c.Size > size {
			return rep, &VerifyError{Index: size, Reason: fmt.Sprintf("the ledger holds %d entries, fewer than the trusted checkpoint's %d: rolled back or truncated", size, c.Size)}
		}
	}

	nextCP, stopCP := iter.Pull2(r.AllCheckpoints(ctx))
	defer stopCP()
	var pending *seal.Checkpoint // the next checkpoint to meet
	var prevSize uint64
	advance := func() error {
		pending = nil
		sc, err, ok := nextCP()
		if !ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ledger: verify: reading checkpoints: %w", err)
		}
		c, err := seal.OpenCheckpoint(sc.Note, v)
		if err != nil {
			return &VerifyError{Index: sc.Size, Reason: fmt.Sprintf("checkpoint for tree size %d: %v", sc.Size, err)}
		}
		if c.Size != sc.Size {
			return &VerifyError{Index: sc.Size, Reason: fmt.Sprintf("checkpoint stored as tree size %d is signed for %d", sc.Size, c.Size)}
		}
		if c.Size <= prevSize || c.Size == 0 {
			return &VerifyError{Index: c.Size, Reason: fmt.Sprintf("checkpoint for tree size %d does not follow the previous one (%d)", c.Size, prevSize)}
		}
		if c.Size > size {
			return &VerifyError{Index: size, Reason: fmt.Sprintf("checkpoint covers %d entries but the ledger holds %d: entries were removed", c.Size, size)}
		}
		prevSize = c.Size
		rep.Checkpoints++
		rep.Latest = c
		pending = &c
		return nil
	}
	if err := advance(); err != nil {
		return rep, err
	}

	hs := hashStream{ctx: ctx, r: r, count: hashCount}
	var f seal.Frontier
	convs := map[seal.Hash]convHead{}
	var stored []seal.Hash
	var pos uint64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for c := range checkChunks(ctx, r) {
		if c.err != nil && len(c.entries) == 0 {
			return rep, readErr(c.start, c.err)
		}
		for k := range c.entries {
			e, ck := &c.entries[k], &c.checks[k]
			bad := func(format string, args ...any) error {
				return &VerifyError{Index: pos, Reason: fmt.Sprintf(format, args...)}
			}
			if e.Index != pos {
				return rep, bad("the entry at position %d says it is entry %d (entries deleted, duplicated or reordered)", pos, e.Index)
			}
			if ck.reason != "" {
				return rep, bad("%s", ck.reason)
			}
			leaf := &ck.leaf
			if leaf.Index != pos {
				return rep, bad("the leaf at position %d is the leaf of entry %d", pos, leaf.Index)
			}
			if leaf.KeyID != "" {
				rep.Encrypted++
			}
			if leaf.Conversation != (seal.Hash{}) {
				h := convs[leaf.Conversation]
				if leaf.ConvSeq != h.seq+1 {
					return rep, bad("conversation chain broken: entry is number %d of its conversation, expected %d (a conversation entry is missing or repeated)", leaf.ConvSeq, h.seq+1)
				}
				if leaf.ConvPrev != h.hash {
					return rep, bad("conversation chain broken: entry %d of its conversation does not link to the leaf hash of entry %d", leaf.ConvSeq, h.seq)
				}
				convs[leaf.Conversation] = convHead{seq: leaf.ConvSeq, hash: ck.leafHash}
			}
			stored = f.Append(ck.leafHash, stored[:0])
			for level, want := range stored {
				got, err := hs.next()
				if err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return rep, bad("stored hashes end before this entry's (level %d)", level)
					}
					return rep, readErr(pos, err)
				}
				if got != want {
					return rep, bad("stored hash at level %d differs from the one recomputed from the entries", level)
				}
			}
			rep.Kinds[leaf.Kind.String()]++
			rep.Bytes += int64(len(e.Leaf) + len(e.Payload))
			pos++
			if trusted != nil && trusted.Size == pos && f.Root() != trusted.Root {
				return rep, bad("the tree of %d entries differs from the trusted checkpoint's (forked or rewritten)", pos)
			}
			for pending != nil && pending.Size == pos {
				if root := f.Root(); root != pending.Root {
					return rep, bad("the checkpoint for tree size %d has root %v, the entries give %v", pos, pending.Root, root)
				}
				if err := advance(); err != nil {
					return rep, err
				}
			}
			if opts.Progress != nil && pos%(1<<16) == 0 {
				opts.Progress(pos)
			}
		}
		if c.err != nil {
			return rep, readErr(pos, c.err)
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Entries = pos
	if pos != size {
		return rep, &VerifyError{Index: pos, Reason: fmt.Sprintf("the log reports %d entries but yields %d", size, pos)}
	}
	if pending != nil {
		return rep, &VerifyError{Index: pos, Reason: fmt.Sprintf("checkpoint covers %d entries but the ledger holds %d: entries were removed", pending.Size, pos)}
	}
	if hashCount != seal.StoredHashCount(size) {
		return rep, &VerifyError{Index: size, Reason: fmt.Sprintf("%d stored hashes for %d entries, want %d", hashCount, size, seal.StoredHashCount(size))}
	}
	if trusted != nil && rep.Latest.Size < trusted.Size {
		return rep, &VerifyError{Index: rep.Latest.Size, Reason: fmt.Sprintf("the latest checkpoint (size %d) is older than the trusted one (size %d): rolled back", rep.Latest.Size, trusted.Size)}
	}
	rep.Uncovered = size - rep.Latest.Size
	rep.Conversations = len(convs)
	return rep, nil
}

// readErr reports a failure to read at entry i: corruption the store detected is tampering
// like any other; anything else is an I/O error.
func readErr(i uint64, err error) error {
	if errors.Is(err, store.ErrCorrupt) {
		return &VerifyError{Index: i, Reason: fmt.Sprintf("the store finds its copy corrupt: %v", err)}
	}
	return fmt.Errorf("ledger: verify: reading at entry %d: %w", i, err)
}

// hashStream reads stored hashes sequentially in chunks.
type hashStream struct {
	ctx   context.Context
	r     Reader
	count int64
	off   int64
	buf   []store.Hash
	pos   int
	idx   []int64
}

const hashChunk = 4096

func (h *hashStream) next() (seal.Hash, error) {
	if h.pos == len(h.buf) {
		n := min(int64(hashChunk), h.count-h.off)
		if n <= 0 {
			return seal.Hash{}, fmt.Errorf("%w: stored hash %d", store.ErrNotFound, h.off)
		}
		h.idx = h.idx[:0]
		for k := int64(0); k < n; k++ {
			h.idx = append(h.idx, h.off+k)
		}
		buf, err := h.r.ReadHashes(h.ctx, h.idx)
		if err != nil {
			return seal.Hash{}, err
		}
		h.buf, h.pos = buf, 0
		h.off += n
	}
	h.pos++
	return h.buf[h.pos-1], nil
}

// A chunk is a run of consecutive entries with the results of the checks that need no order:
// decoding the leaf, the payload hash, the commitment, the leaf hash. Workers fill checks in
// parallel; Verify consumes chunks in order and does the rest.
type chunk struct {
	start   uint64
	entries []store.Entry
	checks  []entryCheck
	err     error // reading failed after entries
	done    chan struct{}
}

type entryCheck struct {
	leaf     seal.Leaf
	leafHash seal.Hash
	reason   string // why the entry fails on its own, or ""
}

const chunkEntries = 256

func checkEntry(e *store.Entry, ck *entryCheck) {
	leaf, err := seal.ParseLeaf(e.Leaf)
	if err != nil {
		ck.reason = err.Error()
		return
	}
	ck.leaf = leaf
	ck.leafHash = seal.LeafHash(e.Leaf)
	if sha256.Sum256(e.Payload) != leaf.PayloadHash {
		ck.reason = "payload does not match the hash in its leaf (altered payload)"
		return
	}
	if leaf.KeyID == "" {
		c, err := seal.CommitEnvelope(e.Payload)
		if err != nil {
			ck.reason = "payload: " + err.Error()
			return
		}
		if c != leaf.Commitment {
			ck.reason = "content does not match the commitment in its leaf"
			return
		}
	}
	if e.Identity != leaf.Identity || e.Conversation != leaf.Conversation {
		ck.reason = "the store's index fields disagree with the leaf"
	}
}

// checkChunks streams r's entries as checked chunks, in order, checking them on all
// processors. It stops when ctx ends.
func checkChunks(ctx context.Context, r Reader) iter.Seq[*chunk] {
	return func(yield func(*chunk) bool) {
		workers := runtime.GOMAXPROCS(0)
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
			c := &chunk{done: make(chan struct{})}
			for e, err := range r.Entries(ctx, 0) {
				if err != nil {
					c.err = err
					break
				}
				c.entries = append(c.entries, e)
				if len(c.entries) == chunkEntries {
					if !send(c) {
						return
					}
					c = &chunk{start: c.start + chunkEntries, done: make(chan struct{})}
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
