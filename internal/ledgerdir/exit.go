package ledgerdir

import (
	"errors"

	"github.com/commseal/commseal/internal/backend"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/ledger"
)

// The exit status of every program under examples/ (README, "Exit status").
const (
	// ExitOK: the program did what it was asked.
	ExitOK = 0
	// ExitFailed: the work was attempted and failed (I/O, a server, damage found, a failed
	// append or export...).
	ExitFailed = 1
	// ExitRefused: the invocation was refused before anything was done: bad or missing flags
	// and arguments, or a ledger directory or store that is not this run's to use.
	ExitRefused = 2
)

// ExitCode is the exit status for err, returned by Open, OpenOn or anything a program does
// after them: ExitOK for nil; ExitRefused for an error that says the invocation itself was
// wrong, before anything was written (a bad -store or -blobs, a directory that holds no
// ledger, one whose stores are elsewhere, a store that holds another ledger, a directory
// open in another process, a missing signing key or key-encryption key, a wrong
// passphrase); ExitFailed for anything else. A program maps its own usage errors (flags) to
// ExitRefused itself.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case refused(err):
		return ExitRefused
	}
	return ExitFailed
}

// refused reports whether err says the invocation was not this run's to make.
func refused(err error) bool {
	for _, target := range []error{
		backend.ErrInvalid,    // -store or -blobs cannot be used
		backend.ErrMismatch,   // the directory's stores are elsewhere
		backend.ErrNotEmpty,   // a new directory given a store that holds a ledger
		ledger.ErrOtherLedger, // a store claimed by another ledger's signing key
		layout.ErrNoLedger,    // no ledger in the directory
		ErrMissingKey,         // the ledger's signing key is not in the directory
		ErrMissingKEK,         // nor its key-encryption key
		ErrWrongKEK,           // a passphrase or key file that does not open its keys
		ErrInUse,              // another process has the directory open to write
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
