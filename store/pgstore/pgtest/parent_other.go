//go:build !linux

package pgtest

import "syscall"

// diesWithParent does nothing where the system has no parent-death signal: a test process
// killed without running its cleanups leaves the server running.
func diesWithParent(*syscall.SysProcAttr) {}
