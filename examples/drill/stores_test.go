package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/commseal/commseal/internal/backend/backendtest"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestDrillRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "drill", func(dir string, flags ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		return run(context.Background(), append([]string{"-dir", dir}, flags...), &stdout, &stderr), stderr.String()
	})
}
