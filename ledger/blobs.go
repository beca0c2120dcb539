package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// Attachments: content-addressed blobs in Options.Blobs or else the store's store.Blobs,
// encrypted under a data key of their own in an encrypted ledger (so that a blob shared by
// several scopes goes only when the last of them goes).

// PutBlob stores attachment content durably and returns its SHA-256. In an encrypted ledger
// the content is stored encrypted under a data key of its own.
func (l *Ledger) PutBlob(ctx context.Context, data []byte) ([32]byte, error) {
	if l.dk != nil {
		return l.putBlob(ctx, data)
	}
	sum := sha256.Sum256(data)
	bs, err := l.blobs()
	if err != nil {
		return sum, err
	}
	if err := bs.WriteBlob(ctx, sum, data); err != nil {
		return sum, fmt.Errorf("ledger: storing blob: %w", err)
	}
	return sum, nil
}

// blobs returns Options.Blobs, else the store's store.Blobs, or store.ErrNoBlobs.
func (l *Ledger) blobs() (store.Blobs, error) {
	if l.opts.Blobs != nil {
		return l.opts.Blobs, nil
	}
	bs, ok := l.st.(store.Blobs)
	if !ok {
		return nil, fmt.Errorf("%w: attachments cannot be kept in this ledger", store.ErrNoBlobs)
	}
	return bs, nil
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

// putBlob stores data encrypted under its own data key and returns the plaintext's SHA-256.
func (l *Ledger) putBlob(ctx context.Context, data []byte) ([32]byte, error) {
	sum := sha256.Sum256(data)
	id := blobKeyID(sum)
	if sc, err := l.dk.readScope(ctx, id); err == nil {
		if sc.Shredding != nil {
			// Stored before, and going with a shred now: the record that would tie it is
			// refused (addBlobScope), and so is the content, rather than stored and lost.
			return sum, fmt.Errorf("%w: blob %x goes with the shred of %s", ErrShredded, sum[:8], sc.Shredding.With)
		}
		return sum, nil // stored before
	} else if errors.Is(err, store.ErrDestroyed) {
		return sum, fmt.Errorf("%w: blob %x", ErrShredded, sum[:8])
	} else if !errors.Is(err, store.ErrNotFound) {
		return sum, err
	}
	dek, err := seal.NewDataKey()
	if err != nil {
		return sum, err
	}
	defer clear(dek)
	ct, err := seal.EncryptPayload(l.opts.Rand, dek, id, data)
	if err != nil {
		return sum, err
	}
	addr := sha256.Sum256(ct)
	bs, err := l.blobs()
	if err != nil {
		return sum, err
	}
	if err := bs.WriteBlob(ctx, addr, ct); err != nil {
		return sum, fmt.Errorf("ledger: storing blob: %w", err)
	}
	err = l.dk.putKey(ctx, id, dek, keyScope{Blob: hex.EncodeToString(addr[:])})
	if errors.Is(err, store.ErrDuplicate) {
		return sum, nil // a concurrent put of the same content won
	}
	if err != nil {
		return sum, fmt.Errorf("ledger: storing blob key: %w", err)
	}
	return sum, nil
}

// blob returns blob content, decrypting it when the ledger is encrypted.
func (l *Ledger) blob(ctx context.Context, sum [32]byte) ([]byte, error) {
	bs, err := l.blobs()
	if err != nil {
		return nil, err
	}
	if l.dk == nil {
		b, err := bs.ReadBlob(ctx, sum)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %x", capture.ErrBlobNotFound, sum[:8])
		}
		return b, err
	}
	id := blobKeyID(sum)
	wk, err := l.dk.enc.Vault.Key(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %x", capture.ErrBlobNotFound, sum[:8])
	case errors.Is(err, store.ErrDestroyed):
		return nil, fmt.Errorf("%w: blob %x", ErrShredded, sum[:8])
	case err != nil:
		return nil, err
	}
	var sc keyScope
	if err := json.Unmarshal(wk.Meta, &sc); err != nil {
		return nil, fmt.Errorf("%w: blob key metadata: %v", store.ErrCorrupt, err)
	}
	addr, err := hex.DecodeString(sc.Blob)
	if err != nil || len(addr) != 32 {
		return nil, fmt.Errorf("%w: blob key metadata has no address", store.ErrCorrupt)
	}
	ct, err := bs.ReadBlob(ctx, store.Hash(addr))
	if err != nil {
		return nil, fmt.Errorf("ledger: reading blob: %w", err)
	}
	dek, err := l.dk.unwrap(ctx, wk)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	data, err := seal.DecryptPayload(dek, id, ct)
	if err != nil {
		return nil, fmt.Errorf("%w: blob %x: %w", store.ErrCorrupt, sum[:8], err)
	}
	if sha256.Sum256(data) != sum {
		return nil, fmt.Errorf("%w: blob %x does not match its hash", store.ErrCorrupt, sum[:8])
	}
	return data, nil
}
