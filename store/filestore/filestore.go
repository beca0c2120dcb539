package filestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commseal/commseal/internal/durable"
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

// Stats counts the work of the store since Open.
type Stats struct {
	Commits uint64 // syncs of the log that returned nil, one per batch
	Writes  uint64 // batch writes: one write call each
	Batches uint64 // batches made durable
	Entries uint64 // entries made durable
	Syncs   uint64 // file syncs of every kind (segments, checkpoints, blobs, snapshots)

	SyncTime  time.Duration // time spent in the syncs of the log
	WriteTime time.Duration // time spent in the writes of batches
}

// Store is a store.Store kept in a directory, with every optional interface of package store
// (IdentityIndex, ConversationIndex, Blobs, Pipeline, ReadOnlyReporter, EntryReader). It is safe for
// concurrent use.
//
// Lock order: wmu, then smu, then mu (cpMu and flushMu come before mu and are never held with
// wmu or smu). No lock is held while a sync runs except by the call that needs the sync's
// result: PutCheckpoint (cpMu), a snapshot (flushMu), a roll or an undo (wmu).
type Store struct {
	dir      string
	readOnly bool
	segSize  int64
	flushN   int
	log      *slog.Logger
	wrap     func(path string, f file) file
	lockF    *os.File
	recovery Recovery

	// mu guards the published log: what readers see, every batch of it durable.
	mu       sync.RWMutex
	closed   bool
	failed   error // a write failure the store could not undo; appends fail until reopened
	size     uint64
	hc       int64
	segs     []*segment // segs[k] has sequence number k+1; only the writer adds one (wmu and mu)
	end      int64      // end of the last published batch in the last segment
	alloc    int64      // size of the last segment when opened
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

	// wmu serializes writers (Submit, and Close against them) and guards w, the log as
	// written: ahead of the published log by the batches whose sync has not returned.
	wmu sync.Mutex
	w   writerState

	// smu guards the batches written and not yet published, in write order, and the syncer's
	// state; scond is signalled when a batch is written and when a sync returns.
	smu       sync.Mutex
	scond     *sync.Cond
	fifo      []*pending
	syncing   bool  // the syncer is in a sync
	stopping  bool  // the syncer ends once fifo is empty
	broken    error // a sync failed: what it did not publish is failed; the writer must undo
	published atomic.Uint64

	scratch sync.Pool // *readScratch: what a read needs while it runs, kept for the next

	cpMu    sync.Mutex // serializes PutCheckpoint
	flushMu sync.Mutex // serializes snapshots
	flushCh chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup

	commits, writes, batches, entries, syncs atomic.Uint64
	syncTime, writeTime                      atomic.Int64 // nanoseconds in log syncs and writes
}

// writerState is the log as the writer has written it.
type writerState struct {
	size     uint64
	hc       int64
	end      int64                   // end of the last batch written
	alloc    int64                   // bytes of the active segment allocated (written zeros included)
	seq      uint64                  // write sequence number of the last batch written
	inflight map[store.Hash]struct{} // identities of batches written and perhaps not published
	written  []*pending              // those batches, oldest first
	dirty    error                   // a write failed: the bytes after end are unknown
	buf      []byte
	zeros    []byte
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

var (
	_ store.Store             = (*Store)(nil)
	_ store.IdentityIndex     = (*Store)(nil)
	_ store.ConversationIndex = (*Store)(nil)
	_ store.Blobs             = (*Store)(nil)
	_ store.Pipeline          = (*Store)(nil)
	_ store.ReadOnlyReporter  = (*Store)(nil)
	_ store.EntryReader       = (*Store)(nil)
)

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
		s.w = writerState{size: s.size, hc: s.hc, end: s.end, alloc: s.alloc, inflight: map[store.Hash]struct{}{}}
		s.wg.Add(2)
		go s.flusher()
		go s.syncer()
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
	return Stats{Commits: s.commits.Load(), Writes: s.writes.Load(), Batches: s.batches.Load(), Entries: s.entries.Load(), Syncs: s.syncs.Load(),
		SyncTime: time.Duration(s.syncTime.Load()), WriteTime: time.Duration(s.writeTime.Load())}
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// ReadOnly implements store.ReadOnlyReporter: it reports Options.ReadOnly.
func (s *Store) ReadOnly() bool { return s.readOnly }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) open(ctx context.Context) error {
	flag := os.O_RDONLY
	if !s.readOnly {
		flag = os.O_RDWR | os.O_CREATE
		if err := durable.MkdirAll(filepath.Join(s.dir, "blobs")); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if err := os.Chmod(s.dir, durable.DirMode); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		lf, err := durable.OpenFile(s.path("LOCK"), os.O_RDWR|os.O_CREATE)
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		s.lockF = lf
		if err := durable.Lock(lf); err != nil {
			if errors.Is(err, durable.ErrLocked) {
				return fmt.Errorf("%w: %s", ErrLocked, s.dir)
			}
			return fmt.Errorf("filestore: %w", err)
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
	if s.indexF, err = s.openFile(s.path("index"), flag); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if s.hashesF, err = s.openFile(s.path("hashes"), flag); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := s.trimDerived(); err != nil {
		return err
	}
	// The checkpoints come first: the latest one is a floor below which recovery never cuts.
	if err := s.openCheckpoints(flag); err != nil {
		return err
	}
	if err := s.loadIndex(ctx); err != nil {
		return err
	}
	return s.replaySegments(ctx)
}

// Close stops the store: it waits for the appends under way, snapshots the index so that the
// next Open is quick, and releases the lock. Every call after Close fails with store.ErrClosed;
// closing twice is harmless.
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
		s.wmu.Lock() // no Submit is writing; later ones see closed
		s.drain()
		s.stopSyncer()
		s.wmu.Unlock()
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
