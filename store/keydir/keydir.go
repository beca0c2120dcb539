// Package keydir is a store.KeyVault kept in a directory: small files per data key, holding the
// key wrapped under a KEK (never in plain) and the ledger's metadata for it.
//
// # Files
//
// A key is named in file names by the hex of its id (H below), so an id has at most 112 bytes
// (every name, and the temporary name of a replaced file, fits the 255 bytes file systems allow).
//
//	H.<n>.rec  record n of the key: JSON {"id","kek","wrapped"}. Written once
//	           (durable.CreateExclusive) and never rewritten: the only place the wrapped bytes
//	           of that wrapping are ever written.
//	H.meta     the key's mutable part: JSON {"id","record":n,"meta"}, naming its current record.
//	           Replaced whole (durable.WriteFile); it holds no wrapped bytes, so the old versions
//	           that a replacement leaves in freed blocks hold none either.
//	H.tomb     a destroyed key: JSON {"id","destroyed":true,"kek","meta"}, no wrapped bytes.
//	H.key      the format of earlier versions (one JSON file per key, {"id","keyring","wrapped",
//	           "meta"} or {"id","destroyed":true}), still read. The first write to such a key
//	           (SetMeta, Rewrap, DestroyKey) moves it to the files above and scrubs it.
//
// To scrub a file is to overwrite its contents in place with zeros, sync it, and remove it: on a
// file system that writes in place (ext4 and XFS without data journaling), the wrapped bytes are
// then gone from the disk, not only from the directory. On copy-on-write file systems (btrfs,
// ZFS, APFS), on SSDs that remap blocks, and in snapshots and backups, copies may survive: only
// retiring the KEK that wrapped them (seal.KEKRetirer) makes those useless.
//
// # Operations and crashes
//
//   - PutKey writes and syncs H.1.rec, then writes H.meta (synced, renamed into place), then
//     syncs the directory once for both names. Until that sync returns the key is not
//     acknowledged, and a crash may leave either name without the other. A record alone is a
//     record no metadata names: the key does not exist, and the record is scrubbed. H.meta
//     alone, naming record 1 that is missing, with no other file of the key, is also a PutKey
//     that did not finish (every other writer of H.meta writes it only after the directory
//     sync that made its record durable, and Rewrap names record 2 or later): the key does
//     not exist, and H.meta, which holds no wrapped bytes, is removed. Any other key whose
//     H.meta names a missing record is reported as corrupt, as before.
//   - SetMeta replaces H.meta.
//   - Rewrap writes H.<n+1>.rec, points H.meta at it, then scrubs H.<n>.rec. A crash leaves the
//     key whole under one wrapping or the other, and a record H.meta does not name.
//   - DestroyKey writes H.tomb (from then on the key reads as destroyed), scrubs every record
//     of the key, then removes H.meta. A crash leaves the tombstone and perhaps records.
//
// Syncing the directory once per PutKey, not once per file, saves one of its four syncs (two
// files, two directory syncs before; two files, one directory sync now) and keeps the rule
// above: the key exists after a crash only if both files are whole (the record is synced
// before H.meta is written; H.meta is replaced atomically), and otherwise it does not.
//
// Operations on different keys run concurrently: a key's files are guarded by one of a fixed
// array of locks chosen by a hash of its id (a read lock for Key and Keys, the write lock for
// every change). No file is shared between keys; the directory itself is only listed (Keys,
// Open), which needs no lock, and Open scrubs leftovers before the vault is shared.
//
// Whatever a crash left over (records no metadata names, records of a destroyed key, a legacy
// file beside the new ones, temporary files) is scrubbed by the next Open, and by the next
// Rewrap or DestroyKey of the key. Files whose name does not decode to a UTF-8 id are not keys
// of this vault (earlier versions accepted such ids, then could not read them back) and are
// left alone.
package keydir

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/store"
)

// Vault is a store.KeyVault in a directory. It is safe for concurrent use within one process;
// one process at a time may use a directory.
type Vault struct {
	dir   string
	seed  maphash.Seed
	locks [lockStripes]sync.RWMutex // locks[i] guards the files of the keys whose id hashes to i (see lock)

	// written, if set, is called before every write to a file; an error stops the write there
	// (tests use it to see the writes and to interrupt an operation as a crash would).
	written func(name string, b []byte) error
}

var _ store.KeyVault = (*Vault)(nil)

// lockStripes is how many locks guard keys: two keys share a lock with probability 1/256, so
// concurrent writers of different keys (a ledger creating a month's keys) rarely wait for
// each other.
const lockStripes = 256

// lock returns the lock that guards key id's files.
func (v *Vault) lock(id string) *sync.RWMutex {
	return &v.locks[maphash.String(v.seed, id)%lockStripes]
}

// Open opens (creating if needed, mode 0700) the vault directory, and scrubs what an
// interrupted operation left (see the package documentation).
func Open(dir string) (*Vault, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("keydir: %w", err)
	}
	v := &Vault{dir: dir, seed: maphash.MakeSeed()}
	if err := v.recover(); err != nil {
		return nil, err
	}
	return v, nil
}

// File contents.
type (
	recFile struct {
		ID      string `json:"id"`
		KEK     string `json:"kek"`
		Wrapped []byte `json:"wrapped"`
	}
	metaFile struct {
		ID     string          `json:"id"`
		Record int             `json:"record"`
		Meta   json.RawMessage `json:"meta,omitempty"`
	}
	tombFile struct {
		ID        string          `json:"id"`
		Destroyed bool            `json:"destroyed"`
		KEK       string          `json:"kek,omitempty"`
		Meta      json.RawMessage `json:"meta,omitempty"`
	}
	legacyFile struct {
		ID        string          `json:"id"`
		Keyring   string          `json:"keyring,omitempty"`
		Wrapped   []byte          `json:"wrapped,omitempty"`
		Meta      json.RawMessage `json:"meta,omitempty"`
		Destroyed bool            `json:"destroyed,omitempty"`
	}
)

const (
	metaExt   = ".meta"
	tombExt   = ".tomb"
	recExt    = ".rec"
	legacyExt = ".key"
)

func stem(id string) string { return hex.EncodeToString([]byte(id)) }

func (v *Vault) path(id, ext string) string { return filepath.Join(v.dir, stem(id)+ext) }

func (v *Vault) recPath(id string, n int) string {
	return filepath.Join(v.dir, stem(id)+"."+strconv.Itoa(n)+recExt)
}

// maxID is the longest id a key may have: its hex, plus ".meta", plus the temporary suffix that
// durable.WriteFile adds (".", ".tmp" and up to 10 digits), fits in 255 bytes. Earlier versions
// allowed maxLegacyID, which can still be read and destroyed.
const (
	maxID       = 112
	maxLegacyID = (255 - len(legacyExt)) / 2
)

func checkID(ctx context.Context, id string, limit int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(id) > limit {
		return fmt.Errorf("%w: key id must be 1 to %d bytes", store.ErrInvalid, limit)
	}
	return store.CheckKeyID(id)
}

// readJSON reads a file into v; ok is false if it does not exist.
func readJSON(p string, v any) (ok bool, err error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("keydir: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%w: %s is not a key file: %v", store.ErrCorrupt, filepath.Base(p), err)
	}
	return true, nil
}

// state is everything the directory holds about a key.
type state struct {
	tomb   *tombFile
	meta   *metaFile
	rec    *recFile // the record meta names
	legacy *legacyFile
}

func (s *state) exists() bool { return s.tomb != nil || s.meta != nil || s.legacy != nil }

// key returns the key as the interface reports it, with ErrDestroyed for a destroyed one.
func (s *state) key(id string) (store.WrappedKey, error) {
	switch {
	case s.tomb != nil:
		return store.WrappedKey{ID: id, KEK: s.tomb.KEK, Meta: s.tomb.Meta, Destroyed: true}, fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	case s.meta != nil:
		return store.WrappedKey{ID: id, KEK: s.rec.KEK, Wrapped: s.rec.Wrapped, Meta: s.meta.Meta}, nil
	case s.legacy != nil && s.legacy.Destroyed:
		return store.WrappedKey{ID: id, KEK: s.legacy.Keyring, Meta: s.legacy.Meta, Destroyed: true}, fmt.Errorf("%w: key %q", store.ErrDestroyed, id)
	case s.legacy != nil:
		return store.WrappedKey{ID: id, KEK: s.legacy.Keyring, Wrapped: s.legacy.Wrapped, Meta: s.legacy.Meta}, nil
	}
	return store.WrappedKey{}, fmt.Errorf("%w: key %q", store.ErrNotFound, id)
}

// read reads a key's files. A file that does not parse, or names another key, is ErrCorrupt.
func (v *Vault) read(id string) (*state, error) {
	s := &state{}
	corrupt := func(what string) error {
		return fmt.Errorf("%w: key %q: %s", store.ErrCorrupt, id, what)
	}
	var tomb tombFile
	if ok, err := readJSON(v.path(id, tombExt), &tomb); err != nil {
		return s, err
	} else if ok {
		if tomb.ID != id || !tomb.Destroyed {
			return s, corrupt("its tombstone is for another key")
		}
		s.tomb = &tomb
	}
	var meta metaFile
	if ok, err := readJSON(v.path(id, metaExt), &meta); err != nil {
		return s, err
	} else if ok {
		if meta.ID != id || meta.Record < 1 {
			return s, corrupt("its metadata file is for another key or names no record")
		}
		s.meta = &meta
		if s.tomb == nil {
			var rec recFile
			ok, err := readJSON(v.recPath(id, meta.Record), &rec)
			switch {
			case err != nil:
				return s, err
			case !ok:
				return s, corrupt(fmt.Sprintf("its record %d is missing", meta.Record))
			case rec.ID != id || rec.KEK == "" || len(rec.Wrapped) == 0:
				return s, corrupt(fmt.Sprintf("its record %d is for another key or holds no wrapped key", meta.Record))
			}
			s.rec = &rec
		}
	}
	var legacy legacyFile
	if ok, err := readJSON(v.path(id, legacyExt), &legacy); err != nil {
		return s, err
	} else if ok {
		if legacy.ID != id || !legacy.Destroyed && len(legacy.Wrapped) == 0 {
			return s, corrupt("its key file is for another key or holds no wrapped key")
		}
		s.legacy = &legacy
	}
	return s, nil
}

// create writes a file that must not exist; replace writes one whole, atomically.
func (v *Vault) create(p string, b []byte) error {
	if v.written != nil {
		if err := v.written(filepath.Base(p), b); err != nil {
			return err
		}
	}
	if err := durable.CreateExclusive(p, b); err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	return nil
}

// createUnnamed is create without the directory sync: the file's content is synced, its name is
// made durable by the caller's next directory sync.
func (v *Vault) createUnnamed(p string, b []byte) error {
	if v.written != nil {
		if err := v.written(filepath.Base(p), b); err != nil {
			return err
		}
	}
	f, err := durable.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = durable.Sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keydir: writing %s: %w", filepath.Base(p), err)
	}
	return nil
}

func (v *Vault) replace(p string, b []byte) error {
	if v.written != nil {
		if err := v.written(filepath.Base(p), b); err != nil {
			return err
		}
	}
	if err := durable.WriteFile(p, b); err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	return nil
}

// scrub overwrites a file in place with zeros, syncs it and removes it (durable.Scrub); a
// missing file is fine. The caller syncs the directory.
func (v *Vault) scrub(p string) error {
	var before func([]byte) error
	if v.written != nil {
		before = func(zeros []byte) error { return v.written(filepath.Base(p), zeros) }
	}
	if err := durable.Scrub(p, before); err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	return nil
}

func (v *Vault) syncDir() error {
	if err := durable.SyncDir(v.dir); err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	return nil
}

func (v *Vault) writeRecord(id string, n int, kek string, wrapped []byte) error {
	p := v.recPath(id, n)
	if err := v.scrub(p); err != nil { // left by a crash before its metadata named it
		return err
	}
	b, _ := json.Marshal(recFile{ID: id, KEK: kek, Wrapped: wrapped})
	return v.create(p, b)
}

func (v *Vault) writeMeta(id string, n int, meta []byte) error {
	b, _ := json.Marshal(metaFile{ID: id, Record: n, Meta: meta})
	return v.replace(v.path(id, metaExt), b)
}

// PutKey implements store.KeyVault.
func (v *Vault) PutKey(ctx context.Context, k store.WrappedKey) error {
	if err := checkID(ctx, k.ID, maxID); err != nil {
		return err
	}
	if err := store.CheckWrappedKey(k); err != nil {
		return err
	}
	mu := v.lock(k.ID)
	mu.Lock()
	defer mu.Unlock()
	s, err := v.read(k.ID)
	if s.exists() {
		return fmt.Errorf("%w: key %q", store.ErrDuplicate, k.ID)
	}
	if err != nil {
		return err
	}
	// The record is synced but its name is not: the directory sync that ends writeMeta makes
	// both names durable at once (see the package documentation for a crash between).
	p := v.recPath(k.ID, 1)
	if err := v.scrub(p); err != nil { // left by a crash before its metadata named it
		return err
	}
	b, _ := json.Marshal(recFile{ID: k.ID, KEK: k.KEK, Wrapped: k.Wrapped})
	if err := v.createUnnamed(p, b); err != nil {
		return err
	}
	return v.writeMeta(k.ID, 1, k.Meta)
}

// Key implements store.KeyVault.
func (v *Vault) Key(ctx context.Context, id string) (store.WrappedKey, error) {
	if err := checkID(ctx, id, maxLegacyID); err != nil {
		return store.WrappedKey{}, err
	}
	mu := v.lock(id)
	mu.RLock()
	defer mu.RUnlock()
	s, err := v.read(id)
	if err != nil {
		return store.WrappedKey{}, err
	}
	return s.key(id)
}

// live reads a key that must be live, for a write.
func (v *Vault) live(id string) (*state, error) {
	s, err := v.read(id)
	if err != nil {
		return nil, err
	}
	if _, err := s.key(id); err != nil {
		return nil, err
	}
	return s, nil
}

// SetMeta implements store.KeyVault.
func (v *Vault) SetMeta(ctx context.Context, id string, meta []byte) error {
	if err := checkID(ctx, id, maxID); err != nil {
		return err
	}
	if err := store.CheckMeta(id, meta); err != nil {
		return err
	}
	mu := v.lock(id)
	mu.Lock()
	defer mu.Unlock()
	s, err := v.live(id)
	if err != nil {
		return err
	}
	if s.meta != nil {
		return v.writeMeta(id, s.meta.Record, meta)
	}
	// A key in the earlier format: its wrapped bytes move to record 1, once.
	if err := v.writeRecord(id, 1, s.legacy.Keyring, s.legacy.Wrapped); err != nil {
		return err
	}
	if err := v.writeMeta(id, 1, meta); err != nil {
		return err
	}
	if err := v.scrub(v.path(id, legacyExt)); err != nil {
		return err
	}
	return v.syncDir()
}

// Rewrap implements store.KeyVault.
func (v *Vault) Rewrap(ctx context.Context, id, kek string, wrapped []byte) error {
	if err := checkID(ctx, id, maxID); err != nil {
		return err
	}
	if err := store.CheckWrapping(id, kek, wrapped); err != nil {
		return err
	}
	mu := v.lock(id)
	mu.Lock()
	defer mu.Unlock()
	s, err := v.live(id)
	if err != nil {
		return err
	}
	var cur int // the current record; 0 for a key in the earlier format
	var meta []byte
	var old string
	if s.meta != nil {
		cur, meta, old = s.meta.Record, s.meta.Meta, v.recPath(id, s.meta.Record)
		if err := v.scrub(v.recPath(id, cur-1)); err != nil { // superseded, if a crash left it
			return err
		}
	} else {
		meta, old = s.legacy.Meta, v.path(id, legacyExt)
	}
	if err := v.writeRecord(id, cur+1, kek, wrapped); err != nil {
		return err
	}
	if err := v.writeMeta(id, cur+1, meta); err != nil {
		return err
	}
	if err := v.scrub(old); err != nil {
		return err
	}
	return v.syncDir()
}

// DestroyKey implements store.KeyVault.
func (v *Vault) DestroyKey(ctx context.Context, id string) error {
	if err := checkID(ctx, id, maxLegacyID); err != nil {
		return err
	}
	mu := v.lock(id)
	mu.Lock()
	defer mu.Unlock()
	s, err := v.read(id)
	if !s.exists() {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: key %q", store.ErrNotFound, id)
	}
	if s.legacy != nil && s.legacy.Destroyed && s.meta == nil && s.tomb == nil {
		return nil // destroyed by an earlier version
	}
	if err != nil && s.meta == nil && s.legacy == nil {
		return err // a tombstone that does not parse: nothing to scrub that we can name
	}
	if s.tomb == nil {
		t := tombFile{ID: id, Destroyed: true}
		switch {
		case s.rec != nil:
			t.KEK, t.Meta = s.rec.KEK, s.meta.Meta
		case s.legacy != nil:
			t.KEK, t.Meta = s.legacy.Keyring, s.legacy.Meta
		}
		if s.meta != nil && s.rec == nil { // record unreadable: keep what the metadata says
			t.Meta = s.meta.Meta
		}
		b, _ := json.Marshal(t)
		if len(id) > maxID {
			// Too long for a tombstone of this format: destroy the earlier format's way.
			return v.destroyLegacyLong(id, b)
		}
		if err := v.replace(v.path(id, tombExt), b); err != nil {
			return err
		}
	}
	var recs []int
	if s.meta != nil {
		// The current record, and the two a crash may have left beside it. Once the metadata
		// is removed (last), every record is gone.
		recs = []int{s.meta.Record - 1, s.meta.Record, s.meta.Record + 1}
	}
	return v.finishDestroy(id, recs)
}

// finishDestroy scrubs records recs and the legacy file of a tombstoned key, then removes its
// metadata.
func (v *Vault) finishDestroy(id string, recs []int) error {
	for _, n := range recs {
		if n < 1 {
			continue
		}
		if err := v.scrub(v.recPath(id, n)); err != nil {
			return err
		}
	}
	if err := v.scrub(v.path(id, legacyExt)); err != nil {
		return err
	}
	if err := os.Remove(v.path(id, metaExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keydir: %w", err)
	}
	return v.syncDir()
}

// destroyLegacyLong destroys a key of the earlier format whose id is too long for the files of
// this one: its file is scrubbed and replaced by a tombstone of that format.
func (v *Vault) destroyLegacyLong(id string, tomb []byte) error {
	p := v.path(id, legacyExt)
	if err := v.scrub(p); err != nil {
		return err
	}
	var t tombFile
	_ = json.Unmarshal(tomb, &t)
	b, _ := json.Marshal(legacyFile{ID: id, Keyring: t.KEK, Meta: t.Meta, Destroyed: true})
	if err := v.create(p, b); err != nil {
		return err
	}
	return nil
}

// Keys implements store.KeyVault.
func (v *Vault) Keys(ctx context.Context) iter.Seq2[store.WrappedKey, error] {
	return func(yield func(store.WrappedKey, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(store.WrappedKey{}, err)
			return
		}
		files, err := v.list()
		if err != nil {
			yield(store.WrappedKey{}, err)
			return
		}
		ids := make([]string, 0, len(files))
		for id, f := range files {
			if f.meta || f.tomb || f.legacy {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				yield(store.WrappedKey{}, err)
				return
			}
			mu := v.lock(id)
			mu.RLock()
			s, err := v.read(id)
			mu.RUnlock()
			var k store.WrappedKey
			if err == nil {
				k, err = s.key(id)
			}
			switch {
			case errors.Is(err, store.ErrDestroyed):
				err = nil
			case errors.Is(err, store.ErrNotFound):
				continue // destroyed and removed since the listing: cannot happen today
			}
			if !yield(k, err) || err != nil {
				return
			}
		}
	}
}

// keyFiles says which files of a key the directory holds.
type keyFiles struct {
	meta, tomb, legacy bool
	recs               []int
}

// list reads the directory's names and groups them by key id, leaving out names that are no
// key's (temporary files, ids that are not UTF-8).
func (v *Vault) list() (map[string]*keyFiles, error) {
	ents, err := os.ReadDir(v.dir)
	if err != nil {
		return nil, fmt.Errorf("keydir: %w", err)
	}
	out := map[string]*keyFiles{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		h, ext, ok := strings.Cut(name, ".")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) == 0 || !utf8.Valid(raw) {
			continue
		}
		id := string(raw)
		f := out[id]
		if f == nil {
			f = &keyFiles{}
		}
		switch ext = "." + ext; {
		case ext == metaExt:
			f.meta = true
		case ext == tombExt:
			f.tomb = true
		case ext == legacyExt:
			f.legacy = true
		case strings.HasSuffix(ext, recExt):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(ext, "."), recExt))
			if err != nil || n < 1 {
				continue
			}
			f.recs = append(f.recs, n)
		default:
			continue
		}
		out[id] = f
	}
	return out, nil
}

// recover scrubs what interrupted operations left: temporary files, records that no metadata
// names, records and legacy files of destroyed keys, a legacy file beside the files that
// replaced it. It reads a key's files only when their names show such a leftover. It runs in
// Open, before the vault is shared, and takes no lock.
func (v *Vault) recover() error {
	ents, err := os.ReadDir(v.dir)
	if err != nil {
		return fmt.Errorf("keydir: %w", err)
	}
	scrubbed := false
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			if err := v.scrub(filepath.Join(v.dir, e.Name())); err != nil {
				return err
			}
			scrubbed = true
		}
	}
	files, err := v.list()
	if err != nil {
		return err
	}
	for id, f := range files {
		clean := f.tomb && !f.meta && !f.legacy && len(f.recs) == 0 ||
			f.meta && !f.tomb && !f.legacy && len(f.recs) == 1 ||
			f.legacy && !f.meta && !f.tomb && len(f.recs) == 0
		if clean {
			continue
		}
		if err := v.repair(id, f); err != nil {
			return err
		}
		scrubbed = true
	}
	if scrubbed {
		return v.syncDir()
	}
	return nil
}

// repair brings one key's files back to a clean state after a crash.
func (v *Vault) repair(id string, f *keyFiles) error {
	s, err := v.read(id)
	switch {
	case f.tomb && s.tomb != nil:
		return v.finishDestroy(id, f.recs)
	case f.meta && !f.tomb && !f.legacy && len(f.recs) == 0 && s.meta != nil && s.meta.Record == 1:
		// A PutKey interrupted before its directory sync kept the name of its record (see
		// the package documentation): the key was never stored.
		if err := os.Remove(v.path(id, metaExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keydir: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("keydir: after a crash, key %q needs repair and cannot be read: %w", id, err)
	}
	keep := 0
	if s.meta != nil {
		keep = s.meta.Record
		if f.legacy { // moved to the new format before the crash
			if err := v.scrub(v.path(id, legacyExt)); err != nil {
				return err
			}
		}
	}
	for _, n := range f.recs {
		if n != keep {
			if err := v.scrub(v.recPath(id, n)); err != nil {
				return err
			}
		}
	}
	return nil
}
