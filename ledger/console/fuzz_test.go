package console

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseAccounts: any file either parses into accounts whose hashes parse, or fails with an
// error; nothing panics.
func FuzzParseAccounts(f *testing.F) {
	f.Add([]byte("alice officer $argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n"))
	f.Add([]byte("# c\nbob auditor -\n"))
	f.Add([]byte("x admin $argon2id$v=19$m=0,t=1,p=1$$\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		accts, err := ParseAccounts(strings.NewReader(string(b)), "f")
		if err != nil {
			return
		}
		for _, a := range accts {
			if a.Hash == "-" {
				continue
			}
			if _, err := parsePHC(a.Hash); err != nil {
				t.Fatalf("accepted a hash that does not parse: %v", err)
			}
			if checkName(a.Name) != nil {
				t.Fatalf("accepted a bad name %q", a.Name)
			}
		}
	})
}

// FuzzSegments: the segments of any text and any spans put the text back together exactly,
// and a marked run starts and ends on character boundaries.
func FuzzSegments(f *testing.F) {
	f.Add("加我微信再講", 2, 8, 0, 3)
	f.Add("call me on WhatsApp", 11, 19, 5, 12)
	f.Add("\xff\xfe", 0, 1, 1, 2)
	f.Fuzz(func(t *testing.T, text string, s1, e1, s2, e2 int) {
		segs := segments(text, []span{{s1, e1, "a"}, {s2, e2, "b"}})
		var b strings.Builder
		for i, s := range segs {
			b.WriteString(s.Text)
			if s.Mark && (s.Text == "" || (utf8.ValidString(text) && !utf8.ValidString(s.Text))) {
				t.Fatalf("segment %d: a marked run %q is empty or cuts a character", i, s.Text)
			}
		}
		if b.String() != text {
			t.Fatalf("segments give %q, want %q", b.String(), text)
		}
	})
}

// TestSegments: findings at their offsets are marked, overlapping ones merge, offsets out of
// range or inside a character are ignored.
func TestSegments(t *testing.T) {
	text := "加我微信再講 whatsapp"
	got := segments(text, []span{{6, 12, "wx"}, {0, 12, "add"}, {19, 27, "wa"}, {7, 9, "bad"}, {20, 99, "out"}})
	want := []seg{{Text: "加我微信", Mark: true, Rules: "add, wx"}, {Text: "再講 "}, {Text: "whatsapp", Mark: true, Rules: "wa"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("segment %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if s := segments("", nil); s != nil {
		t.Fatalf("empty text: %+v", s)
	}
}
