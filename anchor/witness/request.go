package witness

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/commseal/commseal/seal"
)

// Errors of the protocol, shared by the server (which answers each with its status code) and
// the client (which turns each status code back into it). Branch on them with errors.Is.
var (
	// ErrMalformedRequest: the request is not in the add-checkpoint format (400).
	ErrMalformedRequest = errors.New("witness: malformed add-checkpoint request")
	// ErrLogSignature: no trusted key of the origin signed the checkpoint, or one's signature
	// fails (403).
	ErrLogSignature = errors.New("witness: checkpoint not signed by the log")
	// ErrUnknownLog: the witness does not know the checkpoint's origin (404).
	ErrUnknownLog = errors.New("witness: unknown log")
	// ErrConflict: the old size is not the size the witness knows (409). The error is a
	// *ConflictError carrying that size.
	ErrConflict = errors.New("witness: old size is not the witness's latest size")
	// ErrInconsistent: the checkpoint is not consistent with the one the witness cosigned
	// last (422): a bad proof, a fork, or a bad empty tree.
	ErrInconsistent = errors.New("witness: checkpoint is not consistent with the witness's")
	// ErrStateChanged: a Store's compare-and-swap found another state than the one expected.
	ErrStateChanged = errors.New("witness: stored state changed")
)

// ConflictError is the 409 answer: the witness's latest cosigned size for the log differs from
// the old size of the request. The log retries with a consistency proof from Size.
type ConflictError struct {
	Size uint64 // the size of the latest checkpoint the witness cosigned for the log
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness: old size is not the witness's latest size %d", e.Size)
}

// Is makes errors.Is(err, ErrConflict) true for a *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// MaxProofLines is the most consistency proof lines a request may carry (the spec's bound).
const MaxProofLines = 63

// MaxCheckpointSize bounds the signed checkpoint of a request: seal's bound for cosigned
// checkpoints, since a log may submit its checkpoint with other witnesses' cosignatures.
const MaxCheckpointSize = seal.MaxCosignedCheckpointSize

// MaxRequestSize bounds an add-checkpoint request body: the old size line, the proof lines,
// and a checkpoint of at most MaxCheckpointSize.
const MaxRequestSize = 64 + MaxProofLines*45 + 1 + MaxCheckpointSize

// SizeContentType is the media type of a 409 answer's body.
const SizeContentType = "text/x.tlog.size"

// Request is an add-checkpoint request.
type Request struct {
	OldSize    uint64      // the size of the checkpoint the proof starts from
	Proof      []seal.Hash // the RFC 6962 consistency proof from OldSize to the checkpoint's size
	Checkpoint []byte      // the signed checkpoint note
}

// Marshal returns the request body.
func (r *Request) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatUint(r.OldSize, 10) + "\n")
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseRequest parses an add-checkpoint request body strictly: "old N" (decimal, no leading
// zeroes), at most MaxProofLines lines of one base64 hash each, an empty line, and a non-empty
// checkpoint note (whose signatures it does not check). Errors wrap ErrMalformedRequest.
func ParseRequest(body []byte) (Request, error) {
	var r Request
	if len(body) > MaxRequestSize {
		return r, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedRequest, len(body), MaxRequestSize)
	}
	head, cp, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return r, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformedRequest)
	}
	lines := strings.Split(string(head), "\n")
	old, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return r, fmt.Errorf("%w: first line %q is not \"old <size>\"", ErrMalformedRequest, lines[0])
	}
	n, err := parseSize(old)
	if err != nil {
		return r, fmt.Errorf("%w: old size: %v", ErrMalformedRequest, err)
	}
	r.OldSize = n
	if len(lines)-1 > MaxProofLines {
		return r, fmt.Errorf("%w: %d proof lines, more than %d", ErrMalformedRequest, len(lines)-1, MaxProofLines)
	}
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != len(seal.Hash{}) || strings.ContainsAny(l, "\r\n") {
			return r, fmt.Errorf("%w: proof line %q is not a base64 hash", ErrMalformedRequest, l)
		}
		r.Proof = append(r.Proof, seal.Hash(h))
	}
	if len(cp) == 0 {
		return r, fmt.Errorf("%w: no checkpoint", ErrMalformedRequest)
	}
	r.Checkpoint = cp
	return r, nil
}

// parseSize parses a tree size in decimal with no leading zeroes.
func parseSize(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || len(s) > 1 && s[0] == '0' || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a decimal size without leading zeroes", s)
	}
	return n, nil
}

// Log is a log the witness cosigns for: its origin and the verifier keys it trusts for it.
type Log struct {
	Origin    string
	Verifiers []note.Verifier
}

// ParseLog parses a log's configuration line: "<origin> <vkey> [<vkey>...]", or a lone vkey,
// whose key name is then the origin. Keys are Ed25519 verifier keys in sumdb/note format.
func ParseLog(line string) (Log, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Log{}, fmt.Errorf("witness: empty log line")
	}
	var l Log
	keys := f
	if len(f) > 1 {
		l.Origin, keys = f[0], f[1:]
	}
	for _, k := range keys {
		v, err := seal.NewVerifier(k)
		if err != nil {
			return Log{}, fmt.Errorf("witness: log %q: %w", line, err)
		}
		l.Verifiers = append(l.Verifiers, v)
	}
	if l.Origin == "" {
		l.Origin = l.Verifiers[0].Name()
	}
	return l, nil
}

// ParseLogs reads log lines (ParseLog), skipping empty lines and lines starting with '#'.
func ParseLogs(r io.Reader) ([]Log, error) {
	var logs []Log
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		l, err := ParseLog(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		logs = append(logs, l)
	}
	return logs, sc.Err()
}
