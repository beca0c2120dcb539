package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commseal/commseal/store"
)

// ErrLocked is returned by Open when another Store, in this process or another, has the
// directory open for writing.
var ErrLocked = errors.New("filestore: directory is locked by another writer")

// Defaults of Options.
const (
	DefaultSegmentSize = 256 << 20
	DefaultFlushEvery  = 1 << 16
)

// Options configure Open. The zero value (or nil) is a writer with the defaults.
type Options struct {
	// ReadOnly opens the store without taking the lock and without modifying anything, so it
	// may run beside a writer in another process. It sees the entries committed when it was
	// opened; a torn tail is ignored (and reported) rather than cut. Every write fails with
	// store.ErrReadOnly.
	ReadOnly bool
	// SegmentSize is the size at which the active segment is closed and a new one begun
	// (DefaultSegmentSize if zero). A batch is never split, so a segment may exceed it by one
	// group commit.
	SegmentSize int64
	// FlushEvery is the number of entries appended between two durable snapshots of the index
	// and stored-hash files (DefaultFlushEvery if zero). Opening re-reads at most about this many
	// entries' frames from the segments.
	FlushEvery int
	// Logger receives recovery reports and background errors. Nil discards them.
	Logger *slog.Logger

	// wrap, if set, wraps every file the store opens (fault injection in tests).
	wrap func(path string, f file) file
}

// Cut describes bytes at the end of a file that belonged to no committed batch or checkpoint:
// the remains of a write that a crash interrupted. A writer removes them when it opens; a
// read-only store ignores them.
type Cut struct {
	File    string // path of the file
	Offset  int64  // where the removed bytes began
	Bytes   int64  // how many there were
	Entries int    // complete entry frames among them (a batch whose commit frame never landed)
	Reason  string // what was found there
}

// Recovery reports what Open found and did.
type Recovery struct {
	Entries  uint64        // entries in the log after opening
	Indexed  uint64        // entries loaded from the index file (a sequential read, no hashing)
	Replayed uint64        // entries read back from segment frames written after the last index snapshot
	Cut      []Cut         // torn tails removed (or, read-only, ignored)
	Duration time.Duration // time Open took
}

// Stats counts the work of the group committer since Open.
type Stats struct {
	Commits uint64 // group commits: syncs of the log, each covering one or more writes
	Writes  uint64 // group writes: one write call each
	Batches uint64 // batches made durable
	Entries uint64 // entries made durable
	Syncs   uint64 // file syncs of every kind (segments, checkpoints, blobs, snapshots)
}

// Store is a store.Store kept in a directory. It is safe for concurrent use.
type Store struct {
	dir      string
	readOnly bool
	segSize  int64
	flushN   int
	log      *slog.Logger
	wrap     func(path string, f file) file
	lockF    *os.File
	recovery Recovery

	mu       sync.RWMutex
	closed   bool
	failed   error // a write failure the store could not undo; appends fail until reopened
	size     uint64
	hc       int64
	segs     []*segment // segs[k] has sequence number k+1
	end      int64      // end of the last commit in the last segment
	alloc    int64      // bytes of the last segment allocated (its size)
	indexF   file
	hashesF  file
	durable  state        // what the state file says
	overlay  []location   // locations of entries [durable.entries, size)
	ovHashes []store.Hash // stored hashes [durable.hashes, hc)
	ids      map[uint64]uint64
	idsMore  map[store.Hash]uint64
	convs    map[store.Hash]uint64
	cps      []cpRef
	cpF      file
	cpEnd    int64

	cpMu sync.Mutex // serializes PutCheckpoint

	qmu     sync.Mutex
	qcond   *sync.Cond
	queue   []*request
	qclosed bool

	w writerState // the committer's

	smu      sync.Mutex // the syncer's queue
	scond    *sync.Cond
	sq       []*group // written, waiting for a sync
	inPipe   int      // groups handed to the syncer and not yet finished
	sbroken  error    // a failed sync the committer has not undone yet
	wdone    bool     // the committer has stopped
	passes   uint64   // write calls of the committer (see gather)
	draining bool     // the committer waits for the pipeline to empty
	finished atomic.Uint64

	flushMu sync.Mutex // serializes snapshots
	flushCh chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	commits, writes, batches, entries, syncs atomic.Uint64
	buf                                      []byte // the committer's
	zeros                                    []byte // the committer's: written ahead of the commits
}

// writerState is the log as the committer has written it, ahead of the published (durable) log
// by the groups in the pipeline.
type writerState struct {
	size     uint64
	hc       int64
	end      int64
	inflight map[store.Hash]struct{} // identities of the groups in the pipeline
	fifo     []*group                // the groups in the pipeline, oldest first
	forgot   uint64                  // groups finished by the syncer and dropped from fifo
	free     []*group                // finished groups, for reuse
}

type segment struct {
	seq   uint64
	first uint64
	path  string
	f     file
}

type cpRef struct {
	size uint64
	off  int64
	n    int
}

var _ store.Store = (*Store)(nil)

func segmentName(seq uint64) string { return fmt.Sprintf("%020d.seg", seq) }

// Open opens the store in dir, creating the directory and an empty store if there is none. A
// writer takes an exclusive lock on the directory (ErrLocked if another writer holds it) and
// recovers from a crash: a torn tail beyond the last committed batch is cut off and reported in
// Recovery and to the logger. Damage to committed data fails with an error wrapping
// store.ErrCorrupt.
func Open(ctx context.Context, dir string, opts *Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// A reader beside a running writer can catch a group commit half copied into the page
	// cache, which looks like damage followed by a valid commit; it looks again before
	// calling that corruption.
	for attempt := 0; ; attempt++ {
		s, err := open(ctx, dir, o)
		if err == nil || !o.ReadOnly || !errors.Is(err, store.ErrCorrupt) || attempt == 8 {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(1<<attempt) * time.Millisecond):
		}
	}
}

func open(ctx context.Context, dir string, o Options) (*Store, error) {
	s := &Store{
		dir: dir, readOnly: o.ReadOnly, segSize: o.SegmentSize, flushN: o.FlushEvery, log: o.Logger, wrap: o.wrap,
		ids: map[uint64]uint64{}, idsMore: map[store.Hash]uint64{}, convs: map[store.Hash]uint64{},
		flushCh: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	s.qcond = sync.NewCond(&s.qmu)
	s.scond = sync.NewCond(&s.smu)
	start := time.Now()
	if err := s.open(ctx); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.recovery.Entries = s.size
	s.recovery.Duration = time.Since(start)
	for _, c := range s.recovery.Cut {
		verb := "cut torn tail"
		if s.readOnly {
			verb = "ignored unfinished tail"
		}
		s.log.Warn("filestore: "+verb, "file", c.File, "offset", c.Offset, "bytes", c.Bytes, "entries", c.Entries, "reason", c.Reason)
	}
	s.log.Info("filestore: opened", "dir", dir, "entries", s.size, "indexed", s.recovery.Indexed,
		"replayed", s.recovery.Replayed, "readonly", s.readOnly, "duration", s.recovery.Duration)
	if !s.readOnly {
		s.w = writerState{size: s.size, hc: s.hc, end: s.end, inflight: map[store.Hash]struct{}{}}
		s.wg.Add(3)
		go s.committer()
		go s.syncer()
		go s.flusher()
	}
	return s, nil
}

// Recovery returns the report of what Open found and did.
func (s *Store) Recovery() Recovery {
	r := s.recovery
	r.Cut = slices.Clone(r.Cut)
	return r
}

// Stats returns the counters of the store's work since Open.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Writes: s.writes.Load(), Batches: s.batches.Load(), Entries: s.entries.Load(), Syncs: s.syncs.Load()}
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) open(ctx context.Context) error {
	flag := os.O_RDONLY
	if !s.readOnly {
		flag = os.O_RDWR | os.O_CREATE
		if err := os.MkdirAll(filepath.Join(s.dir, "blobs"), 0o755); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		lf, err := os.OpenFile(s.path("LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		s.lockF = lf
		if err := lockFile(lf); err != nil {
			return fmt.Errorf("%w: %s", err, s.dir)
		}
	}
	st, fresh, err := s.readState()
	if err != nil {
		return err
	}
	if fresh {
		if s.readOnly {
			return fmt.Errorf("%w: no filestore in %s", store.ErrNotFound, s.dir)
		}
		if err := s.create(); err != nil {
			return err
		}
	}
	s.durable = st
	if s.indexF, err = s.openFile(s.path("index"), flag, 0o644); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if s.hashesF, err = s.openFile(s.path("hashes"), flag, 0o644); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := s.trimDerived(); err != nil {
		return err
	}
	if err := s.loadIndex(ctx); err != nil {
		return err
	}
	if err := s.replaySegments(ctx); err != nil {
		return err
	}
	return s.openCheckpoints(flag)
}

func (s *Store) readState() (state, bool, error) {
	b, err := os.ReadFile(s.path("state"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(s.path(segmentName(1))); serr == nil && s.readOnly {
			return state{}, false, fmt.Errorf("%w: %s: segments without a state file", store.ErrCorrupt, s.dir)
		}
		return state{entries: 0, hashes: 0, seq: 1, off: segmentHeaderSize}, true, nil
	}
	if err != nil {
		return state{}, false, fmt.Errorf("filestore: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		return state{}, false, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, s.path("state"), err)
	}
	return st, false, nil
}

// create lays out an empty store: the first segment, then the state file that points at it.
// A crash in between leaves a segment without a state, which the next Open lays out again.
func (s *Store) create() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".seg") && e.Name() != segmentName(1) {
			return fmt.Errorf("%w: %s: segment %s without a state file", store.ErrCorrupt, s.dir, e.Name())
		}
	}
	if fi, err := os.Stat(s.path(segmentName(1))); err == nil && fi.Size() > segmentHeaderSize {
		return fmt.Errorf("%w: %s: a written segment without a state file", store.ErrCorrupt, s.dir)
	}
	for _, name := range []string{segmentName(1), "index", "hashes", "checkpoints"} {
		if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	if err := s.writeSegmentHeader(1, 0); err != nil {
		return err
	}
	return s.writeFileAtomic(s.path("state"), state{seq: 1, off: segmentHeaderSize}.encode())
}

func (s *Store) writeSegmentHeader(seq, first uint64) error {
	path := s.path(segmentName(seq))
	f, err := s.openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(segmentHeader{seq: seq, first: first}.encode(), 0); err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	s.syncs.Add(1)
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("filestore: create segment: %w", err)
	}
	s.syncs.Add(1)
	return nil
}

// trimDerived cuts the index and hashes files back to what the state file says is durable:
// anything beyond was written after the last snapshot and is rebuilt from the segments.
func (s *Store) trimDerived() error {
	for _, d := range []struct {
		f    file
		name string
		want int64
	}{{s.indexF, "index", int64(s.durable.entries) * indexRecordSize}, {s.hashesF, "hashes", s.durable.hashes * 32}} {
		n, err := d.f.Size()
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if n < d.want {
			return fmt.Errorf("%w: %s has %d bytes, the state file says %d are durable", store.ErrCorrupt, s.path(d.name), n, d.want)
		}
		if n > d.want && !s.readOnly {
			if err := d.f.Truncate(d.want); err != nil {
				return fmt.Errorf("filestore: %w", err)
			}
		}
	}
	return nil
}

// loadIndex rebuilds the identity and conversation indexes from the index file: one sequential
// read of fixed-size records, no hashing.
func (s *Store) loadIndex(ctx context.Context) error {
	const chunk = 1 << 14
	n := s.durable.entries
	buf := make([]byte, min(chunk, n)*indexRecordSize)
	for i := uint64(0); i < n; i += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(chunk, n-i)
		b := buf[:k*indexRecordSize]
		if err := readFull(s.indexF, b, int64(i)*indexRecordSize); err != nil {
			return fmt.Errorf("filestore: read index: %w", err)
		}
		for j := range k {
			l, err := decodeLocation(b[j*indexRecordSize:])
			if err != nil {
				return fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i+j, err)
			}
			s.indexEntry(i+j, &l)
		}
	}
	s.size, s.hc = n, s.durable.hashes
	s.recovery.Indexed = n
	return nil
}

// indexEntry adds entry i to the identity and conversation indexes. The identity index keys on
// the first 8 bytes of the digest; the rare identity whose prefix is taken goes to idsMore.
func (s *Store) indexEntry(i uint64, l *location) {
	if l.identity != (store.Hash{}) {
		p := prefix(l.identity)
		if _, taken := s.ids[p]; taken {
			s.idsMore[l.identity] = i
		} else {
			s.ids[p] = i
		}
	}
	if l.conversation != (store.Hash{}) {
		s.convs[l.conversation] = i
	}
}

func prefix(h store.Hash) uint64 {
	return uint64(h[0]) | uint64(h[1])<<8 | uint64(h[2])<<16 | uint64(h[3])<<24 |
		uint64(h[4])<<32 | uint64(h[5])<<40 | uint64(h[6])<<48 | uint64(h[7])<<56
}

// replaySegments opens every segment and reads the frames written after the last snapshot.
func (s *Store) replaySegments(ctx context.Context) error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".seg")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil || seq == 0 || segmentName(seq) != de.Name() {
			return fmt.Errorf("%w: %s: unexpected segment file %s", store.ErrCorrupt, s.dir, de.Name())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for k, seq := range seqs {
		if seq != uint64(k+1) {
			return fmt.Errorf("%w: %s: segment %d is missing", store.ErrCorrupt, s.dir, k+1)
		}
	}
	if uint64(len(seqs)) < s.durable.seq {
		return fmt.Errorf("%w: %s: the state file refers to segment %d, which is missing", store.ErrCorrupt, s.dir, s.durable.seq)
	}
	flag := os.O_RDONLY
	if !s.readOnly {
		flag = os.O_RDWR
	}
	for k, seq := range seqs {
		if err := ctx.Err(); err != nil {
			return err
		}
		last := k == len(seqs)-1
		path := s.path(segmentName(seq))
		f, err := s.openFile(path, flag, 0)
		if err != nil && !s.readOnly && errors.Is(err, fs.ErrPermission) {
			f, err = s.openFile(path, os.O_RDONLY, 0) // a closed, read-only segment
		}
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		seg := &segment{seq: seq, path: path, f: f}
		size, err := f.Size()
		if err != nil {
			f.Close()
			return fmt.Errorf("filestore: %w", err)
		}
		hb := make([]byte, segmentHeaderSize)
		herr := readFull(f, hb, 0)
		h, derr := decodeSegmentHeader(hb)
		if herr != nil || derr != nil || h.seq != seq {
			// A crash while creating the newest segment can leave it short or unwritten.
			if last && seq > s.durable.seq && size <= segmentHeaderSize {
				f.Close()
				s.recovery.Cut = append(s.recovery.Cut, Cut{File: path, Bytes: size, Reason: "segment whose header was never completed"})
				if !s.readOnly {
					if err := os.Remove(path); err != nil {
						return fmt.Errorf("filestore: %w", err)
					}
					if err := syncDir(s.dir); err != nil {
						return fmt.Errorf("filestore: %w", err)
					}
				}
				break
			}
			f.Close()
			return fmt.Errorf("%w: %s: invalid segment header", store.ErrCorrupt, path)
		}
		seg.first = h.first
		s.segs = append(s.segs, seg)
		if seq < s.durable.seq {
			continue
		}
		from := int64(segmentHeaderSize)
		if seq == s.durable.seq {
			from = s.durable.off
		} else if h.first != s.size {
			return fmt.Errorf("%w: %s begins at entry %d, want %d", store.ErrCorrupt, path, h.first, s.size)
		}
		if from > size {
			return fmt.Errorf("%w: %s has %d bytes, the state file says %d are durable", store.ErrCorrupt, path, size, from)
		}
		res, err := scanSegment(f, path, seq, from, size, s.size, s.hc)
		if err != nil {
			return err
		}
		for k := range res.locs {
			s.indexEntry(s.size+uint64(k), &res.locs[k])
		}
		s.overlay = append(s.overlay, res.locs...)
		s.ovHashes = append(s.ovHashes, res.hashes...)
		s.size += uint64(len(res.locs))
		s.hc += int64(len(res.hashes))
		s.recovery.Replayed += uint64(len(res.locs))
		s.end = res.end
		if res.tail != nil {
			if !last {
				return fmt.Errorf("%w: %s: %s (a later segment exists, so this was committed)", store.ErrCorrupt, path, res.tail.Reason)
			}
			s.recovery.Cut = append(s.recovery.Cut, *res.tail)
			if !s.readOnly {
				if err := f.Truncate(res.end); err != nil {
					return fmt.Errorf("filestore: cut torn tail: %w", err)
				}
				if err := f.Sync(); err != nil {
					return fmt.Errorf("filestore: cut torn tail: %w", err)
				}
			}
		}
	}
	if len(s.segs) == 0 {
		return fmt.Errorf("%w: %s: no segment", store.ErrCorrupt, s.dir)
	}
	if s.hc != store.StoredHashCount(s.size) {
		return fmt.Errorf("%w: %d stored hashes for %d entries", store.ErrCorrupt, s.hc, s.size)
	}
	if !s.readOnly {
		// The newest segment is the active one: writable again even if a crash came between
		// the roll that made it read-only and the creation of its successor.
		last := s.segs[len(s.segs)-1]
		last.f.Close()
		if err := os.Chmod(last.path, 0o644); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		f, err := s.openFile(last.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		last.f = f
		if s.alloc, err = f.Size(); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	return nil
}

func (s *Store) closeFiles() {
	for _, seg := range s.segs {
		seg.f.Close()
	}
	for _, f := range []file{s.indexF, s.hashesF, s.cpF} {
		if f != nil {
			f.Close()
		}
	}
	if s.lockF != nil {
		s.lockF.Close() // releases the flock
	}
}

// Close stops the store: queued appends are committed, the index is snapshotted so the next Open
// is quick, and the lock is released. Every call after Close fails with store.ErrClosed; closing
// twice is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if !s.readOnly {
		s.qmu.Lock()
		s.qclosed = true
		s.qcond.Broadcast()
		s.qmu.Unlock()
		close(s.stop)
		s.wg.Wait()
		s.mu.RLock()
		failed := s.failed
		s.mu.RUnlock()
		if failed == nil {
			err = s.flush()
		}
	}
	s.mu.Lock()
	s.closeFiles()
	s.mu.Unlock()
	return err
}

// rlock takes the read lock for a call, or says why the call may not proceed.
func (s *Store) rlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

// Size implements store.Log.
func (s *Store) Size(ctx context.Context) (uint64, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return s.size, nil
}

// HashCount implements store.Log.
func (s *Store) HashCount(ctx context.Context) (int64, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return s.hc, nil
}

// locate returns where entry i is. The read lock must be held.
func (s *Store) locate(i uint64) (location, error) {
	if i >= s.durable.entries {
		return s.overlay[i-s.durable.entries], nil
	}
	b := make([]byte, indexRecordSize)
	if err := readFull(s.indexF, b, int64(i)*indexRecordSize); err != nil {
		return location{}, fmt.Errorf("filestore: read index: %w", err)
	}
	l, err := decodeLocation(b)
	if err != nil {
		return location{}, fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i, err)
	}
	return l, nil
}

// readEntry reads and checks the frame of entry i at l. The read lock must be held.
func (s *Store) readEntry(i uint64, l location, buf []byte) (store.Entry, error) {
	if l.seq == 0 || int(l.seq) > len(s.segs) {
		return store.Entry{}, fmt.Errorf("%w: entry %d is in segment %d, which does not exist", store.ErrCorrupt, i, l.seq)
	}
	seg := s.segs[l.seq-1]
	if err := readFull(seg.f, buf, l.off); err != nil {
		return store.Entry{}, fmt.Errorf("%w: %s: entry %d at offset %d: %v", store.ErrCorrupt, seg.path, i, l.off, err)
	}
	return decodeEntryFrame(buf, i, seg.path, l.off)
}

func decodeEntryFrame(buf []byte, i uint64, path string, off int64) (store.Entry, error) {
	n, sum, err := parseFrameHeader(buf)
	if err != nil || n != len(buf)-frameHeaderSize {
		return store.Entry{}, corruptf(path, off, "entry %d: invalid frame header", i)
	}
	body := buf[frameHeaderSize:]
	if crc(body) != sum {
		return store.Entry{}, corruptf(path, off, "entry %d: checksum mismatch", i)
	}
	e, err := decodeEntry(body)
	if err != nil {
		return store.Entry{}, corruptf(path, off, "entry %d: %v", i, err)
	}
	if e.Index != i {
		return store.Entry{}, corruptf(path, off, "entry frame has index %d, want %d", e.Index, i)
	}
	return e, nil
}

// Entry implements store.Log. The frame's checksum is verified on every read.
func (s *Store) Entry(ctx context.Context, i uint64) (store.Entry, error) {
	if err := s.rlock(ctx); err != nil {
		return store.Entry{}, err
	}
	defer s.mu.RUnlock()
	if i >= s.size {
		return store.Entry{}, fmt.Errorf("%w: entry %d (size %d)", store.ErrNotFound, i, s.size)
	}
	l, err := s.locate(i)
	if err != nil {
		return store.Entry{}, err
	}
	return s.readEntry(i, l, make([]byte, l.length))
}

// Entries implements store.Log. It reads the index and the frames in runs, so a full scan is a
// sequential read of the segments.
func (s *Store) Entries(ctx context.Context, start uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		end, err := s.Size(ctx)
		if err != nil {
			yield(store.Entry{}, err)
			return
		}
		const run = 256
		for i := start; i < end; {
			k := min(run, end-i)
			es, err := s.entryRun(ctx, i, k)
			for _, e := range es {
				if cerr := ctx.Err(); cerr != nil {
					yield(store.Entry{}, cerr)
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			i += k
		}
	}
}

// entryRun reads entries [i, i+k), with one read for each stretch of adjacent frames.
func (s *Store) entryRun(ctx context.Context, i, k uint64) ([]store.Entry, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	locs := make([]location, 0, k)
	if i < s.durable.entries {
		n := min(k, s.durable.entries-i)
		b := make([]byte, n*indexRecordSize)
		if err := readFull(s.indexF, b, int64(i)*indexRecordSize); err != nil {
			return nil, fmt.Errorf("filestore: read index: %w", err)
		}
		for j := range n {
			l, err := decodeLocation(b[j*indexRecordSize:])
			if err != nil {
				return nil, fmt.Errorf("%w: %s record %d: %v", store.ErrCorrupt, s.path("index"), i+j, err)
			}
			locs = append(locs, l)
		}
	}
	for j := uint64(len(locs)); j < k; j++ {
		locs = append(locs, s.overlay[i+j-s.durable.entries])
	}
	out := make([]store.Entry, 0, k)
	for a := 0; a < len(locs); {
		// Extend the stretch while frames are in the same segment, close together, and the
		// read stays modest.
		b := a + 1
		for b < len(locs) && locs[b].seq == locs[a].seq && locs[b].off >= locs[b-1].off+int64(locs[b-1].length) &&
			locs[b].off-(locs[b-1].off+int64(locs[b-1].length)) <= 64<<10 &&
			locs[b].off+int64(locs[b].length)-locs[a].off <= 4<<20 {
			b++
		}
		if locs[a].seq == 0 || int(locs[a].seq) > len(s.segs) {
			return out, fmt.Errorf("%w: entry %d is in segment %d, which does not exist", store.ErrCorrupt, i+uint64(a), locs[a].seq)
		}
		seg := s.segs[locs[a].seq-1]
		span := make([]byte, locs[b-1].off+int64(locs[b-1].length)-locs[a].off)
		if err := readFull(seg.f, span, locs[a].off); err != nil {
			return out, fmt.Errorf("%w: %s: entries from %d at offset %d: %v", store.ErrCorrupt, seg.path, i+uint64(a), locs[a].off, err)
		}
		for j := a; j < b; j++ {
			rel := locs[j].off - locs[a].off
			e, err := decodeEntryFrame(span[rel:rel+int64(locs[j].length):rel+int64(locs[j].length)], i+uint64(j), seg.path, locs[j].off)
			if err != nil {
				return out, err
			}
			out = append(out, e)
		}
		a = b
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ReadHashes implements store.Log.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error) {
	if err := s.rlock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]store.Hash, len(indexes))
	var buf []byte
	for k := 0; k < len(indexes); {
		x := indexes[k]
		switch {
		case x < 0 || x >= s.hc:
			return nil, fmt.Errorf("%w: stored hash %d (count %d)", store.ErrNotFound, x, s.hc)
		case x >= s.durable.hashes:
			out[k] = s.ovHashes[x-s.durable.hashes]
			k++
		default:
			// Read a run of consecutive indexes in the hashes file with one pread: a verifier
			// asks for thousands at a time.
			n := 1
			for k+n < len(indexes) && n < 1<<12 && indexes[k+n] == x+int64(n) && x+int64(n) < s.durable.hashes {
				n++
			}
			if cap(buf) < 32*n {
				buf = make([]byte, 32*n)
			}
			b := buf[:32*n]
			if err := readFull(s.hashesF, b, x*32); err != nil {
				return nil, fmt.Errorf("filestore: read stored hashes %d..%d: %w", x, x+int64(n)-1, err)
			}
			for j := 0; j < n; j++ {
				copy(out[k+j][:], b[32*j:])
			}
			k += n
		}
	}
	return out, nil
}

// lookup finds identity id. The read lock must be held.
func (s *Store) lookup(id store.Hash) (uint64, bool, error) {
	if id == (store.Hash{}) {
		return 0, false, nil
	}
	if i, ok := s.idsMore[id]; ok {
		return i, true, nil
	}
	i, ok := s.ids[prefix(id)]
	if !ok {
		return 0, false, nil
	}
	l, err := s.locate(i)
	if err != nil {
		return 0, false, err
	}
	return i, l.identity == id, nil
}

// Lookup implements store.Log.
func (s *Store) Lookup(ctx context.Context, identity store.Hash) (uint64, bool, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	i, ok, err := s.lookup(identity)
	if !ok {
		i = 0
	}
	return i, ok, err
}

// LastInConversation implements store.Log.
func (s *Store) LastInConversation(ctx context.Context, conversation store.Hash) (uint64, bool, error) {
	if err := s.rlock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	if conversation == (store.Hash{}) {
		return 0, false, nil
	}
	i, ok := s.convs[conversation]
	return i, ok, nil
}
