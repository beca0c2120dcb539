package testenv_test

import (
	"os"
	"testing"

	"github.com/commseal/commseal/internal/testenv"
)

func TestRequired(t *testing.T) {
	t.Setenv(testenv.RequireVar, "1")
	if !testenv.Required() {
		t.Fatalf("Required with %s=1 is false", testenv.RequireVar)
	}
	t.Setenv(testenv.RequireVar, "")
	if testenv.Required() {
		t.Fatalf("Required with %s unset is true", testenv.RequireVar)
	}
}

func TestProgram(t *testing.T) {
	t.Setenv(testenv.RequireVar, "")
	if p := testenv.Program(t, "sh", "it is part of every system"); p == "" {
		t.Fatal("Program found no path for sh")
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/tool", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p := testenv.Program(t, "tool", "written by the test", dir); p != dir+"/tool" {
		t.Fatalf("Program(tool) = %q; want the one in %s", p, dir)
	}
}

// TestMissingSkips: without RequireVar a missing program skips the test (it would fail the
// whole run otherwise); the subtest's state shows which.
func TestMissingSkips(t *testing.T) {
	t.Setenv(testenv.RequireVar, "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		testenv.Program(t, "commseal-no-such-program", "not meant to exist")
		t.Error("Program returned for a program that does not exist")
	})
	if !skipped {
		t.Fatal("a missing program did not skip the test")
	}
}
