package seal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Kind says what a ledger entry is.
type Kind uint8

// Entry kinds. The set is closed for leaf version 1: ParseLeaf rejects any other value.
const (
	KindMessage      Kind = 1  // a captured message
	KindContext      Kind = 2  // a platform event giving context (members, titles)
	KindMedia        Kind = 3  // the result of fetching an attachment
	KindCaptureError Kind = 4  // something received that could not be made a message
	KindAnnotation   Kind = 5  // a finding or note about another entry
	KindRedaction    Kind = 6  // a correction or redaction notice for another entry
	KindShred        Kind = 7  // the destruction of a data key
	KindAccess       Kind = 8  // a record of access (read, query, export)
	KindAnchor       Kind = 9  // a trusted timestamp over a checkpoint
	KindHold         Kind = 10 // a legal hold placed or released
)

var kindNames = [...]string{
	KindMessage: "message", KindContext: "context", KindMedia: "media", KindCaptureError: "capture_error",
	KindAnnotation: "annotation", KindRedaction: "redaction", KindShred: "shred", KindAccess: "access",
	KindAnchor: "anchor", KindHold: "hold",
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindMessage && k <= KindHold }

// String returns the kind's name.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the kind with the given name.
func ParseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if n != "" && n == name {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("seal: unknown entry kind %q", name)
}

// LeafVersion is the version byte of the leaf encoding this package writes.
const LeafVersion = 1

// MaxKeyIDLen is the longest key id a leaf can carry.
const MaxKeyIDLen = 255

const leafFixedLen = 187

// Leaf is the decoded form of a ledger leaf. See the package doc for the encoding.
type Leaf struct {
	Kind         Kind
	Index        uint64
	Time         time.Time // capture time; encoded at nanosecond precision in UTC
	Identity     Hash      // source identity digest, zero for none
	Conversation Hash      // conversation digest, zero for none
	ConvSeq      uint64    // position within the conversation, from 1; 0 when no conversation
	ConvPrev     Hash      // leaf hash of the conversation's previous entry; zero for the first
	Commitment   Hash      // salted commitment to the plaintext
	PayloadHash  Hash      // SHA-256 of the stored payload
	KeyID        string    // the data key that encrypts the payload; empty for plaintext
}

// ErrMalformedLeaf is wrapped by every ParseLeaf error.
var ErrMalformedLeaf = errors.New("seal: malformed leaf")

// AppendBinary appends the leaf's encoding to b. It fails only for an invalid kind, a key id
// longer than MaxKeyIDLen, a time outside the int64 nanosecond range, or an inconsistent
// conversation chain.
func (l *Leaf) AppendBinary(b []byte) ([]byte, error) {
	if !l.Kind.Valid() {
		return nil, fmt.Errorf("seal: cannot encode leaf of %v", l.Kind)
	}
	if len(l.KeyID) > MaxKeyIDLen {
		return nil, fmt.Errorf("seal: key id is %d bytes, over %d", len(l.KeyID), MaxKeyIDLen)
	}
	if (l.Conversation == Hash{}) != (l.ConvSeq == 0) {
		return nil, fmt.Errorf("seal: conversation digest and sequence must be set together")
	}
	ns := l.Time.UnixNano()
	if !time.Unix(0, ns).Equal(l.Time) {
		return nil, fmt.Errorf("seal: time %v cannot be encoded in nanoseconds", l.Time)
	}
	b = append(b, LeafVersion, byte(l.Kind))
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(ns))
	b = append(b, l.Identity[:]...)
	b = append(b, l.Conversation[:]...)
	b = binary.BigEndian.AppendUint64(b, l.ConvSeq)
	b = append(b, l.ConvPrev[:]...)
	b = append(b, l.Commitment[:]...)
	b = append(b, l.PayloadHash[:]...)
	b = append(b, byte(len(l.KeyID)))
	b = append(b, l.KeyID...)
	return b, nil
}

// MarshalBinary returns the leaf's encoding.
func (l *Leaf) MarshalBinary() ([]byte, error) {
	return l.AppendBinary(make([]byte, 0, leafFixedLen+len(l.KeyID)))
}

// LeafKind returns the kind of an encoded leaf without decoding the rest, for scans that
// look for entries of one kind. ParseLeaf still checks the whole leaf.
func LeafKind(b []byte) (Kind, error) {
	if len(b) < 2 || b[0] != LeafVersion || !Kind(b[1]).Valid() {
		return 0, fmt.Errorf("%w: no version %d leaf with a known kind", ErrMalformedLeaf, LeafVersion)
	}
	return Kind(b[1]), nil
}

// ParseLeaf decodes a leaf strictly: the version must be LeafVersion, the kind known, the
// length exact, the key id printable ASCII, and the conversation fields consistent.
func ParseLeaf(b []byte) (Leaf, error) {
	var l Leaf
	if len(b) < leafFixedLen {
		return l, fmt.Errorf("%w: %d bytes, shorter than %d", ErrMalformedLeaf, len(b), leafFixedLen)
	}
	if b[0] != LeafVersion {
		return l, fmt.Errorf("%w: version %d, want %d", ErrMalformedLeaf, b[0], LeafVersion)
	}
	l.Kind = Kind(b[1])
	if !l.Kind.Valid() {
		return l, fmt.Errorf("%w: unknown kind %d", ErrMalformedLeaf, b[1])
	}
	l.Index = binary.BigEndian.Uint64(b[2:])
	l.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[10:]))).UTC()
	copy(l.Identity[:], b[18:50])
	copy(l.Conversation[:], b[50:82])
	l.ConvSeq = binary.BigEndian.Uint64(b[82:])
	copy(l.ConvPrev[:], b[90:122])
	copy(l.Commitment[:], b[122:154])
	copy(l.PayloadHash[:], b[154:186])
	k := int(b[186])
	if len(b) != leafFixedLen+k {
		return l, fmt.Errorf("%w: %d bytes, want %d for a key id of %d", ErrMalformedLeaf, len(b), leafFixedLen+k, k)
	}
	for _, c := range b[leafFixedLen:] {
		if c <= ' ' || c > '~' {
			return l, fmt.Errorf("%w: key id has byte 0x%02x", ErrMalformedLeaf, c)
		}
	}
	l.KeyID = string(b[leafFixedLen:])
	if (l.Conversation == Hash{}) != (l.ConvSeq == 0) {
		return l, fmt.Errorf("%w: conversation digest and sequence disagree", ErrMalformedLeaf)
	}
	if l.ConvSeq == 1 && l.ConvPrev != (Hash{}) {
		return l, fmt.Errorf("%w: first entry of a conversation has a previous-leaf hash", ErrMalformedLeaf)
	}
	if l.ConvSeq > 1 && l.ConvPrev == (Hash{}) {
		return l, fmt.Errorf("%w: conversation entry %d has no previous-leaf hash", ErrMalformedLeaf, l.ConvSeq)
	}
	return l, nil
}
