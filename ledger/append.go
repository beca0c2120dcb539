package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
)

// request is one entry on its way to the sequencer: everything that does not depend on the
// order is computed by the caller.
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
	// checked is the durable size before the caller looked the identity up among the durable
	// entries (the pipeline looks among those in flight only, unless its memory of them was
	// pruned since).
	checked uint64
	// after, if set, is the entry that must be the latest of a conversation when this one is
	// sequenced (optimistic concurrency between the writers of a shared ledger); if it is not,
	// the request fails with errChainMoved and nothing is appended.
	after *chainAt
	// found is the durable entry with the identity, from the lookup of a whole batch (a shared
	// flight's, before it takes the store's lock, or the pipeline's on a store that looks many
	// identities up at once: lookupBatch); -1 if none, or if the caller looked it up itself.
	found int64
	// lookupErr is the error of that lookup, which the request fails with.
	lookupErr error
}

// chainAt names the latest entry of conversation conv: head, or -1 for none.
type chainAt struct {
	conv seal.Hash
	head int64
}

// errChainMoved answers a request whose chainAt no longer holds: another writer appended to the
// conversation since the caller read it.
var errChainMoved = errors.New("ledger: another writer appended to the chain first")

type result struct {
	index uint64
	dup   bool
	err   error
}

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
	size := 512 + len(mm.Text) + len(mm.Raw)*4/3 + 128*(len(mm.Mentions)+len(mm.Attachments))
	rc, err := l.submit(ctx, r, size, mm.AppendJSON)
	if err == nil && !rc.Duplicate && l.opts.Appended != nil {
		l.opts.Appended(rc.Index, seal.KindMessage, &mm)
	}
	return rc, err
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
	var lockSum *[32]byte // the attachment a media record ties to its scope
	if l.dk != nil && rr.Kind == capture.RecordMedia {
		// A media record ties its blob's key to the record's scope, so that shredding the scope
		// shreds the blob too. The tie is made before the record is sealed, and a failure fails
		// the append: a record sealed without it would leave its attachment readable after its
		// scope was shredded. (A tie whose record then fails to seal is harmless: the retry
		// seals the same record in the same scope.)
		var ref capture.MediaResult
		if json.Unmarshal(rr.Body, &ref) == nil && len(ref.SHA256) == 64 {
			var sum [32]byte
			if _, herr := hex.Decode(sum[:], []byte(ref.SHA256)); herr == nil {
				scope := r.keyID
				if scope == "" {
					scope, _ = scopeKeyID(rr.Tenant, rr.Conversation.ID, rr.At)
				}
				if err := l.dk.addBlobScope(ctx, sum, scope); err != nil {
					return capture.Receipt{}, fmt.Errorf("ledger: linking blob %s to its scope: %w", ref.SHA256, err)
				}
				lockSum = &sum
			}
		}
	}
	rc, err := l.submit(ctx, r, 512+(len(rr.Body)+len(rr.Raw))*4/3, rr.AppendJSON)
	if err == nil && !rc.Duplicate && lockSum != nil && l.blobLocks != nil {
		// Lock the attachment in its storage for its scope (Object Lock) now, not at the next
		// pass, but off this path: the caller's acknowledgement waits neither for the storage
		// nor for a pass over every lock that may be running. Until then the storage's
		// default retention keeps the object; a lock that fails or is dropped loses nothing,
		// the record is sealed and ApplyLocks sets the lock.
		l.blobLocks.add(*lockSum)
	}
	return rc, err
}

// messageKeyID returns the data key id of the stored message with key k, or "" if it is not
// stored (or not encrypted).
func (l *Ledger) messageKeyID(ctx context.Context, k capture.Identity) (string, error) {
	i, ok, err := l.idx.lookup(ctx, seal.IdentityDigest("message", k.Platform, k.Tenant, k.ID))
	if err != nil || !ok {
		return "", err
	}
	leaf, _, err := l.idx.leaf(ctx, i)
	if err != nil {
		return "", err
	}
	return leaf.KeyID, nil
}

// encoder appends an entry's canonical plaintext to b.
type encoder func(b []byte) ([]byte, error)

// jsonOf is the encoder of a value's encoding/json form (the ledger's own small records).
func jsonOf(v any) encoder {
	return func(b []byte) ([]byte, error) {
		j, err := json.Marshal(v)
		return append(b, j...), err
	}
}

// submit seals the plaintext enc writes (about size bytes) into r's payload and commitment,
// hands r to the pipeline and waits. A durable duplicate is answered at once.
func (l *Ledger) submit(ctx context.Context, r *request, size int, enc encoder) (capture.Receipt, error) {
	lookupLater := l.shared != nil || l.idx.batches()
	if r.identity != (seal.Hash{}) && !lookupLater {
		// A redelivery of a durable entry is answered here, off the pipeline. (A shared
		// ledger looks each batch's identities up at once, in appendShared, and so does the
		// pipeline of a store that takes many in one call, a round trip to a server: in
		// lookupBatch.)
		r.checked = l.Size()
		i, ok, err := l.idx.lookup(ctx, r.identity)
		if err != nil {
			return capture.Receipt{}, err
		}
		if ok {
			return capture.Receipt{Index: i, Duplicate: true}, nil
		}
	}
	rnd := l.rand()
	err := l.seal(ctx, rnd, r, size, enc)
	l.putRand(rnd)
	if errors.Is(err, ErrShredded) && r.identity != (seal.Hash{}) && lookupLater {
		// A redelivery of an entry whose key retention destroyed since cannot be sealed again,
		// and need not be: where the lookup waits for the batch (above), it is made now.
		if i, ok, lerr := l.idx.lookup(ctx, r.identity); lerr == nil && ok {
			return capture.Receipt{Index: i, Duplicate: true}, nil
		}
	}
	if err != nil {
		return capture.Receipt{}, err
	}
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
		if res.err == nil && !res.dup && r.kind != seal.KindMessage && l.opts.Appended != nil {
			l.opts.Appended(res.index, r.kind, nil) // a message's is called by Append, with it
		}
		return capture.Receipt{Index: res.index, Duplicate: res.dup}, res.err
	case <-ctx.Done():
		// The entry may still become durable; a retry is safe for deduplicated entries.
		return capture.Receipt{}, ctx.Err()
	}
}

// seal fills r's payload (the envelope, encrypted when r asks for it), commitment and payload
// hash, drawing the salt and the nonce from rnd.
func (l *Ledger) seal(ctx context.Context, rnd io.Reader, r *request, size int, enc encoder) error {
	var salt [seal.SaltSize]byte
	if _, err := io.ReadFull(rnd, salt[:]); err != nil {
		return fmt.Errorf("ledger: drawing salt: %w", err)
	}
	env := seal.AppendEnvelope(make([]byte, 0, 1+seal.SaltSize+size), &salt, nil)
	env, err := enc(env)
	if err != nil {
		return fmt.Errorf("ledger: encoding %s entry: %w", r.kind, err)
	}
	r.payload = env
	r.commit = seal.Commitment(&salt, env[1+seal.SaltSize:])
	if r.encrypt && l.dk != nil {
		ct, err := l.encrypt(ctx, rnd, r, r.payload, r.tenant, r.cid, r.scopeTime, r.kind.String())
		clear(r.payload)
		if err != nil {
			return err
		}
		r.payload = ct
	}
	r.payHash = sha256.Sum256(r.payload)
	return nil
}

// randBuffer hands out crypto/rand bytes read 4 KiB at a time: salts and nonces are on every
// append's path, and one read per append costs more than the rest of drawing them.
type randBuffer struct {
	src io.Reader
	buf [4096]byte
	n   int // unread bytes at the end of buf
}

func (b *randBuffer) Read(p []byte) (int, error) {
	if len(p) > len(b.buf) {
		return io.ReadFull(b.src, p)
	}
	if b.n < len(p) {
		if _, err := io.ReadFull(b.src, b.buf[:]); err != nil {
			return 0, err
		}
		b.n = len(b.buf)
	}
	start := len(b.buf) - b.n
	copy(p, b.buf[start:start+len(p)])
	clear(b.buf[start : start+len(p)]) // handed out once, kept nowhere
	b.n -= len(p)
	return len(p), nil
}

// rand returns the reader for salts and nonces: a buffered crypto/rand by default, or
// Options.Rand as it is (tests that want determinism).
func (l *Ledger) rand() io.Reader {
	if l.randPool == nil {
		return l.opts.Rand
	}
	return l.randPool.Get().(*randBuffer)
}

func (l *Ledger) putRand(r io.Reader) {
	if b, ok := r.(*randBuffer); ok {
		l.randPool.Put(b)
	}
}
