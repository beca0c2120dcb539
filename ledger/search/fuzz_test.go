package search

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse: any text either fails with ErrQuery or parses to a node whose rendering parses
// back to the same node.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`微信`, `"call me" OR (報價 NOT test)`, `sender:u1 file:"報價 單.pdf"`, `NOT NOT x`,
		`a AND b OR c`, `"esc \" \\ \u00e9"`, `kind:text type:image/`, `((x))`, `sender:`, `"open`, `http://x.y`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parse(s)
		if err != nil {
			return
		}
		text := render(n)
		back, err := parse(text)
		if err != nil {
			t.Fatalf("%q rendered as %q, which does not parse: %v", s, text, err)
		}
		if !reflect.DeepEqual(n, back) {
			t.Fatalf("%q rendered as %q parses differently", s, text)
		}
	})
}

// FuzzDecodeDocument: any bytes either fail or decode to a document that encodes and decodes
// to itself.
func FuzzDecodeDocument(f *testing.F) {
	d := &document{index: 7, kind: "text", sent: 1, captured: -2, conv: "c", title: "機密", sender: "u",
		name: "黃", text: "微信 buy", mentions: []party{{"u2", "s2", "n"}}, files: []file{{"a.pdf", "application/pdf"}}}
	f.Add(appendDocument(nil, d))
	f.Add(appendDocument(nil, &document{}))
	f.Add([]byte{docVersion, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDocument(b)
		if err != nil {
			return
		}
		again, err := decodeDocument(appendDocument(nil, d))
		if err != nil || !reflect.DeepEqual(d, again) {
			t.Fatalf("re-encoding changed the document: %v", err)
		}
	})
}

// FuzzReadLog: any file either is refused as damaged or reads to what it holds up to a mark;
// reading never panics.
func FuzzReadLog(f *testing.F) {
	lf := &logFile{}
	lf.doc(3, "dk1.2026-01.x", []byte("sealed"))
	lf.forget("dk1.2025-01.y")
	lf.appendRecord([]byte{recMark, 4}, make([]byte, 32))
	f.Add(append([]byte(logHeader), lf.buf...))
	f.Add([]byte(logHeader))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := readLog(bytes.NewReader(b))
		if err != nil {
			return
		}
		if c.end > int64(len(b)) {
			t.Fatalf("end %d beyond the file (%d)", c.end, len(b))
		}
	})
}
