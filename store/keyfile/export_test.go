package keyfile

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/store/storetest"
)

// StorageView wraps a Vault so that storetest.RunKeyVault sees every write to the file and
// what the vault's files hold (storetest.VaultStorage).
type StorageView struct {
	*Vault
	storetest.Writes
}

// OpenStorageView opens the vault at path with its storage in view.
func OpenStorageView(path string) (*StorageView, error) {
	v, err := Open(path)
	if err != nil {
		return nil, err
	}
	s := &StorageView{Vault: v}
	v.written = func(b []byte) error {
		s.Record(b)
		return nil
	}
	return s, nil
}

// Kept implements storetest.VaultStorage: the vault file and every file beside it that shares
// its name (a replaced file, temporary files).
func (s *StorageView) Kept() ([][]byte, error) { return Files(s.path) }

// Files returns the content of the vault file at path and of every file in its directory
// whose name contains the vault file's name.
func Files(path string) ([][]byte, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range ents {
		if !strings.Contains(e.Name(), base) || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// SetWriteHook calls fn before every write the vault makes to its file (a batch, the zeros of
// an erasure, a compacted file); an error from fn stops the write and the operation, as a
// crash there would.
func (v *Vault) SetWriteHook(fn func(b []byte) error) { v.written = fn }

// OpenWithWriteHook is Open with SetWriteHook(fn) in force from the start, so the writes of
// recovery are seen too.
func OpenWithWriteHook(path string, fn func(b []byte) error) (*Vault, error) { return open(path, fn) }

// Size returns the end of the file as the vault knows it.
func (v *Vault) Size() int64 { return v.size.Load() }
