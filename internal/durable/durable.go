// Package durable is the one place where commseal makes files survive a crash: a file replaced
// atomically (temporary file, sync, rename, directory sync), a directory entry made durable, a
// file's data synced with the strongest primitive the system offers, and the permissions every
// file and directory of a ledger gets. Every package that writes to disk uses it, so the
// sequence is written once and is right on every supported system.
//
// # What each call promises
//
//   - WriteFile: after it returns nil, path holds data, whole, and survives a crash of the
//     process and of the machine; a crash before that leaves the previous content or none,
//     never a mix. The temporary file is in the same directory (a rename never crosses file
//     systems) and is removed on failure.
//   - Sync: the file's data and size reach stable storage: fdatasync on Linux, F_FULLFSYNC on
//     macOS (fsync there only reaches the drive's cache), FlushFileBuffers on Windows, fsync
//     elsewhere.
//   - SyncDir: the creation, removal or renaming of entries in a directory is durable. On
//     Windows, where a directory cannot be opened for syncing, it does nothing: NTFS journals
//     its metadata.
//   - Lock: an exclusive advisory lock on an open file (flock on Unix, LockFileEx on Windows),
//     failing at once with ErrLocked when another open file holds it.
//
// Files are created with FileMode (0600) and directories with DirMode (0700), whatever the
// caller's umask would allow: a ledger holds evidence and keys, for its owner alone.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Permissions of everything commseal creates on disk.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// ErrLocked is returned by Lock when another open file holds the lock.
var ErrLocked = errors.New("durable: locked by another open file")

// WriteFile replaces the file at path with data, durably and atomically, with mode FileMode.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(FileMode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := Sync(tmp); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	return nil
}

// CreateExclusive creates path with data, durably, failing with an error matching
// fs.ErrExist if it already exists. It is for files that are written once and never replaced
// (keys): there is no temporary copy, and a crash part way leaves a short file that the reader
// must refuse (every such file carries its own check).
func CreateExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	if err := Sync(f); err != nil {
		f.Close()
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("durable: writing %s: %w", path, err)
	}
	return nil
}

// MkdirAll creates dir and any missing parents with mode DirMode, and makes the new entries
// durable. An existing directory is left as it is, except that dir itself is narrowed to
// DirMode when it is wider.
func MkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("durable: %s is not a directory", dir)
		}
		if fi.Mode().Perm()&^DirMode != 0 {
			if err := os.Chmod(dir, DirMode); err != nil {
				return fmt.Errorf("durable: %w", err)
			}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("durable: %w", err)
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if _, err := os.Stat(parent); errors.Is(err, fs.ErrNotExist) {
			if err := MkdirAll(parent); err != nil {
				return err
			}
		}
	}
	if err := os.Mkdir(dir, DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("durable: %w", err)
	}
	// The umask may have narrowed the mode further; it never widens it. Set it exactly.
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	if err := SyncDir(parent); err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	return nil
}

// OpenFile opens path like os.OpenFile, creating it with mode FileMode when flag asks for it.
func OpenFile(path string, flag int) (*os.File, error) {
	return os.OpenFile(path, flag, FileMode)
}

// Scrub overwrites the file at path in place with zeros, syncs it and removes it: on a file
// system that writes in place (ext4, XFS without reflinks) what the file held is gone from the
// disk as well as from the directory; copy-on-write file systems, snapshots and remapping
// drives may keep copies, which is why secrets are wrapped under a KEK that can be destroyed.
// A missing file is not an error. The caller syncs the directory. before, if not nil, is called
// with the zeros just before they are written, and an error from it stops the scrub (tests
// observe writes or simulate a crash there).
func Scrub(path string, before func(zeros []byte) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("durable: scrubbing %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		zeros := make([]byte, fi.Size())
		if before != nil {
			err = before(zeros)
		}
		if err == nil {
			_, err = f.WriteAt(zeros, 0)
		}
		if err == nil {
			err = Sync(f)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		return fmt.Errorf("durable: scrubbing %s: %w", path, err)
	}
	return nil
}

// Zero overwrites an open file's contents in place with zeros and syncs it.
func Zero(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	if _, err := f.WriteAt(make([]byte, fi.Size()), 0); err != nil {
		return fmt.Errorf("durable: zeroing %s: %w", f.Name(), err)
	}
	return Sync(f)
}
