package surveil

import (
	"context"
	"errors"

	"github.com/commseal/commseal/ledger/alert"
)

// Alerts turns what the monitor sealed into alerts: one per rule a message tripped (with the
// first finding's category and the highest severity), or one for a behaviour finding.
// They carry references and severities, never content; their ids are stable across runs.
func (s *Sealed) Alerts() []alert.Alert {
	var out []alert.Alert
	base := alert.Alert{Index: s.MessageAt}
	if m := s.Message; m != nil {
		base.Platform, base.Tenant, base.MessageID = m.Platform, m.Tenant, m.ID
		base.Conversation, base.Sender, base.Time = m.Conversation.ID, m.Sender.ID, m.SentAt.UTC()
	}
	seen := map[string]int{}
	for _, f := range s.Findings {
		if i, ok := seen[f.Rule]; ok {
			out[i].Severity = max(out[i].Severity, f.Severity)
			continue
		}
		a := base
		a.Rule, a.Category, a.Severity = f.Rule, f.Category, f.Severity
		a.LexiconName, a.LexiconVersion = s.Lexicon.Name, s.Lexicon.Version
		a.ID = alert.NewID(s.MessageAt, f.Rule, s.Lexicon.Version)
		seen[f.Rule] = len(out)
		out = append(out, a)
	}
	if b := s.Behaviour; b != nil {
		a := base
		a.Rule, a.Category, a.Severity = b.Rule, string(b.Kind), b.Severity
		if !b.At.IsZero() {
			a.Time = b.At.UTC()
		}
		if a.Conversation == "" {
			a.Conversation = b.Conversation
		}
		if s.Message == nil { // read long ago (an off-channel move), or none: where it was
			a.Platform, a.Tenant, _ = findingScope(b)
			if !s.OnMessage() { // a silence or a storm, or a message not found: its own annotation
				a.Index = s.Index
			}
		}
		a.ID = alert.NewID(s.MessageAt, b.Rule, "behaviour:"+b.Key())
		out = append(out, a)
	}
	return out
}

// Notify returns an OnSealed that raises every sealed finding's alerts through a (an outbox, so
// that a receiver that is down loses nothing). Findings an earlier run sealed are raised again
// with the same ids when their step had not finished; receivers deduplicate on the id.
func Notify(a alert.Alerter) func(context.Context, *Sealed) error {
	return func(ctx context.Context, s *Sealed) error {
		var errs []error
		for _, x := range s.Alerts() {
			errs = append(errs, a.Alert(ctx, x))
		}
		return errors.Join(errs...)
	}
}
