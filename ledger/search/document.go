package search

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
)

// document is what the index keeps of one message: the fields a query can ask about, as
// captured (folding happens when it is loaded, so a change of folding needs no rebuild).
type document struct {
	index              uint64
	keyID              string // the data key of the message, "" on a plain ledger
	kind               string
	sent, captured     int64 // Unix nanoseconds
	conv, title        string
	sender, staff      string
	name               string
	mentions           []party
	text               string
	files              []file
	convType, platform string
}

type party struct{ id, staff, name string }

type file struct{ name, mediaType string }

// docFromMessage takes what the index needs from a message sealed at index under keyID.
func docFromMessage(index uint64, keyID string, m *capture.Message) *document {
	d := &document{
		index: index, keyID: keyID, kind: m.Kind,
		sent: m.SentAt.UnixNano(), captured: m.CapturedAt.UnixNano(),
		conv: m.Conversation.ID, title: m.Conversation.Title, convType: m.Conversation.Type,
		sender: m.Sender.ID, staff: m.Sender.StaffID, name: m.Sender.Name,
		text: m.Text, platform: m.Platform,
	}
	for _, p := range m.Mentions {
		d.mentions = append(d.mentions, party{p.ID, p.StaffID, p.Name})
	}
	for _, a := range m.Attachments {
		d.files = append(d.files, file{a.Name, a.MediaType})
	}
	return d
}

// sentTime returns the message's sent time.
func (d *document) sentTime() time.Time { return time.Unix(0, d.sent).UTC() }

const docVersion = 1

// maxField bounds one string of a document (a message's text is bounded far below by capture).
const maxField = 16 << 20

// maxList bounds the mentions and files of a document.
const maxList = 1 << 16

// errDocument is wrapped by decodeDocument for bytes that are not a document.
var errDocument = errors.New("search: malformed index document")

// appendDocument appends d's encoding to b: a version byte, the index, the times, then the
// strings and lists, each length-prefixed (uvarint). The key id travels outside, in clear,
// beside the ciphertext.
func appendDocument(b []byte, d *document) []byte {
	b = append(b, docVersion)
	b = binary.AppendUvarint(b, d.index)
	b = binary.AppendVarint(b, d.sent)
	b = binary.AppendVarint(b, d.captured)
	for _, s := range []string{d.kind, d.platform, d.conv, d.title, d.convType, d.sender, d.staff, d.name, d.text} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(d.mentions)))
	for _, p := range d.mentions {
		b = appendString(appendString(appendString(b, p.id), p.staff), p.name)
	}
	b = binary.AppendUvarint(b, uint64(len(d.files)))
	for _, f := range d.files {
		b = appendString(appendString(b, f.name), f.mediaType)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads what appendDocument wrote, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (r *decoder) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errDocument, what)
	}
}

func (r *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decoder) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *decoder) string(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > maxField || n > uint64(len(r.b)) {
		r.fail(what + ": length beyond the record")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	if !utf8.ValidString(s) {
		r.fail(what + ": not UTF-8")
	}
	return s
}

func (r *decoder) count(what string) int {
	n := r.uvarint(what)
	if n > maxList || n > uint64(len(r.b)) {
		r.fail(what + ": count beyond the record")
		return 0
	}
	return int(n)
}

// decodeDocument reads a document that appendDocument wrote; keyID is set by the caller.
func decodeDocument(b []byte) (*document, error) {
	if len(b) == 0 || b[0] != docVersion {
		return nil, fmt.Errorf("%w: unknown version", errDocument)
	}
	r := &decoder{b: b[1:]}
	d := &document{index: r.uvarint("index"), sent: r.varint("sent"), captured: r.varint("captured")}
	for _, f := range []struct {
		p    *string
		what string
	}{{&d.kind, "kind"}, {&d.platform, "platform"}, {&d.conv, "conversation"}, {&d.title, "title"},
		{&d.convType, "conversation type"}, {&d.sender, "sender"}, {&d.staff, "staff id"}, {&d.name, "name"}, {&d.text, "text"}} {
		*f.p = r.string(f.what)
	}
	for range r.count("mentions") {
		d.mentions = append(d.mentions, party{r.string("mention"), r.string("mention staff id"), r.string("mention name")})
	}
	for range r.count("files") {
		d.files = append(d.files, file{r.string("file name"), r.string("media type")})
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}
