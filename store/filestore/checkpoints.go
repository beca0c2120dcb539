package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"

	"github.com/commseal/commseal/store"
)

// openCheckpoints opens the checkpoints file and reads the size and place of every checkpoint.
func (s *Store) openCheckpoints(flag int) error {
	path := s.path("checkpoints")
	f, err := s.openFile(path, flag)
	if errors.Is(err, fs.ErrNotExist) && s.readOnly {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	s.cpF = f
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	hdr := make([]byte, frameHeaderSize)
	off := int64(0)
	var tail *Cut
	for off < size {
		cut := func(reason string, complete bool) error {
			if complete {
				if err := judgeCheckpointDamage(f, path, off, size); err != nil {
					return err
				}
			}
			tail = &Cut{File: path, Offset: off, Bytes: size - off, Reason: reason}
			return nil
		}
		if size-off < frameHeaderSize {
			if err := cut("incomplete frame header at the end of the file", false); err != nil {
				return err
			}
			break
		}
		if err := readFull(f, hdr, off); err != nil {
			return fmt.Errorf("filestore: read %s: %w", path, err)
		}
		n, sum, err := parseFrameHeader(hdr)
		if err != nil {
			// A torn append leaves a header short or zero-filled; a header that lies within one
			// sector and holds other bytes than zeros was written whole, then changed.
			if off/512 == (off+frameHeaderSize-1)/512 && !isZero(hdr) {
				return corruptf(path, off, "the header of a checkpoint frame was altered")
			}
			if err := cut(fmt.Sprintf("invalid frame header at offset %d", off), true); err != nil {
				return err
			}
			break
		}
		if off+frameHeaderSize+int64(n) > size {
			if err := cut(fmt.Sprintf("frame at offset %d runs past the end of the file", off), false); err != nil {
				return err
			}
			break
		}
		body := make([]byte, n)
		if err := readFull(f, body, off+frameHeaderSize); err != nil {
			return fmt.Errorf("filestore: read %s: %w", path, err)
		}
		if crc(body) != sum {
			if err := cut(fmt.Sprintf("checksum mismatch in the frame at offset %d", off), true); err != nil {
				return err
			}
			break
		}
		c, err := decodeCheckpoint(body)
		if err != nil {
			return corruptf(path, off, "%v", err)
		}
		if k := len(s.cps); k > 0 && c.Size <= s.cps[k-1].size {
			return corruptf(path, off, "checkpoint of size %d follows one of size %d", c.Size, s.cps[k-1].size)
		}
		s.cps = append(s.cps, cpRef{size: c.Size, off: off, n: frameHeaderSize + n})
		off += frameHeaderSize + int64(n)
	}
	s.cpEnd = off
	if tail != nil {
		s.recovery.Cut = append(s.recovery.Cut, *tail)
		if !s.readOnly {
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("filestore: cut torn tail: %w", err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("filestore: cut torn tail: %w", err)
			}
		}
	}
	return nil
}

// judgeCheckpointDamage: a damaged checkpoint frame followed by a valid one is corruption.
func judgeCheckpointDamage(f file, path string, off, size int64) error {
	rest := make([]byte, size-off)
	if err := readFull(f, rest, off); err != nil {
		return fmt.Errorf("filestore: read %s: %w", path, err)
	}
	for p := 1; p+frameHeaderSize <= len(rest); p++ {
		n, sum, err := parseFrameHeader(rest[p:])
		if err != nil || p+frameHeaderSize+n > len(rest) {
			continue
		}
		if body := rest[p+frameHeaderSize : p+frameHeaderSize+n]; body[0] == typeCheckpoint && crc(body) == sum {
			return corruptf(path, off, "damaged checkpoint frame followed by a valid one at offset %d", off+int64(p))
		}
	}
	if n, _, err := parseFrameHeader(rest); err == nil && frameHeaderSize+n <= len(rest) && !hasZeroSector(rest[:frameHeaderSize+n], off) {
		return corruptf(path, off, "checksum mismatch in a complete checkpoint frame")
	}
	return nil
}

// PutCheckpoint implements store.Checkpoints: one frame appended to the checkpoints file and
// synced before it returns.
func (s *Store) PutCheckpoint(ctx context.Context, c store.Checkpoint) error {
	if err := s.rlock(ctx); err != nil {
		return err
	}
	s.mu.RUnlock()
	if s.readOnly {
		return fmt.Errorf("%w: put checkpoint", store.ErrReadOnly)
	}
	if len(c.Note)+checkpointFixed > maxBody {
		return fmt.Errorf("%w: checkpoint note of %d bytes", store.ErrInvalid, len(c.Note))
	}
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	if err := s.rlock(ctx); err != nil {
		return err
	}
	latest := uint64(0)
	if k := len(s.cps); k > 0 {
		latest = s.cps[k-1].size
	}
	if err := store.CheckCheckpoint(c, s.size, latest); err != nil {
		s.mu.RUnlock()
		return err
	}
	off := s.cpEnd
	frame := appendCheckpointFrame(nil, c)
	_, err := s.cpF.WriteAt(frame, off)
	if err == nil {
		err = s.cpF.Sync()
		s.syncs.Add(1)
	}
	s.mu.RUnlock()
	if err != nil {
		if uerr := s.cpF.Truncate(off); uerr == nil {
			s.cpF.Sync()
		}
		return fmt.Errorf("filestore: put checkpoint: %w", err)
	}
	s.mu.Lock()
	s.cps = append(s.cps, cpRef{size: c.Size, off: off, n: len(frame)})
	s.cpEnd = off + int64(len(frame))
	s.mu.Unlock()
	return nil
}

// readCheckpoint reads checkpoint ref. The read lock must be held.
func (s *Store) readCheckpoint(ref cpRef) (store.Checkpoint, error) {
	path := s.path("checkpoints")
	b := make([]byte, ref.n)
	if err := readFull(s.cpF, b, ref.off); err != nil {
		return store.Checkpoint{}, corruptf(path, ref.off, "%v", err)
	}
	n, sum, err := parseFrameHeader(b)
	if err != nil || n != len(b)-frameHeaderSize || crc(b[frameHeaderSize:]) != sum {
		return store.Checkpoint{}, corruptf(path, ref.off, "checkpoint frame does not check")
	}
	c, err := decodeCheckpoint(b[frameHeaderSize:])
	if err != nil || c.Size != ref.size {
		return store.Checkpoint{}, corruptf(path, ref.off, "checkpoint frame does not decode")
	}
	return c, nil
}

// LatestCheckpoint implements store.Checkpoints.
func (s *Store) LatestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	if err := s.rlock(ctx); err != nil {
		return store.Checkpoint{}, err
	}
	defer s.mu.RUnlock()
	if len(s.cps) == 0 {
		return store.Checkpoint{}, fmt.Errorf("%w: no checkpoint", store.ErrNotFound)
	}
	return s.readCheckpoint(s.cps[len(s.cps)-1])
}

// AllCheckpoints implements store.Checkpoints.
func (s *Store) AllCheckpoints(ctx context.Context) iter.Seq2[store.Checkpoint, error] {
	return func(yield func(store.Checkpoint, error) bool) {
		if err := s.rlock(ctx); err != nil {
			yield(store.Checkpoint{}, err)
			return
		}
		refs := s.cps[:len(s.cps):len(s.cps)]
		s.mu.RUnlock()
		for _, ref := range refs {
			if err := s.rlock(ctx); err != nil {
				yield(store.Checkpoint{}, err)
				return
			}
			c, err := s.readCheckpoint(ref)
			s.mu.RUnlock()
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}
