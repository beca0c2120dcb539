package seal

// This file implements C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), Ed25519
// type: the statement of a witness that it checked a checkpoint's consistency with every
// checkpoint of the same log it saw before. It is pure: no clock is read unless the caller
// asks for note.Signer's Sign, and nothing touches the network or the disk.
//
// A cosignature is a C2SP signed-note signature line on the checkpoint:
//
//	— <witness name> base64(key ID || timestamp || Ed25519 signature)
//
// where the key ID is SHA-256(<name> || "\n" || 0x04 || 32-byte public key)[:4], the timestamp
// is 8 bytes big-endian (POSIX seconds, at most 2^63-1), and the Ed25519 signature is over
//
//	cosignature/v1
//	time <timestamp in decimal, no leading zeroes>
//	<the checkpoint's note text, with its final newline, without signature lines>
//
// The witness's verifier key is "<name>+<hex key ID>+base64(0x04 || public key)". Its signing
// key is kept in golang.org/x/mod/sumdb/note's private key format (type 0x01, the Ed25519 seed),
// as transparency-dev/formats and torchwood also read it; the cosignature key ID is derived
// from the public key with type 0x04, so the same text never signs two kinds of statement.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// CosignatureType is the signed-note signature type byte of Ed25519 cosignatures
// (tlog-cosignature/v1), used in their key IDs and verifier keys.
const CosignatureType = 0x04

// CosignatureHeader is the first line of the message an Ed25519 cosignature signs.
const CosignatureHeader = "cosignature/v1"

// cosignatureLen is the length of a cosignature's signature bytes after the key ID.
const cosignatureLen = 8 + ed25519.SignatureSize

// Errors of cosignatures and witness policies, for callers to branch on with errors.Is.
var (
	// ErrMalformedCosignature is wrapped when a cosignature line, key or message is not in
	// the tlog-cosignature/v1 format.
	ErrMalformedCosignature = errors.New("seal: malformed cosignature")
	// ErrCosignature is wrapped when a cosignature in the right format does not verify with
	// the witness key it names.
	ErrCosignature = errors.New("seal: cosignature does not verify")
	// ErrQuorum is wrapped when a checkpoint carries fewer valid cosignatures from distinct
	// witnesses of a policy than the policy requires.
	ErrQuorum = errors.New("seal: not enough witness cosignatures")
)

// Cosignature is one parsed Ed25519 cosignature (tlog-cosignature/v1).
type Cosignature struct {
	Name      string // the witness's key name
	KeyID     uint32 // the key ID, which the witness's verifier key also carries
	Time      uint64 // POSIX seconds when the witness signed; never more than 2^63-1
	Signature [ed25519.SignatureSize]byte
}

// Timestamp returns the cosignature's time.
func (c Cosignature) Timestamp() time.Time { return time.Unix(int64(c.Time), 0).UTC() }

// Line returns the cosignature as a signed-note signature line, ending in a newline.
func (c Cosignature) Line() string {
	b := make([]byte, 0, 4+cosignatureLen)
	b = binary.BigEndian.AppendUint32(b, c.KeyID)
	b = binary.BigEndian.AppendUint64(b, c.Time)
	b = append(b, c.Signature[:]...)
	return "— " + c.Name + " " + base64.StdEncoding.EncodeToString(b) + "\n"
}

// ParseCosignatureLine parses one signed-note signature line ("— name base64", with or
// without its final newline) as an Ed25519 cosignature. It checks the format only: the name,
// a strict base64 of exactly 4+8+64 bytes and a timestamp of at most 2^63-1. It does not know
// whether the line is a cosignature at all (an Ed25519 note signature has 4+64 bytes and is
// refused); see CosignatureVerifier.VerifyLine.
func ParseCosignatureLine(line string) (Cosignature, error) {
	var c Cosignature
	l := strings.TrimSuffix(line, "\n")
	if strings.Contains(l, "\n") {
		return c, fmt.Errorf("%w: more than one line", ErrMalformedCosignature)
	}
	l, ok := strings.CutPrefix(l, "— ")
	if !ok {
		return c, fmt.Errorf("%w: a signature line starts with \"— \"", ErrMalformedCosignature)
	}
	name, b64, ok := strings.Cut(l, " ")
	if !ok || !validKeyName(name) {
		return c, fmt.Errorf("%w: bad key name %q", ErrMalformedCosignature, name)
	}
	// encoding/base64 skips '\r' and '\n' even when strict: refuse them first.
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || strings.ContainsAny(b64, "\r\n") {
		return c, fmt.Errorf("%w: signature of %q is not base64", ErrMalformedCosignature, name)
	}
	return cosignatureFromBytes(name, raw)
}

// cosignatureFromBytes decodes key ID || timestamp || signature.
func cosignatureFromBytes(name string, raw []byte) (Cosignature, error) {
	var c Cosignature
	if len(raw) != 4+cosignatureLen {
		return c, fmt.Errorf("%w: signature of %q has %d bytes, want %d", ErrMalformedCosignature, name, len(raw), 4+cosignatureLen)
	}
	c.Name = name
	c.KeyID = binary.BigEndian.Uint32(raw)
	c.Time = binary.BigEndian.Uint64(raw[4:])
	if c.Time > math.MaxInt64 {
		return c, fmt.Errorf("%w: timestamp %d exceeds 2^63-1", ErrMalformedCosignature, c.Time)
	}
	copy(c.Signature[:], raw[12:])
	return c, nil
}

// CosignatureMessage returns the message an Ed25519 cosignature signs at time t over the
// checkpoint whose note text is text. The text must be a checkpoint in the strict form
// ParseCheckpoint accepts (so that the bytes signed are the bytes every verifier rebuilds).
func CosignatureMessage(text string, t uint64) ([]byte, error) {
	if t > math.MaxInt64 {
		return nil, fmt.Errorf("%w: timestamp %d exceeds 2^63-1", ErrMalformedCosignature, t)
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	if c.Text() != text {
		return nil, fmt.Errorf("%w: checkpoint text is not in canonical form", ErrMalformedCheckpoint)
	}
	m := make([]byte, 0, len(CosignatureHeader)+len("\ntime \n")+20+len(text))
	m = append(m, CosignatureHeader+"\ntime "...)
	m = strconv.AppendUint(m, t, 10)
	m = append(m, '\n')
	m = append(m, text...)
	return m, nil
}

// cosignatureKeyID returns the key ID of an Ed25519 cosigner key.
func cosignatureKeyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', CosignatureType})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validKeyName reports whether name is a signed-note key name: non-empty UTF-8 with no Unicode
// spaces and no '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 &&
		!strings.Contains(name, "+")
}

// CosignatureVerifier checks Ed25519 cosignatures of one witness. It is a note.Verifier, so
// note.Open with it (and the log's key) checks a cosigned checkpoint as signed-note intends.
type CosignatureVerifier struct {
	name string
	id   uint32
	key  ed25519.PublicKey
}

// NewCosignatureVerifier parses a witness's verifier key, "<name>+<hex key ID>+base64(0x04 ||
// 32-byte Ed25519 public key)", and checks that the key ID is the one the spec derives.
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	vkey = strings.TrimSpace(vkey)
	name, rest, ok1 := strings.Cut(vkey, "+")
	id16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validKeyName(name) {
		return nil, fmt.Errorf("%w: witness key %q is not name+id+key", ErrBadSigningKey, vkey)
	}
	id, err := strconv.ParseUint(id16, 16, 32)
	if err != nil || len(id16) != 8 {
		return nil, fmt.Errorf("%w: witness key %q: bad key ID", ErrBadSigningKey, vkey)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: witness key %q: key is not base64 of 33 bytes", ErrBadSigningKey, vkey)
	}
	if raw[0] != CosignatureType {
		return nil, fmt.Errorf("%w: witness key %q has signature type 0x%02x, want 0x%02x (tlog-cosignature/v1 Ed25519)",
			ErrBadSigningKey, vkey, raw[0], CosignatureType)
	}
	v := &CosignatureVerifier{name: name, key: ed25519.PublicKey(raw[1:])}
	v.id = cosignatureKeyID(name, v.key)
	if uint32(id) != v.id {
		return nil, fmt.Errorf("%w: witness key %q: key ID %08x, the key's is %08x", ErrBadSigningKey, vkey, id, v.id)
	}
	return v, nil
}

// Name returns the witness's key name (note.Verifier).
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the witness's key ID (note.Verifier).
func (v *CosignatureVerifier) KeyHash() uint32 { return v.id }

// String returns the verifier key text.
func (v *CosignatureVerifier) String() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.id, base64.StdEncoding.EncodeToString(append([]byte{CosignatureType}, v.key...)))
}

// Verify reports whether sig (timestamp || Ed25519 signature, the key ID already removed) is
// this witness's cosignature of the checkpoint text msg (note.Verifier). Text that is not a
// canonical checkpoint never verifies.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosignatureLen {
		return false
	}
	m, err := CosignatureMessage(string(msg), binary.BigEndian.Uint64(sig))
	if err != nil {
		return false
	}
	return ed25519.Verify(v.key, m, sig[8:])
}

// VerifyLine parses a cosignature line and checks it against this witness's key over the
// checkpoint note text. It fails with ErrMalformedCosignature for a line in the wrong format,
// ErrCosignature for a line of another key or a signature that does not verify.
func (v *CosignatureVerifier) VerifyLine(text string, line string) (Cosignature, error) {
	c, err := ParseCosignatureLine(line)
	if err != nil {
		return c, err
	}
	if c.Name != v.name || c.KeyID != v.id {
		return c, fmt.Errorf("%w: line is signed by %s/%08x, not the witness %s/%08x", ErrCosignature, c.Name, c.KeyID, v.name, v.id)
	}
	m, err := CosignatureMessage(text, c.Time)
	if err != nil {
		return c, err
	}
	if !ed25519.Verify(v.key, m, c.Signature[:]) {
		return c, fmt.Errorf("%w: %s at %d", ErrCosignature, v.name, c.Time)
	}
	return c, nil
}

// CosignatureSigner makes a witness's Ed25519 cosignatures. It is a note.Signer (whose Sign
// reads the clock); Cosign takes the time from the caller.
type CosignatureSigner struct {
	v    CosignatureVerifier
	priv ed25519.PrivateKey
}

// GenerateCosignatureKey returns a new witness signing key (sumdb/note private key format) and
// its cosignature verifier key. The name must be a valid key name, ideally a schema-less URL
// naming the witness (example.com/witness1).
func GenerateCosignatureKey(name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("%w: witness name %q must be non-empty with no spaces or '+'", ErrBadSigningKey, name)
	}
	skey, _, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadSigningKey, err)
	}
	s, err := NewCosignatureSigner(skey)
	if err != nil {
		return "", "", err
	}
	return skey, s.VerifierKey(), nil
}

// NewCosignatureSigner parses a witness's signing key, an Ed25519 key in sumdb/note's private
// key format ("PRIVATE+KEY+name+hash+base64(0x01 || seed)").
func NewCosignatureSigner(skey string) (*CosignatureSigner, error) {
	skey = strings.TrimSpace(skey)
	if _, err := note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("%w: witness signing key: %v", ErrBadSigningKey, err)
	}
	name, priv, err := ed25519SigningKey(skey, "witness signing key")
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	s := &CosignatureSigner{priv: priv, v: CosignatureVerifier{name: name, key: pub}}
	s.v.id = cosignatureKeyID(s.v.name, pub)
	return s, nil
}

// Name returns the witness's key name (note.Signer).
func (s *CosignatureSigner) Name() string { return s.v.name }

// KeyHash returns the witness's cosignature key ID (note.Signer).
func (s *CosignatureSigner) KeyHash() uint32 { return s.v.id }

// Verifier returns the verifier of this signer's cosignatures.
func (s *CosignatureSigner) Verifier() *CosignatureVerifier { v := s.v; return &v }

// VerifierKey returns the verifier key text to give to those who check the cosignatures.
func (s *CosignatureSigner) VerifierKey() string { return s.v.String() }

// Cosign signs the checkpoint whose note text is text, at time t (which must be at or after
// the Unix epoch).
func (s *CosignatureSigner) Cosign(text string, t time.Time) (Cosignature, error) {
	c := Cosignature{Name: s.v.name, KeyID: s.v.id}
	if t.Unix() < 0 {
		return c, fmt.Errorf("%w: time %v is before 1970", ErrMalformedCosignature, t)
	}
	c.Time = uint64(t.Unix())
	m, err := CosignatureMessage(text, c.Time)
	if err != nil {
		return c, err
	}
	copy(c.Signature[:], ed25519.Sign(s.priv, m))
	return c, nil
}

// Sign returns timestamp || signature over the checkpoint text msg at the current time
// (note.Signer, for note.Sign).
func (s *CosignatureSigner) Sign(msg []byte) ([]byte, error) {
	c, err := s.Cosign(string(msg), time.Now())
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, cosignatureLen), c.Time)
	return append(b, c.Signature[:]...), nil
}

// AddCosignatures returns the signed note with the cosignature lines appended after its
// signatures. A cosignature by a key (name and key ID) that already signed the note replaces
// that key's line, so the note never carries two signatures of one key. The note's own format
// is checked (it must be a signed note); its signatures are not verified.
func AddCosignatures(signed []byte, cs ...Cosignature) ([]byte, error) {
	split := bytes.LastIndex(signed, []byte("\n\n"))
	if split < 0 || len(signed) == split+2 || signed[len(signed)-1] != '\n' {
		return nil, fmt.Errorf("%w: not a signed note", ErrMalformedCheckpoint)
	}
	text, sigs := signed[:split+1], signed[split+2:]
	type id struct {
		name string
		id   uint32
	}
	replace := make(map[id]bool, len(cs))
	for _, c := range cs {
		replace[id{c.Name, c.KeyID}] = true
	}
	out := append(append([]byte(nil), text...), '\n')
	for len(sigs) > 0 {
		i := bytes.IndexByte(sigs, '\n')
		line := sigs[:i+1]
		sigs = sigs[i+1:]
		rest, ok := bytes.CutPrefix(line, []byte("— "))
		if !ok {
			return nil, fmt.Errorf("%w: not a signed note", ErrMalformedCheckpoint)
		}
		name, b64, _ := strings.Cut(strings.TrimSuffix(string(rest), "\n"), " ")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && len(raw) >= 4 && replace[id{name, binary.BigEndian.Uint32(raw)}] {
			continue
		}
		out = append(out, line...)
	}
	for _, c := range cs {
		out = append(out, c.Line()...)
	}
	return out, nil
}

// MaxCosignedCheckpointSize bounds the cosigned checkpoints WitnessPolicy.Check accepts: more
// than seal.MaxCheckpointSize, because signed-note asks verifiers to accept at least 16
// signatures, and post-quantum ones (ML-DSA-44 cosignatures of other witnesses) are about
// 3.3 kB each.
const MaxCosignedCheckpointSize = 128 << 10

// WitnessPolicy is the trust policy of a cosigned checkpoint: signed by the log's key and
// cosigned by at least Quorum of the Witnesses, each counted once.
type WitnessPolicy struct {
	Log       note.Verifier
	Witnesses []*CosignatureVerifier
	Quorum    int
}

// NewWitnessPolicy returns the policy "the log key plus quorum of the witness keys", from
// verifier keys in text form. It refuses a quorum below zero or above the number of
// witnesses, and a witness key given twice.
func NewWitnessPolicy(logVKey string, quorum int, witnessVKeys ...string) (*WitnessPolicy, error) {
	lv, err := NewVerifier(logVKey)
	if err != nil {
		return nil, err
	}
	p := &WitnessPolicy{Log: lv, Quorum: quorum}
	for _, k := range witnessVKeys {
		w, err := NewCosignatureVerifier(k)
		if err != nil {
			return nil, err
		}
		p.Witnesses = append(p.Witnesses, w)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *WitnessPolicy) check() error {
	if p.Log == nil {
		return fmt.Errorf("%w: witness policy without a log key", ErrBadSigningKey)
	}
	if p.Quorum < 0 || p.Quorum > len(p.Witnesses) {
		return fmt.Errorf("%w: witness policy wants %d of %d witnesses", ErrBadSigningKey, p.Quorum, len(p.Witnesses))
	}
	seen := map[string]bool{p.Log.Name() + "+" + strconv.FormatUint(uint64(p.Log.KeyHash()), 16): true}
	for _, w := range p.Witnesses {
		if w == nil {
			return fmt.Errorf("%w: nil witness key", ErrBadSigningKey)
		}
		k := w.Name() + "+" + strconv.FormatUint(uint64(w.KeyHash()), 16)
		if seen[k] {
			return fmt.Errorf("%w: key %s appears twice in the witness policy", ErrBadSigningKey, w)
		}
		seen[k] = true
	}
	return nil
}

// Check verifies a cosigned checkpoint against the policy and returns the checkpoint and the
// valid cosignatures of the policy's witnesses (in the note's order). Signatures of keys the
// policy does not know are ignored, as signed-note requires. It fails with an error wrapping
//   - ErrMalformedCheckpoint: the note or the checkpoint is malformed;
//   - ErrCheckpointSignature: the log's signature is missing or invalid, or the origin is not
//     the log key's name;
//   - ErrCosignature: a line of a policy witness's key does not verify (the whole note is
//     refused, as signed-note recommends);
//   - ErrQuorum: fewer than Quorum witnesses cosigned.
func (p *WitnessPolicy) Check(signed []byte) (Checkpoint, []Cosignature, error) {
	if err := p.check(); err != nil {
		return Checkpoint{}, nil, err
	}
	if len(signed) > MaxCosignedCheckpointSize {
		return Checkpoint{}, nil, fmt.Errorf("%w: %d bytes", ErrMalformedCheckpoint, len(signed))
	}
	vs := make([]note.Verifier, 0, 1+len(p.Witnesses))
	vs = append(vs, p.Log)
	for _, w := range p.Witnesses {
		vs = append(vs, w)
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		var inv *note.InvalidSignatureError
		var unv *note.UnverifiedNoteError
		switch {
		case errors.As(err, &inv) && (inv.Name != p.Log.Name() || inv.Hash != p.Log.KeyHash()):
			return Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrCosignature, err)
		case errors.As(err, &inv) || errors.As(err, &unv):
			return Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrCheckpointSignature, err)
		}
		return Checkpoint{}, nil, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return c, nil, err
	}
	logSigned := false
	var cs []Cosignature
	for _, s := range n.Sigs {
		if s.Name == p.Log.Name() && s.Hash == p.Log.KeyHash() {
			logSigned = true
			continue
		}
		// note.Open decoded it as a witness key verified it, so it is in the right format.
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil {
			return c, nil, fmt.Errorf("%w: %v", ErrMalformedCosignature, err)
		}
		cos, err := cosignatureFromBytes(s.Name, raw)
		if err != nil {
			return c, nil, err
		}
		cs = append(cs, cos)
	}
	if !logSigned {
		return c, nil, fmt.Errorf("%w: no signature by the log key %s", ErrCheckpointSignature, p.Log.Name())
	}
	if c.Origin != p.Log.Name() {
		return c, nil, fmt.Errorf("%w: origin %q is not the log key's name %q", ErrCheckpointSignature, c.Origin, p.Log.Name())
	}
	if len(cs) < p.Quorum {
		return c, cs, fmt.Errorf("%w: %d of %d witnesses cosigned, %d required", ErrQuorum, len(cs), len(p.Witnesses), p.Quorum)
	}
	return c, cs, nil
}
