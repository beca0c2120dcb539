package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/commseal/commseal/seal"
)

// maxResponseSize bounds what the client reads of a witness's answer: a few cosignature lines
// (ML-DSA-44 ones are about 3.3 kB each).
const maxResponseSize = 64 << 10

// Client submits a log's checkpoints to one witness.
type Client struct {
	url     string
	witness *seal.CosignatureVerifier
	hc      *http.Client
}

// NewClient returns a client of the witness whose submission prefix is prefix (the URL that
// "/add-checkpoint" is appended to, e.g. "https://witness.example/") and whose cosignature
// verifier key is witnessVKey. hc nil is http.DefaultClient.
func NewClient(prefix, witnessVKey string, hc *http.Client) (*Client, error) {
	v, err := seal.NewCosignatureVerifier(witnessVKey)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{url: strings.TrimSuffix(prefix, "/") + "/add-checkpoint", witness: v, hc: hc}, nil
}

// Witness returns the verifier of the witness's cosignatures.
func (c *Client) Witness() *seal.CosignatureVerifier { return c.witness }

// AddCheckpoint submits the signed checkpoint with the consistency proof from oldSize (the
// size the witness last cosigned for this log, 0 if none) and returns the witness's
// cosignatures of it, each verified with the witness's key; lines of other keys in the answer
// are ignored, as the spec requires. A 409 answer is a *ConflictError with the witness's size;
// the other refusals wrap ErrMalformedRequest (400), ErrLogSignature (403), ErrUnknownLog
// (404) or ErrInconsistent (422). An answer without a valid cosignature of the witness wraps
// seal.ErrCosignature.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize uint64, proof []seal.Hash, signed []byte) ([]seal.Cosignature, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: checkpoint is not a signed note", ErrMalformedRequest)
	}
	text := string(signed[:i+1])
	body := (&Request{OldSize: oldSize, Proof: proof, Checkpoint: signed}).Marshal()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", c.witness.Name(), err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("witness %s: reading answer: %w", c.witness.Name(), err)
	}
	if len(answer) > maxResponseSize {
		return nil, fmt.Errorf("witness %s: answer of more than %d bytes", c.witness.Name(), maxResponseSize)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return c.cosignatures(text, answer)
	case http.StatusConflict:
		return nil, c.conflict(resp, answer)
	}
	var sentinel error
	switch resp.StatusCode {
	case http.StatusBadRequest:
		sentinel = ErrMalformedRequest
	case http.StatusForbidden:
		sentinel = ErrLogSignature
	case http.StatusNotFound:
		sentinel = ErrUnknownLog
	case http.StatusUnprocessableEntity:
		sentinel = ErrInconsistent
	default:
		return nil, fmt.Errorf("witness %s: %s: %s", c.witness.Name(), resp.Status, snippet(answer))
	}
	return nil, fmt.Errorf("%w (witness %s: %s: %s)", sentinel, c.witness.Name(), resp.Status, snippet(answer))
}

// cosignatures reads a 200 answer: signature lines, of which those of the witness's key must
// verify over text.
func (c *Client) cosignatures(text string, answer []byte) ([]seal.Cosignature, error) {
	if len(answer) == 0 || answer[len(answer)-1] != '\n' {
		return nil, fmt.Errorf("%w: witness %s answered %q, not signature lines", seal.ErrMalformedCosignature, c.witness.Name(), snippet(answer))
	}
	var out []seal.Cosignature
	for _, line := range strings.SplitAfter(string(answer[:len(answer)-1]), "\n") {
		if !strings.HasPrefix(line, "— ") {
			return nil, fmt.Errorf("%w: witness %s answered a line %q", seal.ErrMalformedCosignature, c.witness.Name(), snippet([]byte(line)))
		}
		cos, err := seal.ParseCosignatureLine(line)
		if err != nil || cos.Name != c.witness.Name() || cos.KeyID != c.witness.KeyHash() {
			continue // another key's line, or another type of it (e.g. ML-DSA-44): ignored
		}
		if _, err := c.witness.VerifyLine(text, line); err != nil {
			return nil, fmt.Errorf("witness %s: %w", c.witness.Name(), err)
		}
		if cos.Time == 0 {
			return nil, fmt.Errorf("%w: witness %s cosigned with time 0", seal.ErrCosignature, c.witness.Name())
		}
		out = append(out, cos)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: witness %s answered no cosignature of its key %s", seal.ErrCosignature, c.witness.Name(), c.witness)
	}
	return out, nil
}

// conflict reads a 409 answer: the witness's size, in text/x.tlog.size.
func (c *Client) conflict(resp *http.Response, answer []byte) error {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	s, ok := strings.CutSuffix(string(answer), "\n")
	n, err := parseSize(s)
	if mt != SizeContentType || !ok || err != nil {
		return fmt.Errorf("witness %s: 409 answer %q (%s) is not a tree size", c.witness.Name(), snippet(answer), mt)
	}
	return &ConflictError{Size: n}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Cosign gets the witness's cosignature of signed, a checkpoint of the log, whatever size the
// witness last saw: it submits with a proof from knownSize (what the log last learnt from
// this witness; 0 when it does not know), and after a 409 once more from the size the witness
// names. prove(ctx, old) returns the consistency proof from size old to the checkpoint's size
// (it is not called for old 0 or old equal to the size, whose proof is empty). It returns the
// cosignatures; the witness's size is then the checkpoint's. A knownSize above the
// checkpoint's size is taken as unknown (0). A witness ahead of the checkpoint (a log that
// lost its state, or a fork) fails with the *ConflictError naming the witness's size.
func (c *Client) Cosign(ctx context.Context, signed []byte, knownSize uint64, prove func(ctx context.Context, oldSize uint64) ([]seal.Hash, error)) ([]seal.Cosignature, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: checkpoint is not a signed note", ErrMalformedRequest)
	}
	cp, err := seal.ParseCheckpoint(string(signed[:i+1]))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	}
	old := knownSize
	if old > cp.Size {
		old = 0 // what the log believes is wrong for this checkpoint: ask the witness
	}
	for attempt := 0; ; attempt++ {
		if old > cp.Size {
			return nil, &ConflictError{Size: old}
		}
		var proof []seal.Hash
		if old != 0 && old != cp.Size {
			if proof, err = prove(ctx, old); err != nil {
				return nil, fmt.Errorf("witness %s: proof from %d to %d: %w", c.witness.Name(), old, cp.Size, err)
			}
		}
		cos, err := c.AddCheckpoint(ctx, old, proof, signed)
		var conflict *ConflictError
		if attempt == 0 && errors.As(err, &conflict) && conflict.Size != old {
			old = conflict.Size
			continue
		}
		return cos, err
	}
}
