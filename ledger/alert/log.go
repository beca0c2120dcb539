package alert

import (
	"context"
	"log/slog"

	"github.com/commseal/commseal/scan"
)

// logAlerter writes each alert as one structured record.
type logAlerter struct{ l *slog.Logger }

// NewLog returns an Alerter that writes each alert as one record to l: message "alert",
// level WARN for high and medium severities and INFO for the others, and the Alert's fields
// as attributes under their JSON names, except Time, which is sent_at (slog has its own time).
// It never writes Alert.Excerpt: logs are copied and kept in places that must not hold message
// content. A nil l discards the records.
func NewLog(l *slog.Logger) Alerter {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return logAlerter{l}
}

// Alert writes a, after filling its ID and validating it.
func (la logAlerter) Alert(ctx context.Context, a Alert) error {
	a, err := prepare(a, false)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if a.Severity >= scan.Medium {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("id", a.ID),
		slog.Uint64("index", a.Index),
		slog.String("platform", a.Platform),
		slog.String("tenant", a.Tenant),
		slog.String("msg_id", a.MessageID),
		slog.String("conversation", a.Conversation),
		slog.String("sender", a.Sender),
		slog.String("rule", a.Rule),
		slog.String("category", a.Category),
		slog.String("severity", a.Severity.String()),
		slog.String("lexicon_name", a.LexiconName),
		slog.String("lexicon_version", a.LexiconVersion),
		slog.Time("sent_at", a.Time), // not "time": that is the record's own key
	}
	la.l.LogAttrs(ctx, level, "alert", attrs...)
	return nil
}
