package scan

import (
	_ "embed"
	"fmt"
	"os"
	"sync"
)

//go:embed data/default_lexicon.json
var defaultLexiconJSON []byte

var defaultScanner = sync.OnceValues(func() (*Scanner, error) {
	lex, err := ParseLexicon(defaultLexiconJSON)
	if err != nil {
		return nil, err
	}
	return Compile(lex)
})

// DefaultLexicon returns a fresh copy of the embedded default lexicon for Hong Kong securities
// conduct (see the package documentation). It is a starting point for a compliance team's own
// lexicon, not legal advice.
func DefaultLexicon() *Lexicon {
	lex, err := ParseLexicon(defaultLexiconJSON)
	if err != nil { // the embedded lexicon is tested; this cannot happen in a released build
		return &Lexicon{Name: "invalid-default"}
	}
	return lex
}

// DefaultLexiconJSON returns the embedded default lexicon in its file format, for tools that
// want to start a lexicon of their own from it.
func DefaultLexiconJSON() []byte {
	return append([]byte(nil), defaultLexiconJSON...)
}

// Default returns the default lexicon compiled, built once and shared (a Scanner is immutable).
func Default() (*Scanner, error) {
	return defaultScanner()
}

// LoadFile compiles the lexicon file at path (read with ReadLexicon), or returns Default when
// path is "": what a program with a "-lexicon FILE, default the embedded lexicon" option needs.
// Errors name the file; a bad lexicon's error wraps its *LexiconError.
func LoadFile(path string) (*Scanner, error) {
	if path == "" {
		return Default()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer f.Close()
	lex, err := ReadLexicon(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Compile(lex)
}
