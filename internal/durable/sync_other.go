//go:build !linux

package durable

import "os"

// Sync makes f's data and size durable. os.File.Sync is fsync on Unix, F_FULLFSYNC on macOS
// (where plain fsync stops at the drive's volatile cache) and FlushFileBuffers on Windows.
func Sync(f *os.File) error { return f.Sync() }
