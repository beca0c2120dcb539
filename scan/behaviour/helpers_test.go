package behaviour

import (
	"errors"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
)

// msg builds a message from an internal staff member (StaffID set) of tenant "corp".
func msg(id, conv, sender string, t time.Time) *capture.Message {
	return &capture.Message{
		Platform: capture.PlatformDingTalk, Tenant: "corp", ID: id,
		Conversation: capture.Conversation{ID: conv, Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "uid-" + sender, StaffID: sender},
		SentAt:       t, Kind: capture.KindText,
	}
}

func mustRules(t testing.TB, js string) *Rules {
	t.Helper()
	rs, err := ParseRules([]byte(js))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	return rs
}

func mustNew(t testing.TB, js string, opts Options) *Detector {
	t.Helper()
	d, err := New(mustRules(t, js), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// rulesOf wraps rule objects into a rules file.
func rulesOf(rules ...string) string {
	s := `{"version": "test-1", "rules": [`
	for i, r := range rules {
		if i > 0 {
			s += ","
		}
		s += r
	}
	return s + "]}"
}

func asRulesError(err error) *RulesError {
	var re *RulesError
	if errors.As(err, &re) {
		return re
	}
	return nil
}

// ids returns "rule:msgid" of each finding, for compact comparisons.
func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+":"+f.MsgID)
	}
	return out
}
