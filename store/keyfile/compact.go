package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/commseal/commseal/internal/durable"
)

// compact runs on the writer goroutine (see Vault.Compact). The phases:
//
//  1. encode: one put record per live key, one tombstone per destroyed key, one commit;
//  2. keep: give the current file a second name (path.old), so that it stays reachable after
//     the replacement until it is scrubbed, whatever happens;
//  3. replace: durable.WriteFile writes the new file beside the old one and renames it into
//     place; then the vault switches to it;
//  4. scrub: overwrite path.old in place with zeros, sync, remove it.
//
// A crash in phase 2 or 3 leaves path.old as a second name of the current file (Open removes
// the name) or as the replaced file, or a temporary file (Open scrubs both).
func (v *Vault) compact() error {
	if v.failed != nil {
		return v.errFailed()
	}
	content, regions := v.encodeCompact()
	defer clear(content)
	if v.written != nil {
		if err := v.written(content); err != nil {
			return fmt.Errorf("keyfile: compacting: %w", err)
		}
	}

	dir, old := filepath.Dir(v.path), v.path+oldSuffix
	if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyfile: compacting: %w", err) // Open scrubbed any such file
	}
	if err := os.Link(v.path, old); err != nil {
		return fmt.Errorf("keyfile: compacting: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		os.Remove(old)
		return fmt.Errorf("keyfile: compacting: %w", err)
	}

	if err := durable.WriteFile(v.path, content); err != nil {
		// The rename did not happen (or the directory sync after it failed, which leaves the
		// name either way): path.old is a second name of one of the files; Open sorts it out.
		if oi, serr := os.Stat(old); serr == nil {
			if ci, serr := v.f.Stat(); serr == nil && os.SameFile(oi, ci) {
				if pi, serr := os.Stat(v.path); serr == nil && os.SameFile(pi, ci) {
					os.Remove(old)
					return fmt.Errorf("keyfile: compacting: %w", err)
				}
			}
		}
		v.failed = err
		return fmt.Errorf("keyfile: compacting: %w", err)
	}
	nf, err := durable.OpenFile(v.path, os.O_RDWR)
	if err == nil {
		if err = durable.Lock(nf); err != nil {
			nf.Close()
		}
	}
	if err != nil {
		v.failed = err
		return fmt.Errorf("keyfile: compacting: opening the new file: %w", err)
	}
	v.f.Close()
	v.f = nf
	v.size.Store(int64(len(content)))
	v.mu.Lock()
	for id, e := range v.keys {
		e.regions = nil
		if r, ok := regions[id]; ok {
			e.regions = []region{r}
		}
	}
	v.mu.Unlock()

	if err := durable.Scrub(old, v.zerosHook()); err != nil {
		return fmt.Errorf("keyfile: compacted, but scrubbing the old file failed (the next Open scrubs it): %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("keyfile: compacting: %w", err)
	}
	return nil
}

// encodeCompact encodes the current state as a whole file, keys in id order, and returns the
// wrapped region of each live key in it.
func (v *Vault) encodeCompact() ([]byte, map[string]region) {
	ids := make([]string, 0, len(v.keys))
	size := headerSize + headSize + commitBodyLen
	for id, e := range v.keys {
		ids = append(ids, id)
		size += compactSize(id, e)
	}
	slices.Sort(ids)
	enc := encoder{buf: append(make([]byte, 0, size), fileHeader()...)}
	regions := make(map[string]region, len(ids))
	for _, id := range ids {
		e := v.keys[id]
		if e.destroyed {
			enc.destroy(id, e.kek, e.meta)
			continue
		}
		r := enc.put(id, e.kek, e.meta, e.wrapped)
		regions[id] = region{off: int64(r), n: regionSize(e.wrapped)}
	}
	if len(ids) > 0 {
		enc.commit(headerSize, uint32(len(ids)))
	}
	return enc.buf, regions
}
