package durable

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// SyncDir does nothing on Windows: a directory cannot be opened for syncing there, and NTFS
// journals directory entries itself.
func SyncDir(dir string) error { return nil }

// Lock takes an exclusive lock on f (LockFileEx over its whole range), failing at once with
// ErrLocked when another handle holds it. Closing f releases it.
func Lock(f *os.File) error {
	var ol windows.Overlapped
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, ^uint32(0), ^uint32(0), &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return ErrLocked
	}
	if err != nil {
		return fmt.Errorf("durable: lock %s: %w", f.Name(), err)
	}
	return nil
}
