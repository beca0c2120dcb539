package memstore

import "sync"

// StorageView wraps a KeyVault so that storetest.RunKeyVault sees what it stores
// (storetest.VaultStorage).
type StorageView struct {
	*KeyVault
	mu      sync.Mutex
	written [][]byte
}

// NewStorageView returns an empty vault with its storage in view.
func NewStorageView() *StorageView {
	s := &StorageView{KeyVault: &KeyVault{}}
	s.KeyVault.written = func(b []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.written = append(s.written, append([]byte(nil), b...))
	}
	return s
}

// Written implements storetest.VaultStorage.
func (s *StorageView) Written() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.written...)
}

// Kept implements storetest.VaultStorage: every wrapped key and metadata the vault holds.
func (s *StorageView) Kept() ([][]byte, error) {
	v := s.KeyVault
	v.mu.Lock()
	defer v.mu.Unlock()
	var out [][]byte
	for _, k := range v.keys {
		out = append(out, append([]byte(nil), k.wrapped...), append([]byte(nil), k.meta...))
	}
	return out, nil
}
