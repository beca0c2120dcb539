//go:build unix

package keyfile_test

import "syscall"

func syncAll() { syscall.Sync() }
