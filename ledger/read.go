package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"golang.org/x/mod/sumdb/note"
)

// Entry is a ledger entry read back and decoded.
type Entry struct {
	Index    uint64
	Leaf     seal.Leaf
	LeafHash seal.Hash
	LeafData []byte           // the exact leaf bytes
	Body     []byte           // the canonical plaintext (JSON), nil if encrypted
	Message  *capture.Message // set for KindMessage
	Record   *capture.Record  // set for record kinds (context, media, capture error, annotation)
}

// SourceID returns the platform's id of the entry's message or record, or "" if it has none
// or its content is not readable.
func (e *Entry) SourceID() string {
	switch {
	case e.Message != nil:
		return e.Message.ID
	case e.Record != nil:
		return e.Record.ID
	}
	return ""
}

// ErrEncrypted is returned by Decode for an entry whose payload is encrypted.
var ErrEncrypted = errors.New("ledger: payload is encrypted")

// Decode checks a stored entry against its own leaf (payload hash, commitment) and decodes
// its content. It is what Get does after reading; verifiers use it on entries they stream.
func Decode(e store.Entry) (*Entry, error) {
	leaf, err := seal.ParseLeaf(e.Leaf)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	out := &Entry{Index: e.Index, Leaf: leaf, LeafHash: seal.LeafHash(e.Leaf), LeafData: e.Leaf}
	if leaf.Index != e.Index {
		return out, fmt.Errorf("%w: entry %d holds the leaf of index %d", store.ErrCorrupt, e.Index, leaf.Index)
	}
	if sha256.Sum256(e.Payload) != leaf.PayloadHash {
		return out, fmt.Errorf("%w: entry %d: payload does not match its hash", store.ErrCorrupt, e.Index)
	}
	if leaf.KeyID != "" {
		return out, fmt.Errorf("entry %d under key %q: %w", e.Index, leaf.KeyID, ErrEncrypted)
	}
	return out, decodeEnvelope(out, e.Payload)
}

// decodeEnvelope checks a plaintext envelope against the entry's commitment and decodes it.
func decodeEnvelope(out *Entry, env []byte) error {
	salt, body, err := seal.OpenEnvelope(env)
	if err != nil {
		return fmt.Errorf("entry %d: %w", out.Index, err)
	}
	if seal.Commitment(&salt, body) != out.Leaf.Commitment {
		return fmt.Errorf("%w: entry %d: content does not match its commitment", store.ErrCorrupt, out.Index)
	}
	out.Body = body
	switch out.Leaf.Kind {
	case seal.KindMessage:
		var m capture.Message
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("entry %d: decoding message: %w", out.Index, err)
		}
		out.Message = &m
	case seal.KindContext, seal.KindMedia, seal.KindCaptureError, seal.KindAnnotation:
		var r capture.Record
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("entry %d: decoding record: %w", out.Index, err)
		}
		out.Record = &r
	}
	return nil
}

// Get reads, checks and decodes entry i. The content of an encrypted entry is not decrypted
// (the error wraps ErrEncrypted and the leaf is returned): decrypting reads go through an
// Accessor, which records them.
func (l *Ledger) Get(ctx context.Context, i uint64) (*Entry, error) {
	if i >= l.Size() {
		return nil, fmt.Errorf("%w: %d (size %d)", ErrNotFound, i, l.Size())
	}
	e, err := l.st.Entry(ctx, i)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading entry %d: %w", i, err)
	}
	return Decode(e)
}

// Lookup returns the index of the message with the given source identity.
func (l *Ledger) Lookup(ctx context.Context, k capture.Key) (uint64, bool, error) {
	return l.st.Lookup(ctx, seal.IdentityDigest("message", k.Platform, k.Tenant, k.ID))
}

// PutBlob stores attachment content durably and returns its SHA-256. In an encrypted ledger
// the content is stored encrypted under a data key of its own.
func (l *Ledger) PutBlob(ctx context.Context, data []byte) ([32]byte, error) {
	if l.dk != nil {
		return l.putBlob(ctx, data)
	}
	sum := sha256.Sum256(data)
	if err := l.st.PutBlob(ctx, sum, data); err != nil {
		return sum, fmt.Errorf("ledger: storing blob: %w", err)
	}
	return sum, nil
}

// Blob returns attachment content by its SHA-256 (capture.ErrBlobNotFound if absent). In an
// encrypted ledger the read is recorded as an access by "ledger"; use an Accessor to name who
// reads and why.
func (l *Ledger) Blob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if l.dk != nil {
		return l.Access("ledger", "capture.BlobStore read").Blob(ctx, sum)
	}
	return l.blob(ctx, sum)
}

var (
	_ capture.Sink       = (*Ledger)(nil)
	_ capture.RecordSink = (*Ledger)(nil)
	_ capture.BlobStore  = (*Ledger)(nil)
)

// Checkpoint returns the latest signed checkpoint and its parsed form, or ErrNotFound if the
// ledger has none yet.
func (l *Ledger) Checkpoint() ([]byte, seal.Checkpoint, error) {
	l.cpMu.RLock()
	defer l.cpMu.RUnlock()
	if l.cpNote == nil {
		return nil, seal.Checkpoint{}, fmt.Errorf("%w: no checkpoint yet", ErrNotFound)
	}
	return append([]byte(nil), l.cpNote...), l.cp, nil
}

// InclusionProof returns the proof that entry i is in the tree of the given size.
func (l *Ledger) InclusionProof(ctx context.Context, i, size uint64) ([]seal.Hash, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("%w: tree size %d beyond %d", ErrNotFound, size, l.Size())
	}
	return seal.InclusionProof(size, i, l.hashReader(ctx))
}

// ConsistencyProof returns the proof that the tree of size old is a prefix of the tree of
// size size.
func (l *Ledger) ConsistencyProof(ctx context.Context, old, size uint64) ([]seal.Hash, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("%w: tree size %d beyond %d", ErrNotFound, size, l.Size())
	}
	return seal.ConsistencyProof(size, old, l.hashReader(ctx))
}

// Prove returns a C2SP tlog-proof@v1 for entry i against the latest checkpoint; its extra data
// is the entry's exact leaf bytes. An entry not yet covered by a checkpoint gets ErrNotFound.
func (l *Ledger) Prove(ctx context.Context, i uint64) (*seal.Proof, error) {
	signed, cp, err := l.Checkpoint()
	if err != nil {
		return nil, err
	}
	return prove(ctx, l.st, i, signed, cp)
}

// Prove returns a tlog-proof for entry i of a stored ledger against its latest checkpoint,
// without opening the ledger for writing (for offline tools). The checkpoint must verify
// with v.
func Prove(ctx context.Context, r Reader, i uint64, v note.Verifier) (*seal.Proof, error) {
	sc, err := r.LatestCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: latest checkpoint: %w", err)
	}
	cp, err := seal.OpenCheckpoint(sc.Note, v)
	if err != nil {
		return nil, err
	}
	return prove(ctx, r, i, sc.Note, cp)
}

func prove(ctx context.Context, r interface {
	Entry(context.Context, uint64) (store.Entry, error)
	ReadHashes(context.Context, []int64) ([]store.Hash, error)
}, i uint64, signed []byte, cp seal.Checkpoint) (*seal.Proof, error) {
	if i >= cp.Size {
		return nil, fmt.Errorf("%w: entry %d is not covered by the latest checkpoint (size %d)", ErrNotFound, i, cp.Size)
	}
	e, err := r.Entry(ctx, i)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading entry %d: %w", i, err)
	}
	hs, err := seal.InclusionProof(cp.Size, i, hashReader(ctx, r))
	if err != nil {
		return nil, fmt.Errorf("ledger: proving entry %d: %w", i, err)
	}
	return &seal.Proof{Extra: e.Leaf, Index: i, Hashes: hs, Checkpoint: signed}, nil
}
