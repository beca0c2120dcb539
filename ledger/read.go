package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/verify"
)

// Entry is a ledger entry read back and decoded.
//
// When Body is set, Salt and Body are the opening of the leaf's commitment: anyone can check
// that SHA-256("commseal/commitment/v1\x00" || Salt || uint64be(len(Body)) || Body) equals
// Leaf.Commitment, so an export that hands over both proves its content against the signed
// tree without trusting the exporter.
type Entry struct {
	Index    uint64
	Leaf     seal.Leaf
	LeafHash seal.Hash
	LeafData []byte              // the exact leaf bytes
	Body     []byte              // the canonical plaintext (JSON), nil if encrypted or shredded
	Salt     [seal.SaltSize]byte // the commitment salt, set with Body
	Message  *capture.Message    // set for KindMessage
	Record   *capture.Record     // set for record kinds (context, media, capture error, annotation)
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

// Decode checks a stored entry on its own (verify.Entry: leaf, payload hash, commitment) and
// decodes its content. It is what Get does after reading. An encrypted entry returns its leaf
// and an error wrapping ErrEncrypted: decrypting reads go through an Accessor.
func Decode(e store.Entry) (*Entry, error) {
	leaf, lh, err := verify.Entry(e)
	out := &Entry{Index: e.Index, Leaf: leaf, LeafHash: lh, LeafData: e.Leaf}
	if err != nil {
		return out, fmt.Errorf("%w: %w", store.ErrCorrupt, err)
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
	out.Body, out.Salt = body, salt
	switch out.Leaf.Kind {
	case seal.KindMessage:
		m, err := capture.DecodeMessage(body)
		if err != nil {
			return fmt.Errorf("entry %d: decoding message: %w", out.Index, err)
		}
		out.Message = m
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
	e, err := store.ReadEntry(ctx, l.st, i)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading entry %d: %w", i, err)
	}
	return Decode(e)
}

// Lookup returns the index of the message with the given source identity.
func (l *Ledger) Lookup(ctx context.Context, k capture.Identity) (uint64, bool, error) {
	return l.idx.lookup(ctx, seal.IdentityDigest("message", k.Platform, k.Tenant, k.ID))
}

// InclusionProof returns the proof that entry i is in the tree of the given size.
func (l *Ledger) InclusionProof(ctx context.Context, i, size uint64) ([]seal.Hash, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("%w: tree size %d beyond %d", ErrNotFound, size, l.Size())
	}
	return verify.InclusionProof(ctx, l.st, i, size)
}

// ConsistencyProof returns the proof that the tree of size old is a prefix of the tree of
// size size.
func (l *Ledger) ConsistencyProof(ctx context.Context, old, size uint64) ([]seal.Hash, error) {
	if size > l.Size() {
		return nil, fmt.Errorf("%w: tree size %d beyond %d", ErrNotFound, size, l.Size())
	}
	return verify.ConsistencyProof(ctx, l.st, old, size)
}

// Prove returns a C2SP tlog-proof@v1 for entry i against the latest checkpoint; its extra data
// is the entry's exact leaf bytes. An entry beyond the ledger's size gets ErrNotFound; one that
// no checkpoint covers yet gets ErrNotCovered (SignCheckpoint covers it).
func (l *Ledger) Prove(ctx context.Context, i uint64) (*seal.Proof, error) {
	if i >= l.Size() {
		return nil, fmt.Errorf("%w: %d (size %d)", ErrNotFound, i, l.Size())
	}
	signed, cp, err := l.Checkpoint()
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: entry %d: the ledger has no checkpoint yet", ErrNotCovered, i)
	}
	if err != nil {
		return nil, err
	}
	return verify.ProofAt(ctx, l.st, i, signed, cp)
}
