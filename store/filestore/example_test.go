package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/storetest"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "filestore-example")
	defer os.RemoveAll(dir)

	s, err := filestore.Open(ctx, dir, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Append returns once the batch is synced to disk.
	if err := s.Append(ctx, storetest.BatchAt(0, 3)); err != nil {
		fmt.Println(err)
		return
	}
	// A second writer is refused while the first holds the directory.
	if _, err := filestore.Open(ctx, dir, nil); errors.Is(err, filestore.ErrLocked) {
		fmt.Println("second writer: locked")
	}
	// A read-only store can run beside the writer.
	ro, err := filestore.Open(ctx, dir, &filestore.Options{ReadOnly: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	n, _ := ro.Size(ctx)
	fmt.Println("reader sees", n, "entries")
	ro.Close()
	s.Close()

	s, _ = filestore.Open(ctx, dir, nil)
	defer s.Close()
	n, _ = s.Size(ctx)
	fmt.Println("reopened with", n, "entries, cut", len(s.Recovery().Cut), "torn tails")
	// Output:
	// second writer: locked
	// reader sees 3 entries
	// reopened with 3 entries, cut 0 torn tails
}
