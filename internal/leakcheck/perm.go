package leakcheck

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"

	"github.com/commseal/commseal/internal/durable"
)

// Exposed walks root and returns a line for every directory that is not mode 0700 and every
// file that is not 0600 (or 0400: a closed, read-only segment): what someone else on the
// machine could read. On Windows, which has no such modes, it returns nothing.
func Exposed(root string) ([]string, error) {
	if runtime.GOOS == "windows" {
		return nil, nil
	}
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		switch {
		case d.IsDir() && mode != durable.DirMode:
			out = append(out, fmt.Sprintf("directory %s has mode %v, want 0700", p, mode))
		case !d.IsDir() && mode != durable.FileMode && mode != durable.FileMode&^0o200: // closed segments are read-only
			out = append(out, fmt.Sprintf("file %s has mode %v, want 0600", p, mode))
		}
		return nil
	})
	return out, err
}
