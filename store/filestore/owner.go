package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

var _ store.Owner = (*Store)(nil)

// ownerFile holds the owner a ledger claimed (store.Owner), written once, atomically.
const ownerFile = "owner"

// Claim implements store.Owner. The owner is written to the file "owner" in the store's
// directory (a temporary file, synced, renamed, the directory synced), so a crash leaves it
// whole or absent; one process has the store open, and Claim holds the store's lock while it
// looks and writes.
func (s *Store) Claim(ctx context.Context, owner string) (string, error) {
	if err := store.CheckOwner(owner); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", store.ErrClosed
	}
	if s.readOnly {
		return "", fmt.Errorf("%w: claim", store.ErrReadOnly)
	}
	path := filepath.Join(s.dir, ownerFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && store.CheckOwner(string(b)) != nil:
		return "", fmt.Errorf("filestore: %w: %s holds %d bytes, not an owner", store.ErrCorrupt, path, len(b))
	case err == nil:
		return string(b), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("filestore: claim: %w", err)
	}
	if err := durable.WriteFile(path, []byte(owner)); err != nil {
		return "", fmt.Errorf("filestore: claim: %w", err)
	}
	return owner, nil
}
