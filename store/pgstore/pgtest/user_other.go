//go:build !unix

package pgtest

import "syscall"

type runAs = struct{}

func serverUser() (as runAs, uid, gid int, why string) {
	return as, 0, 0, "pgtest runs PostgreSQL on Unix systems only"
}

func sysProcAttr(runAs) *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

func chown(string, int, int) error { return nil }

func searchable(string, int, int) bool { return false }
