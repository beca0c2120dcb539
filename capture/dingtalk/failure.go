package dingtalk

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/commseal/commseal/capture"
)

// CaptureErrorRecord returns the capture.RecordCaptureError record that seals a DingTalk payload
// (a bot message or an event's data) that could not be stored as what it claims to be. Both
// capture paths, Source (Stream mode) and CallbackHandler (HTTP callbacks), make their capture
// errors with it, so the same payload yields the same record whichever way it came, and a
// redelivery of it by either path is stored once.
//
// It reads what it can of raw even when the payload as a whole does not parse (a truncated
// object, a field of the wrong type or over a limit): the tenant (chatbotCorpId, else
// senderCorpId, else CorpId or corpId), the conversation (conversationId, else
// openConversationId, OpenConversationId, chatId or ChatId) and msgId, from the top-level
// members before the first syntax error. With them the record falls under the tenant's and the
// conversation's retention and legal holds, and About names the message. For a quota-exhausted
// payload (cause wraps ErrQuotaExhausted) the body adds quota_exhausted, err_code and err_msg.
// Everything else, and what is kept of an oversize payload, is as capture.CaptureFailure.Record
// describes: Raw is the payload (its first capture.MaxCaptureErrorRaw bytes when longer, with
// the SHA-256 and length of the whole in the body), the ID is derived from the payload's
// SHA-256. Transport details (frame ids, connections) are not part of the record; the callers
// log them. The record always passes Validate.
func CaptureErrorRecord(raw []byte, cause error, at time.Time) *capture.Record {
	h := readHints(raw)
	f := capture.CaptureFailure{
		Platform: capture.PlatformDingTalk, Raw: raw, Cause: cause, At: at,
		Tenant: h.tenant(), ConversationID: h.conversation(), MessageID: h.get("msgId"),
	}
	facts := map[string]any{}
	if errors.Is(cause, ErrQuotaExhausted) {
		facts["quota_exhausted"] = true
		if c, ok := h.number("errCode"); ok {
			facts["err_code"] = c
		} else if c := h.get("errCode"); c != "" {
			facts["err_code"] = c
		}
		facts["err_msg"] = cut(h.get("errMsg"), 1<<10)
	}
	if len(h.unread) > 0 {
		facts["unread_fields"] = h.unread
	}
	if len(facts) > 0 {
		f.Facts = facts
	}
	return f.Record()
}

// cut shortens s to at most n bytes without splitting a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// hintKeys are the top-level members readHints reads.
var hintKeys = map[string]bool{
	"msgId": true, "chatbotCorpId": true, "senderCorpId": true, "CorpId": true, "corpId": true,
	"conversationId": true, "openConversationId": true, "OpenConversationId": true, "chatId": true, "ChatId": true,
	"errCode": true, "errMsg": true,
}

// maxHintValue bounds the JSON text of one member readHints decodes; longer ones are noted as
// unread instead of being copied.
const maxHintValue = 64 << 10

// hints are the members readHints found: strings decoded, numbers as their literal text.
type hints struct {
	vals    map[string]string
	numbers map[string]bool
	unread  []string
}

func (h *hints) get(k string) string { return h.vals[k] }

func (h *hints) number(k string) (json.Number, bool) {
	if h.numbers[k] {
		return json.Number(h.vals[k]), true
	}
	return "", false
}

func (h *hints) tenant() string {
	return firstNonEmpty(h.get("chatbotCorpId"), h.get("senderCorpId"), h.get("CorpId"), h.get("corpId"))
}

func (h *hints) conversation() string {
	return firstNonEmpty(h.get("conversationId"), h.get("openConversationId"), h.get("OpenConversationId"),
		h.get("chatId"), h.get("ChatId"))
}

// isJSONObject reports whether raw is one valid JSON object.
func isJSONObject(raw []byte) bool {
	i := skipSpace(raw, 0)
	return i < len(raw) && raw[i] == '{' && json.Valid(raw)
}

// readHints scans the top-level members of the JSON object in raw and keeps the string or
// number values of hintKeys (the last one wins for a repeated key, as encoding/json does),
// until the object ends or the first syntax error. It never fails, allocates only for the
// values it keeps, and skips every other value without decoding it.
func readHints(raw []byte) *hints {
	h := &hints{vals: map[string]string{}, numbers: map[string]bool{}}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return h
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return h
		}
		end := skipString(raw, i)
		if end < 0 {
			return h
		}
		keyText := raw[i:end]
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return h
		}
		i = skipSpace(raw, i+1)
		vend := skipValue(raw, i)
		if vend < 0 {
			return h
		}
		var key string
		if len(keyText) <= 64 && json.Unmarshal(keyText, &key) == nil && hintKeys[key] {
			h.keep(key, raw[i:vend])
		}
		i = skipSpace(raw, vend)
		if i >= len(raw) || raw[i] != ',' {
			return h
		}
		i++
	}
}

func (h *hints) keep(key string, v []byte) {
	if len(v) > maxHintValue {
		h.unread = append(h.unread, key)
		return
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			h.vals[key], h.numbers[key] = s, false
		}
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			h.vals[key], h.numbers[key] = string(n), true
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] (a quote), or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or -1 when it is cut off.
// Literals are not checked; encoding/json checks what is kept.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0 // brackets are counted, not matched: a skipped value need not be exact
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
}
