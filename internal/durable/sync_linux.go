package durable

import (
	"os"
	"syscall"
)

// Sync makes f's data and size durable with fdatasync, which skips the metadata (times) that
// recovery does not need.
func Sync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
