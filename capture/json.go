package capture

import (
	"encoding/base64"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// The canonical form of a Message or a Record is its JSON as encoding/json.Marshal writes it:
// the ledger seals exactly those bytes. AppendJSON writes the same bytes several times faster,
// without reflection (FuzzAppendJSON holds it to encoding/json byte for byte).

// ErrTimeRange is returned by AppendJSON for a time that RFC 3339 cannot express (a year
// outside 0 to 9999, a zone offset of 24 hours or more), as encoding/json refuses it.
var ErrTimeRange = errors.New("capture: time outside the range of RFC 3339")

// AppendJSON appends m's canonical JSON to b: byte for byte what encoding/json.Marshal(m)
// writes.
func (m *Message) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"platform":`...)
	b = appendString(b, m.Platform)
	b = append(b, `,"tenant":`...)
	b = appendString(b, m.Tenant)
	b = append(b, `,"id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"conversation":`...)
	b = m.Conversation.appendJSON(b)
	b = append(b, `,"sender":`...)
	b = m.Sender.appendJSON(b)
	if len(m.Mentions) > 0 {
		b = append(b, `,"mentions":[`...)
		for k := range m.Mentions {
			if k > 0 {
				b = append(b, ',')
			}
			b = m.Mentions[k].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"sent_at":`...)
	if b, err = appendTime(b, m.SentAt); err != nil {
		return b, err
	}
	b = append(b, `,"captured_at":`...)
	if b, err = appendTime(b, m.CapturedAt); err != nil {
		return b, err
	}
	b = append(b, `,"kind":`...)
	b = appendString(b, m.Kind)
	if m.Text != "" {
		b = append(b, `,"text":`...)
		b = appendString(b, m.Text)
	}
	if len(m.Attachments) > 0 {
		b = append(b, `,"attachments":[`...)
		for k := range m.Attachments {
			if k > 0 {
				b = append(b, ',')
			}
			b = m.Attachments[k].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"raw":`...)
	b = appendBytes(b, m.Raw)
	return append(b, '}'), nil
}

// AppendJSON appends r's canonical JSON to b: byte for byte what encoding/json.Marshal(r)
// writes.
func (r *Record) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"platform":`...)
	b = appendString(b, r.Platform)
	b = append(b, `,"tenant":`...)
	b = appendString(b, r.Tenant)
	if r.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, r.ID)
	}
	if r.Conversation != (Conversation{}) {
		b = append(b, `,"conversation":`...)
		b = r.Conversation.appendJSON(b)
	}
	if r.About != nil {
		b = append(b, `,"about":{"Platform":`...)
		b = appendString(b, r.About.Platform)
		b = append(b, `,"Tenant":`...)
		b = appendString(b, r.About.Tenant)
		b = append(b, `,"ID":`...)
		b = appendString(b, r.About.ID)
		b = append(b, '}')
	}
	b = append(b, `,"at":`...)
	if b, err = appendTime(b, r.At); err != nil {
		return b, err
	}
	if len(r.Body) > 0 {
		b = append(b, `,"body":`...)
		b = appendBytes(b, r.Body)
	}
	if len(r.Raw) > 0 {
		b = append(b, `,"raw":`...)
		b = appendBytes(b, r.Raw)
	}
	return append(b, '}'), nil
}

func (c *Conversation) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, c.Type)
	if c.Title != "" {
		b = append(b, `,"title":`...)
		b = appendString(b, c.Title)
	}
	return append(b, '}')
}

func (p *Party) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	if p.StaffID != "" {
		b = append(b, `,"staff_id":`...)
		b = appendString(b, p.StaffID)
	}
	if p.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
	}
	return append(b, '}')
}

func (a *Attachment) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, name...)
	}
	if a.Name != "" {
		field(`"name":`)
		b = appendString(b, a.Name)
	}
	if a.MediaType != "" {
		field(`"media_type":`)
		b = appendString(b, a.MediaType)
	}
	if a.Size != 0 {
		field(`"size":`)
		b = strconv.AppendInt(b, a.Size, 10)
	}
	if a.SHA256 != "" {
		field(`"sha256":`)
		b = appendString(b, a.SHA256)
	}
	if a.Ref != "" {
		field(`"ref":`)
		b = appendString(b, a.Ref)
	}
	return append(b, '}')
}

// appendTime appends t as encoding/json does (time.Time.MarshalJSON): RFC 3339 with
// nanoseconds, quoted.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch {
	case len(b) < n0+5 || b[n0+4] != '-':
		return b, ErrTimeRange
	case b[len(b)-1] != 'Z':
		// As time.Time.MarshalJSON: the zone's hour must be two digits below 24.
		c, hh := b[len(b)-6], b[len(b)-5:]
		if ('0' <= c && c <= '9') || 10*(hh[0]-'0')+(hh[1]-'0') >= 24 {
			return b, ErrTimeRange
		}
	}
	return append(b, '"'), nil
}

// appendBytes appends p as encoding/json does: standard base64, quoted; null for nil.
func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// jsonSafe marks the ASCII bytes that encoding/json writes as they are (with HTML escaping on,
// as Marshal has it).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json does: HTML-sensitive characters, control
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
