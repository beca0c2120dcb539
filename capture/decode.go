package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// DecodeMessage decodes a message's JSON, as encoding/json.Unmarshal does. The canonical form
// AppendJSON writes (what a ledger seals) is read directly, several times faster; anything
// else (escapes in a string, other field orders, unknown fields) goes through encoding/json,
// so the result is always Unmarshal's (FuzzDecodeMessage holds it to that).
func DecodeMessage(b []byte) (*Message, error) {
	if m, ok := decodeCanonical(b); ok {
		return m, nil
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// canon reads the canonical JSON of a message; ok turns false at the first thing it does not
// expect, and the caller falls back to encoding/json.
type canon struct {
	b  []byte
	i  int
	ok bool
}

// lit reads s, which must come next.
func (c *canon) lit(s string) {
	if !c.skip(s) {
		c.ok = false
	}
}

// skip reads s if it comes next, and reports whether it did; what is optional in the
// canonical form (a field left out when empty, the next item of a list) is read this way.
func (c *canon) skip(s string) bool {
	if c.ok && bytes.HasPrefix(c.b[c.i:], []byte(s)) {
		c.i += len(s)
		return true
	}
	return false
}

// str reads a string with no escapes and no control characters, in valid UTF-8.
func (c *canon) str() string {
	if !c.ok || c.i >= len(c.b) || c.b[c.i] != '"' {
		c.ok = false
		return ""
	}
	j := c.i + 1
	for ; j < len(c.b); j++ {
		switch b := c.b[j]; {
		case b == '"':
			s := c.b[c.i+1 : j]
			if !utf8.Valid(s) {
				c.ok = false
				return ""
			}
			c.i = j + 1
			return string(s)
		case b == '\\' || b < 0x20:
			c.ok = false
			return ""
		}
	}
	c.ok = false
	return ""
}

func (c *canon) time() time.Time {
	var t time.Time
	if !c.ok || c.i >= len(c.b) || c.b[c.i] != '"' {
		c.ok = false
		return t
	}
	end := bytes.IndexByte(c.b[c.i+1:], '"')
	if end < 0 {
		c.ok = false
		return t
	}
	if err := t.UnmarshalJSON(c.b[c.i : c.i+end+2]); err != nil {
		c.ok = false
		return t
	}
	c.i += end + 2
	return t
}

func (c *canon) party() Party {
	var p Party
	c.lit(`{"id":`)
	p.ID = c.str()
	if c.skip(`,"staff_id":`) {
		p.StaffID = c.str()
	}
	if c.skip(`,"name":`) {
		p.Name = c.str()
	}
	c.lit("}")
	return p
}

func (c *canon) attachment() Attachment {
	var a Attachment
	c.lit("{")
	sep := ""
	field := func(name string) bool {
		if c.skip(sep + name) {
			sep = ","
			return true
		}
		return false
	}
	if field(`"name":`) {
		a.Name = c.str()
	}
	if field(`"media_type":`) {
		a.MediaType = c.str()
	}
	if field(`"size":`) {
		j := c.i
		if j < len(c.b) && c.b[j] == '-' {
			j++
		}
		for j < len(c.b) && c.b[j] >= '0' && c.b[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(string(c.b[c.i:j]), 10, 64)
		if err != nil || n == 0 {
			c.ok = false
		}
		a.Size, c.i = n, j
	}
	if field(`"sha256":`) {
		a.SHA256 = c.str()
	}
	if field(`"ref":`) {
		a.Ref = c.str()
	}
	c.lit("}")
	return a
}

// decodeCanonical reads exactly what Message.AppendJSON writes.
func decodeCanonical(b []byte) (*Message, bool) {
	c := &canon{b: b, ok: true}
	m := &Message{}
	c.lit(`{"platform":`)
	m.Platform = c.str()
	c.lit(`,"tenant":`)
	m.Tenant = c.str()
	c.lit(`,"id":`)
	m.ID = c.str()
	c.lit(`,"conversation":{"id":`)
	m.Conversation.ID = c.str()
	c.lit(`,"type":`)
	m.Conversation.Type = c.str()
	if c.skip(`,"title":`) {
		m.Conversation.Title = c.str()
	}
	c.lit(`},"sender":`)
	m.Sender = c.party()
	if c.skip(`,"mentions":[`) {
		for c.ok {
			m.Mentions = append(m.Mentions, c.party())
			if !c.skip(",") {
				break
			}
		}
		c.lit("]")
	}
	c.lit(`,"sent_at":`)
	m.SentAt = c.time()
	c.lit(`,"captured_at":`)
	m.CapturedAt = c.time()
	c.lit(`,"kind":`)
	m.Kind = c.str()
	if c.skip(`,"text":`) {
		m.Text = c.str()
	}
	if c.skip(`,"attachments":[`) {
		for c.ok {
			m.Attachments = append(m.Attachments, c.attachment())
			if !c.skip(",") {
				break
			}
		}
		c.lit("]")
	}
	c.lit(`,"raw":`)
	switch {
	case c.skip("null"):
	case c.ok && c.i < len(c.b) && c.b[c.i] == '"':
		end := bytes.IndexByte(c.b[c.i+1:], '"')
		if end < 0 {
			return nil, false
		}
		raw := make([]byte, base64.StdEncoding.DecodedLen(end))
		n, err := base64.StdEncoding.Decode(raw, c.b[c.i+1:c.i+1+end])
		if err != nil {
			return nil, false
		}
		m.Raw, c.i = raw[:n], c.i+end+2
	default:
		return nil, false
	}
	c.lit("}")
	if !c.ok || c.i != len(c.b) {
		return nil, false
	}
	return m, true
}
