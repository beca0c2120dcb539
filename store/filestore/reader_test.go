package filestore

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commseal/commseal/store/storetest"
)

// slowReads is a file whose reads wait on gate while hold is set.
type slowReads struct {
	file
	hold    *atomic.Bool
	gate    chan struct{}
	entered chan struct{}
}

func (f slowReads) ReadAt(p []byte, off int64) (int, error) {
	if f.hold.Load() {
		select {
		case f.entered <- struct{}{}:
		default:
		}
		<-f.gate
	}
	return f.file.ReadAt(p, off)
}

// TestAReaderInADiskReadDoesNotHoldUpTheWriter: while a reader is inside a segment read (a
// slow disk, or a scan following the log), appends still publish. The reader held the store's
// lock across its reads, so every append waited for it: a scan that follows the log (as
// surveillance does) cut appends by half.
func TestAReaderInADiskReadDoesNotHoldUpTheWriter(t *testing.T) {
	ctx := context.Background()
	hold := &atomic.Bool{}
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	s := mustOpen(t, t.TempDir(), &Options{wrap: func(path string, f file) file {
		if strings.HasSuffix(path, ".seg") {
			return slowReads{file: f, hold: hold, gate: gate, entered: entered}
		}
		return f
	}})
	defer s.Close()
	if err := s.Append(ctx, storetest.BatchAt(0, 10)); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	readDone := make(chan error, 1)
	go func() {
		for _, err := range s.Entries(ctx, 0, 10) {
			if err != nil {
				readDone <- err
				return
			}
		}
		readDone <- nil
	}()
	<-entered // the reader is inside a segment read
	appended := make(chan error, 1)
	go func() { appended <- s.Append(ctx, storetest.BatchAt(10, 5)) }()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		hold.Store(false)
		close(gate)
		t.Fatal("the append waited for a reader's disk read")
	}
	hold.Store(false)
	close(gate)
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(ctx); n != 15 {
		t.Fatalf("size %d, want 15", n)
	}
}
