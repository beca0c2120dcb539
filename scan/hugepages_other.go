//go:build !linux

package scan

// adviseHugePages does nothing here; see hugepages_linux.go.
func adviseHugePages([]uint32) {}
