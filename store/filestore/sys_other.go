//go:build !linux

package filestore

import (
	"fmt"
	"os"
)

func datasync(f *os.File) error { return f.Sync() }

func lockFile(f *os.File) error {
	return fmt.Errorf("filestore: exclusive locking is implemented on linux only")
}
