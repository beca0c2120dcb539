package filestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/store"
)

// TestDamageUnderACheckpointIsNeverCut: a sector zeroed in the middle of a segment looks like a
// torn write to recovery, but if a checkpoint covers the entries after it, they were durable:
// Open refuses with ErrCorrupt, names the damaged frame, and changes nothing (issue #9 item 7).
func TestDamageUnderACheckpointIsNeverCut(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, &Options{FlushEvery: 1 << 30})
	n := uint64(0)
	for range 60 {
		n = mustAppend(t, s, n, 5)
	}
	if err := s.PutCheckpoint(context.Background(), store.Checkpoint{Size: n, Note: []byte("signed head of 300 entries\n")}); err != nil {
		t.Fatal(err)
	}
	end := s.end
	s.abandon() // a crash (kill -9): no index snapshot, every batch is in the segment's frames
	seg := filepath.Join(dir, segmentName(1))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Zero one aligned sector a third of the way in: entries after it are lost to a reader.
	off := (end / 3) &^ 511
	copy(b[off:off+512], make([]byte, 512))
	writeImage(t, seg, b)
	before := snapshotDir(t, dir)

	for _, ro := range []bool{false, true} {
		_, err := Open(context.Background(), dir, &Options{ReadOnly: ro})
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("Open(read-only %v) of a segment damaged under a checkpoint: err = %v; want ErrCorrupt", ro, err)
		}
		for _, want := range []string{"checkpoint covers 300 entries", seg, "nothing was changed"} {
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
		if after := snapshotDir(t, dir); !equalDirs(before, after) {
			t.Fatalf("a refused Open(read-only %v) changed the directory", ro)
		}
	}
	// Without the checkpoint the same damage is a torn tail a crash can leave, and is cut.
	if err := os.Remove(filepath.Join(dir, "checkpoints")); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, dir, nil)
	defer s2.Close()
	if len(s2.Recovery().Cut) != 1 || s2.size >= n {
		t.Fatalf("without a checkpoint: cuts %+v, size %d; want the tail cut", s2.Recovery().Cut, s2.size)
	}
}

// snapshotDir reads every file under dir.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalDirs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
