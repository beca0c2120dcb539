package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/seal"
)

// State is what a witness keeps of a log: the latest checkpoint it cosigned.
type State struct {
	Size uint64
	Root seal.Hash
	// Note is the checkpoint as cosigned: its text, the log's signatures the witness verified
	// and the witness's cosignature. Nil for a log never cosigned (Size 0).
	Note []byte
}

// Same reports whether s and t record the same tree (size and root).
func (s State) Same(t State) bool { return s.Size == t.Size && s.Root == t.Root }

// Store keeps each log's State. Implementations must be safe for concurrent use.
type Store interface {
	// Load returns origin's state: the zero State when the witness never cosigned for it.
	// A state that cannot be read is an error, never the zero State.
	Load(ctx context.Context, origin string) (State, error)
	// CompareAndSwap replaces origin's state with next if the current one is the same tree as
	// old (State.Same), durably before it returns nil; otherwise it fails with an error
	// wrapping ErrStateChanged and changes nothing.
	CompareAndSwap(ctx context.Context, origin string, old, next State) error
}

// FileStore is a Store in a directory: one file per log (see the package documentation).
type FileStore struct {
	dir  string
	lock *os.File

	mu    sync.Mutex             // guards locks
	locks map[string]*sync.Mutex // per origin: Load+compare+write of one CompareAndSwap
}

// ErrCorruptState is wrapped when a stored state does not parse or names another origin.
var ErrCorruptState = errors.New("witness: stored state is corrupt")

// OpenFileStore opens (creating it if need be) a FileStore in dir, which it locks: a second
// FileStore on the same directory fails with an error wrapping durable.ErrLocked until Close.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("witness: state directory: %w", err)
	}
	f, err := durable.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("witness: state directory: %w", err)
	}
	if err := durable.Lock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("witness: state directory %s: %w", dir, err)
	}
	return &FileStore{dir: dir, lock: f, locks: map[string]*sync.Mutex{}}, nil
}

// Close releases the directory.
func (s *FileStore) Close() error { return s.lock.Close() }

func (s *FileStore) path(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, hex.EncodeToString(h[:])+".checkpoint")
}

func (s *FileStore) originLock(origin string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.locks[origin]
	if m == nil {
		m = new(sync.Mutex)
		s.locks[origin] = m
	}
	return m
}

// Load implements Store.
func (s *FileStore) Load(ctx context.Context, origin string) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, err
	}
	data, err := os.ReadFile(s.path(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("witness: state of %q: %w", origin, err)
	}
	return parseState(origin, data)
}

// parseState reads a stored cosigned checkpoint note.
func parseState(origin string, data []byte) (State, error) {
	i := bytes.LastIndex(data, []byte("\n\n"))
	if i < 0 {
		return State{}, fmt.Errorf("%w: state of %q is not a signed note", ErrCorruptState, origin)
	}
	c, err := seal.ParseCheckpoint(string(data[:i+1]))
	if err != nil {
		return State{}, fmt.Errorf("%w: state of %q: %v", ErrCorruptState, origin, err)
	}
	if c.Origin != origin {
		return State{}, fmt.Errorf("%w: state of %q holds origin %q", ErrCorruptState, origin, c.Origin)
	}
	return State{Size: c.Size, Root: c.Root, Note: data}, nil
}

// CompareAndSwap implements Store.
func (s *FileStore) CompareAndSwap(ctx context.Context, origin string, old, next State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p, err := parseState(origin, next.Note); err != nil {
		return fmt.Errorf("witness: refusing to store: %w", err)
	} else if !p.Same(next) {
		return fmt.Errorf("witness: refusing to store state of size %d whose note says %d", next.Size, p.Size)
	}
	m := s.originLock(origin)
	m.Lock()
	defer m.Unlock()
	cur, err := s.Load(ctx, origin)
	if err != nil {
		return err
	}
	if !cur.Same(old) {
		return fmt.Errorf("%w: %q is at size %d, not %d", ErrStateChanged, origin, cur.Size, old.Size)
	}
	if err := durable.WriteFile(s.path(origin), next.Note); err != nil {
		return fmt.Errorf("witness: storing state of %q: %w", origin, err)
	}
	return nil
}
