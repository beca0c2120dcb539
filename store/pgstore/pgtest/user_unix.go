//go:build unix

package pgtest

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// runAs is the user the server runs as; nil for this process's.
type runAs = *syscall.Credential

// serverUser returns whom the server runs as: this process's user, or when that is root (which
// initdb refuses), the postgres user.
func serverUser() (as runAs, uid, gid int, why string) {
	uid, gid = os.Getuid(), os.Getgid()
	if uid != 0 {
		return nil, uid, gid, ""
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, "running as root, which initdb refuses, and there is no postgres user to run the server as (" + err.Error() + ")"
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, ""
}

func sysProcAttr(as runAs) *syscall.SysProcAttr { return &syscall.SysProcAttr{Credential: as} }

// chown gives path to the server's user when that is not this process's.
func chown(path string, uid, gid int) error {
	if uid == os.Getuid() {
		return nil
	}
	return os.Chown(path, uid, gid)
}

// searchable reports whether user uid (group gid) may search dir and every directory above it.
func searchable(dir string, uid, gid int) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() {
			return false
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		perm := st.Mode().Perm()
		var bit os.FileMode
		switch {
		case uid == 0:
			bit = 0o111
		case int(sys.Uid) == uid:
			bit = 0o100
		case int(sys.Gid) == gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if perm&bit == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
