package backend_test

import (
	"errors"
	"fmt"

	"github.com/commseal/commseal/internal/backend"
)

// A program parses -store and -blobs before it opens anything: a bad value is a usage error.
func ExampleParse() {
	spec, err := backend.Parse("/srv/desk-a", "postgres://archiver:secret@db.internal:5432/evidence?schema=desk_a", "")
	fmt.Println(spec, err)

	_, err = backend.Parse("/srv/desk-a", "mysql://db.internal/evidence", "")
	fmt.Println(errors.Is(err, backend.ErrInvalid), err)

	spec, _ = backend.Parse("/srv/desk-a", "", "")
	fmt.Println(spec.Default, spec)
	// Output:
	// PostgreSQL database "evidence" on db.internal:5432, schema "desk_a" <nil>
	// true backend: invalid -store or -blobs: -store mysql://...: unknown kind of store; give a directory (the file store) or postgres://user@host:port/db
	// true the file store in /srv/desk-a/store
}
