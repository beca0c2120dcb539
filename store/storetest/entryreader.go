package storetest

import (
	"context"
	"errors"
	"unsafe"

	"github.com/commseal/commseal/store"
)

// within reports whether b lies inside buf's storage (an empty b always does).
func within(b, buf []byte) bool {
	if len(b) == 0 {
		return true
	}
	if cap(buf) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf[:1])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(cap(buf))
}

// entryReaderSameAsEntries: ReadEntries reads what Entries yields, for every range Entries
// rule checks, with fresh and with reused buffers.
func entryReaderSameAsEntries(c *check) {
	x := c.s.(store.EntryReader)
	ctx := context.Background()
	n := c.appendN(7, 9, 1, 20)
	var dst []store.Entry
	var buf []byte
	for _, r := range [][2]uint64{{0, n}, {0, 1}, {1, 8}, {7, 16}, {16, n + 100}, {n - 1, n}, {n, n + 1}, {n + 5, n + 10}, {5, 5}, {9, 3}} {
		want := c.entries(r[0], r[1])
		for _, fresh := range []bool{true, false} {
			if fresh {
				dst, buf = nil, nil
			}
			var err error
			dst, buf, err = x.ReadEntries(ctx, r[0], r[1], dst, buf)
			c.must("ReadEntries", err)
			if len(dst) != len(want) {
				c.fail("ReadEntries(%d, %d) with %d entries read %d; Entries yields %d", r[0], r[1], n, len(dst), len(want))
			}
			for k, e := range dst {
				if !sameEntry(e, want[k]) {
					c.fail("ReadEntries(%d, %d) read %s; Entries yields %s", r[0], r[1], describe(e), describe(want[k]))
				}
			}
		}
	}
}

// entryReaderBuffers: the entries come back in dst's storage when it is large enough, their
// leaves and payloads in the returned buffer (buf's when it is large enough), and the store
// keeps neither: what the caller writes into them changes nothing the store reads later.
func entryReaderBuffers(c *check) {
	x := c.s.(store.EntryReader)
	ctx := context.Background()
	n := c.appendN(12, 8)
	dst := make([]store.Entry, 0, n)
	buf := make([]byte, 0, 1<<16)
	got, gotBuf, err := x.ReadEntries(ctx, 0, n, dst, buf)
	c.must("ReadEntries", err)
	if uint64(len(got)) != n {
		c.fail("ReadEntries(0, %d) read %d entries", n, len(got))
	}
	if unsafe.SliceData(got) != unsafe.SliceData(dst[:1]) {
		c.fail("ReadEntries returned entries outside dst, whose capacity (%d) held all %d", cap(dst), n)
	}
	if unsafe.SliceData(gotBuf[:1]) != unsafe.SliceData(buf[:1]) {
		c.fail("ReadEntries returned a new buffer though buf's capacity (%d) held every leaf and payload", cap(buf))
	}
	for _, e := range got {
		if !within(e.Leaf, gotBuf) || !within(e.Payload, gotBuf) {
			c.fail("entry %d's leaf or payload is not in the returned buffer", e.Index)
		}
	}
	// Too small: the buffers grow, and the entries are still in the returned ones.
	small, smallBuf, err := x.ReadEntries(ctx, 0, n, make([]store.Entry, 0, 1), make([]byte, 0, 8))
	c.must("ReadEntries", err)
	for k, e := range small {
		if !sameEntry(e, EntryAt(uint64(k))) || !within(e.Leaf, smallBuf) || !within(e.Payload, smallBuf) {
			c.fail("ReadEntries into buffers too small read %s, or outside the returned buffer", describe(e))
		}
	}
	// The caller owns them now.
	gotBuf = gotBuf[:cap(gotBuf)]
	for i := range gotBuf {
		gotBuf[i] = 0xAA
	}
	for i := range got {
		got[i] = store.Entry{}
	}
	for k, e := range c.entries(0, n) {
		if !sameEntry(e, EntryAt(uint64(k))) {
			c.fail("after the caller overwrote ReadEntries' buffers, Entries yields %s", describe(e))
		}
	}
	again, _, err := x.ReadEntries(ctx, 0, n, nil, nil)
	c.must("ReadEntries", err)
	for k, e := range again {
		if !sameEntry(e, EntryAt(uint64(k))) {
			c.fail("after the caller overwrote ReadEntries' buffers, ReadEntries reads %s", describe(e))
		}
	}
}

// entryReaderFailures: a cancelled context fails the call with its error, and so does a closed
// store, with ErrClosed.
func entryReaderFailures(c *check) {
	x := c.s.(store.EntryReader)
	n := c.appendN(5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := x.ReadEntries(ctx, 0, n, nil, nil); !errors.Is(err, context.Canceled) {
		c.fail("ReadEntries with a cancelled context: err = %v; want context.Canceled", err)
	}
	c.must("Close", c.s.Close())
	if _, _, err := x.ReadEntries(context.Background(), 0, n, nil, nil); !errors.Is(err, store.ErrClosed) {
		c.fail("ReadEntries after Close: err = %v; want ErrClosed", err)
	}
}
