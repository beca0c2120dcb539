// Package ledger is commseal's append-only evidence ledger. It composes seal (formats and
// proofs) with a store.Store (durability): Append seals a captured message into a Merkle-tree
// log and returns once the entry is durable; Get reads it back; InclusionProof, ConsistencyProof
// and Prove answer for any entry; checkpoints are signed on a policy; Verify checks a whole
// ledger in one streaming pass with nothing but its verifier key.
//
// # Appending
//
// Many goroutines may call Append at once. A single sequencer takes every request that is
// waiting, assigns consecutive indices, extends the tree once and makes the batch durable in one
// store commit (group commit); each caller returns when its batch is durable. Work that does not
// need the order (encoding, hashing the payload, the commitment) happens in the caller's
// goroutine, so the sequencer only links, hashes leaves and writes.
//
// A Ledger implements capture.Sink, capture.RecordSink and capture.BlobStore, so sources write
// into it directly. It deduplicates on the source identity (platform, tenant, message id): a
// message delivered again returns its original index with Duplicate set and writes nothing.
//
// # Checkpoints
//
// After every CheckpointEvery entries, after CheckpointInterval when entries are uncovered, and
// on Close, the ledger signs a C2SP checkpoint of its tree. It never signs two inconsistent
// checkpoints: on Open it checks that the stored tree reproduces the latest checkpoint's root
// and refuses a store that does not, and before each signature it verifies a consistency proof
// from the previous checkpoint.
package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"golang.org/x/mod/sumdb/tlog"
)

// Options configure a Ledger. Keys is required; the rest have defaults.
type Options struct {
	// Keys signs checkpoints; its key name is the ledger's origin.
	Keys *seal.Keys
	// CheckpointEvery signs a checkpoint once this many entries are uncovered. Default 1000.
	CheckpointEvery uint64
	// CheckpointInterval signs a checkpoint when entries have been uncovered this long.
	// Default 10s.
	CheckpointInterval time.Duration
	// MaxBatch bounds the entries of one group commit. Default 1024.
	MaxBatch int
	// Logger receives the ledger's events. Default: discard.
	Logger *slog.Logger
	// Now is the clock for capture times. Default time.Now.
	Now func() time.Time
	// Rand is the source of commitment salts and nonces. Default crypto/rand.
	Rand io.Reader
	// Encryption, if set, encrypts payloads and blobs at rest; see Encryption.
	Encryption *Encryption
}

// Errors callers branch on with errors.Is.
var (
	// ErrClosed is returned by calls on a closed ledger.
	ErrClosed = errors.New("ledger: closed")
	// ErrInconsistent means the store does not reproduce the ledger's own signed checkpoint:
	// entries were lost or altered. The ledger refuses to open rather than sign a fork.
	ErrInconsistent = errors.New("ledger: store is inconsistent with its signed checkpoint")
	// ErrNotFound is returned for an index beyond the ledger's size.
	ErrNotFound = errors.New("ledger: entry not found")
)

// Ledger is an open, writable ledger. It is safe for concurrent use.
type Ledger struct {
	st   store.Store
	opts Options
	log  *slog.Logger
	keys *seal.Keys
	dk   *keyCache // data keys; nil when payloads are not encrypted

	reqs chan *request
	stop chan struct{}
	done chan struct{}

	closeOnce sync.Once
	closeErr  error

	size atomic.Uint64 // durable entries, for readers

	// Owned by the sequencer (run): the tree and the chains as they will be once every
	// submitted batch is durable.
	next     uint64
	frontier seal.Frontier
	convs    map[seal.Hash]convHead
	pending  map[seal.Hash]uint64 // identities submitted, perhaps not yet durable

	// Between the sequencer and the completer.
	flights chan *flight
	nflight atomic.Int64
	failed  atomic.Bool // a commit failed: in-flight batches are refused until the sequencer resyncs

	// Owned by the completer (complete): checkpoints.
	cp     seal.Checkpoint // latest signed checkpoint (Size 0 if none)
	cpAt   time.Time
	cpMu   sync.RWMutex // guards cpNote and cp for readers
	cpNote []byte
}

// convHead is the latest entry of a conversation: what the next one links to.
type convHead struct {
	seq   uint64
	hash  seal.Hash
	index uint64
}

// maxConvCache bounds the sequencer's cache of conversation heads; beyond it the cache is
// dropped and heads are read from the store again.
const maxConvCache = 1 << 16

type request struct {
	// the data key's scope, for entries that are encrypted
	encrypt     bool
	tenant, cid string
	scopeTime   time.Time

	kind     seal.Kind
	identity seal.Hash
	conv     seal.Hash
	time     time.Time
	commit   seal.Hash
	payHash  seal.Hash
	keyID    string
	payload  []byte
	done     chan result
}

type result struct {
	index uint64
	dup   bool
	err   error
}

// Open opens a ledger on st, which may be empty or hold a ledger written earlier with the same
// keys. It checks the store against its latest signed checkpoint first. The caller keeps
// ownership of st: Close does not close it.
func Open(ctx context.Context, st store.Store, opts Options) (*Ledger, error) {
	if opts.Keys == nil || opts.Keys.Signer == nil || opts.Keys.Verifier == nil {
		return nil, errors.New("ledger: Options.Keys is required")
	}
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = 1000
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	l := &Ledger{
		st: st, opts: opts, log: opts.Logger, keys: opts.Keys,
		reqs:    make(chan *request),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		convs:   map[seal.Hash]convHead{},
		pending: map[seal.Hash]uint64{},
		flights: make(chan *flight, maxFlights),
	}
	if e := opts.Encryption; e != nil {
		if e.Keyring == nil || e.Vault == nil {
			return nil, errors.New("ledger: Options.Encryption needs a Keyring and a Vault")
		}
		l.dk = newKeyCache(e)
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	l.cpAt = opts.Now()
	go l.run()
	go l.complete()
	return l, nil
}

// load reads the tree's frontier and the latest checkpoint and checks they agree.
func (l *Ledger) load(ctx context.Context) error {
	size, err := l.st.Size(ctx)
	if err != nil {
		return fmt.Errorf("ledger: reading size: %w", err)
	}
	hc, err := l.st.HashCount(ctx)
	if err != nil {
		return fmt.Errorf("ledger: reading stored hash count: %w", err)
	}
	if hc != seal.StoredHashCount(size) {
		return fmt.Errorf("%w: %d entries but %d stored hashes (want %d)", store.ErrCorrupt, size, hc, seal.StoredHashCount(size))
	}
	hs, err := l.st.ReadHashes(ctx, seal.FrontierIndexes(size))
	if err != nil {
		return fmt.Errorf("ledger: reading tree frontier: %w", err)
	}
	f, err := seal.LoadFrontier(size, toSeal(hs))
	if err != nil {
		return err
	}
	l.frontier = f
	l.size.Store(size)
	l.next = size

	sc, err := l.st.LatestCheckpoint(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: reading latest checkpoint: %w", err)
	}
	cp, err := seal.OpenCheckpoint(sc.Note, l.keys.Verifier)
	if err != nil {
		return fmt.Errorf("%w: latest checkpoint: %w", ErrInconsistent, err)
	}
	if cp.Size != sc.Size {
		return fmt.Errorf("%w: checkpoint stored for size %d says %d", ErrInconsistent, sc.Size, cp.Size)
	}
	if cp.Size > size {
		return fmt.Errorf("%w: checkpoint covers %d entries but the store holds %d", ErrInconsistent, cp.Size, size)
	}
	root, err := seal.TreeHash(cp.Size, l.hashReader(ctx))
	if err != nil {
		return fmt.Errorf("ledger: computing tree hash at %d: %w", cp.Size, err)
	}
	if root != cp.Root {
		return fmt.Errorf("%w: stored tree at size %d has root %v, checkpoint says %v", ErrInconsistent, cp.Size, root, cp.Root)
	}
	l.cp = cp
	l.cpNote = sc.Note
	return nil
}

func toSeal(hs []store.Hash) []seal.Hash {
	out := make([]seal.Hash, len(hs))
	for i := range hs {
		out[i] = hs[i]
	}
	return out
}

// hashReader adapts the store to tlog.HashReader for proofs.
func (l *Ledger) hashReader(ctx context.Context) tlog.HashReader {
	return hashReader(ctx, l.st)
}

func hashReader(ctx context.Context, r interface {
	ReadHashes(context.Context, []int64) ([]store.Hash, error)
}) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs, err := r.ReadHashes(ctx, idx)
		if err != nil {
			return nil, err
		}
		return toSeal(hs), nil
	})
}

// Origin returns the ledger's origin, the name on its checkpoints.
func (l *Ledger) Origin() string { return l.keys.Signer.Name() }

// VerifierKey returns the key that verifies the ledger's checkpoints, in sumdb/note form.
func (l *Ledger) VerifierKey() string { return l.keys.VerifierKey }

// Size returns the number of durable entries.
func (l *Ledger) Size() uint64 { return l.size.Load() }

// Append seals m and returns when it is durable. A message whose source identity is already in
// the ledger is not written again: the receipt gives the original index with Duplicate set.
// m is not modified; a zero CapturedAt is recorded as the time of the call.
func (l *Ledger) Append(ctx context.Context, m *capture.Message) (capture.Receipt, error) {
	if err := m.Validate(); err != nil {
		return capture.Receipt{}, err
	}
	mm := *m
	if mm.CapturedAt.IsZero() {
		mm.CapturedAt = l.opts.Now()
	}
	mm.CapturedAt = mm.CapturedAt.UTC()
	body, err := json.Marshal(&mm)
	if err != nil {
		return capture.Receipt{}, fmt.Errorf("ledger: encoding message %s: %w", m.Key(), err)
	}
	r := &request{
		kind:     seal.KindMessage,
		identity: seal.IdentityDigest("message", mm.Platform, mm.Tenant, mm.ID),
		time:     mm.CapturedAt,
		encrypt:  true, tenant: mm.Tenant, cid: mm.Conversation.ID, scopeTime: mm.SentAt,
	}
	if r.scopeTime.IsZero() {
		r.scopeTime = mm.CapturedAt
	}
	if mm.Conversation.ID != "" {
		r.conv = seal.ConversationDigest(mm.Platform, mm.Tenant, mm.Conversation.ID)
	}
	return l.submit(ctx, r, body)
}

// recordKinds maps capture record kinds to entry kinds.
var recordKinds = map[string]seal.Kind{
	capture.RecordContext:      seal.KindContext,
	capture.RecordMedia:        seal.KindMedia,
	capture.RecordCaptureError: seal.KindCaptureError,
	capture.RecordAnnotation:   seal.KindAnnotation,
}

// AppendRecord seals a non-message record (context event, media result, capture error,
// annotation) and returns when it is durable. Records with an ID are deduplicated on (kind,
// platform, tenant, ID) like messages; records without one are always appended.
func (l *Ledger) AppendRecord(ctx context.Context, rec *capture.Record) (capture.Receipt, error) {
	if err := rec.Validate(); err != nil {
		return capture.Receipt{}, err
	}
	rr := *rec
	if rr.At.IsZero() {
		rr.At = l.opts.Now()
	}
	rr.At = rr.At.UTC()
	body, err := json.Marshal(&rr)
	if err != nil {
		return capture.Receipt{}, fmt.Errorf("ledger: encoding record: %w", err)
	}
	r := &request{kind: recordKinds[rr.Kind], time: rr.At, encrypt: true, tenant: rr.Tenant, cid: rr.Conversation.ID, scopeTime: rr.At}
	if rr.ID != "" {
		r.identity = seal.IdentityDigest(rr.Kind, rr.Platform, rr.Tenant, rr.ID)
	}
	if rr.Conversation.ID != "" {
		r.conv = seal.ConversationDigest(rr.Platform, rr.Tenant, rr.Conversation.ID)
	}
	if l.dk != nil && rr.About != nil {
		// A record about a message (its media, a finding) lives and dies with that message:
		// it is encrypted under the message's data key, whenever it is sealed.
		id, err := l.messageKeyID(ctx, *rr.About)
		if err != nil {
			return capture.Receipt{}, err
		}
		r.keyID = id
	}
	rc, err := l.submit(ctx, r, body)
	if err == nil && l.dk != nil && rr.Kind == capture.RecordMedia {
		// A media record ties its blob's key to the record's scope, so that shredding the scope
		// can shred the blob too.
		var ref struct{ SHA256 string }
		if json.Unmarshal(rr.Body, &ref) == nil && len(ref.SHA256) == 64 {
			var sum [32]byte
			if _, herr := hex.Decode(sum[:], []byte(ref.SHA256)); herr == nil {
				scope := r.keyID
				if scope == "" {
					scope, _ = scopeKeyID(rr.Tenant, rr.Conversation.ID, rr.At)
				}
				if err := l.dk.addBlobScope(ctx, sum, scope); err != nil {
					l.log.Warn("ledger: linking blob to its scope failed", "blob", ref.SHA256, "err", err)
				}
			}
		}
	}
	return rc, err
}

// messageKeyID returns the data key id of the stored message with key k, or "" if it is not
// stored (or not encrypted).
func (l *Ledger) messageKeyID(ctx context.Context, k capture.Key) (string, error) {
	i, ok, err := l.st.Lookup(ctx, seal.IdentityDigest("message", k.Platform, k.Tenant, k.ID))
	if err != nil || !ok {
		return "", err
	}
	e, err := l.st.Entry(ctx, i)
	if err != nil {
		return "", fmt.Errorf("ledger: reading message %s: %w", k, err)
	}
	leaf, err := seal.ParseLeaf(e.Leaf)
	if err != nil {
		return "", fmt.Errorf("%w: message %s: %w", store.ErrCorrupt, k, err)
	}
	return leaf.KeyID, nil
}

// submit seals body into r's payload and commitment, hands r to the sequencer and waits.
func (l *Ledger) submit(ctx context.Context, r *request, body []byte) (capture.Receipt, error) {
	var salt [seal.SaltSize]byte
	if _, err := io.ReadFull(l.opts.Rand, salt[:]); err != nil {
		return capture.Receipt{}, fmt.Errorf("ledger: drawing salt: %w", err)
	}
	r.payload = seal.AppendEnvelope(make([]byte, 0, 1+seal.SaltSize+len(body)), &salt, body)
	r.commit = seal.Commitment(&salt, body)
	if r.encrypt && l.dk != nil {
		ct, err := l.encrypt(ctx, r, r.payload, r.tenant, r.cid, r.scopeTime, r.kind.String())
		clear(r.payload)
		if err != nil {
			return capture.Receipt{}, err
		}
		r.payload = ct
	}
	r.payHash = sha256.Sum256(r.payload)
	r.done = make(chan result, 1)
	select {
	case l.reqs <- r:
	case <-l.done:
		return capture.Receipt{}, ErrClosed
	case <-ctx.Done():
		return capture.Receipt{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return capture.Receipt{Index: res.index, Duplicate: res.dup}, res.err
	case <-ctx.Done():
		// The entry may still become durable; a retry is safe for deduplicated entries.
		return capture.Receipt{}, ctx.Err()
	}
}
