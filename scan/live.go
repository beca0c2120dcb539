package scan

import (
	"errors"
	"sync/atomic"
)

// ErrNoScanner is returned by NewLive when it is given no scanner.
var ErrNoScanner = errors.New("scan: no scanner")

// Live holds the current Scanner and lets a new one be swapped in at any time (hot reload).
// A scan in progress finishes on the scanner it started with; the next one uses the new one.
// Every Finding names the lexicon version that produced it, so results from before and after a
// reload can always be told apart. Live is safe for concurrent use.
type Live struct {
	cur atomic.Pointer[Scanner]
}

// NewLive returns a Live serving s.
func NewLive(s *Scanner) (*Live, error) {
	if s == nil {
		return nil, ErrNoScanner
	}
	l := &Live{}
	l.cur.Store(s)
	return l, nil
}

// Scanner returns the scanner currently in service. Use it for a group of scans that must all
// see the same lexicon.
func (l *Live) Scanner() *Scanner { return l.cur.Load() }

// Swap puts s into service and returns the scanner it replaces. A nil s is refused (the
// current scanner stays) and ErrNoScanner is returned.
func (l *Live) Swap(s *Scanner) (*Scanner, error) {
	if s == nil {
		return l.cur.Load(), ErrNoScanner
	}
	return l.cur.Swap(s), nil
}

// Reload parses and compiles a lexicon and swaps it in. On any error the current scanner stays
// in service and the error (a *LexiconError for a bad lexicon) is returned.
func (l *Live) Reload(lexicon []byte) (*Scanner, error) {
	lex, err := ParseLexicon(lexicon)
	if err != nil {
		return nil, err
	}
	s, err := Compile(lex)
	if err != nil {
		return nil, err
	}
	l.cur.Store(s)
	return s, nil
}

// Scan scans text with the current scanner.
func (l *Live) Scan(text []byte) []Finding { return l.cur.Load().Scan(text) }
