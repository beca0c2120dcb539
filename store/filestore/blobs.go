package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

func (s *Store) blobPath(sum store.Hash) string {
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.dir, "blobs", h[:2], h)
}

// WriteBlob implements store.Blobs. The content goes to a temporary file that is synced and then
// renamed to its hash, and the directory is synced, so a blob is either whole or absent.
func (s *Store) WriteBlob(ctx context.Context, sum store.Hash, data []byte) error {
	if err := s.rlock(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if s.readOnly {
		return fmt.Errorf("%w: put blob", store.ErrReadOnly)
	}
	if sha256.Sum256(data) != sum {
		return fmt.Errorf("%w: blob %x", store.ErrHashMismatch, sum[:8])
	}
	path := s.blobPath(sum)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := durable.MkdirAll(dir); err != nil {
			return fmt.Errorf("filestore: put blob: %w", err)
		}
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("filestore: put blob: %w", err)
	}
	name := tmp.Name()
	tmp.Close()
	f, err := s.openFile(name, os.O_RDWR|os.O_TRUNC)
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("filestore: put blob: %w", err)
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
		s.syncs.Add(1)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err == nil {
		err = durable.SyncDir(dir)
		s.syncs.Add(1)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("filestore: put blob: %w", err)
	}
	return nil
}

// ReadBlob implements store.Blobs. The content is checked against its hash on every read.
func (s *Store) ReadBlob(ctx context.Context, sum store.Hash) ([]byte, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	path := s.blobPath(sum)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %x", store.ErrNotFound, sum[:8])
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: read blob: %w", err)
	}
	if sha256.Sum256(data) != sum {
		return nil, fmt.Errorf("%w: %s does not match its hash", store.ErrCorrupt, path)
	}
	return data, nil
}
