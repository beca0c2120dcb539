package export

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/verify"
)

// publish writes files into a staging directory beside dir (same parent, so the same file
// system) and renames it to dir once every file is durable: readers see no bundle or a whole
// one. dir must not exist or be an empty directory. The manifest signature is written last.
// On any failure, the context's included, the staging directory's files are overwritten with
// zeros and removed: no plaintext outlives a failed export.
func publish(ctx context.Context, dir string, files map[string][]byte) (err error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := durable.MkdirAll(parent); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".staging-")
	if err != nil {
		return fmt.Errorf("export: staging: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := discard(stage); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if err := os.Chmod(stage, durable.DirMode); err != nil {
		return fmt.Errorf("export: staging: %w", err)
	}
	names := slices.Sorted(maps.Keys(files))
	names = slices.DeleteFunc(names, func(n string) bool { return n == verify.BundleManifestSig })
	if _, ok := files[verify.BundleManifestSig]; ok {
		names = append(names, verify.BundleManifestSig)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := writeFile(stage, name, files[name]); err != nil {
			return err
		}
	}
	// os.Rename does not replace a directory: remove dir if it is there and empty (rmdir fails
	// on one that is not), then move the whole bundle in.
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("export: %s is not a directory", dir)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("export: %w: %w", ErrNotEmpty, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return fmt.Errorf("export: moving the bundle into place: %w", err)
	}
	if err := durable.SyncDir(parent); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// discard overwrites every file under stage with zeros and removes the tree.
func discard(stage string) error {
	var errs []error
	_ = filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			errs = append(errs, durable.Scrub(p, nil))
		}
		return nil
	})
	errs = append(errs, os.RemoveAll(stage))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("export: removing the staging directory %s: %w", stage, err)
	}
	return nil
}
