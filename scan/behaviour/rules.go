package behaviour

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/scan"
)

// Limits on a rules file. Anything larger is refused with scan.ErrTooLarge.
const (
	MaxRulesBytes  = 8 << 20             // size of a rules file
	MaxRules       = 64                  // rules in one file (a detector keeps one bit per rule per entity)
	MaxDesks       = 256                 // desks of one off-hours rule
	MaxDeskSenders = 100_000             // sender ids of all desks of one rule together
	MaxCategories  = 256                 // categories of one off-channel rule
	MaxCorpIDs     = 1024                // firm corp ids
	MaxNameBytes   = 128                 // a version, rule id, desk name, category, corp id, region
	MaxIDBytes     = 1024                // a sender id (capture.MaxIDLen)
	MaxWindow      = 31 * 24 * time.Hour // the longest window or silence
	MinWindow      = time.Second         // the shortest window or silence
	MaxStormCount  = 10_000              // reconnect_storm.count
)

// The sentinel errors a *RulesError or *CalendarError wraps are those of package scan, so that
// a tool loading lexicons and rules branches on one set: scan.ErrSyntax, scan.ErrUnknownField,
// scan.ErrMissingField, scan.ErrDuplicateID, scan.ErrUnknownSeverity, scan.ErrInvalidUTF8,
// scan.ErrInvalidValue and scan.ErrTooLarge. ErrNoSequence is this package's own.

// ErrNoSequence is returned by New for a sequence_gap rule when Options.Sequence is nil:
// capture.Message carries no per-conversation sequence, so without a function that reads one
// (from the raw payload of a platform that has it) the rule cannot run.
var ErrNoSequence = errors.New("behaviour: sequence_gap needs Options.Sequence: capture.Message carries no per-conversation sequence")

// RulesError reports what is wrong with a rules file and where: the rule (its id, or "#N" for
// the N-th rule counting from 1 when the id is unusable) and the field, such as
// "off_hours.desks[1].time_zone". It wraps one of package scan's sentinel errors.
type RulesError struct {
	Version string // the file's version, if known
	Rule    string // the rule's id, "#N", or "" for the file itself
	Field   string // the JSON field, with indexes for list elements
	Err     error  // a sentinel error, possibly wrapped with detail
}

// Error formats the error as `behaviour: rules "version": rule "id": field "f": problem`.
func (e *RulesError) Error() string {
	return fileError("rules", e.Version, e.Rule, e.Field, e.Err)
}

// fileError formats the error of a rules or calendar file as
// `behaviour: what "name": rule "rule": field "field": err`, leaving out the parts that are "".
func fileError(what, name, rule, field string, err error) string {
	var b strings.Builder
	b.WriteString("behaviour: " + what)
	if name != "" {
		fmt.Fprintf(&b, " %q", name)
	}
	if rule != "" {
		fmt.Fprintf(&b, ": rule %q", rule)
	}
	if field != "" {
		fmt.Fprintf(&b, ": field %q", field)
	}
	fmt.Fprintf(&b, ": %v", err)
	return b.String()
}

// Unwrap returns the underlying sentinel error.
func (e *RulesError) Unwrap() error { return e.Err }

// Kind names a detector. A rule has exactly one kind, given by which kind object it holds.
type Kind string

// The kinds of rule, spelled as their JSON object names.
const (
	KindOffHours            Kind = "off_hours"            // a message outside the desk's trading hours
	KindBurst               Kind = "burst"                // a sender far above their own usual rate
	KindOffChannel          Kind = "off_channel"          // a flagged category, then silence in the conversation
	KindFirstContact        Kind = "first_contact"        // an external party first meets a staff member
	KindSourceSilence       Kind = "source_silence"       // no message from a source for a window
	KindConversationSilence Kind = "conversation_silence" // no message in a conversation for a window
	KindSequenceGap         Kind = "sequence_gap"         // a per-conversation sequence skipped numbers
	KindReconnectStorm      Kind = "reconnect_storm"      // a source reconnected too often
)

// Rules is a versioned set of behaviour rules. Build one with ParseRules or fill it in code;
// New validates it either way.
type Rules struct {
	// Version names this edition of the rules; every finding carries it. Free text (UTF-8, no
	// control characters, at most MaxNameBytes), e.g. "2026-11-29.1".
	Version string
	// FirmCorpIDs are the corp ids of the firm's own organizations: a party whose corp id is
	// one of them is internal, any other corp id is external. Empty means the corp of the
	// capturing organization, capture.Message.Tenant.
	FirmCorpIDs []string
	Rules       []Rule // at most MaxRules; ids unique
}

// Rule is one behaviour rule. Exactly one of the kind fields is set, and Kind names it.
type Rule struct {
	ID          string        // unique in the file; ASCII letters, digits and . _ - : /
	Kind        Kind          // which of the fields below is set
	Severity    scan.Severity // the severity of every finding of the rule
	Description string        // for reviewers; no effect

	OffHours            *OffHours
	Burst               *Burst
	OffChannel          *OffChannel
	FirstContact        *FirstContact
	SourceSilence       *Silence
	ConversationSilence *Silence
	SequenceGap         *SequenceGap
	ReconnectStorm      *ReconnectStorm
}

// OffHours flags a message sent outside its sender's desk's trading session: outside the
// desk's hours, on a day not in Days, or on a holiday of the desk's calendar.
type OffHours struct {
	Desks []Desk
	// DefaultDesk names the desk of a sender listed in no desk; empty leaves such senders
	// unchecked.
	DefaultDesk string
}

// Desk is a group of senders who share trading hours in one time zone.
type Desk struct {
	Name     string   // unique in the rule
	TimeZone string   // an IANA zone name, e.g. "Asia/Hong_Kong"
	Senders  []string // sender ids (capture.Party.StaffID or ID); a sender is in at most one desk
	// Days are the weekdays with a session; empty in a file means Monday to Friday.
	Days []time.Weekday
	// Open and Close are the session's local start and end, as durations since midnight
	// (0 to 24h). Close before Open is an overnight session that belongs to the day it opens.
	// Close == Open is refused.
	Open, Close time.Duration
	// Calendar names the region of a holiday calendar (see Calendar); a holiday is not a
	// trading day. Empty means no holidays.
	Calendar string
}

// Burst flags a sender whose message count in a sliding window exceeds
// max(MinCount, mean + K·sd), where mean and sd are the exponentially weighted mean and
// standard deviation (weight Alpha) of the sender's own counts in past whole windows.
type Burst struct {
	Window   time.Duration // the window, MinWindow to MaxWindow; a multiple of 10 nanoseconds
	MinCount int           // the floor of the threshold, at least 1
	K        float64       // how many deviations above the mean, 0 to 100
	Alpha    float64       // the weight of the newest window in the baseline, (0, 1]
}

// OffChannel flags a message with a lexicon finding in one of Categories that is followed by
// at least Silence without any message in its conversation: the pattern of a conversation
// moved to another channel ("call me on WhatsApp", then nothing).
type OffChannel struct {
	Categories []string      // lexicon categories (scan.Rule.Category)
	Silence    time.Duration // MinWindow to MaxWindow
}

// FirstContact flags the first time an external party (a corp id not the firm's) and an
// internal staff member are participants of one conversation. It has no parameters.
type FirstContact struct{}

// Silence flags a source or a conversation with no message for at least Window. It fires
// from Tick, once per silence; the next message re-arms it.
type Silence struct {
	Window time.Duration // MinWindow to MaxWindow
}

// SequenceGap flags a message whose per-conversation sequence number skips numbers after the
// last one seen. It needs Options.Sequence (see ErrNoSequence).
type SequenceGap struct{}

// ReconnectStorm flags Count reconnects of one source within Window.
type ReconnectStorm struct {
	Count  int           // 2 to MaxStormCount
	Window time.Duration // MinWindow to MaxWindow
}

// JSON shapes: everything is decoded as plain JSON values and converted with field paths, so
// that a bad duration or clock names its rule and field.
type rulesJSON struct {
	Version     string            `json:"version"`
	FirmCorpIDs []string          `json:"firm_corp_ids"`
	Rules       []json.RawMessage `json:"rules"`
}

type ruleJSON struct {
	ID                  string              `json:"id"`
	Severity            string              `json:"severity"`
	Description         string              `json:"description"`
	OffHours            *offHoursJSON       `json:"off_hours"`
	Burst               *burstJSON          `json:"burst"`
	OffChannel          *offChannelJSON     `json:"off_channel"`
	FirstContact        *struct{}           `json:"first_contact"`
	SourceSilence       *silenceJSON        `json:"source_silence"`
	ConversationSilence *silenceJSON        `json:"conversation_silence"`
	SequenceGap         *struct{}           `json:"sequence_gap"`
	ReconnectStorm      *reconnectStormJSON `json:"reconnect_storm"`
}

type offHoursJSON struct {
	Desks       []deskJSON `json:"desks"`
	DefaultDesk string     `json:"default_desk"`
}

type deskJSON struct {
	Name     string   `json:"name"`
	TimeZone string   `json:"time_zone"`
	Senders  []string `json:"senders"`
	Days     []string `json:"days"`
	Open     string   `json:"open"`
	Close    string   `json:"close"`
	Calendar string   `json:"calendar"`
}

type burstJSON struct {
	Window   string   `json:"window"`
	MinCount *int     `json:"min_count"`
	K        *float64 `json:"k"`
	Alpha    *float64 `json:"alpha"`
}

type offChannelJSON struct {
	Categories []string `json:"categories"`
	Silence    string   `json:"silence"`
}

type silenceJSON struct {
	Window string `json:"window"`
}

type reconnectStormJSON struct {
	Count  *int   `json:"count"`
	Window string `json:"window"`
}

var weekdayNames = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseRules parses a rules file in the JSON format described in the package documentation and
// validates it. Errors are *RulesError values naming the rule and field.
func ParseRules(data []byte) (*Rules, error) {
	if len(data) > MaxRulesBytes {
		return nil, &RulesError{Err: fmt.Errorf("%w: %d bytes, limit %d", scan.ErrTooLarge, len(data), MaxRulesBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &RulesError{Err: scan.ErrInvalidUTF8}
	}
	var rj rulesJSON
	if err := scan.DecodeStrict(data, &rj, "object"); err != nil {
		return nil, &RulesError{Err: err}
	}
	rs := &Rules{Version: rj.Version, FirmCorpIDs: rj.FirmCorpIDs}
	if len(rj.Rules) > MaxRules {
		return nil, &RulesError{Version: rs.Version, Field: "rules", Err: fmt.Errorf("%w: %d rules, limit %d", scan.ErrTooLarge, len(rj.Rules), MaxRules)}
	}
	for i, raw := range rj.Rules {
		label := ruleLabel(raw, i)
		var r ruleJSON
		if err := scan.DecodeStrict(raw, &r, "object"); err != nil {
			return nil, &RulesError{Version: rs.Version, Rule: label, Err: err}
		}
		rule, field, err := r.rule()
		if err != nil {
			return nil, &RulesError{Version: rs.Version, Rule: label, Field: field, Err: err}
		}
		rs.Rules = append(rs.Rules, rule)
	}
	if err := rs.Validate(); err != nil {
		return nil, err
	}
	return rs, nil
}

// ruleLabel names a rule in errors: its id if usable, else "#N".
func ruleLabel(raw json.RawMessage, i int) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &probe) == nil && checkID(probe.ID) == nil {
		return probe.ID
	}
	return fmt.Sprintf("#%d", i+1)
}

// rule converts the JSON shape, returning the failing field with an error.
func (rj *ruleJSON) rule() (Rule, string, error) {
	r := Rule{ID: rj.ID, Description: rj.Description}
	if rj.Severity == "" {
		return r, "severity", scan.ErrMissingField
	}
	sev, err := scan.ParseSeverity(rj.Severity)
	if err != nil {
		return r, "severity", err
	}
	r.Severity = sev
	n := 0
	if rj.OffHours != nil {
		n++
		r.Kind = KindOffHours
		oh, field, err := rj.OffHours.convert()
		if err != nil {
			return r, "off_hours." + field, err
		}
		r.OffHours = oh
	}
	if rj.Burst != nil {
		n++
		r.Kind = KindBurst
		b := &Burst{MinCount: 20, K: 3, Alpha: 0.1}
		if b.Window, err = parseDuration(rj.Burst.Window); err != nil {
			return r, "burst.window", err
		}
		if rj.Burst.MinCount != nil {
			b.MinCount = *rj.Burst.MinCount
		}
		if rj.Burst.K != nil {
			b.K = *rj.Burst.K
		}
		if rj.Burst.Alpha != nil {
			b.Alpha = *rj.Burst.Alpha
		}
		r.Burst = b
	}
	if rj.OffChannel != nil {
		n++
		r.Kind = KindOffChannel
		oc := &OffChannel{Categories: rj.OffChannel.Categories}
		if oc.Silence, err = parseDuration(rj.OffChannel.Silence); err != nil {
			return r, "off_channel.silence", err
		}
		r.OffChannel = oc
	}
	if rj.FirstContact != nil {
		n++
		r.Kind = KindFirstContact
		r.FirstContact = &FirstContact{}
	}
	for _, s := range []struct {
		j    *silenceJSON
		kind Kind
		dst  **Silence
	}{{rj.SourceSilence, KindSourceSilence, &r.SourceSilence}, {rj.ConversationSilence, KindConversationSilence, &r.ConversationSilence}} {
		if s.j == nil {
			continue
		}
		n++
		r.Kind = s.kind
		w, err := parseDuration(s.j.Window)
		if err != nil {
			return r, string(s.kind) + ".window", err
		}
		*s.dst = &Silence{Window: w}
	}
	if rj.SequenceGap != nil {
		n++
		r.Kind = KindSequenceGap
		r.SequenceGap = &SequenceGap{}
	}
	if rj.ReconnectStorm != nil {
		n++
		r.Kind = KindReconnectStorm
		rs := &ReconnectStorm{}
		if rj.ReconnectStorm.Count == nil {
			return r, "reconnect_storm.count", scan.ErrMissingField
		}
		rs.Count = *rj.ReconnectStorm.Count
		if rs.Window, err = parseDuration(rj.ReconnectStorm.Window); err != nil {
			return r, "reconnect_storm.window", err
		}
		r.ReconnectStorm = rs
	}
	if n != 1 {
		return r, "", fmt.Errorf("%w: a rule holds exactly one of %s; it holds %d", scan.ErrInvalidValue, kindList, n)
	}
	return r, "", nil
}

var kindList = strings.Join([]string{string(KindOffHours), string(KindBurst), string(KindOffChannel), string(KindFirstContact),
	string(KindSourceSilence), string(KindConversationSilence), string(KindSequenceGap), string(KindReconnectStorm)}, ", ")

func (oj *offHoursJSON) convert() (*OffHours, string, error) {
	oh := &OffHours{DefaultDesk: oj.DefaultDesk}
	if len(oj.Desks) > MaxDesks {
		return nil, "desks", fmt.Errorf("%w: %d desks, limit %d", scan.ErrTooLarge, len(oj.Desks), MaxDesks)
	}
	for i, dj := range oj.Desks {
		f := func(name string) string { return fmt.Sprintf("desks[%d].%s", i, name) }
		d := Desk{Name: dj.Name, TimeZone: dj.TimeZone, Senders: dj.Senders, Calendar: dj.Calendar}
		if len(dj.Days) == 0 {
			d.Days = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
		}
		for k, s := range dj.Days {
			wd, ok := parseWeekday(s)
			if !ok {
				return nil, f(fmt.Sprintf("days[%d]", k)), fmt.Errorf("%w: %q: want one of %s", scan.ErrInvalidValue, s, strings.Join(weekdayNames[:], ", "))
			}
			d.Days = append(d.Days, wd)
		}
		var err error
		if d.Open, err = parseClock(dj.Open); err != nil {
			return nil, f("open"), err
		}
		if d.Close, err = parseClock(dj.Close); err != nil {
			return nil, f("close"), err
		}
		oh.Desks = append(oh.Desks, d)
	}
	return oh, "", nil
}

func parseWeekday(s string) (time.Weekday, bool) {
	for i, n := range weekdayNames {
		if n == s {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// parseClock reads "HH:MM" (00:00 to 24:00) as a duration since midnight.
func parseClock(s string) (time.Duration, error) {
	if s == "" {
		return 0, scan.ErrMissingField
	}
	if len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, fmt.Errorf("%w: %q: want HH:MM", scan.ErrInvalidValue, s)
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, fmt.Errorf("%w: %q: want 00:00 to 24:00", scan.ErrInvalidValue, s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseDuration reads a Go duration ("90s", "15m", "2h"); range checks are Validate's.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, scan.ErrMissingField
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: want a duration such as \"15m\" or \"2h\"", scan.ErrInvalidValue, s)
	}
	return d, nil
}

// checkName accepts a non-empty name of at most max bytes of UTF-8 with no control characters.
func checkName(s string, max int) error {
	switch {
	case s == "":
		return scan.ErrMissingField
	case !utf8.ValidString(s):
		return scan.ErrInvalidUTF8
	case len(s) > max:
		return fmt.Errorf("%w: %d bytes, limit %d", scan.ErrTooLarge, len(s), max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Errorf("%w: control character %U", scan.ErrInvalidValue, r)
		}
	}
	return nil
}

// checkID accepts what scan accepts for rule ids and categories: ASCII letters, digits and
// . _ - : /, at most MaxNameBytes.
func checkID(s string) error {
	if err := checkName(s, MaxNameBytes); err != nil {
		return err
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:/", c) >= 0) {
			return fmt.Errorf("%w: %q: use ASCII letters, digits and . _ - : /", scan.ErrInvalidValue, s)
		}
	}
	return nil
}

func checkWindow(d time.Duration) error {
	if d < MinWindow || d > MaxWindow {
		return fmt.Errorf("%w: %v, want %v to %v", scan.ErrInvalidValue, d, MinWindow, MaxWindow)
	}
	return nil
}

// Validate checks every rule against the format's constraints and limits. New calls it; it is
// exported for tools that edit rules.
func (rs *Rules) Validate() error {
	if rs == nil {
		return &RulesError{Err: fmt.Errorf("%w: nil rules", scan.ErrMissingField)}
	}
	if err := checkName(rs.Version, MaxNameBytes); err != nil {
		return &RulesError{Field: "version", Err: err}
	}
	fail := func(rule, field string, err error) error {
		return &RulesError{Version: rs.Version, Rule: rule, Field: field, Err: err}
	}
	if len(rs.FirmCorpIDs) > MaxCorpIDs {
		return fail("", "firm_corp_ids", fmt.Errorf("%w: %d ids, limit %d", scan.ErrTooLarge, len(rs.FirmCorpIDs), MaxCorpIDs))
	}
	if err := checkList(rs.FirmCorpIDs, MaxIDBytes); err != nil {
		return fail("", "firm_corp_ids"+err.field, err.err)
	}
	if len(rs.Rules) == 0 {
		return fail("", "rules", scan.ErrMissingField)
	}
	if len(rs.Rules) > MaxRules {
		return fail("", "rules", fmt.Errorf("%w: %d rules, limit %d", scan.ErrTooLarge, len(rs.Rules), MaxRules))
	}
	ids := make(map[string]int, len(rs.Rules))
	for i := range rs.Rules {
		r := &rs.Rules[i]
		label := r.ID
		if checkID(label) != nil {
			label = fmt.Sprintf("#%d", i+1)
		}
		if err := checkID(r.ID); err != nil {
			return fail(label, "id", err)
		}
		if j, dup := ids[r.ID]; dup {
			return fail(label, "id", fmt.Errorf("%w: rules #%d and #%d", scan.ErrDuplicateID, j+1, i+1))
		}
		ids[r.ID] = i
		if r.Severity < scan.Info || r.Severity > scan.High {
			return fail(label, "severity", fmt.Errorf("%w: %d", scan.ErrUnknownSeverity, uint8(r.Severity)))
		}
		if !utf8.ValidString(r.Description) {
			return fail(label, "description", scan.ErrInvalidUTF8)
		}
		if len(r.Description) > 4096 {
			return fail(label, "description", fmt.Errorf("%w: %d bytes, limit 4096", scan.ErrTooLarge, len(r.Description)))
		}
		if field, err := r.validateKind(); err != nil {
			return fail(label, field, err)
		}
	}
	return nil
}

type listError struct {
	field string
	err   error
}

// checkList checks a list of ids: each a name of at most max bytes, no duplicates.
func checkList(list []string, max int) *listError {
	seen := make(map[string]int, len(list))
	for k, s := range list {
		if err := checkName(s, max); err != nil {
			return &listError{fmt.Sprintf("[%d]", k), err}
		}
		if j, dup := seen[s]; dup {
			return &listError{fmt.Sprintf("[%d]", k), fmt.Errorf("%w: %q is also [%d]", scan.ErrInvalidValue, s, j)}
		}
		seen[s] = k
	}
	return nil
}

// validateKind checks that exactly the field Kind names is set and that its values are in range.
func (r *Rule) validateKind() (string, error) {
	set := []struct {
		kind Kind
		set  bool
	}{
		{KindOffHours, r.OffHours != nil}, {KindBurst, r.Burst != nil}, {KindOffChannel, r.OffChannel != nil},
		{KindFirstContact, r.FirstContact != nil}, {KindSourceSilence, r.SourceSilence != nil},
		{KindConversationSilence, r.ConversationSilence != nil}, {KindSequenceGap, r.SequenceGap != nil},
		{KindReconnectStorm, r.ReconnectStorm != nil},
	}
	known := false
	for _, s := range set {
		if s.kind == r.Kind {
			known = true
			if !s.set {
				return string(s.kind), scan.ErrMissingField
			}
		} else if s.set {
			return string(s.kind), fmt.Errorf("%w: a %s rule holds only %s", scan.ErrInvalidValue, r.Kind, r.Kind)
		}
	}
	if !known {
		return "kind", fmt.Errorf("%w: %q: want one of %s", scan.ErrInvalidValue, r.Kind, kindList)
	}
	switch r.Kind {
	case KindOffHours:
		return r.OffHours.validate()
	case KindBurst:
		b := r.Burst
		if err := checkWindow(b.Window); err != nil {
			return "burst.window", err
		}
		if b.Window%burstBuckets != 0 {
			return "burst.window", fmt.Errorf("%w: %v is not a multiple of %dns", scan.ErrInvalidValue, b.Window, burstBuckets)
		}
		if b.MinCount < 1 || b.MinCount > 1_000_000 {
			return "burst.min_count", fmt.Errorf("%w: %d, want 1 to 1000000", scan.ErrInvalidValue, b.MinCount)
		}
		if !(b.K >= 0 && b.K <= 100) {
			return "burst.k", fmt.Errorf("%w: %v, want 0 to 100", scan.ErrInvalidValue, b.K)
		}
		if !(b.Alpha > 0 && b.Alpha <= 1) || math.IsNaN(b.Alpha) {
			return "burst.alpha", fmt.Errorf("%w: %v, want more than 0 and at most 1", scan.ErrInvalidValue, b.Alpha)
		}
	case KindOffChannel:
		oc := r.OffChannel
		if len(oc.Categories) == 0 {
			return "off_channel.categories", scan.ErrMissingField
		}
		if len(oc.Categories) > MaxCategories {
			return "off_channel.categories", fmt.Errorf("%w: %d categories, limit %d", scan.ErrTooLarge, len(oc.Categories), MaxCategories)
		}
		for k, c := range oc.Categories {
			if err := checkID(c); err != nil {
				return fmt.Sprintf("off_channel.categories[%d]", k), err
			}
		}
		if err := checkList(oc.Categories, MaxNameBytes); err != nil {
			return "off_channel.categories" + err.field, err.err
		}
		if err := checkWindow(oc.Silence); err != nil {
			return "off_channel.silence", err
		}
	case KindSourceSilence:
		if err := checkWindow(r.SourceSilence.Window); err != nil {
			return "source_silence.window", err
		}
	case KindConversationSilence:
		if err := checkWindow(r.ConversationSilence.Window); err != nil {
			return "conversation_silence.window", err
		}
	case KindReconnectStorm:
		rs := r.ReconnectStorm
		if rs.Count < 2 || rs.Count > MaxStormCount {
			return "reconnect_storm.count", fmt.Errorf("%w: %d, want 2 to %d", scan.ErrInvalidValue, rs.Count, MaxStormCount)
		}
		if err := checkWindow(rs.Window); err != nil {
			return "reconnect_storm.window", err
		}
	}
	return "", nil
}

func (oh *OffHours) validate() (string, error) {
	if len(oh.Desks) == 0 {
		return "off_hours.desks", scan.ErrMissingField
	}
	if len(oh.Desks) > MaxDesks {
		return "off_hours.desks", fmt.Errorf("%w: %d desks, limit %d", scan.ErrTooLarge, len(oh.Desks), MaxDesks)
	}
	names := make(map[string]int, len(oh.Desks))
	senders := make(map[string]int)
	total := 0
	for i := range oh.Desks {
		d := &oh.Desks[i]
		f := func(name string) string { return fmt.Sprintf("off_hours.desks[%d].%s", i, name) }
		if err := checkID(d.Name); err != nil {
			return f("name"), err
		}
		if j, dup := names[d.Name]; dup {
			return f("name"), fmt.Errorf("%w: %q is also desks[%d]", scan.ErrInvalidValue, d.Name, j)
		}
		names[d.Name] = i
		if err := checkName(d.TimeZone, MaxNameBytes); err != nil {
			return f("time_zone"), err
		}
		if d.Calendar != "" {
			if err := checkID(d.Calendar); err != nil {
				return f("calendar"), err
			}
		}
		if len(d.Days) == 0 {
			return f("days"), scan.ErrMissingField
		}
		var seenDays [7]bool
		for k, wd := range d.Days {
			if wd < time.Sunday || wd > time.Saturday {
				return f(fmt.Sprintf("days[%d]", k)), fmt.Errorf("%w: weekday %d", scan.ErrInvalidValue, int(wd))
			}
			if seenDays[wd] {
				return f(fmt.Sprintf("days[%d]", k)), fmt.Errorf("%w: %s twice", scan.ErrInvalidValue, weekdayNames[wd])
			}
			seenDays[wd] = true
		}
		for _, c := range []struct {
			name string
			v    time.Duration
		}{{"open", d.Open}, {"close", d.Close}} {
			if c.v < 0 || c.v > 24*time.Hour || c.v%time.Minute != 0 {
				return f(c.name), fmt.Errorf("%w: %v, want whole minutes from 00:00 to 24:00", scan.ErrInvalidValue, c.v)
			}
		}
		if d.Open == 24*time.Hour {
			return f("open"), fmt.Errorf("%w: a session cannot open at 24:00; use 00:00", scan.ErrInvalidValue)
		}
		if d.Open == d.Close {
			return f("close"), fmt.Errorf("%w: a session from %s to %s is empty; a whole day is 00:00 to 24:00",
				scan.ErrInvalidValue, clock(d.Open), clock(d.Close))
		}
		total += len(d.Senders)
		if total > MaxDeskSenders {
			return f("senders"), fmt.Errorf("%w: more than %d senders in the rule", scan.ErrTooLarge, MaxDeskSenders)
		}
		for k, s := range d.Senders {
			field := f(fmt.Sprintf("senders[%d]", k))
			if err := checkName(s, MaxIDBytes); err != nil {
				return field, err
			}
			if j, dup := senders[s]; dup {
				return field, fmt.Errorf("%w: sender %q is also in desks[%d]", scan.ErrInvalidValue, s, j)
			}
			senders[s] = i
		}
	}
	if _, ok := names[oh.DefaultDesk]; oh.DefaultDesk != "" && !ok {
		return "off_hours.default_desk", fmt.Errorf("%w: no desk is named %q", scan.ErrInvalidValue, oh.DefaultDesk)
	}
	return "", nil
}

// clock formats a duration since midnight as HH:MM.
func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
