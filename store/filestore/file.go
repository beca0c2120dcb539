package filestore

import (
	"os"

	"github.com/commseal/commseal/internal/durable"
)

// file is what the store needs of an open file. The store reaches the operating system only
// through it, so tests can wrap it to inject write and sync failures (Options.wrap).
type file interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes the file's data and size durable (durable.Sync: fdatasync on Linux,
	// F_FULLFSYNC on macOS).
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	Close() error
}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return durable.Sync(f.File) }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// openFile opens path (created with mode durable.FileMode when flag asks for it) through the
// test wrapper, if any.
func (s *Store) openFile(path string, flag int) (file, error) {
	f, err := durable.OpenFile(path, flag)
	if err != nil {
		return nil, err
	}
	var w file = osFile{f}
	if s.wrap != nil {
		w = s.wrap(path, w)
	}
	return w, nil
}
