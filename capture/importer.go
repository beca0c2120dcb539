package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// ParseFunc turns one raw platform payload into a Message. It must copy what it keeps of raw.
type ParseFunc func(raw []byte) (*Message, error)

// Importer backfills messages from a file of one raw payload per line (JSON Lines), the shape a
// gateway delivers. A malformed line is reported with its line number and skipped; the rest are
// still imported, so one bad line never costs the others.
type Importer struct {
	Parse ParseFunc // required
	// MaxLine bounds one line; longer lines are reported and skipped. Zero means MaxRawLen.
	MaxLine int
	// OnError, if set, is called for each skipped line; its error, if any, stops the import.
	OnError func(err *LineError) error
}

// LineError describes a line that could not be imported.
type LineError struct {
	Line int   // 1-based line number
	Err  error // why
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ImportStats counts what an import did.
type ImportStats struct {
	Lines      int          // non-blank lines read
	Stored     int          // new entries
	Duplicates int          // lines whose message was already stored
	Skipped    []*LineError // malformed lines, in order
}

// ErrLineTooLong is the cause of a LineError for a line over the importer's MaxLine.
var ErrLineTooLong = errors.New("line too long")

// Import reads r to its end and appends every parsable line to sink. It returns an error only
// when reading fails, the context ends, the sink fails, or OnError asks to stop; malformed lines
// are collected in the stats instead. A sink error stops the import so that nothing after an
// unstored line is stored out of order; the stats say how far it got.
func (im *Importer) Import(ctx context.Context, r io.Reader, sink Sink) (ImportStats, error) {
	var st ImportStats
	if im.Parse == nil {
		return st, errors.New("capture: Importer.Parse is nil")
	}
	max := im.MaxLine
	if max <= 0 {
		max = MaxRawLen
	}
	br := bufio.NewReaderSize(r, 64<<10)
	line := 0
	var buf []byte
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		chunk, tooLong, err := readLine(br, buf[:0], max)
		buf = chunk
		if err != nil && err != io.EOF {
			return st, fmt.Errorf("capture: reading line %d: %w", line+1, err)
		}
		if len(chunk) == 0 && !tooLong && err == io.EOF {
			return st, nil
		}
		line++
		chunk = bytes.TrimRight(chunk, "\r")
		if len(bytes.TrimSpace(chunk)) == 0 && !tooLong {
			if err == io.EOF {
				return st, nil
			}
			continue
		}
		st.Lines++
		var perr error
		var m *Message
		if tooLong {
			perr = fmt.Errorf("%w: over %d bytes", ErrLineTooLong, max)
		} else if m, perr = im.Parse(chunk); perr == nil {
			perr = m.Validate()
		}
		if perr != nil {
			le := &LineError{Line: line, Err: perr}
			st.Skipped = append(st.Skipped, le)
			if im.OnError != nil {
				if stop := im.OnError(le); stop != nil {
					return st, stop
				}
			}
		} else {
			rc, aerr := sink.Append(ctx, m)
			if aerr != nil {
				return st, fmt.Errorf("capture: storing line %d (%s): %w", line, m.Identity(), aerr)
			}
			if rc.Duplicate {
				st.Duplicates++
			} else {
				st.Stored++
			}
		}
		if err == io.EOF {
			return st, nil
		}
	}
}

// readLine reads one '\n'-terminated line into buf. If the line exceeds max bytes the rest of it
// is consumed and discarded and tooLong is true.
func readLine(br *bufio.Reader, buf []byte, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, e := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > max+1 { // +1 for the newline
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e != nil {
			return buf, tooLong, e
		}
		if tooLong {
			return buf[:0], true, nil
		}
		return buf[:len(buf)-1], false, nil
	}
}
