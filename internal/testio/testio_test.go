package testio_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/commseal/commseal/internal/testio"
)

// Writers and a reader at once (run with -race): every write is there, none torn.
func TestBufferWrittenWhileRead(t *testing.T) {
	var b testio.Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 400 {
		t.Fatalf("%d lines; want 400", n)
	}
}

func ExampleBuffer() {
	var b testio.Buffer
	fmt.Fprint(&b, "archiver: stopped")
	fmt.Println(b.String())
	// Output: archiver: stopped
}
