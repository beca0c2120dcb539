package keydir

import (
	"os"
	"path/filepath"

	"github.com/commseal/commseal/store/storetest"
)

// StorageView wraps a Vault so that storetest.RunKeyVault sees every file write and every
// file's content (storetest.VaultStorage).
type StorageView struct {
	*Vault
	storetest.Writes
}

// OpenStorageView opens the vault in dir with its storage in view.
func OpenStorageView(dir string) (*StorageView, error) {
	v, err := Open(dir)
	if err != nil {
		return nil, err
	}
	s := &StorageView{Vault: v}
	v.written = func(_ string, b []byte) error {
		s.Record(b)
		return nil
	}
	return s, nil
}

// Kept implements storetest.VaultStorage: the content of every file in the directory.
func (s *StorageView) Kept() ([][]byte, error) { return DirContents(s.dir) }

// DirContents returns the content of every file under dir.
func DirContents(dir string) ([][]byte, error) {
	var out [][]byte
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out = append(out, b)
		return err
	})
	return out, err
}

// SetWriteHook calls fn before every write the vault makes to a file; an error from fn stops
// the write and the operation, as a crash there would.
func (v *Vault) SetWriteHook(fn func(name string, b []byte) error) { v.written = fn }

// SharesLock reports whether keys a and b are guarded by the same lock stripe, so that a test
// of keys not waiting for each other can pick keys that do not.
func (v *Vault) SharesLock(a, b string) bool { return v.lock(a) == v.lock(b) }
