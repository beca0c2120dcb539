package ledger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/verify"
)

// Defaults of Options.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultMaxBatch           = 1024
	DefaultMaxInFlight        = 1
)

// Options configure a Ledger. Signing is required; the rest have defaults.
type Options struct {
	// Signing signs checkpoints; its key name is the ledger's origin.
	Signing *seal.SigningKey
	// Appended, if set, is called with each entry once it is durable and newly sealed (not
	// for a duplicate), on the appending goroutine before the append call returns, with the
	// entry's kind and, for a message, the message (nil for other kinds): it must not block or
	// keep the goroutine. The message is the ledger's own copy of the caller's, which the
	// ledger no longer uses: the callee may keep it, and change it. The slices it holds (Raw,
	// Attachments, Mentions) are the caller's, which the caller may reuse once Append returns:
	// a callee that keeps them copies them. An in-process consumer that derives from what
	// is sealed (surveillance) takes the content from it instead of reading it back and
	// decrypting it, and learns which entries are not messages without reading them; whatever
	// it misses (an append whose caller gave up before it was durable), it reads from the
	// ledger.
	Appended func(index uint64, kind seal.Kind, m *capture.Message)
	// CheckpointEvery signs a checkpoint once this many entries are uncovered
	// (DefaultCheckpointEvery if zero).
	CheckpointEvery uint64
	// CheckpointInterval signs a checkpoint when entries have been uncovered this long
	// (DefaultCheckpointInterval if zero).
	CheckpointInterval time.Duration
	// MaxBatch bounds the entries of one batch (DefaultMaxBatch if zero).
	MaxBatch int
	// MaxInFlight bounds the batches handed to the store and not yet durable
	// (DefaultMaxInFlight if zero). While that many are in flight, the next batch is sequenced
	// in memory and handed over the moment the oldest is durable. One suits a store that syncs
	// one batch at a time (store/filestore); a store that commits several at once in parallel
	// may do better with more.
	MaxInFlight int
	// Logger receives the ledger's events. Default: discard.
	Logger *slog.Logger
	// Now is the clock for capture times. Default time.Now.
	Now func() time.Time
	// Rand is the source of commitment salts and nonces. Default crypto/rand.
	Rand io.Reader
	// Encryption, if set, encrypts payloads and blobs at rest; see Encryption.
	Encryption *Encryption
	// Shared says that other ledgers, usually in other processes, append to the same store at the
	// same time: several capture processes on one PostgreSQL log, say. The store must implement
	// store.SharedLog. Each batch is then built while the store's write lock is held, from the log
	// as the other writers left it (their entries extend this ledger's tree, chains and
	// deduplication first), and MaxInFlight is 1: a flight builds on the one before it, which must
	// be durable first. The store must also find entries by identity and conversation itself
	// (store.IdentityIndex, store.ConversationIndex), and record which ledger it holds
	// (store.Owner): every writer shares one signing key, and one with another key is refused with
	// ErrOtherLedger. Checkpoints are signed by one writer at a time: the holder of the store's
	// "checkpoint" lease if the store grants leases (store.Leases), the others taking its
	// checkpoints from the store; a store without leases lets every writer sign, each checking
	// that it extends the latest one stored. The signer covers the whole log, the other writers'
	// entries too.
	Shared bool
	// Blobs, if set, keeps the attachments (PutBlob, Blob) instead of the store, which then
	// need not implement store.Blobs: an S3 bucket with Object Lock (store/s3store) beside a log
	// in the file store, say. Left nil, the ledger uses the store's store.Blobs, if it has one
	// (ErrNoBlobs otherwise). The ledger does not close it. Give a ledger the same Blobs at
	// every Open: attachments written to one are not found in another.
	Blobs store.Blobs
}

// Errors callers branch on with errors.Is.
var (
	// ErrClosed is returned by calls on a closed ledger.
	ErrClosed = errors.New("ledger: closed")
	// ErrInconsistent means the store does not reproduce the ledger's own signed checkpoint:
	// entries were lost or altered. The ledger refuses to open rather than sign a fork.
	ErrInconsistent = errors.New("ledger: store is inconsistent with its signed checkpoint")
	// ErrOtherLedger means the store was claimed by a ledger with another signing key
	// (store.Owner): its entries, and the data keys they are under, are not this ledger's.
	// Open refuses it before writing anything.
	ErrOtherLedger = errors.New("ledger: the store holds another ledger")
	// ErrNotFound is returned for an index beyond the ledger's size.
	ErrNotFound = errors.New("ledger: entry not found")
	// ErrNotCovered is returned for a proof of an entry that no checkpoint covers yet
	// (SignCheckpoint covers it).
	ErrNotCovered = verify.ErrNotCovered
)

// Ledger is an open, writable ledger. It is safe for concurrent use.
type Ledger struct {
	st   store.Store
	opts Options
	log  *slog.Logger
	keys *seal.SigningKey
	dk   *keyCache // data keys; nil when payloads are not encrypted
	idx  *index

	holds holdLog // legal holds, and the shred entries they must stop (retention.go)
	// blobLocks locks tied attachments in their storage off the append path (objectlock.go);
	// nil without a blob store that locks objects.
	blobLocks *blobLocker
	// anchorMu orders anchor entries: each names the one before it (anchor.go).
	anchorMu sync.Mutex

	reqs chan *request
	stop chan struct{}
	done chan struct{}

	randPool *sync.Pool // of *randBuffer; nil when Options.Rand was given

	closeOnce sync.Once
	closeErr  error

	size atomic.Uint64 // durable entries, for readers

	seq          sequencer       // owned by the pipeline goroutine, and by a shared ledger's flight while it is out
	shared       store.SharedLog // the store, when Options.Shared
	leases       store.Leases    // the store, when Options.Shared and it grants leases
	appender     *appender       // for a store that is not a store.Pipeline
	checkpointer *checkpointer

	// cpMu guards the latest checkpoint, written by the checkpointer and read by anyone.
	cpMu   sync.RWMutex
	cp     seal.Checkpoint // latest signed checkpoint (Size 0 if none)
	cpNote []byte
}

// Open opens a ledger on st, which may be empty or hold a ledger written earlier with the same
// keys. It checks the store against its latest signed checkpoint first, and refuses a store
// opened read-only (store.ErrReadOnly). A store that records its owner (store.Owner) is claimed
// for the ledger's verifier key, and one that another key claimed is refused with
// ErrOtherLedger, before anything is written. The caller keeps ownership of st: Close does not
// close it.
func Open(ctx context.Context, st store.Store, opts Options) (*Ledger, error) {
	if opts.Signing == nil || opts.Signing.Signer == nil || opts.Signing.Verifier == nil {
		return nil, errors.New("ledger: Options.Signing is required")
	}
	if ro, ok := st.(store.ReadOnlyReporter); ok && ro.ReadOnly() {
		return nil, fmt.Errorf("%w: a ledger writes (appends, checkpoints, access entries); verify a read-only store with package verify", store.ErrReadOnly)
	}
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxInFlight <= 0 || opts.Shared {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var randPool *sync.Pool
	if opts.Rand == nil {
		opts.Rand = rand.Reader
		randPool = &sync.Pool{New: func() any { return &randBuffer{src: rand.Reader} }}
	}
	l := &Ledger{
		st: st, opts: opts, log: opts.Logger, keys: opts.Signing,
		reqs:  make(chan *request),
		holds: holdLog{lockMu: make(chan struct{}, 1)},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),

		randPool: randPool,
	}
	if opts.Shared {
		var ok bool
		if l.shared, ok = st.(store.SharedLog); !ok {
			return nil, fmt.Errorf("ledger: Options.Shared needs a store that several writers can share (store.SharedLog); %T is not one", st)
		}
		l.leases, _ = st.(store.Leases)
		_, ids := st.(store.IdentityIndex)
		_, convs := st.(store.ConversationIndex)
		if !ids || !convs {
			return nil, fmt.Errorf("ledger: Options.Shared needs a store that finds entries by identity and conversation itself (store.IdentityIndex, store.ConversationIndex); %T does not", st)
		}
		if _, ok := st.(store.Owner); !ok {
			return nil, fmt.Errorf("ledger: Options.Shared needs a store that records which ledger it holds (store.Owner); %T does not", st)
		}
	}
	if e := opts.Encryption; e != nil {
		if e.Keyring == nil || e.Vault == nil {
			return nil, errors.New("ledger: Options.Encryption needs a Keyring and a Vault")
		}
		l.dk = newKeyCache(e)
		l.dk.shared, l.dk.now = opts.Shared, opts.Now
	}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	if err := l.claim(ctx); err != nil {
		return nil, err
	}
	if _, ok := st.(store.Pipeline); !ok && l.shared == nil {
		l.appender = newAppender(st, opts.MaxInFlight)
	}
	l.checkpointer = newCheckpointer(l)
	if _, ok := l.objectLocker(); ok && l.dk != nil {
		l.blobLocks = startBlobLocker(l)
	}
	go l.run()
	return l, nil
}

// load reads the latest checkpoint, then the tree's frontier, and checks they agree, then
// builds the index the store does not keep itself. The checkpoint is read first: a checkpoint
// is stored only for entries already in the log, so the size read after it covers it even
// while other writers of a shared log append and sign.
func (l *Ledger) load(ctx context.Context) error {
	sc, err := l.st.LatestCheckpoint(ctx)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("ledger: reading latest checkpoint: %w", err)
	}
	size, err := l.st.Size(ctx)
	if err != nil {
		return fmt.Errorf("ledger: reading size: %w", err)
	}
	f, err := loadFrontier(ctx, l.st, size)
	if err != nil {
		return err
	}
	l.seq.init(f)
	l.size.Store(size)
	if found {
		cp, err := l.openStored(ctx, sc, size)
		if err != nil {
			return err
		}
		l.cpMu.Lock()
		l.cp, l.cpNote = cp, sc.Note
		l.cpMu.Unlock()
	}
	l.idx, err = openIndex(ctx, l.st, l.Size())
	return err
}

// claim claims the store for the ledger's verifier key, if the store records an owner
// (store.Owner), and fails with ErrOtherLedger if another key claimed it first. It comes after
// load: a store with a checkpoint that this key did not sign has been refused by then, so a
// store from before owners were recorded is claimed only by its own ledger.
func (l *Ledger) claim(ctx context.Context) error {
	o, ok := l.st.(store.Owner)
	if !ok {
		return nil
	}
	mine := owner(l.keys.Verifier)
	got, err := o.Claim(ctx, mine)
	if err != nil {
		return fmt.Errorf("ledger: claiming the store: %w", err)
	}
	if got != mine {
		return fmt.Errorf("%w: it was claimed by %s; this ledger's key is %s", ErrOtherLedger, got, mine)
	}
	return nil
}

// owner is the name a ledger claims its store with: its verifier's name and key hash, as a
// sumdb/note signature names the key ("origin+1a2b3c4d"), the same however the key was built.
func owner(v note.Verifier) string { return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()) }

// loadFrontier reads the stored hashes that the tree of size entries ends with.
func loadFrontier(ctx context.Context, st store.Store, size uint64) (seal.Frontier, error) {
	hs, err := st.ReadHashes(ctx, seal.FrontierIndexes(size))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return seal.Frontier{}, fmt.Errorf("%w: the store holds %d entries but not their stored hashes: %w", store.ErrCorrupt, size, err)
		}
		return seal.Frontier{}, fmt.Errorf("ledger: reading the tree frontier: %w", err)
	}
	sh := make([]seal.Hash, len(hs))
	for k := range hs {
		sh[k] = hs[k]
	}
	return seal.LoadFrontier(size, sh)
}

// openStored opens a stored checkpoint with the ledger's verifier key and checks that the
// stored tree (of size entries) reproduces its root.
func (l *Ledger) openStored(ctx context.Context, sc store.Checkpoint, size uint64) (seal.Checkpoint, error) {
	cp, err := seal.OpenCheckpoint(sc.Note, l.keys.Verifier)
	if err != nil {
		return cp, fmt.Errorf("%w: latest checkpoint: %w", ErrInconsistent, err)
	}
	if cp.Size != sc.Size {
		return cp, fmt.Errorf("%w: checkpoint stored for size %d says %d", ErrInconsistent, sc.Size, cp.Size)
	}
	if cp.Size > size {
		return cp, fmt.Errorf("%w: checkpoint covers %d entries but the store holds %d", ErrInconsistent, cp.Size, size)
	}
	root, err := seal.TreeHash(cp.Size, verify.Hashes(ctx, l.st))
	if err != nil {
		return cp, fmt.Errorf("ledger: computing tree hash at %d: %w", cp.Size, err)
	}
	if root != cp.Root {
		return cp, fmt.Errorf("%w: stored tree at size %d has root %v, checkpoint says %v", ErrInconsistent, cp.Size, root, cp.Root)
	}
	return cp, nil
}

// Origin returns the ledger's origin, the name on its checkpoints.
func (l *Ledger) Origin() string { return l.keys.Signer.Name() }

// VerifierKey returns the key that verifies the ledger's checkpoints, in sumdb/note form.
func (l *Ledger) VerifierKey() string { return l.keys.VerifierKey }

// Size returns the number of durable entries.
func (l *Ledger) Size() uint64 { return l.size.Load() }

// Close stops taking appends, finishes those already handed over, signs a final checkpoint and
// returns. It does not close the store. Calling it again returns the first result.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		if l.blobLocks != nil {
			l.blobLocks.stop()
		}
	})
	return l.closeErr
}
