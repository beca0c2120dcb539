package keyfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

// Open opens the vault file at path, creating it (mode 0600, and its directory, mode 0700) if
// it does not exist, and locks it. It reads the file once, from start to end, and keeps the
// index of keys in memory; what a crash left over it repairs first (see the package
// documentation and Recovery). Damage that is not a crash's is store.ErrCorrupt, naming the
// offset, and Open changes nothing then.
func Open(path string) (*Vault, error) { return open(path, nil) }

// open is Open with the test hook set from the start.
func open(path string, written func([]byte) error) (*Vault, error) {
	dir := filepath.Dir(path)
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	old := path + oldSuffix
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(old); err == nil {
			return nil, fmt.Errorf("%w: %s is missing but %s, the file a compaction replaced, is there: restore it by hand", store.ErrCorrupt, path, old)
		}
	}
	f, err := durable.OpenFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	if err := durable.Lock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("keyfile: %s: %w", path, err)
	}
	v := &Vault{path: path, f: f, keys: map[string]*entry{}, reqs: make(chan *op), quit: make(chan struct{}), done: make(chan struct{}), written: written}
	if err := v.removeLeftovers(); err != nil {
		f.Close()
		return nil, err
	}
	if err := v.load(); err != nil {
		f.Close()
		return nil, err
	}
	go v.run()
	return v, nil
}

// oldSuffix names the second link Compact gives the file it replaces, until it is scrubbed.
const oldSuffix = ".old"

// removeLeftovers scrubs what an interrupted Compact left: the replaced file (unless it is
// still the vault's own, when the crash came before the replacement) and durable.WriteFile's
// temporary files, both of which hold wrapped keys.
func (v *Vault) removeLeftovers() error {
	dir, base := filepath.Dir(v.path), filepath.Base(v.path)
	changed := false
	old := v.path + oldSuffix
	if oi, err := os.Stat(old); err == nil {
		pi, err := v.f.Stat()
		if err != nil {
			return fmt.Errorf("keyfile: %w", err)
		}
		if os.SameFile(oi, pi) {
			err = os.Remove(old)
		} else {
			err = durable.Scrub(old, v.zerosHook())
		}
		if err != nil {
			return fmt.Errorf("keyfile: %w", err)
		}
		changed = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "."+base+".tmp") && e.Type().IsRegular() {
			if err := durable.Scrub(filepath.Join(dir, e.Name()), v.zerosHook()); err != nil {
				return fmt.Errorf("keyfile: %w", err)
			}
			changed = true
		}
	}
	if changed {
		if err := durable.SyncDir(dir); err != nil {
			return fmt.Errorf("keyfile: %w", err)
		}
	}
	return nil
}

func (v *Vault) zerosHook() func([]byte) error {
	if v.written == nil {
		return nil
	}
	return v.written
}

// loader builds the index from the records of committed batches.
type loader struct {
	path      string
	keys      map[string]*entry
	badCur    map[string]int64  // live keys whose current wrapped region does not check: the record's offset
	leftovers []region          // regions of superseded or destroyed wrappings that are not erased
	keks      map[string]string // KEK names, stored once: a vault has few
}

// kek returns name, sharing the string of an earlier record that named the same KEK.
func (l *loader) kek(name string) string {
	if k, ok := l.keks[name]; ok {
		return k
	}
	l.keks[name] = name
	return name
}

func (l *loader) corrupt(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s: offset %d: %s", store.ErrCorrupt, l.path, off, fmt.Sprintf(format, args...))
}

// apply applies one record of a committed batch, found at off.
func (l *loader) apply(rec record, off int64) error {
	e := l.keys[rec.id]
	setCurrent := func(e *entry) {
		e.regions = nil
		delete(l.badCur, rec.id)
		switch {
		case rec.intact:
			e.wrapped = rec.wrapped
			e.regions = []region{{off: off + int64(rec.region), n: rec.regionLen}}
		case rec.erased:
			l.badCur[rec.id] = off
		default:
			l.badCur[rec.id] = off
			e.regions = []region{{off: off + int64(rec.region), n: rec.regionLen}}
		}
	}
	switch rec.typ {
	case recPut:
		if e != nil {
			return l.corrupt(off, "a second put of key %q", rec.id)
		}
		e = &entry{kek: l.kek(rec.kek), meta: rec.meta}
		setCurrent(e)
		l.keys[rec.id] = e
	case recMeta, recRewrap:
		switch {
		case e == nil:
			return l.corrupt(off, "a change to key %q, which has no put before it", rec.id)
		case e.destroyed:
			return l.corrupt(off, "a change to key %q after its tombstone", rec.id)
		}
		if rec.typ == recMeta {
			e.meta = rec.meta
			return nil
		}
		l.leftovers = append(l.leftovers, e.regions...)
		e.kek, e.wrapped = l.kek(rec.kek), nil
		setCurrent(e)
	case recDestroy:
		switch {
		case e == nil: // a compacted file's tombstone
			e = &entry{}
			l.keys[rec.id] = e
		case e.destroyed:
			return l.corrupt(off, "a second tombstone of key %q", rec.id)
		}
		l.leftovers = append(l.leftovers, e.regions...)
		delete(l.badCur, rec.id)
		*e = entry{kek: l.kek(rec.kek), meta: rec.meta, destroyed: true}
	}
	return nil
}

type pending struct {
	rec record
	off int64
}

// load reads the file once, builds the index, and repairs what a crash left: a torn tail is
// erased and cut off, and the regions a Rewrap or DestroyKey had not yet overwritten are.
func (v *Vault) load() error {
	fi, err := v.f.Stat()
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	size := fi.Size()
	if size <= headerSize {
		b := make([]byte, size)
		if _, err := v.f.ReadAt(b, 0); err != nil {
			return fmt.Errorf("keyfile: reading %s: %w", v.path, err)
		}
		if !bytes.Equal(b, fileHeader()) {
			return v.create(b)
		}
	}
	br := bufio.NewReaderSize(io.NewSectionReader(v.f, 0, size), 1<<20)
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return fmt.Errorf("keyfile: reading %s: %w", v.path, err)
	}
	switch {
	case string(hdr[:len(magic)]) != magic:
		return fmt.Errorf("%w: %s is not a key file (no %q header)", store.ErrCorrupt, v.path, magic)
	case crc(hdr[:12]) != binary.LittleEndian.Uint32(hdr[12:]):
		return fmt.Errorf("%w: %s: offset 0: the header does not check", store.ErrCorrupt, v.path)
	case binary.LittleEndian.Uint32(hdr[8:]) != version:
		return fmt.Errorf("%w: %s: version %d, this code reads version %d", store.ErrCorrupt, v.path, binary.LittleEndian.Uint32(hdr[8:]), version)
	}

	l := &loader{path: v.path, keys: v.keys, badCur: map[string]int64{}, keks: map[string]string{}}
	off, committed := int64(headerSize), int64(headerSize)
	var batch []pending
	head := make([]byte, headSize)
	var body []byte
	damage, why := int64(-1), error(nil)
	for off < size && damage < 0 {
		if size-off < headSize {
			damage, why = off, errTruncated
			break
		}
		if _, err := io.ReadFull(br, head); err != nil {
			return fmt.Errorf("keyfile: reading %s: %w", v.path, err)
		}
		n, err := bodyLen(head)
		if err == nil && int64(n) > size-off-headSize {
			err = errTruncated
		}
		if err != nil {
			damage, why = off, err
			break
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return fmt.Errorf("keyfile: reading %s: %w", v.path, err)
		}
		rec, err := decodeBody(body)
		clear(body) // it may hold a wrapped key
		if err != nil {
			damage, why = off, err
			break
		}
		if rec.typ != recCommit {
			batch = append(batch, pending{rec, off})
			off += int64(headSize + n)
			continue
		}
		if rec.start != uint64(committed) || rec.count != uint32(len(batch)) || len(batch) == 0 {
			damage, why = off, fmt.Errorf("a commit record names %d records from offset %d, not the %d from offset %d before it", rec.count, rec.start, len(batch), committed)
			break
		}
		for _, p := range batch {
			if err := l.apply(p.rec, p.off); err != nil {
				return err
			}
		}
		batch = batch[:0]
		off += int64(headSize + n)
		committed = off
	}
	for _, p := range batch {
		clear(p.rec.wrapped)
	}
	if damage >= 0 {
		if err := v.tornOrCorrupt(damage, committed, size, why); err != nil {
			return err
		}
	}
	for id, at := range l.badCur {
		return l.corrupt(at, "the current wrapped bytes of live key %q are damaged or erased", id)
	}
	return v.repair(committed, size, l.leftovers)
}

// tornOrCorrupt decides whether damage found at off, after the last whole batch ending at
// committed, is the torn tail of a batch a crash interrupted (nil: it is cut off) or damage to
// acknowledged data (ErrCorrupt). A batch is acknowledged only after its commit record is
// synced, so damage followed by a valid commit record is damage to acknowledged data, unless
// that commit record ends the file, names the batch the damage is in, and an aligned 512-byte
// sector between them reads as zeros: the sectors of a write that a crash kept from the disk
// read as zeros in a file that only grows, so that is a torn last batch.
func (v *Vault) tornOrCorrupt(off, committed, size int64, why error) error {
	rest := make([]byte, size-off)
	if _, err := v.f.ReadAt(rest, off); err != nil {
		return fmt.Errorf("keyfile: reading %s: %w", v.path, err)
	}
	defer clear(rest)
	for p := 1; p+headSize+commitBodyLen <= len(rest); p++ {
		if !isCommitAt(rest[p:]) {
			continue
		}
		at := off + int64(p)
		end := at + headSize + commitBodyLen
		start := binary.LittleEndian.Uint64(rest[p+headSize+1:])
		if end == size && start == uint64(committed) && zeroSector(rest, off, at) {
			return nil
		}
		return fmt.Errorf("%w: %s: offset %d: %v, and a valid commit record follows at offset %d", store.ErrCorrupt, v.path, off, why, at)
	}
	return nil
}

// zeroSector reports whether an aligned 512-byte sector within [from, to) of the file, whose
// bytes from offset base are b, is all zeros.
func zeroSector(b []byte, base, to int64) bool {
	const sector = 512
	for s := (base + sector - 1) / sector * sector; s+sector <= to; s += sector {
		if allZero(b[s-base : s-base+sector]) {
			return true
		}
	}
	return false
}

// create writes the header of a new file. b is what the file holds, at most a header's
// length: nothing, or what a crash left of a creation (a prefix of the header, or zeros, when
// the size reached the disk before the bytes); anything else is not a key file.
func (v *Vault) create(b []byte) error {
	h := fileHeader()
	if !bytes.HasPrefix(h, b) && !allZero(b) {
		return fmt.Errorf("%w: %s: %d bytes that are not a key file's header", store.ErrCorrupt, v.path, len(b))
	}
	if err := v.writeAt(h, 0); err != nil {
		return fmt.Errorf("keyfile: writing %s: %w", v.path, err)
	}
	if err := durable.Sync(v.f); err != nil {
		return fmt.Errorf("keyfile: writing %s: %w", v.path, err)
	}
	if err := durable.SyncDir(filepath.Dir(v.path)); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	v.size.Store(headerSize)
	return nil
}

// repair erases and cuts off the bytes after the last whole batch, and erases the leftover
// regions, then syncs.
func (v *Vault) repair(committed, size int64, leftovers []region) error {
	v.size.Store(committed)
	if committed == size && len(leftovers) == 0 {
		return nil
	}
	if committed < size {
		// The cut-off bytes may hold wrapped keys of a Put or Rewrap never acknowledged:
		// they are overwritten before their blocks are released.
		if err := v.writeAt(make([]byte, size-committed), committed); err != nil {
			return fmt.Errorf("keyfile: erasing the torn tail of %s: %w", v.path, err)
		}
		if err := durable.Sync(v.f); err != nil {
			return fmt.Errorf("keyfile: %w", err)
		}
		if err := v.f.Truncate(committed); err != nil {
			return fmt.Errorf("keyfile: cutting the torn tail of %s: %w", v.path, err)
		}
		v.recovery.TornBytes = size - committed
	}
	for _, r := range leftovers {
		if err := v.writeAt(make([]byte, r.n), r.off); err != nil {
			return fmt.Errorf("keyfile: erasing %d bytes at offset %d of %s: %w", r.n, r.off, v.path, err)
		}
	}
	v.recovery.Erased = len(leftovers)
	if err := durable.Sync(v.f); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	return nil
}
