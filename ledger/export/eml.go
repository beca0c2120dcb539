package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"
)

// EML, Global Relay style: one RFC 5322 message per conversation and UTC day, From the first
// participant, To all of them, a multipart/alternative text/plain and text/html transcript
// (every piece of content HTML-escaped), RFC 2047 encoded-words for non-ASCII header text, and
// each attachment the bundle holds as a part of its own.

// EMLDir is the bundle folder of the EML files: eml/<conversation>-<hash>_<day>.eml.
const EMLDir = "eml"

// emlContext is what every EML file of a bundle repeats.
type emlContext struct {
	origin   string
	treeSize uint64
}

// renderEML returns the EML files of the transcripts, keyed by bundle path.
func renderEML(ts []*transcript, ec emlContext) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, t := range ts {
		name := EMLDir + "/" + fileStem(t) + ".eml"
		b, err := emlFile(t, ec)
		if err != nil {
			return nil, fmt.Errorf("export: %s: %w", name, err)
		}
		files[name] = b
	}
	return files, nil
}

// emlFile returns the message of one transcript.
func emlFile(t *transcript, ec emlContext) ([]byte, error) {
	id := sha256.Sum256(fmt.Appendf(nil, "eml\x00%s\x00%s\x00%s", ec.origin, t.conv.id, t.day))
	b16 := contentBoundary(id, t.events)
	mixed, alt := "commseal-mixed-"+b16, "commseal-alt-"+b16
	subject := headerSafe("DingTalk: " + cmpOr(t.conv.title, t.conv.id) + ", " + t.day)
	from, to := participantHeaders(t.events)

	var b bytes.Buffer
	h := headerWriter{&b}
	h.set("From", from)
	h.set("To", to)
	h.set("Subject", encodeWord(subject))
	h.set("Date", t.events[0].at.Format(time.RFC1123Z))
	h.set("Message-ID", "<"+hex.EncodeToString(id[:16])+"@eml.commseal.invalid>")
	h.set("MIME-Version", "1.0")
	h.set("X-Commseal-Ledger", fmt.Sprintf("origin=%s; tree_size=%d", headerSafe(ec.origin), ec.treeSize))
	h.set("Content-Type", `multipart/mixed; boundary="`+mixed+`"`)
	b.WriteString("\r\n")

	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary(mixed); err != nil {
		return nil, err
	}
	if err := emlAlternative(mw, alt, subject, t.events); err != nil {
		return nil, err
	}
	if err := emlAttachments(mw, t.events); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// emlAlternative writes the multipart/alternative part: the transcript as text and as HTML.
func emlAlternative(mw *multipart.Writer, boundary, subject string, events []*event) error {
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	w, err := mw.CreatePart(ph)
	if err != nil {
		return err
	}
	aw := multipart.NewWriter(w)
	if err := aw.SetBoundary(boundary); err != nil {
		return err
	}
	text := strings.Join(append([]string{subject, ""}, textLines(events)...), "\n") + "\n"
	if err := writeTextPart(aw, "text/plain; charset=utf-8", text); err != nil {
		return err
	}
	if err := writeTextPart(aw, "text/html; charset=utf-8", htmlTranscript(subject, events)); err != nil {
		return err
	}
	return aw.Close()
}

// htmlTranscript is the transcript as an HTML document; all content is escaped.
func htmlTranscript(subject string, events []*event) string {
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + esc(subject) + "</title></head>\n<body>\n")
	b.WriteString("<h1>" + esc(subject) + "</h1>\n")
	for _, e := range events {
		stamp := `<span class="time">` + esc(e.at.Format("2006-01-02 15:04:05 UTC")) + "</span> "
		if e.shredded {
			b.WriteString(`<p class="destroyed">` + stamp + "<em>" + esc(e.notice()) + "</em></p>\n")
			continue
		}
		body := strings.ReplaceAll(esc(e.text), "\n", "<br>\n")
		if e.text == "" && e.kind != "text" {
			body = "<em>(" + esc(e.kind) + ")</em>"
		}
		b.WriteString(`<p class="message">` + stamp + "<b>" + esc(who(e.sender)) + "</b>: " + body)
		for _, a := range e.attachments {
			state := "not in the bundle"
			if a.data != nil {
				state = fmt.Sprintf("%d bytes, SHA-256 %s", len(a.data), a.sha256)
			}
			b.WriteString("<br>\n&#128206; " + esc(a.name) + " (" + esc(state) + ")")
		}
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// emlAttachments writes each attachment the bundle holds once, base64, with its original name
// (RFC 2231 when not ASCII) and media type (application/octet-stream when it does not parse).
func emlAttachments(mw *multipart.Writer, events []*event) error {
	seen := map[string]bool{}
	for _, e := range events {
		for _, a := range e.attachments {
			if a.data == nil || seen[a.sha256] {
				continue
			}
			seen[a.sha256] = true
			name := headerSafe(cmpOr(a.name, attachmentFile(a)))
			mt, _, err := mime.ParseMediaType(a.mediaType)
			if err != nil || strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
				mt = "application/octet-stream"
			}
			ph := textproto.MIMEHeader{}
			ph.Set("Content-Type", mime.FormatMediaType(mt, map[string]string{"name": name}))
			ph.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
			ph.Set("Content-Transfer-Encoding", "base64")
			w, err := mw.CreatePart(ph)
			if err != nil {
				return err
			}
			if _, err := w.Write(base64Lines(a.data)); err != nil {
				return err
			}
		}
	}
	return nil
}
