//go:build !linux

package scan

import "time"

// threadCPUTime is not available here: benchmarks fall back to wall time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
