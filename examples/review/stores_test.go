package main

import (
	"testing"

	"github.com/commseal/commseal/internal/backend/backendtest"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestReviewRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "review", func(dir string, flags ...string) (int, string) {
		code, _, errs := review(t, dir, append(flags, "alerts")...)
		return code, errs
	})
}
