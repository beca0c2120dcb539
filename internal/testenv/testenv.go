// Package testenv serves tests that need something from outside Go: a server (PostgreSQL, an
// S3 server), a tool (openssl, chromium) or root. On a developer's machine such a test skips
// with the reason, so that `go test ./...` passes on a fresh machine; CI sets
// COMMSEAL_REQUIRE_EXTERNAL=1 after installing what the tests need, and the same reason is then
// a failure, so CI always runs them.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireVar is the environment variable that turns a missing outside dependency from a skip
// into a failure when it is "1" (.ci/run sets it).
const RequireVar = "COMMSEAL_REQUIRE_EXTERNAL"

// Required reports whether missing outside dependencies fail the tests (RequireVar is "1").
func Required() bool { return os.Getenv(RequireVar) == "1" }

// Missing ends the test because an outside dependency is missing: it skips with why, or fails
// with why when Required.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s=1, but %s", RequireVar, why)
	}
	t.Skip(why)
}

// Program returns the path of the named program on PATH (or in the extra directories given,
// searched first), or ends the test through Missing, naming how to get it.
func Program(t testing.TB, name, howToGet string, dirs ...string) string {
	t.Helper()
	for _, d := range dirs {
		p := d + string(os.PathSeparator) + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed ("+howToGet+")")
	}
	return p
}
