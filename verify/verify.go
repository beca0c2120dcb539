// Package verify is what an auditor needs: it checks a stored commseal ledger, and reads proofs
// out of it, with nothing but the ledger's verifier key. It depends only on seal and store, so
// a verifier never pulls in the writer, and it never trusts the store: everything it reports is
// recomputed from the bytes.
//
// Ledger checks a whole ledger in one streaming pass: every leaf decodes and names its own
// index; every payload matches its hash and, when not encrypted, its content commitment; every
// conversation's chain is unbroken; every stored Merkle hash is recomputed; every checkpoint is
// signed by the verifier key and its root is the root of the entries it covers (which proves
// each checkpoint consistent with every earlier one). Proof and InclusionProof read proofs for
// single entries, to hand to someone who holds only a checkpoint. Bundle checks an export
// bundle (package ledger/export) with the verifier key alone: its signed manifest, every file
// (renderings such as RSMF and EML included), every proof, the consistency of its checkpoint
// with the newest one at export time, every commitment opening and every attachment's SHA-256.
//
// # Is this ledger altered?
//
// Ledger returns an *AlteredError (errors.Is ErrAltered) for the first place where the ledger
// does not verify, with the entry index and the reason. A store that finds its own copy damaged
// when opened or read returns store.ErrCorrupt; Altered treats that as altered too, so a
// program decides "altered or not" with one call and prints the error. Anything else (a
// missing directory, a permission error, a trusted checkpoint that is not this ledger's) is an
// error about the request, not the ledger.
//
// Entries after the latest checkpoint (a writer that crashed before its next signature) are
// verified like the rest and reported in Report.Uncovered: nobody has signed for them yet. A
// ledger with entries and no checkpoint at all fails with ErrUnsigned unless
// Options.AllowUnsigned is set.
package verify

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"golang.org/x/mod/sumdb/note"
)

// Reader is the read side of a store that Ledger needs. Every store.Store is one; a store
// opened read-only can be one too.
type Reader interface {
	// Size returns the number of entries (store.Log.Size).
	Size(ctx context.Context) (uint64, error)
	// Entries yields the entries in [start, end) in order (store.Log.Entries); Ledger reads
	// blocks of entries from several goroutines at once.
	Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error]
	// ReadHashes returns stored hashes by stored-hash index (store.Log.ReadHashes).
	ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error)
	// LatestCheckpoint returns the checkpoint of the largest size (store.Checkpoints).
	LatestCheckpoint(ctx context.Context) (store.Checkpoint, error)
	// AllCheckpoints yields every checkpoint in increasing order of size (store.Checkpoints).
	AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error]
}

// Errors callers branch on with errors.Is.
var (
	// ErrAltered is matched by every *AlteredError: the ledger was altered or damaged.
	ErrAltered = errors.New("verify: the ledger was altered or damaged")
	// ErrUnsigned is matched by the *AlteredError of a ledger that holds entries but no signed
	// checkpoint at all (see Options.AllowUnsigned).
	ErrUnsigned = errors.New("verify: entries without any signed checkpoint")
	// ErrTrusted is returned when Options.Trusted is not a checkpoint signed by the verifier
	// key: a mistake in the request, not a property of the ledger.
	ErrTrusted = errors.New("verify: the trusted checkpoint does not open with this verifier key")
)

// AlteredError says where a ledger first fails to verify and why.
type AlteredError struct {
	Index  uint64 // the first bad entry (for a checkpoint problem, the tree size it names)
	Reason string
	Err    error // a more specific cause (ErrUnsigned, store.ErrCorrupt), or nil
}

func (e *AlteredError) Error() string {
	return fmt.Sprintf("the ledger does not verify at entry %d: %s", e.Index, e.Reason)
}

// Is reports ErrAltered.
func (e *AlteredError) Is(target error) bool { return target == ErrAltered }

// Unwrap returns the specific cause, if any.
func (e *AlteredError) Unwrap() error { return e.Err }

// Altered reports whether err says that a ledger was altered or damaged: an *AlteredError, or a
// store's store.ErrCorrupt from opening or reading it.
func Altered(err error) bool {
	return errors.Is(err, ErrAltered) || errors.Is(err, store.ErrCorrupt)
}

// Options tune Ledger.
type Options struct {
	// Trusted is a signed checkpoint the verifier obtained earlier from this ledger (a receipt,
	// a published head). The ledger must contain its tree; a ledger rolled back to before it, or
	// forked from it, fails. Without it, a ledger truncated together with its checkpoints to an
	// earlier consistent state cannot be told from that earlier state.
	Trusted []byte
	// AllowUnsigned accepts a ledger that holds entries but no signed checkpoint (one that has
	// just been created, or whose writer never closed). Without it such a ledger fails with
	// ErrUnsigned: nobody has signed for any of it.
	AllowUnsigned bool
	// Progress, if set, is called every 65,536 entries with the number verified.
	Progress func(entries uint64)
	// Workers is the number of goroutines that hash entries; 0 means GOMAXPROCS.
	Workers int
	// Anchors says how the anchor entries' time-stamps and cosignatures are checked.
	Anchors Anchors
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
	// Anchored lists, by checkpoint size, what the anchor entries say of the ledger's
	// checkpoints (time-stamps, cosignatures), as checked by Options.Anchors.
	Anchored []AnchoredCheckpoint
}

// Ledger checks a whole stored ledger in one streaming pass with nothing but its verifier key
// (see the package documentation for what it checks). Workers (Options.Workers, the calling
// goroutine among them) read and check aligned blocks of 256 entries in parallel, the part of
// the Merkle tree inside each block included; the calling goroutine folds the blocks in order
// (conversation chains, the tree above the blocks, checkpoint roots), and checks blocks itself
// while the next one to fold is not ready. A store that implements store.EntryReader is read
// into buffers reused from block to block. Memory is bounded by the number of conversations
// (one head each) and the blocks in flight (four per worker), not the number of entries.
//
// It returns an *AlteredError (errors.Is ErrAltered) for the first problem, ErrTrusted for a
// trusted checkpoint that is not this ledger's, or an I/O error.
func Ledger(ctx context.Context, r Reader, v note.Verifier, opts Options) (*Report, error) {
	p := &pass{rep: &Report{Kinds: map[string]uint64{}}, r: r, v: v, opts: opts, convs: map[seal.Hash]*convHead{}, roots: map[uint64]seal.Hash{}}
	defer p.countKinds() // the report is returned on every path
	size, err := r.Size(ctx)
	if err != nil {
		return p.rep, fmt.Errorf("verify: reading size: %w", err)
	}
	p.size = size
	if err := p.openTrusted(); err != nil {
		return p.rep, err
	}
	next, stop := iter.Pull2(r.AllCheckpoints(ctx))
	defer stop()
	p.nextCP = next
	if err := p.advance(); err != nil {
		return p.rep, err
	}
	if err := p.entries(ctx); err != nil {
		return p.rep, err
	}
	return p.rep, p.finish(ctx)
}

// pass is one run of Ledger: the ordered fold over the entries, in named steps.
type pass struct {
	rep    *Report
	r      Reader
	v      note.Verifier
	opts   Options
	size   uint64
	nextCP func() (store.Checkpoint, error, bool)

	trusted  *seal.Checkpoint
	pending  *seal.Checkpoint // the next checkpoint to meet
	prevSize uint64

	upper seal.Frontier // the tree of the whole chunks folded so far
	convs map[seal.Hash]*convHead
	kinds [256]uint64          // entries folded, by kind: Report.Kinds, filled in at the end
	roots map[uint64]seal.Hash // the root at each checkpoint size verified
	// anchors are the anchor entries met, in order.
	anchors []anchorEntry
	stored  []seal.Hash
	pos     uint64
}

// convHead is the latest entry of a conversation seen so far.
type convHead struct {
	seq   uint64
	hash  seal.Hash
	index uint64
}

// bad reports the entry at the current position as the first bad one.
func (p *pass) bad(format string, args ...any) error {
	return &AlteredError{Index: p.pos, Reason: fmt.Sprintf(format, args...)}
}

// openTrusted opens Options.Trusted and checks that the ledger is not shorter than it.
func (p *pass) openTrusted() error {
	if p.opts.Trusted == nil {
		return nil
	}
	c, err := seal.OpenCheckpoint(p.opts.Trusted, p.v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTrusted, err)
	}
	p.trusted = &c
	if c.Size > p.size {
		return &AlteredError{Index: p.size, Reason: fmt.Sprintf("the ledger holds %d entries, fewer than the trusted checkpoint's %d: rolled back or truncated", p.size, c.Size)}
	}
	return nil
}

// advance opens the next stored checkpoint and checks it against the previous one and the log.
func (p *pass) advance() error {
	p.pending = nil
	sc, err, ok := p.nextCP()
	if !ok {
		return nil
	}
	if err != nil {
		return readErr(p.prevSize, "reading checkpoints", err)
	}
	c, err := seal.OpenCheckpoint(sc.Note, p.v)
	if err != nil {
		return &AlteredError{Index: sc.Size, Reason: fmt.Sprintf("checkpoint for tree size %d: %v", sc.Size, err)}
	}
	switch {
	case c.Size != sc.Size:
		return &AlteredError{Index: sc.Size, Reason: fmt.Sprintf("checkpoint stored as tree size %d is signed for %d", sc.Size, c.Size)}
	case c.Size <= p.prevSize || c.Size == 0:
		return &AlteredError{Index: c.Size, Reason: fmt.Sprintf("checkpoint for tree size %d does not follow the previous one (%d)", c.Size, p.prevSize)}
	case c.Size > p.size:
		return &AlteredError{Index: p.size, Reason: fmt.Sprintf("checkpoint covers %d entries but the ledger holds %d: entries were removed", c.Size, p.size)}
	}
	p.prevSize = c.Size
	p.rep.Checkpoints++
	p.rep.Latest = c
	p.pending = &c
	return nil
}

// entries folds every entry, in order, into the chains, the tree and the checkpoints.
func (p *pass) entries(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for c := range checkChunks(ctx, p.r, p.size, p.opts.Workers) {
		if c.err != nil && len(c.entries) == 0 {
			return readErr(c.start, "reading entries", c.err)
		}
		for k := range c.entries {
			if err := p.entry(c, k); err != nil {
				return err
			}
		}
		if c.err != nil {
			return readErr(p.pos, "reading entries", c.err)
		}
	}
	return ctx.Err()
}

// entry folds the k'th entry of chunk c, checked by a worker.
func (p *pass) entry(c *chunk, k int) error {
	e, ck := &c.entries[k], &c.checks[k]
	if e.Index != p.pos {
		return p.bad("the entry at position %d says it is entry %d (entries deleted, duplicated or reordered)", p.pos, e.Index)
	}
	if ck.err != nil {
		return p.bad("%s", ck.err.Reason)
	}
	leaf := &ck.leaf
	if leaf.KeyID != "" {
		p.rep.Encrypted++
	}
	if leaf.Kind == seal.KindAnchor && leaf.KeyID == "" {
		_, plain, err := seal.OpenEnvelope(e.Payload)
		if err != nil {
			return p.bad("anchor entry: %v", err)
		}
		ae, bad := parseAnchor(p.pos, plain)
		if bad != nil {
			return bad
		}
		p.anchors = append(p.anchors, ae)
	}
	if err := p.chain(leaf, ck.leafHash); err != nil {
		return err
	}
	if c.bad != nil && c.bad.Index == p.pos {
		return c.bad // the tree inside the chunk, as the worker found it
	}
	p.kinds[leaf.Kind]++
	p.rep.Bytes += int64(len(e.Leaf) + len(e.Payload))
	p.pos++
	if p.pos == c.start+chunkSize {
		if err := p.join(c); err != nil {
			return err
		}
	}
	if err := p.checkpoints(c); err != nil {
		return err
	}
	if p.opts.Progress != nil && p.pos%(1<<16) == 0 {
		p.opts.Progress(p.pos)
	}
	return nil
}

// join adds a whole chunk's root to the tree above the chunks and compares the stored hashes
// that this completes.
func (p *pass) join(c *chunk) error {
	var err error
	if p.stored, err = p.upper.AppendSubtree(chunkLevel, c.root, p.stored[:0]); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(p.stored) != len(c.above) {
		return &AlteredError{Index: p.pos - 1, Reason: fmt.Sprintf("stored hashes end before this entry's (level %d)", chunkLevel+1+len(c.above))}
	}
	for k, want := range p.stored {
		if c.above[k] != want {
			return &AlteredError{Index: p.pos - 1, Reason: fmt.Sprintf("stored hash at level %d differs from the one recomputed from the entries", chunkLevel+1+k)}
		}
	}
	return nil
}

// root returns the root of the tree of the entries folded so far (p.pos), c being the chunk of
// the last one.
func (p *pass) root(c *chunk) seal.Hash {
	if p.pos == p.upper.Size() {
		return p.upper.Root()
	}
	f := p.upper.Clone()
	m := p.pos - c.start
	roots := c.localRoots(m)
	for level := chunkLevel - 1; level >= 0; level-- {
		if m&(1<<level) != 0 {
			f.AppendSubtree(level, roots[0], nil) // aligned by construction
			roots = roots[1:]
		}
	}
	return f.Root()
}

// chain checks that the entry continues its conversation.
func (p *pass) chain(leaf *seal.Leaf, leafHash seal.Hash) error {
	if leaf.Conversation == (seal.Hash{}) {
		return nil
	}
	h := p.convs[leaf.Conversation]
	if h == nil {
		h = &convHead{}
	}
	if leaf.ConvSeq != h.seq+1 {
		return p.bad("conversation chain broken: entry is number %d of its conversation, expected %d (a conversation entry is missing or repeated)", leaf.ConvSeq, h.seq+1)
	}
	if leaf.ConvPrev != h.hash {
		return p.bad("conversation chain broken: entry %d of its conversation does not link to the leaf hash of entry %d", leaf.ConvSeq, h.seq)
	}
	if h.seq == 0 {
		p.convs[leaf.Conversation] = h
	}
	*h = convHead{seq: leaf.ConvSeq, hash: leafHash, index: p.pos}
	return nil
}

// countKinds fills in Report.Kinds from the counts of the entries folded.
func (p *pass) countKinds() {
	for k, n := range p.kinds {
		if n != 0 {
			p.rep.Kinds[seal.Kind(k).String()] += n
		}
	}
}

// checkpoints compares the roots of the checkpoints and the trusted checkpoint whose trees end
// with the entry just folded (the tree of p.pos entries); a mismatch is reported at the tree
// size the checkpoint names.
func (p *pass) checkpoints(c *chunk) error {
	if p.trusted != nil && p.trusted.Size == p.pos && p.root(c) != p.trusted.Root {
		return p.bad("the tree of %d entries differs from the trusted checkpoint's (forked or rewritten)", p.pos)
	}
	for p.pending != nil && p.pending.Size == p.pos {
		root := p.root(c)
		if root != p.pending.Root {
			return p.bad("the checkpoint for tree size %d has root %v, the entries give %v", p.pos, p.pending.Root, root)
		}
		p.roots[p.pos] = root
		if err := p.advance(); err != nil {
			return err
		}
	}
	return nil
}

// finish checks what can only be judged at the end: the counts, the last checkpoint, the
// trusted checkpoint, the store's conversation index.
func (p *pass) finish(ctx context.Context) error {
	rep := p.rep
	rep.Entries = p.pos
	rep.Conversations = len(p.convs)
	if p.pos != p.size {
		return &AlteredError{Index: p.pos, Reason: fmt.Sprintf("the log reports %d entries but yields %d", p.size, p.pos)}
	}
	if p.pending != nil {
		return &AlteredError{Index: p.pos, Reason: fmt.Sprintf("checkpoint covers %d entries but the ledger holds %d: entries were removed", p.pending.Size, p.pos)}
	}
	if _, err := p.r.ReadHashes(ctx, []int64{store.StoredHashCount(p.size)}); err == nil {
		return &AlteredError{Index: p.pos, Reason: "stored hashes go on after the last entry's"}
	}
	if p.trusted != nil && rep.Latest.Size < p.trusted.Size {
		return &AlteredError{Index: rep.Latest.Size, Reason: fmt.Sprintf("the latest checkpoint (size %d) is older than the trusted one (size %d): rolled back", rep.Latest.Size, p.trusted.Size)}
	}
	if x, ok := p.r.(store.ConversationIndex); ok {
		for conv, h := range p.convs {
			i, found, err := x.LastInConversation(ctx, conv)
			if err != nil {
				return readErr(h.index, "reading the conversation index", err)
			}
			if !found || i != h.index {
				return &AlteredError{Index: h.index, Reason: fmt.Sprintf("the store's conversation index says the conversation's latest entry is %d (found %v), the entries say %d", i, found, h.index)}
			}
		}
	}
	rep.Uncovered = p.size - rep.Latest.Size
	if rep.Checkpoints == 0 && p.size > 0 && !p.opts.AllowUnsigned {
		return &AlteredError{Index: 0, Err: ErrUnsigned, Reason: fmt.Sprintf("the ledger holds %d entries but no signed checkpoint: nobody has signed for any of them", p.size)}
	}
	var err error
	rep.Anchored, err = checkAnchors(p.anchors, p.v, p.opts.Anchors, p.roots, p.pos)
	return err
}

// readErr reports a failure to read at entry i: corruption the store detected is an alteration
// like any other; anything else is an I/O error.
func readErr(i uint64, what string, err error) error {
	if errors.Is(err, store.ErrCorrupt) {
		return &AlteredError{Index: i, Reason: fmt.Sprintf("the store finds its copy damaged: %v", err), Err: err}
	}
	return fmt.Errorf("verify: %s at entry %d: %w", what, i, err)
}
