package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a C2SP tlog-checkpoint: a log's origin, its tree size and root hash.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       Hash
	Extensions []string // optional extension lines; none are written by commseal
}

// ErrMalformedCheckpoint is wrapped by every ParseCheckpoint error.
var ErrMalformedCheckpoint = errors.New("seal: malformed checkpoint")

// ErrCheckpointSignature is wrapped when a signed checkpoint is not signed by the expected key.
var ErrCheckpointSignature = errors.New("seal: checkpoint signature does not verify")

// MaxCheckpointSize bounds the signed checkpoint notes that OpenCheckpoint accepts.
const MaxCheckpointSize = 16 << 10

// Text returns the checkpoint's note text.
func (c *Checkpoint) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseCheckpoint parses checkpoint note text strictly: a non-empty origin, a decimal size
// without leading zeros, a base64 root of 32 bytes, and non-empty extension lines, each line
// ending in a newline.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	if !utf8.ValidString(text) || !strings.HasSuffix(text, "\n") {
		return c, fmt.Errorf("%w: not newline-terminated UTF-8 text", ErrMalformedCheckpoint)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("%w: %d lines, want at least 3", ErrMalformedCheckpoint, len(lines))
	}
	c.Origin = lines[0]
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\r\t") {
		return c, fmt.Errorf("%w: bad origin line %q", ErrMalformedCheckpoint, c.Origin)
	}
	sz := lines[1]
	n, err := strconv.ParseUint(sz, 10, 64)
	if err != nil || (len(sz) > 1 && sz[0] == '0') || sz[0] == '+' {
		return c, fmt.Errorf("%w: bad size line %q", ErrMalformedCheckpoint, sz)
	}
	c.Size = n
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) {
		return c, fmt.Errorf("%w: bad root hash line %q", ErrMalformedCheckpoint, lines[2])
	}
	copy(c.Root[:], root)
	for _, e := range lines[3:] {
		if e == "" {
			return c, fmt.Errorf("%w: empty extension line", ErrMalformedCheckpoint)
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// SignCheckpoint returns c as a signed note.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("seal: signer %q does not match checkpoint origin %q", s.Name(), c.Origin)
	}
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// OpenCheckpoint verifies a signed checkpoint with v and parses it. It fails with an error
// wrapping ErrCheckpointSignature if v did not sign it (or the signature is invalid), and
// ErrMalformedCheckpoint if the note or its text is malformed. The checkpoint's origin must
// equal v's key name.
func OpenCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if len(signed) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes", ErrMalformedCheckpoint, len(signed))
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		if errors.As(err, &unv) || errors.As(err, &inv) {
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrCheckpointSignature, err)
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return c, err
	}
	if c.Origin != v.Name() {
		return c, fmt.Errorf("%w: origin %q is not the key's name %q", ErrCheckpointSignature, c.Origin, v.Name())
	}
	return c, nil
}

// ProofHeader is the first line of a C2SP tlog-proof@v1.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// Proof is a C2SP tlog-proof@v1: an offline proof that an entry is in a log, under a signed
// checkpoint. Extra carries the exact leaf bytes in commseal's proofs.
type Proof struct {
	Extra      []byte // opaque application data; in commseal, the leaf bytes
	Index      uint64
	Hashes     []Hash // the inclusion proof, leaf to root
	Checkpoint []byte // the signed checkpoint note
}

// ErrMalformedProof is wrapped by every ParseProof error.
var ErrMalformedProof = errors.New("seal: malformed tlog-proof")

// MaxProofSize bounds the proofs ParseProof accepts.
const MaxProofSize = 64 << 10

// Marshal returns the proof in its text form.
func (p *Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ProofHeader + "\n")
	if p.Extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	fmt.Fprintf(&b, "index %d\n", p.Index)
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseProof parses a proof's text form strictly. It does not verify it; see VerifyProof.
func ParseProof(data []byte) (Proof, error) {
	var p Proof
	if len(data) > MaxProofSize {
		return p, fmt.Errorf("%w: %d bytes", ErrMalformedProof, len(data))
	}
	head, cp, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return p, fmt.Errorf("%w: no blank line before the checkpoint", ErrMalformedProof)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != ProofHeader {
		return p, fmt.Errorf("%w: first line %q, want %q", ErrMalformedProof, lines[0], ProofHeader)
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		x, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return p, fmt.Errorf("%w: extra line: %v", ErrMalformedProof, err)
		}
		p.Extra = x
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return p, fmt.Errorf("%w: missing index line", ErrMalformedProof)
	}
	is := strings.TrimPrefix(lines[0], "index ")
	i, err := strconv.ParseUint(is, 10, 64)
	if err != nil || (len(is) > 1 && is[0] == '0') || is[0] == '+' {
		return p, fmt.Errorf("%w: bad index %q", ErrMalformedProof, is)
	}
	p.Index = i
	if len(lines)-1 > 64 {
		return p, fmt.Errorf("%w: %d proof hashes, more than any tree needs", ErrMalformedProof, len(lines)-1)
	}
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 {
			return p, fmt.Errorf("%w: bad hash line %q", ErrMalformedProof, l)
		}
		p.Hashes = append(p.Hashes, Hash(h))
	}
	if len(cp) == 0 {
		return p, fmt.Errorf("%w: empty checkpoint", ErrMalformedProof)
	}
	p.Checkpoint = cp
	return p, nil
}

// VerifyProof checks a parsed proof: the checkpoint is signed by v, and the leaf whose bytes
// are p.Extra is at p.Index in the checkpoint's tree. It returns the checkpoint and the leaf.
func VerifyProof(p *Proof, v note.Verifier) (Checkpoint, Leaf, error) {
	c, err := OpenCheckpoint(p.Checkpoint, v)
	if err != nil {
		return c, Leaf{}, err
	}
	leaf, err := ProofLeaf(p, c)
	return c, leaf, err
}

// ProofLeaf checks a parsed proof against a checkpoint the caller has already opened (for
// many proofs against one checkpoint, whose signature need not be checked again): the leaf
// whose bytes are p.Extra is at p.Index in c's tree. It returns the leaf.
func ProofLeaf(p *Proof, c Checkpoint) (Leaf, error) {
	leaf, err := ParseLeaf(p.Extra)
	if err != nil {
		return leaf, fmt.Errorf("%w: extra data is not a leaf: %v", ErrProof, err)
	}
	if leaf.Index != p.Index {
		return leaf, fmt.Errorf("%w: leaf says index %d, proof says %d", ErrProof, leaf.Index, p.Index)
	}
	if err := CheckInclusion(p.Hashes, c.Size, c.Root, p.Index, LeafHash(p.Extra)); err != nil {
		return leaf, err
	}
	return leaf, nil
}
