// Package testio holds I/O helpers for tests: what several packages' tests would otherwise each
// write again.
package testio

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that one goroutine (a program or server under test) writes while
// another (the test) reads it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
