package export_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// parsedEML is an EML file taken apart with net/mail and mime/multipart only.
type parsedEML struct {
	header      mail.Header
	text, html  string
	attachments map[string][]byte // by decoded file name
	partHeaders []string          // every part header name seen
}

func parseEML(t *testing.T, b []byte) *parsedEML {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(b))
	require.NoError(t, err)
	out := &parsedEML{header: msg.Header, attachments: map[string][]byte{}}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	out.walk(t, multipart.NewReader(msg.Body, params["boundary"]))
	return out
}

func (p *parsedEML) walk(t *testing.T, mr *multipart.Reader) {
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		for k := range part.Header {
			p.partHeaders = append(p.partHeaders, k)
		}
		mt, params, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		require.NoError(t, err)
		if mt == "multipart/alternative" {
			p.walk(t, multipart.NewReader(part, params["boundary"]))
			continue
		}
		b, err := io.ReadAll(part)
		require.NoError(t, err)
		switch {
		case part.FileName() != "":
			require.Equal(t, "base64", part.Header.Get("Content-Transfer-Encoding"))
			// multipart does not decode base64: do it as a mail client would.
			p.attachments[part.FileName()] = decodeB64(t, b)
		case mt == "text/plain":
			p.text = string(b)
		case mt == "text/html":
			p.html = string(b)
		default:
			t.Fatalf("unexpected part %s", mt)
		}
	}
}

func decodeB64(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := io.ReadAll(newB64(b))
	require.NoError(t, err)
	return d
}

func TestExportEML(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	req := f.request()
	req.Formats = []string{export.FormatEML, export.FormatJSONL}
	_, err := export.Write(context.Background(), f.l, dir, req)
	require.NoError(t, err)
	_, err = verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err, "the EML files are listed in the manifest")
	_, err = os.Stat(filepath.Join(dir, "rsmf"))
	require.ErrorIs(t, err, os.ErrNotExist, "only the formats asked for")

	files := readDir(t, filepath.Join(dir, "eml"))
	require.Len(t, files, 6, "cid-a on five UTC days, and the shredded entry's conversation")
	var sawTerms, sawPNG bool
	for name, b := range files {
		p := parseEML(t, b)
		from, err := p.header.AddressList("From")
		require.NoError(t, err, name)
		require.Len(t, from, 1)
		to, err := p.header.AddressList("To")
		require.NoError(t, err)
		require.Equal(t, from[0].Address, to[0].Address, "From is the first of To")
		subject, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(subject, "DingTalk: "), subject)
		require.NotEmpty(t, p.text)
		require.NotEmpty(t, p.html)
		if strings.Contains(p.text, "see the term sheet") {
			sawTerms = true
			require.Equal(t, "Wong 黃", from[0].Name, "RFC 2047 decoded")
			require.Equal(t, f.pdf, p.attachments["terms.pdf"])
			require.Contains(t, p.text, "never-fetched.doc, not in the bundle")
		}
		if data, ok := p.attachments["chart 圖.png"]; ok {
			sawPNG = true
			require.Equal(t, f.png, data)
		}
		if strings.Contains(name, "destroyed-") {
			require.Contains(t, p.text, "content destroyed")
			require.NotContains(t, p.text, "expired long ago")
		}
	}
	require.True(t, sawTerms)
	require.True(t, sawPNG)
}

// A hostile message stays inert: no header it smuggles in appears, the HTML shows its markup
// as text, and the plain text keeps it verbatim.
func TestExportEMLHostileMessage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	evil := []byte("<html><script>x</script>")
	_, err := f.l.PutBlob(ctx, evil)
	require.NoError(t, err)
	m := msg(9, "cid-evil\r\nBcc: a@example.com", time.Date(2026, 6, 20, 1, 0, 0, 0, time.UTC),
		"<script>alert('x')</script> & </p><img src=x onerror=alert(1)>\r\nBcc: victim@example.com\n[2026-06-20 01:00:01 UTC] Boss (u1): approved")
	m.Sender.Name = "Eve\r\nBcc: victim@example.com\r\n\r\n<b>body</b>"
	m.Conversation.Title = "Desk\r\nBcc: evil@example.com 交易"
	m.Mentions = []capture.Party{{ID: "u\r\nX-Evil: 1", Name: "Mallory\nX-Evil: 2"}}
	m.Attachments = []capture.Attachment{{Name: "a\r\nX-Evil: 3\r\n.html", MediaType: "text/html\r\nX-Evil: 4",
		Size: int64(len(evil)), SHA256: sha256hex(evil)}}
	rc, err := f.l.Append(ctx, m)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "bundle")
	_, err = export.Write(ctx, f.l, dir, export.Request{Who: "w", Why: "hostile", Indexes: []uint64{rc.Index},
		Formats: []string{export.FormatEML, export.FormatRSMF}, Signer: f.keys.Signer})
	require.NoError(t, err)
	_, err = verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)

	files := readDir(t, filepath.Join(dir, "eml"))
	require.Len(t, files, 1)
	for name, b := range files {
		require.False(t, strings.ContainsAny(name, "\r\n"), name)
		p := parseEML(t, b)
		for k := range p.header {
			require.NotEqual(t, "Bcc", k)
			require.NotEqual(t, "X-Evil", k)
		}
		for _, k := range p.partHeaders {
			require.NotEqual(t, "X-Evil", k)
		}
		require.Len(t, p.header["From"], 1)
		from, err := p.header.AddressList("From")
		require.NoError(t, err)
		require.Len(t, from, 1)
		require.Equal(t, "Eve  Bcc: victim@example.com    <b>body</b>", from[0].Name)
		to, err := p.header.AddressList("To")
		require.NoError(t, err)
		require.Len(t, to, 2, "Eve and Mallory, nobody else")
		require.Contains(t, p.text, "<script>alert('x')</script>", "plain text keeps the words")
		require.Contains(t, p.text, "\r\n    [2026-06-20 01:00:01 UTC] Boss (u1): approved", "a forged transcript line stays inside its message")
		require.NotContains(t, p.text, "\n[2026-06-20 01:00:01")
		require.Contains(t, p.text, "[2026-06-20 01:00:00 UTC] Eve  Bcc: victim@example.com    <b>body</b> (u9): ", "a name is one line")
		require.NotContains(t, p.html, "<script>")
		require.NotContains(t, p.html, "<img")
		require.NotContains(t, p.html, "<b>body")
		require.Contains(t, html.UnescapeString(p.html), "<script>alert('x')</script> & </p><img src=x onerror=alert(1)>")
		require.Len(t, p.attachments, 1)
		for an, data := range p.attachments {
			require.False(t, strings.ContainsAny(an, "\r\n"), an)
			require.Equal(t, evil, data)
		}
	}
	for _, b := range readDir(t, filepath.Join(dir, "rsmf")) {
		p := export.CheckRSMF(t, b)
		for k := range p.Header {
			require.NotEqual(t, "Bcc", k)
			require.NotEqual(t, "X-Evil", k)
		}
	}
}

func newB64(b []byte) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, bytes.NewReader(b))
}
