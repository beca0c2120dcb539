package backend_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/commseal/commseal/internal/backend"
)

// FuzzParse: any pair of flag values parses or is refused with ErrInvalid, never panics, and
// never echoes a password given in a postgres:// URL.
func FuzzParse(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"postgres://u:pw@h:5432/db?schema=x", ""}, {"", "s3://bkt/p?endpoint=http://h:9000&retention=30d"},
		{"postgresql:///db?host=/tmp", "s3://bkt?path-style=false&region=eu-west-1"}, {"x://y", "s3://A"}, {"rel/dir", "s3://b?retention=1h"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, storeFlag, blobsFlag string) {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
		spec, err := backend.Parse("dir", storeFlag, blobsFlag)
		if err != nil {
			if !errors.Is(err, backend.ErrInvalid) {
				t.Fatalf("Parse(%q, %q): %v is not ErrInvalid", storeFlag, blobsFlag, err)
			}
			return
		}
		if spec.Store.Kind == "" {
			t.Fatalf("Parse(%q, %q): no store", storeFlag, blobsFlag)
		}
		if strings.Contains(spec.String(), "SECRET") {
			t.Fatalf("Parse(%q, %q): %s shows the secret", storeFlag, blobsFlag, spec)
		}
	})
}
