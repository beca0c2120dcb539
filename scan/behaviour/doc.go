// Package behaviour flags conduct that shows in message metadata rather than in words:
// messages outside trading hours, bursts, a conversation that goes quiet right after someone
// suggested moving elsewhere, first contact with outside parties, and the recording gaps that
// regulators fine (silent sources and conversations, sequence gaps, reconnect storms).
//
// The detectors are pure and deterministic. They read capture.Message metadata (sender,
// conversation, time, mentions, the tenant) and the categories of the message's lexicon
// findings from package scan; they never read content, the clock, files or the network. Time
// comes from the messages (SentAt, else CapturedAt) and from the times passed to Reconnect and
// Tick. So the same calls in the same order give the same findings, and a detector's state is
// rebuilt by feeding it the ledger's messages again in order: nothing about it needs storing.
// Memory says how far back in message time such a replay must reach for the loaded rules;
// Restore, called where the replay meets a finding Tick reported before, keeps the rebuilt
// detector from reporting that silence again, and remembers first contacts older than the
// replay. (Reconnects are not messages: reconnect_storm starts afresh.)
//
//	rules, err := behaviour.ParseRules(data)
//	d, err := behaviour.New(rules, behaviour.Options{})
//	findings := d.Observe(msg, categories) // per message, in ledger order
//	findings = d.Reconnect(source, t)      // when a capture source reconnects
//	findings = d.Tick(now)                 // periodically: silences still going on
//
// # Rules file
//
// A rules file is a JSON object; unknown fields are refused everywhere:
//
//	{
//	  "version": "2026-11-29.1",            // required; every finding carries it
//	  "firm_corp_ids": ["dingcorp1"],       // optional; default: the message's tenant
//	  "rules": [
//	    {"id": "after-hours", "severity": "medium", "description": "optional",
//	     "off_hours": {
//	       "desks": [{"name": "hk-equities", "time_zone": "Asia/Hong_Kong",
//	                  "senders": ["staff01", "staff02"],      // StaffID or ID
//	                  "days": ["mon","tue","wed","thu","fri"], // default Monday to Friday
//	                  "open": "08:30", "close": "18:00",       // close < open: overnight
//	                  "calendar": "HK"}],                      // optional holiday calendar
//	       "default_desk": "hk-equities"}},                    // optional: everyone else
//	    {"id": "burst", "severity": "low",
//	     "burst": {"window": "10m", "min_count": 20, "k": 3, "alpha": 0.1}},
//	    {"id": "gone-quiet", "severity": "high",
//	     "off_channel": {"categories": ["off_channel"], "silence": "30m"}},
//	    {"id": "new-external", "severity": "info", "first_contact": {}},
//	    {"id": "source-down", "severity": "high", "source_silence": {"window": "15m"}},
//	    {"id": "chat-quiet", "severity": "info", "conversation_silence": {"window": "72h"}},
//	    {"id": "seq-gap", "severity": "high", "sequence_gap": {}},
//	    {"id": "flapping", "severity": "medium",
//	     "reconnect_storm": {"count": 5, "window": "10m"}}
//	  ]
//	}
//
// (The comments are explanation; JSON has none.) Each rule has an id (ASCII letters, digits
// and . _ - : /, unique), a severity (info, low, medium, high, as in lexicons), an optional
// description, and exactly one kind object, which names its kind. Durations are Go durations
// from 1s to 744h (31 days). ParseRules refuses a bad file with a *RulesError naming the rule
// and field, wrapping the sentinel errors of package scan (scan.ErrMissingField,
// scan.ErrInvalidValue, ...), as lexicons do.
//
// # Detectors
//
// off_hours: a message whose time, in its sender's desk's zone, is not inside a session: the
// desk's hours (an overnight session, close before open, belongs to the day it opens) on one
// of its days that is not a holiday of its calendar. Zones come from Options.LoadLocation, so
// daylight saving time is the zone database's business: a New York desk opening at 09:30 opens
// at 14:30 UTC in winter and 13:30 UTC in summer; Hong Kong has no DST.
//
// burst: per sender, the count of messages in a sliding window (moving in tenths of the
// window) against the sender's own baseline: the exponentially weighted mean and standard
// deviation (weight alpha) of their counts in past whole windows, silent windows included.
// It fires when the count exceeds max(min_count, mean + k·sd), at most once per window.
// Defaults: min_count 20, k 3, alpha 0.1.
//
// off_channel: a message with a lexicon finding in one of the categories, after which the
// conversation has no message for at least silence. It fires when the next message arrives
// that late, or from Tick while the silence lasts; a message in time cancels it. The finding
// refers to the flagged message.
//
// first_contact: the first time an external party and an internal staff member are both
// participants (senders or mentioned) of one conversation, reported once per pair. A party is
// internal when its corp id is one of firm_corp_ids (or, without them, the message's tenant)
// and external when it has another corp id; capture.Message carries no per-party corp id, so
// Options.PartyCorp supplies it (DefaultPartyCorp reads DingTalk's senderCorpId from the raw
// payload and treats parties with a staff id as internal); parties of unknown corp are skipped.
//
// source_silence and conversation_silence: from Tick, a source (Options.SourceOf) or a
// conversation with no message for the window, once per silence. Both name the source in
// Finding.Source (for a conversation, the source of its last message).
//
// sequence_gap: a message whose per-conversation sequence skips numbers after the highest
// seen. capture.Message has no sequence and DingTalk message ids are opaque, so this needs
// Options.Sequence; without it New refuses the rule (ErrNoSequence). Gaps in what the ledger
// stored are the ledger's to find: each leaf holds a per-conversation sequence and the hash of
// the previous leaf of the conversation.
//
// reconnect_storm: count reconnects of one source (from Reconnect) within the window.
//
// # Holidays
//
// HongKongCalendarJSON is the shipped calendar: the Hong Kong general holidays other than
// Sundays for 2025, 2026 and 2027, each year with its source and retrieval date. A calendar
// covers whole years; a date in another year is checked for hours and days only, and counted
// in Stats.CalendarMisses. Pass your own calendars (ParseCalendar) in Options.Calendars.
//
// # State
//
// State is per sender (burst baselines: 96 bytes per burst rule, plus the key), per
// conversation (pending off-channel silences, last time, sequence, participants up to
// MaxParticipants), per source, and per reported (external, staff) pair. Each table has a cap (Options; defaults 100,000
// senders, 100,000 conversations, 1,024 sources, 1,000,000 pairs) and evicts the least
// recently used entry when full, counting it in Stats. Eviction is a function of the call
// order too, so it does not break determinism; what it costs is described in Stats.
//
// A Detector is safe for concurrent use (one mutex), but findings depend on the order of the
// calls: feed it from one goroutine when the output must be reproducible. Tick walks all
// conversations and sources in key order: its cost grows with the state held.
package behaviour
