package scan

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHugePages asks the kernel to back the 2 MiB-aligned interior of t with transparent
// huge pages, before t is first written. A large lexicon's dense table is tens of MiB read
// at random: on 4 KiB pages most of its rows sit on pages the TLB does not hold, and a scan
// waits on page walks as well as on the rows. Huge pages took 16% off both a normalizing
// batch and single-message scanning at 10,000 terms. It is advice: where transparent huge
// pages are off, or the memory was already touched, nothing changes, and errors are ignored.
func adviseHugePages(t []uint32) {
	const huge = 2 << 20
	if len(t)*4 < 2*huge {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(t))), len(t)*4)
	start := (huge - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%huge)) % huge
	end := start + (len(b)-start)/huge*huge
	_ = unix.Madvise(b[start:end], unix.MADV_HUGEPAGE)
}
