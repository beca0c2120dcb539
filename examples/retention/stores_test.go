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

// Another ledger's directory or store (backend.ErrMismatch, ErrNotEmpty, ledgerdir.ErrInUse):
// exit 2, nothing written.
func TestRetentionRefusesOtherLedgers(t *testing.T) {
	backendtest.RefusesOtherLedgers(t, "retention", func(dir string, flags ...string) (int, string) {
		code, _, errs := runR(append([]string{"-dir", dir, "-holds"}, flags...)...)
		return code, errs
	})
}
