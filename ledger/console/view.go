package console

import (
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/seal"
)

// seg is a run of text, marked when a finding covers it.
type seg struct {
	Text  string
	Mark  bool
	Rules string // the rules of the findings that cover it
}

// span is a finding's byte range in a field.
type span struct {
	start, end int
	rule       string
}

// segments cuts text at the spans (byte offsets into it): the covered runs are marked.
// Spans out of range or not on character boundaries are ignored (they cannot come from a
// scan of this text); overlapping spans merge.
func segments(text string, spans []span) []seg {
	var ok []span
	for _, s := range spans {
		if s.start < 0 || s.end > len(text) || s.start >= s.end ||
			!boundary(text, s.start) || !boundary(text, s.end) {
			continue
		}
		ok = append(ok, s)
	}
	if len(ok) == 0 {
		if text == "" {
			return nil
		}
		return []seg{{Text: text}}
	}
	slices.SortFunc(ok, func(a, b span) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) })
	var out []seg
	pos := 0
	for i := 0; i < len(ok); {
		start, end := ok[i].start, ok[i].end
		rules := []string{ok[i].rule}
		j := i + 1
		for ; j < len(ok) && ok[j].start < end; j++ {
			end = max(end, ok[j].end)
			rules = append(rules, ok[j].rule)
		}
		if start > pos {
			out = append(out, seg{Text: text[pos:start]})
		}
		slices.Sort(rules)
		out = append(out, seg{Text: text[start:end], Mark: true, Rules: strings.Join(slices.Compact(rules), ", ")})
		pos, i = end, j
	}
	if pos < len(text) {
		out = append(out, seg{Text: text[pos:]})
	}
	return out
}

func boundary(s string, i int) bool { return i == len(s) || utf8.RuneStart(s[i]) }

// findingView is a finding as a page lists it.
type findingView struct {
	Rule, Category, Severity, Term, Field string
}

// fileView is an attachment as a page shows it.
type fileView struct {
	Name      []seg
	MediaType string
	URL       string // the audited blob read; "" when the content is not held
	Image     bool
	Audio     bool
	Status    string // why there is no content (a failed fetch), if known
}

// msgView is a message as a page shows it.
type msgView struct {
	Index      uint64
	Sent       string
	SenderName string
	SenderID   string
	ConvID     string
	ConvTitle  []seg
	Kind       string
	Text       []seg
	Files      []fileView
	Findings   []findingView
	Current    bool
	Shredded   bool
	Link       string // the conversation around it
}

// formatTime renders a time for pages: UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// reading is what a page read through an accessor: messages and the records about them.
type reading struct {
	msgs     map[uint64]*ledger.Entry
	shredded map[uint64]bool
	records  map[uint64]*ledger.Entry // media records and annotations, by their own index
}

func newReading() *reading {
	return &reading{msgs: map[uint64]*ledger.Entry{}, shredded: map[uint64]bool{}, records: map[uint64]*ledger.Entry{}}
}

// read reads the entries idx through the user's accessor (one access entry, sealed first)
// and keeps them for the page.
func (h *handler) read(r *request, idx []uint64) (*reading, error) {
	rd := newReading()
	err := h.accessor(r, "read").Read(r.Context(), idx, func(e *ledger.Entry, err error) error {
		rd.add(e, err)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// add keeps an entry read.
func (rd *reading) add(e *ledger.Entry, err error) {
	switch {
	case err != nil:
		rd.shredded[e.Index] = true
	case e.Leaf.Kind == seal.KindMessage && e.Message != nil:
		rd.msgs[e.Index] = e
	case e.Record != nil:
		rd.records[e.Index] = e
	}
}

// view renders message index with the records of records (its media records and alerts).
func (rd *reading) view(index uint64, records []uint64) msgView {
	v := msgView{Index: index}
	e := rd.msgs[index]
	if e == nil {
		v.Shredded = true
		return v
	}
	m := e.Message
	v.Sent, v.Kind = formatTime(m.SentAt), m.Kind
	v.SenderName, v.SenderID, v.ConvID = m.Sender.Name, m.Sender.ID, m.Conversation.ID
	v.Link = convLink(m.Conversation.ID, index)
	spans := map[string][]span{}
	stored := map[int]capture.MediaResult{}
	for _, ri := range records {
		re := rd.records[ri]
		if re == nil {
			continue
		}
		r := re.Record
		if r.Kind == capture.RecordMedia {
			var mr capture.MediaResult
			if json.Unmarshal(r.Body, &mr) == nil {
				stored[mr.Attachment] = mr
			}
			continue
		}
		if r.Kind != capture.RecordAnnotation {
			continue
		}
		if a, err := surveil.ParseAnnotation(r.Body); err == nil {
			for _, f := range a.Findings {
				spans[f.Field] = append(spans[f.Field], span{f.Start, f.End, f.Rule})
				v.Findings = append(v.Findings, findingView{Rule: f.Rule, Category: f.Category, Severity: f.Severity.String(),
					Term: f.Term, Field: f.Field})
			}
			continue
		}
		var b surveil.BehaviourAnnotation
		if json.Unmarshal(r.Body, &b) == nil && b.Schema == surveil.BehaviourSchema {
			v.Findings = append(v.Findings, findingView{Rule: b.Finding.Rule, Category: string(b.Finding.Kind),
				Severity: b.Finding.Severity.String()})
		}
	}
	v.Text = segments(m.Text, spans["text"])
	v.ConvTitle = segments(m.Conversation.Title, spans["title"])
	for i, a := range m.Attachments {
		f := fileView{Name: segments(a.Name, spans["file."+strconv.Itoa(i)]), MediaType: a.MediaType}
		sum, ctype := a.SHA256, a.MediaType
		if mr, ok := stored[i]; ok {
			switch mr.Status {
			case capture.MediaStored:
				sum, ctype = mr.SHA256, cmp.Or(mr.ContentType, ctype)
			case capture.MediaFailed:
				f.Status = mr.Reason
			}
		}
		if isSHA256Hex(sum) {
			f.URL = "/blob/" + sum + "?" + url.Values{"name": {a.Name}}.Encode()
			f.Image = strings.HasPrefix(ctype, "image/") || m.Kind == capture.KindPicture
			f.Audio = strings.HasPrefix(ctype, "audio/") || m.Kind == capture.KindAudio
		}
		v.Files = append(v.Files, f)
	}
	return v
}

// convLink is the conversation page of cid around message at, scrolled to it.
func convLink(cid string, at uint64) string {
	i := strconv.FormatUint(at, 10)
	return "/conversation?" + url.Values{"c": {cid}, "at": {i}}.Encode() + "#m" + i
}

func isSHA256Hex(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
