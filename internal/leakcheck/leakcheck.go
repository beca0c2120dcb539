// Package leakcheck finds what a ledger directory could leak: secrets in stored bytes, in every
// obvious encoding a careless store could leave them in (Find), and files or directories that
// others on the machine could read (Exposed). Tests use it to show that nothing captured is on
// disk in plain text and that everything is for its owner alone.
package leakcheck

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Encodings returns s as UTF-8, UTF-16 LE and BE, hex, JSON with \u escapes, Go ASCII
// quoting, and base64 at each of the three byte alignments it could start at.
func Encodings(s string) [][]byte {
	u16 := utf16.Encode([]rune(s))
	le, be := make([]byte, 2*len(u16)), make([]byte, 2*len(u16))
	for i, c := range u16 {
		le[2*i], le[2*i+1] = byte(c), byte(c>>8)
		be[2*i], be[2*i+1] = byte(c>>8), byte(c)
	}
	esc, _ := json.Marshal(s)
	ascii := strings.Trim(strconv.QuoteToASCII(s), `"`)
	out := [][]byte{[]byte(s), le, be, []byte(hex.EncodeToString([]byte(s))), esc[1 : len(esc)-1], []byte(ascii)}
	for off := 0; off < 3 && len(s) > off+6; off++ {
		enc := base64.StdEncoding.EncodeToString([]byte(s)[off:])
		out = append(out, []byte(enc[:len(enc)-4])) // the last quantum depends on what follows
	}
	return out
}

// Find returns the first secret that data holds in any of its Encodings, and the encoding
// found. Encodings shorter than 4 bytes are not searched: they match by chance.
func Find(data []byte, secrets []string) (secret string, enc []byte, found bool) {
	for _, s := range secrets {
		for _, e := range Encodings(s) {
			if len(e) >= 4 && bytes.Contains(data, e) {
				return s, e, true
			}
		}
	}
	return "", nil, false
}
