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
	"sync"

	"github.com/commseal/commseal/internal/durable"
)

// stagingWriters is how many files publish writes and syncs at once: a bundle of many small
// files is bound by the latency of each fsync, which concurrent syncs overlap.
const stagingWriters = 8

// publish writes files into a staging directory beside dir (same parent, so the same file
// system) and renames it to dir once every file is durable: readers see no bundle or a whole
// one. dir must not exist or be an empty directory. On any failure, the context's included,
// the staging directory's files are overwritten with zeros and removed: no plaintext outlives
// a failed export.
func publish(ctx context.Context, dir string, files map[string][]byte, pr *progress) (err error) {
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
	if err := writeAll(ctx, stage, files, pr); err != nil {
		return err
	}
	return moveIntoPlace(stage, dir, parent)
}

// writeAll writes every file under stage, each synced, then syncs each directory's entries
// once (not once per file, which would double the fsyncs of a bundle of many proofs).
func writeAll(ctx context.Context, stage string, files map[string][]byte, pr *progress) error {
	names := slices.Sorted(maps.Keys(files))
	dirs := map[string]bool{stage: true}
	for _, name := range names {
		d := filepath.Dir(filepath.Join(stage, filepath.FromSlash(name)))
		if !dirs[d] {
			if err := durable.MkdirAll(d); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			dirs[d] = true
		}
	}
	pr.start("write", len(names))
	work := make(chan string)
	errs := make([]error, stagingWriters)
	var wg sync.WaitGroup
	for w := range stagingWriters {
		wg.Go(func() {
			for name := range work {
				if errs[w] == nil {
					errs[w] = writeStaged(ctx, stage, name, files[name])
					pr.step("write", len(names))
				}
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := durable.SyncDir(d); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

// moveIntoPlace renames stage to dir and makes the rename durable. os.Rename does not replace
// a directory: dir is removed first if it is there and empty (rmdir fails on one that is not).
func moveIntoPlace(stage, dir, parent string) error {
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

// writeStaged creates the file name (a bundle path) under stage, whose directory exists, with
// data, synced; the caller syncs the directory.
func writeStaged(ctx context.Context, stage, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	p := filepath.Join(stage, filepath.FromSlash(name))
	f, err := durable.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = durable.Sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: writing %s: %w", name, err)
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
