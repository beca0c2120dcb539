package export

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
)

// RSMF 2.0 (Relativity Short Message Format): an RFC 5322 message, file extension .rsmf,
// whose headers summarize the conversation (X-RSMF-*), whose plain-text body is the readable
// transcript (review platforms index it) and whose one attachment, rsmf.zip, holds
// rsmf_manifest.json (valid against Relativity's 2.0.0 schema) and the attachment files the
// manifest names by id, at the zip's root.

// RSMFDir is the bundle folder of the RSMF files: rsmf/<conversation>-<hash>_<day>[_<part>].rsmf.
const RSMFDir = "rsmf"

// MaxRSMFEvents is the most events one RSMF file holds, Relativity's limit: a conversation's
// day with more is split into parts.
const MaxRSMFEvents = 10000

// rsmfVersion is the RSMF version written, in the header and the manifest.
const rsmfVersion = "2.0.0"

// systemParticipant is the participant of shredded entries' notices: the ledger itself.
const systemParticipant = "commseal"

// rsmfManifest is rsmf_manifest.json.
type rsmfManifest struct {
	Version           string             `json:"version"`
	Participants      []rsmfParticipant  `json:"participants"`
	Conversations     []rsmfConversation `json:"conversations"`
	Events            []rsmfEvent        `json:"events"`
	EventCollectionID string             `json:"eventcollectionid,omitempty"`
}

type rsmfParticipant struct {
	ID        string       `json:"id"`
	Display   string       `json:"display,omitempty"`
	AccountID string       `json:"account_id,omitempty"`
	Custom    []rsmfCustom `json:"custom,omitempty"`
}

type rsmfConversation struct {
	ID           string       `json:"id"`
	Display      string       `json:"display,omitempty"`
	Platform     string       `json:"platform"`
	Type         string       `json:"type,omitempty"`
	Participants []string     `json:"participants"`
	Custom       []rsmfCustom `json:"custom,omitempty"`
}

type rsmfEvent struct {
	ID           string           `json:"id,omitempty"`
	Type         string           `json:"type"`
	Body         string           `json:"body,omitempty"`
	Participant  string           `json:"participant,omitempty"`
	Conversation string           `json:"conversation"`
	Timestamp    string           `json:"timestamp"`
	Attachments  []rsmfAttachment `json:"attachments,omitempty"`
	Custom       []rsmfCustom     `json:"custom,omitempty"`
}

type rsmfAttachment struct {
	ID      string `json:"id"`
	Display string `json:"display,omitempty"`
	Size    int64  `json:"size"`
}

type rsmfCustom struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// rsmfContext is what every RSMF file of a bundle repeats.
type rsmfContext struct {
	origin    string
	treeSize  uint64
	custodian string
	maxEvents int
}

// renderRSMF returns the RSMF files of the transcripts, keyed by bundle path.
func renderRSMF(ts []*transcript, rc rsmfContext) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, t := range ts {
		parts := chunk(t.events, rc.maxEvents)
		for k, evs := range parts {
			name := RSMFDir + "/" + fileStem(t)
			if len(parts) > 1 {
				name += "_" + strconv.Itoa(k+1)
			}
			b, err := rsmfFile(t, evs, k+1, len(parts), rc)
			if err != nil {
				return nil, fmt.Errorf("export: %s: %w", name, err)
			}
			files[name+".rsmf"] = b
		}
	}
	return files, nil
}

// chunk splits events into runs of at most n.
func chunk(events []*event, n int) [][]*event {
	var out [][]*event
	for len(events) > n {
		out = append(out, events[:n])
		events = events[n:]
	}
	return append(out, events)
}

// rsmfManifestOf builds the manifest of one RSMF file.
func rsmfManifestOf(t *transcript, events []*event) *rsmfManifest {
	m := &rsmfManifest{Version: rsmfVersion, EventCollectionID: collectionID(t), Participants: []rsmfParticipant{}}
	conv := rsmfConversation{ID: t.conv.id, Display: cmpOr(t.conv.title, t.conv.id), Platform: capture.PlatformDingTalk,
		Type: "channel", Participants: []string{}}
	if t.conv.kind == capture.ConversationDirect {
		conv.Type = "direct"
	}
	conv.Custom = []rsmfCustom{{Name: "conversation digest", Value: hex.EncodeToString(t.conv.digest[:])}}
	for _, p := range parties(events) {
		rp := rsmfParticipant{ID: p.ID, Display: cmpOr(p.Name, p.ID), AccountID: p.StaffID,
			Custom: []rsmfCustom{{Name: "DingTalk user id", Value: p.ID}}}
		m.Participants = append(m.Participants, rp)
		conv.Participants = append(conv.Participants, p.ID)
	}
	shredded := false
	for _, e := range events {
		m.Events = append(m.Events, rsmfEventOf(t, e))
		shredded = shredded || e.shredded
	}
	if shredded {
		m.Participants = append(m.Participants, rsmfParticipant{ID: systemParticipant, Display: "commseal ledger"})
		conv.Participants = append(conv.Participants, systemParticipant)
	}
	m.Conversations = []rsmfConversation{conv}
	return m
}

// rsmfEventOf is one event of a manifest.
func rsmfEventOf(t *transcript, e *event) rsmfEvent {
	ev := rsmfEvent{Type: "message", Conversation: t.conv.id, Timestamp: e.at.Format(time.RFC3339Nano),
		Custom: []rsmfCustom{{Name: "ledger index", Value: strconv.FormatUint(e.index, 10)}}}
	if e.shredded {
		ev.Type, ev.Participant, ev.Body = "disclaimer", systemParticipant, e.notice()
		return ev
	}
	ev.ID, ev.Participant, ev.Body = "e"+strconv.FormatUint(e.index, 10), e.sender.ID, e.text
	if e.kind != capture.KindText {
		ev.Custom = append(ev.Custom, rsmfCustom{Name: "message kind", Value: cmpOr(e.kind, "unknown")})
	}
	for _, a := range e.attachments {
		if a.data == nil {
			ev.Custom = append(ev.Custom, rsmfCustom{Name: "attachment not in the bundle", Value: cmpOr(a.name, "(unnamed)")})
			continue
		}
		ev.Attachments = append(ev.Attachments, rsmfAttachment{ID: attachmentFile(a), Display: cmpOr(a.name, attachmentFile(a)), Size: int64(len(a.data))})
	}
	return ev
}

// collectionID keeps the RSMF files of one conversation together across days and parts.
func collectionID(t *transcript) string {
	return "dingtalk-" + hex.EncodeToString(t.conv.digest[:16])
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rsmfZip returns rsmf.zip: the manifest, then each attachment the events hold once, all at
// the root, with the transcript's first time as their modification time so that the same
// export gives the same bytes.
func rsmfZip(m *rsmfManifest, events []*event) ([]byte, int, error) {
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	mod := events[0].at
	add := func(name string, data []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: mod})
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	if err := add("rsmf_manifest.json", mb); err != nil {
		return nil, 0, err
	}
	seen := map[string]bool{}
	for _, e := range events {
		for _, a := range e.attachments {
			if a.data == nil || seen[attachmentFile(a)] {
				continue
			}
			seen[attachmentFile(a)] = true
			if err := add(attachmentFile(a), a.data); err != nil {
				return nil, 0, err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), len(seen), nil
}

// rsmfFile returns one RSMF file: part of parts of transcript t, holding events.
func rsmfFile(t *transcript, events []*event, part, parts int, rc rsmfContext) ([]byte, error) {
	m := rsmfManifestOf(t, events)
	zb, nAttach, err := rsmfZip(m, events)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range m.Participants {
		names = append(names, strings.ReplaceAll(headerSafe(p.Display), ",", " "))
	}
	subject := headerSafe("DingTalk: " + cmpOr(t.conv.title, t.conv.id) + ", " + t.day)
	if parts > 1 {
		subject += fmt.Sprintf(" (part %d of %d)", part, parts)
	}
	from, to := participantHeaders(events)
	id := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", rc.origin, t.conv.id, t.day, part))
	boundary := "commseal-rsmf-" + contentBoundary(id, events)

	var b bytes.Buffer
	h := headerWriter{&b}
	h.set("From", from)
	h.set("To", to)
	h.set("Subject", encodeWord(subject))
	h.set("Date", events[0].at.Format(time.RFC1123Z))
	h.set("Message-ID", "<"+hex.EncodeToString(id[:16])+"@rsmf.commseal.invalid>")
	h.set("MIME-Version", "1.0")
	h.set("X-RSMF-Version", rsmfVersion)
	h.set("X-RSMF-Generator", "commseal ledger/export")
	h.set("X-RSMF-BeginDate", events[0].at.Format(time.RFC3339Nano))
	h.set("X-RSMF-EndDate", events[len(events)-1].at.Format(time.RFC3339Nano))
	h.set("X-RSMF-EventCount", strconv.Itoa(len(events)))
	h.set("X-RSMF-Application", "DingTalk")
	h.set("X-RSMF-Custodian", encodeWord(cmpOr(rc.custodian, rc.origin)))
	h.set("X-RSMF-Participants", encodeWord(strings.Join(names, ", ")))
	h.set("X-RSMF-AttachmentCount", strconv.Itoa(nAttach))
	h.set("X-RSMF-EventCollectionID", m.EventCollectionID)
	h.set("X-Commseal-Ledger", fmt.Sprintf("origin=%s; tree_size=%d", headerSafe(rc.origin), rc.treeSize))
	h.set("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	b.WriteString("\r\n")

	if err := rsmfBody(&b, boundary, subject, events, zb); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// rsmfBody writes the multipart body: the readable transcript, then rsmf.zip.
func rsmfBody(b *bytes.Buffer, boundary, subject string, events []*event, zb []byte) error {
	mw := multipart.NewWriter(b)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	body := strings.Join(append([]string{subject, ""}, textLines(events)...), "\n") + "\n"
	if err := writeTextPart(mw, "text/plain; charset=utf-8", body); err != nil {
		return err
	}
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Type", `application/zip; name="rsmf.zip"`)
	ph.Set("Content-Disposition", `attachment; filename="rsmf.zip"`)
	ph.Set("Content-Transfer-Encoding", "base64")
	w, err := mw.CreatePart(ph)
	if err != nil {
		return err
	}
	if _, err := w.Write(base64Lines(zb)); err != nil {
		return err
	}
	return mw.Close()
}

// participantHeaders returns From (the first participant) and To (all of them), Global Relay
// style; a transcript of shredded entries alone is from the ledger.
func participantHeaders(events []*event) (string, string) {
	ps := parties(events)
	if len(ps) == 0 {
		a := addressOf(capture.Party{ID: systemParticipant, Name: "commseal ledger"})
		return a, a
	}
	all := make([]string, len(ps))
	for k, p := range ps {
		all[k] = addressOf(p)
	}
	return all[0], strings.Join(all, ", ")
}

// headerWriter writes header fields with CRLF line ends.
type headerWriter struct{ b *bytes.Buffer }

// set writes one header field, folded at spaces so that lines stay near 78 characters (RFC
// 5322 section 2.2.3; a line never exceeds 998 unless one word does, and encoded-words are at
// most 75).
func (h headerWriter) set(name, value string) {
	line := name + ":"
	for _, word := range strings.Split(value, " ") {
		if len(line)+1+len(word) > 78 && strings.TrimSpace(line) != name+":" {
			h.b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
	}
	h.b.WriteString(line + "\r\n")
}

// headerSafe removes what could end or fold a header line: every control character becomes a
// space.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// encodeWord makes s a safe header value: control characters removed, and RFC 2047
// encoded-words (UTF-8, Q or B, whichever is shorter) when s is not plain ASCII.
func encodeWord(s string) string {
	s = headerSafe(s)
	q := mime.QEncoding.Encode("utf-8", s)
	if q == s {
		return s
	}
	if bb := mime.BEncoding.Encode("utf-8", s); len(bb) < len(q) {
		return bb
	}
	return q
}

// addressOf renders a participant as an RFC 5322 address: the display name (RFC 2047 when not
// ASCII, quoted otherwise) and an address in the reserved .invalid domain built from the
// DingTalk user id.
func addressOf(p capture.Party) string {
	var local strings.Builder
	for _, c := range []byte(p.ID) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			local.WriteByte(c)
		default:
			fmt.Fprintf(&local, "=%02X", c)
		}
	}
	l := strings.Trim(local.String(), ".")
	if l == "" || strings.Contains(l, "..") || len(l) > 64 {
		sum := sha256.Sum256([]byte(p.ID))
		l = "u" + hex.EncodeToString(sum[:8])
	}
	a := &mail.Address{Name: headerSafe(p.Name), Address: l + "@dingtalk.invalid"}
	if isASCII(a.Name) {
		return a.String() // quoted as a phrase needs
	}
	// net/mail would use Q encoding, which leaves '\' and '"' as they are and so can give a
	// phrase that does not parse back; B encoding leaves nothing but base64.
	return mime.BEncoding.Encode("utf-8", a.Name) + " <" + a.Address + ">"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// writeTextPart writes a quoted-printable text part.
func writeTextPart(mw *multipart.Writer, contentType, text string) error {
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Type", contentType)
	ph.Set("Content-Transfer-Encoding", "quoted-printable")
	w, err := mw.CreatePart(ph)
	if err != nil {
		return err
	}
	qw := quotedprintable.NewWriter(w)
	if _, err := qw.Write([]byte(text)); err != nil {
		return err
	}
	return qw.Close()
}

// base64Lines is data in base64, lines of 76 characters ending in CRLF.
func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

// contentBoundary returns a MIME boundary that the content cannot contain: it hashes the
// content itself (a message cannot hold a hash of itself), so that the same export gives the
// same bytes and yet nobody who knows the conversation can forge a part boundary in a message.
func contentBoundary(id [32]byte, events []*event) string {
	h := sha256.New()
	h.Write(id[:])
	for _, l := range textLines(events) {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
