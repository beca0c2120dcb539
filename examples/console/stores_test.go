package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/commseal/commseal/internal/backend/backendtest"
)

// A bad -store or -blobs: exit 2 with what is wrong, and nothing written.
func TestConsoleRefusesBadStoreFlags(t *testing.T) {
	backendtest.RefusesBadFlags(t, "console", func(dir string, flags ...string) (int, string) {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"-dir", dir, "-accounts", "a", "-insecure-http"}, flags...), nil, io.Discard, &errb, nil)
		return code, errb.String()
	})
}
