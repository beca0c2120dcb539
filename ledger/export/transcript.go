package export

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/seal"
)

// The renderings (rsmf/, eml/) show the exported messages as conversations a reviewer reads:
// one transcript per conversation and UTC day. They are derived from the same entries as
// messages.jsonl and covered by the manifest; the evidence is what proves them.

// event is one line of a transcript: a message, or a shredded entry's notice.
type event struct {
	index       uint64
	at          time.Time // UTC
	sender      capture.Party
	mentions    []capture.Party
	kind        string // the message kind; "" for a shredded entry
	text        string
	attachments []attachment
	shredded    bool
	keyID       string // the destroyed data key of a shredded entry
}

// attachment is an attachment as the renderings show it; data is nil when the bundle does not
// hold its content.
type attachment struct {
	name, mediaType, sha256 string
	data                    []byte
}

// conversation is what a transcript is about.
type conversation struct {
	id, title, kind string // kind: capture.ConversationDirect or ConversationGroup
	digest          seal.Hash
}

// noConversation stands for the empty conversation id of a message that has none.
const noConversation = "no-conversation"

// transcript is the events of one conversation on one UTC day, in time order.
type transcript struct {
	conv   conversation
	day    string // YYYY-MM-DD
	events []*event
}

// transcripts groups the exported messages, and the shredded entries, by conversation and UTC
// day. Entries other than messages (records, the ledger's own) are in messages.jsonl only. A
// shredded entry's conversation is known only by its digest: it joins an exported
// conversation with that digest, or one named after the digest. got is what fetched returns
// for entries.
func transcripts(entries []*exported, blobs map[string][]byte, got map[attachmentRef]capture.MediaResult) []*transcript {
	convs := map[seal.Hash]conversation{}
	for _, x := range entries {
		if m := x.e.Message; m != nil && !x.shredded {
			d := seal.ConversationDigest(m.Platform, m.Tenant, m.Conversation.ID)
			convs[d] = conversation{id: cmpOr(m.Conversation.ID, noConversation), title: m.Conversation.Title, kind: m.Conversation.Type, digest: d}
		}
	}
	byKey := map[string]*transcript{}
	for _, x := range entries {
		ev, conv, ok := eventOf(x, convs, blobs, got)
		if !ok {
			continue
		}
		day := ev.at.Format(time.DateOnly)
		key := conv.id + "\x00" + day
		t := byKey[key]
		if t == nil {
			t = &transcript{conv: conv, day: day}
			byKey[key] = t
		}
		t.events = append(t.events, ev)
	}
	out := make([]*transcript, 0, len(byKey))
	for _, t := range byKey {
		slices.SortStableFunc(t.events, func(a, b *event) int {
			return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.index, b.index))
		})
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *transcript) int {
		return cmp.Or(cmp.Compare(a.conv.id, b.conv.id), cmp.Compare(a.day, b.day))
	})
	return out
}

// eventOf returns the event of an exported entry and its conversation, or false for an entry
// that is not in a transcript. An attachment the message names only by a download code shows
// the content its exported media record names (got).
func eventOf(x *exported, convs map[seal.Hash]conversation, blobs map[string][]byte, got map[attachmentRef]capture.MediaResult) (*event, conversation, bool) {
	if x.shredded {
		d := x.e.Leaf.Conversation
		conv, ok := convs[d]
		if !ok {
			h := hex.EncodeToString(d[:])
			conv = conversation{id: "destroyed-" + h[:16], title: "Conversation " + h[:16] + " (content destroyed)", digest: d}
		}
		return &event{index: x.e.Index, at: x.e.Leaf.Time.UTC(), shredded: true, keyID: x.e.Leaf.KeyID}, conv, true
	}
	m := x.e.Message
	if m == nil {
		return nil, conversation{}, false
	}
	ev := &event{index: x.e.Index, at: m.SentAt.UTC(), sender: m.Sender, mentions: m.Mentions, kind: m.Kind, text: m.Text}
	if m.SentAt.IsZero() {
		ev.at = x.e.Leaf.Time.UTC()
	}
	for i, a := range m.Attachments {
		sum := a.SHA256
		if r, ok := got[attachmentRef{m.Identity(), i}]; ok && sum == "" {
			sum = r.SHA256
		}
		ev.attachments = append(ev.attachments, attachment{name: a.Name, mediaType: a.MediaType, sha256: sum, data: blobs[sum]})
	}
	return ev, convs[seal.ConversationDigest(m.Platform, m.Tenant, m.Conversation.ID)], true
}

// notice is the text a transcript shows for a shredded entry.
func (e *event) notice() string {
	return fmt.Sprintf("[content destroyed under retention: ledger entry %d, data key %s; its leaf and proof are in the bundle's evidence]", e.index, e.keyID)
}

// parties returns the senders and mentioned users of the events, each once, in order of
// appearance.
func parties(events []*event) []capture.Party {
	var out []capture.Party
	seen := map[string]bool{}
	add := func(p capture.Party) {
		if p.ID == "" || seen[p.ID] {
			return
		}
		seen[p.ID] = true
		out = append(out, p)
	}
	for _, e := range events {
		if e.shredded {
			continue
		}
		add(e.sender)
		for _, p := range e.mentions {
			add(p)
		}
	}
	return out
}

// fileStem names a transcript's files: the conversation id made safe for a file name, a short
// digest that keeps distinct ids apart, and the day.
func fileStem(t *transcript) string {
	var b strings.Builder
	for _, r := range t.conv.id {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	h := sha256.Sum256([]byte(t.conv.id))
	return b.String() + "-" + hex.EncodeToString(h[:4]) + "_" + t.day
}

// attachmentFile is an attachment's file name inside a rendering: its SHA-256 and the
// extension of its original name, when that is short and plain, so viewers know its type.
func attachmentFile(a attachment) string {
	ext := strings.ToLower(path.Ext(a.name))
	if len(ext) < 2 || len(ext) > 8 || strings.ContainsFunc(ext[1:], func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		ext = ""
	}
	return a.sha256 + ext
}

// who renders a party for a transcript's text, on one line.
func who(p capture.Party) string {
	p.Name, p.ID = headerSafe(p.Name), headerSafe(p.ID)
	switch {
	case p.Name != "" && p.ID != "":
		return p.Name + " (" + p.ID + ")"
	case p.Name != "":
		return p.Name
	case p.ID != "":
		return p.ID
	}
	return "unknown sender"
}

// textLines is the plain-text transcript of events, one block per event.
func textLines(events []*event) []string {
	var out []string
	for _, e := range events {
		stamp := "[" + e.at.Format("2006-01-02 15:04:05 UTC") + "] "
		if e.shredded {
			out = append(out, stamp+e.notice())
			continue
		}
		line := stamp + who(e.sender) + ": " + indent(e.text)
		if e.text == "" && e.kind != capture.KindText {
			line += "(" + e.kind + ")"
		}
		out = append(out, line)
		for _, a := range e.attachments {
			state := "not in the bundle"
			if a.data != nil {
				state = fmt.Sprintf("%d bytes, SHA-256 %s", len(a.data), a.sha256)
			}
			out = append(out, "    [attachment: "+headerSafe(a.name)+", "+state+"]")
		}
	}
	return out
}

// indent puts every line of a message's text after the first four spaces in, so that no text
// can pass for a transcript line of its own.
func indent(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.NewReplacer("\r", "\n", "\u2028", "\n", "\u2029", "\n").Replace(text)
	return strings.ReplaceAll(text, "\n", "\n    ")
}
