package main

import (
	"testing"

	"github.com/commseal/commseal/internal/backend/backendtest"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestRetentionRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "retention", func(dir string, flags ...string) (int, string) {
		code, _, errs := runR(append([]string{"-dir", dir, "-holds"}, flags...)...)
		return code, errs
	})
}
