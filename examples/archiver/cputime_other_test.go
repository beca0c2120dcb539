//go:build !unix

package main

import "time"

// processCPU is not measured here: BenchmarkArchiverCaptureScan reports no cpu-us/msg.
func processCPU() (time.Duration, bool) { return 0, false }
