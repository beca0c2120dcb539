//go:build unix

package durable

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// SyncDir makes the creation, removal or renaming of entries in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock takes an exclusive advisory lock on f (flock), failing at once with ErrLocked when
// another open file description holds it. Closing f releases it.
func Lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrLocked
		default:
			return fmt.Errorf("durable: lock %s: %w", f.Name(), err)
		}
	}
}
