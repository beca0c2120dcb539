package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/scan"
)

// secretText stands for message content: no test output may contain it unless opted in.
const secretText = "保證回報 guaranteed 30% CONTENT-7f3a"

func sampleAlert(i uint64) Alert {
	a := Alert{
		Index:          i,
		Platform:       "dingtalk",
		Tenant:         "ding-corp-1",
		MessageID:      "msg-" + string(rune('a'+i%26)),
		Conversation:   "cid-group-1",
		Sender:         "staff-42",
		Rule:           "guarantee.returns",
		Category:       "guarantee_of_returns",
		Severity:       scan.High,
		LexiconName:    "desk-lexicon",
		LexiconVersion: "sha256:0123456789abcdef",
		Time:           time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC),
		Excerpt:        secretText,
	}
	a.ID = NewID(a.Index, a.Rule, a.LexiconVersion)
	return a
}

func TestNewIDIsStableAndDistinguishesFindings(t *testing.T) {
	a := NewID(7, "guarantee.returns", "sha256:aa")
	if a != NewID(7, "guarantee.returns", "sha256:aa") {
		t.Fatal("NewID is not deterministic")
	}
	for _, other := range []string{
		NewID(8, "guarantee.returns", "sha256:aa"),
		NewID(7, "guarantee.return", "sha256:aa"),
		NewID(7, "guarantee.returns", "sha256:ab"),
		NewID(7, "guarantee.returns", ""),
	} {
		if other == a {
			t.Fatalf("different findings share id %s", a)
		}
	}
	// Length prefixes: moving a byte from the rule to the version changes the id.
	if NewID(1, "ab", "c") == NewID(1, "a", "bc") {
		t.Fatal("concatenation collision")
	}
	al := sampleAlert(1)
	al.ID = a
	if err := al.Validate(); err != nil {
		t.Fatalf("NewID result does not validate: %v", err)
	}
	// An Alerter fills an empty ID with NewID.
	al.ID = ""
	if got := al.withID().ID; got != NewID(al.Index, al.Rule, al.LexiconVersion) {
		t.Fatalf("withID = %s", got)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	long := strings.Repeat("x", MaxRefLen+1)
	for _, c := range []struct {
		field string
		mod   func(*Alert)
	}{
		{"id", func(a *Alert) { a.ID = "" }},
		{"id", func(a *Alert) { a.ID = "a\r\nX-Injected: 1" }},
		{"id", func(a *Alert) { a.ID = strings.Repeat("a", MaxIDLen+1) }},
		{"platform", func(a *Alert) { a.Platform = "" }},
		{"msg_id", func(a *Alert) { a.MessageID = "" }},
		{"msg_id", func(a *Alert) { a.MessageID = long }},
		{"sender", func(a *Alert) { a.Sender = "\xff" }},
		{"conversation", func(a *Alert) { a.Conversation = long }},
		{"rule", func(a *Alert) { a.Rule = "" }},
		{"category", func(a *Alert) { a.Category = strings.Repeat("c", MaxRuleLen+1) }},
		{"lexicon_version", func(a *Alert) { a.LexiconVersion = "\xc3" }},
		{"excerpt", func(a *Alert) { a.Excerpt = strings.Repeat("e", MaxExcerptLen+1) }},
		{"severity", func(a *Alert) { a.Severity = 0 }},
		{"severity", func(a *Alert) { a.Severity = scan.High + 1 }},
		{"time", func(a *Alert) { a.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	} {
		a := sampleAlert(1)
		c.mod(&a)
		err := a.Validate()
		if !errors.Is(err, ErrInvalidAlert) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: Validate = %v, want ErrInvalidAlert naming the field", c.field, err)
		}
	}
	a := sampleAlert(1)
	if err := a.Validate(); err != nil {
		t.Fatalf("sample: %v", err)
	}
}

func TestLogWritesReferencesNotContent(t *testing.T) {
	var buf bytes.Buffer
	al := NewLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	a := sampleAlert(3)
	a.ID = "" // filled by the alerter
	if err := al.Alert(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	low := sampleAlert(4)
	low.Severity = scan.Low
	if err := al.Alert(context.Background(), low); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "CONTENT-7f3a") || strings.Contains(buf.String(), "excerpt") {
		t.Fatalf("log holds message content: %s", buf.String())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %s", len(lines), buf.String())
	}
	if n := strings.Count(lines[0], `"time":`); n != 1 {
		t.Fatalf("%d time keys in one record: %s", n, lines[0])
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level": "WARN", "msg": "alert", "id": NewID(3, a.Rule, a.LexiconVersion), "index": 3.0,
		"platform": "dingtalk", "tenant": "ding-corp-1", "msg_id": a.MessageID, "conversation": "cid-group-1",
		"sender": "staff-42", "rule": "guarantee.returns", "category": "guarantee_of_returns",
		"severity": "high", "lexicon_name": "desk-lexicon", "lexicon_version": a.LexiconVersion,
		"sent_at": "2026-11-02T09:30:00Z",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	if !strings.Contains(lines[1], `"level":"INFO"`) {
		t.Errorf("low severity not at INFO: %s", lines[1])
	}

	// An invalid alert is refused and nothing is written.
	buf.Reset()
	bad := sampleAlert(5)
	bad.Rule = ""
	if err := al.Alert(context.Background(), bad); !errors.Is(err, ErrInvalidAlert) {
		t.Fatalf("invalid alert: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("invalid alert was logged: %s", buf.String())
	}
	// A nil logger discards.
	if err := NewLog(nil).Alert(context.Background(), sampleAlert(6)); err != nil {
		t.Fatal(err)
	}
}

func TestSummaryHasNoContent(t *testing.T) {
	a := sampleAlert(9)
	s := a.Summary()
	if strings.Contains(s, "CONTENT") || s != "[high] guarantee.returns (guarantee_of_returns) ledger #9" {
		t.Fatalf("Summary = %q", s)
	}
}
