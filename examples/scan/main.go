// Command scan flags chat messages against a compliance lexicon.
//
// It reads one message per line on standard input and prints one JSON object per finding on
// standard output:
//
//	{"line":N,"rule":"…","category":"…","severity":"…","term":"…","start":B,"end":E}
//
// where N counts input lines from 1 and B and E are byte offsets into that line (without its
// line ending). Usage:
//
//	scan [-lexicon FILE] < messages.txt
//
// Without -lexicon it uses the default Hong Kong securities-conduct lexicon embedded in package
// scan.
//
// Exit status (README, "Exit status"): 0 done (with or without findings); 1 when reading the
// messages or writing the findings fails; 2 when the invocation is refused before anything is
// read: bad flags or arguments, or a -lexicon file that cannot be read or is not a valid
// lexicon.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/commseal/commseal/scan"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// output is one finding, with its fields in the documented order.
type output struct {
	Line     int    `json:"line"`
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Severity string `json:"severity"`
	Term     string `json:"term"`
	Start    int    `json:"start"`
	End      int    `json:"end"`
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lexPath := fs.String("lexicon", "", "lexicon `FILE` (JSON, see package scan); default: the embedded Hong Kong securities-conduct lexicon")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scan [-lexicon FILE] < messages.txt")
		fmt.Fprintln(stderr, "Reads one message per line and prints one JSON finding per line.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scan: unexpected argument %q (messages are read from standard input)\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	s, err := load(*lexPath)
	if err != nil {
		fmt.Fprintln(stderr, "scan:", err)
		return 2
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	in := bufio.NewReaderSize(stdin, 64<<10)
	var found []scan.Finding
	for n := 1; ; n++ {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			found = s.AppendScan(found[:0], line)
			for _, f := range found {
				if err := enc.Encode(output{n, f.Rule, f.Category, f.Severity.String(), f.Term, f.Start, f.End}); err != nil {
					fmt.Fprintln(stderr, "scan: writing:", err)
					return 1
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(stderr, "scan: reading line %d: %v\n", n, err)
			return 1
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(stderr, "scan: writing:", err)
		return 1
	}
	return 0
}

func load(path string) (*scan.Scanner, error) {
	if path == "" {
		return scan.Default()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lex, err := scan.ReadLexicon(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return scan.Compile(lex)
}
