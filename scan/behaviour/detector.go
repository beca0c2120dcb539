package behaviour

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/scan"
)

// Default caps on the detector's state (see Options).
const (
	DefaultMaxSenders       = 100_000
	DefaultMaxConversations = 100_000
	DefaultMaxSources       = 1024
	DefaultMaxPairs         = 1_000_000
	DefaultMaxParticipants  = 1024
)

// burstBuckets is the number of sub-windows of a burst window: the sliding count moves in steps
// of Window/burstBuckets.
const burstBuckets = 10

// maxEmptyWindows bounds the zero-count windows folded into a burst baseline after a silence;
// after that many the baseline is as good as zero for any alpha above 0.01.
const maxEmptyWindows = 512

// Finding is one behaviour alert. It carries references and numbers, never message content.
type Finding struct {
	Rule     string        `json:"rule"`     // the rule's id
	Kind     Kind          `json:"kind"`     // the rule's kind
	Severity scan.Severity `json:"severity"` // the rule's severity
	Rules    string        `json:"rules"`    // the version of the rules file
	// Platform, Tenant and MsgID are the capture identity of the message the finding is about
	// (for off_channel, the flagged message; for first_contact, the message in which the two
	// first met); empty for findings about a source, or from Tick.
	Platform string `json:"platform,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	MsgID    string `json:"msg_id,omitempty"`
	// Conversation is the conversation id, when the finding is about one.
	Conversation string `json:"conversation,omitempty"`
	// Sender is the sender (capture.Party.ID, else StaffID) of the message, when there is one.
	Sender string `json:"sender,omitempty"`
	// Source names the capture source (Options.SourceOf) of a source_silence or
	// reconnect_storm finding, and of a conversation_silence finding the source of the
	// conversation's last message.
	Source string `json:"source,omitempty"`
	// External and Staff are the two parties of a first_contact finding: the external party's
	// id and the internal staff member's (StaffID, else ID).
	External string `json:"external,omitempty"`
	Staff    string `json:"staff,omitempty"`
	// At is when it happened: the message's time (zero if it has no usable time), the
	// Reconnect's, or Tick's now.
	At time.Time `json:"at"`
	// Since is when a silence began (off_channel: the flagged message's time; source_silence
	// and conversation_silence: the last message's); zero for other kinds.
	Since time.Time `json:"since,omitzero"`
	// Reason says why, with the numbers that made the rule fire.
	Reason string `json:"reason"`
}

// Key identifies what a finding is about, so that an alert pipeline can drop repeats: the rule
// and the message (off_hours, burst, off_channel, sequence_gap), the pair (first_contact), the
// silence (rule, source or conversation, Since) or the storm (rule, source, At). A detector
// reports each key at most once, but one rebuilt from messages alone (without the Tick calls
// of the original run) may report a silence again, under the same key.
func (f *Finding) Key() string {
	var parts []string
	switch f.Kind {
	case KindFirstContact:
		parts = []string{f.External, f.Staff}
	case KindSourceSilence:
		parts = []string{f.Source, f.Since.UTC().Format(time.RFC3339Nano)}
	case KindConversationSilence:
		parts = []string{f.Platform, f.Tenant, f.Conversation, f.Since.UTC().Format(time.RFC3339Nano)}
	case KindReconnectStorm:
		parts = []string{f.Source, f.At.UTC().Format(time.RFC3339Nano)}
	default:
		parts = []string{f.Platform, f.Tenant, f.MsgID}
	}
	b, _ := json.Marshal(append([]string{f.Rule}, parts...)) // a list of strings always encodes
	return string(b)
}

// Identity returns the capture identity of the message the finding is about (zero if none).
func (f *Finding) Identity() capture.Identity {
	return capture.Identity{Platform: f.Platform, Tenant: f.Tenant, ID: f.MsgID}
}

// Options configures a Detector. The zero value is ready to use.
type Options struct {
	// LoadLocation resolves a desk's time zone; nil means time.LoadLocation, which reads the
	// system's zone database (or the one embedded by importing time/tzdata in the program).
	LoadLocation func(name string) (*time.Location, error)
	// Calendars are the holiday calendars desks may name; nil means the shipped Hong Kong
	// calendar (HongKongCalendar). Pass your own (ParseCalendar) to extend or replace it.
	Calendars []*Calendar
	// PartyCorp returns the corp id of a party of m, or "" when unknown (unknown parties are
	// left out of first_contact). p is &m.Sender or &m.Mentions[i]. nil means DefaultPartyCorp.
	// It is called only for parties not yet known in the conversation: a party's corp is
	// taken to be stable.
	PartyCorp func(m *capture.Message, p *capture.Party) string
	// Sequence returns a message's per-conversation sequence number, if its platform has one.
	// capture.Message has no such field (DingTalk message ids are opaque), so a sequence_gap
	// rule needs this; nil makes New refuse such a rule with ErrNoSequence.
	Sequence func(m *capture.Message) (seq uint64, ok bool)
	// SourceOf names the capture source of a message for source_silence; nil means
	// Platform + "/" + Tenant. Pass the same names to Reconnect.
	SourceOf func(m *capture.Message) string

	// Caps on state, each evicting the least recently used entry when full (counted in Stats):
	// per-sender burst baselines, per-conversation state (off-channel silences, silence,
	// sequence, participants), per-source state, and the (external, staff) pairs already
	// reported by first_contact. Zero means the Default constants. MaxParticipants bounds the
	// participants tracked per conversation; later ones are not tracked (Stats).
	MaxSenders, MaxConversations, MaxSources, MaxPairs, MaxParticipants int
}

// Stats counts what the detector did and what its caps cost.
type Stats struct {
	Messages, Reconnects, Ticks uint64
	// Untimed counts messages with neither SentAt nor CapturedAt (or one outside the years 0
	// to 9999); only first_contact and sequence_gap ran on them. UnusableTimes counts Reconnect
	// and Tick calls ignored for such a time.
	Untimed, UnusableTimes uint64
	// CalendarMisses counts off-hours checks on a date in a year the desk's calendar does
	// not cover: holidays were not checked.
	CalendarMisses uint64
	// The number of entries held now, by table.
	Senders, Conversations, Sources, Pairs int
	// Entries evicted by a cap, by table. An evicted sender starts a fresh baseline; an
	// evicted conversation loses its pending off-channel silences (DroppedPending) and its
	// participants; an evicted pair may be reported again.
	EvictedSenders, EvictedConversations, EvictedSources, EvictedPairs uint64
	// DroppedPending counts off-channel silences lost with an evicted conversation.
	DroppedPending uint64
	// ParticipantsDropped counts parties not tracked because their conversation was at
	// MaxParticipants.
	ParticipantsDropped uint64
	// SequenceRegressions counts messages whose sequence was not above the last one seen in
	// their conversation (a replay or reordering; not a gap).
	SequenceRegressions uint64
}

// Detector runs behaviour rules over a stream of messages, reconnects and ticks.
//
// Its findings depend only on the rules, the options and the order and content of the calls,
// never on the wall clock: the same calls in the same order give the same findings, so the
// state can be rebuilt by feeding the ledger's messages again in order. Messages should come
// in time order; a message older than a state's latest is counted at that latest time.
//
// A Detector is safe for concurrent use: calls are serialized by a mutex. Findings then
// depend on the order in which calls take it, so feed it from one goroutine (the ledger's
// scan cursor) when the output must be reproducible.
type Detector struct {
	mu      sync.Mutex
	version string
	rules   []rule
	opts    Options
	firm    map[string]bool

	ocRules, burstRules, stormRules int // how many rules of these kinds (state slots)
	needConv, needSource, needFirst bool
	needConvSource                  bool // conversation_silence: a conversation knows its source

	keyBuf  []byte // scratch for table keys
	senders *lru[senderState]
	convs   *lru[convState]
	sources *lru[sourceState]
	pairs   *lru[struct{}]
	stats   Stats
}

type rule struct {
	Rule
	slot int // index among the rules of its kind, for per-kind state slices
	bit  uint64

	desks    []desk
	bySender map[string]int
	defDesk  int
	cats     map[string]bool
}

type desk struct {
	Desk
	loc *time.Location
	// The zone period of the last lookup: times in [zoneStart, zoneEnd) have offset zoneOff.
	// A cache of what loc says, so it changes no result; it saves a zone lookup per message.
	zoneSet            bool
	zoneStart, zoneEnd time.Time // zero: unbounded
	zoneOff            int
	days               [7]bool
	cal                map[int32]string
	years              map[int]bool
	calName            string
}

type senderState struct {
	bursts []burstState
}

type burstState struct {
	started     bool
	ring        [burstBuckets]uint32
	bucket      int64 // index of the newest bucket
	window      int64 // index of the current whole window
	windowCount uint32
	windows     uint32 // whole windows folded into the baseline
	mean, vari  float64
	lastFire    int64
}

type convState struct {
	platform, tenant, id string
	source               string // of the last timed message, for conversation_silence
	seen                 bool
	last                 time.Time
	fired                uint64 // conversation_silence rules that fired since the last message
	pending              []pendingOC
	haveSeq              bool
	seq                  uint64
	internal, external   []string
}

type pendingOC struct {
	set                 bool
	at                  time.Time
	msgID, sender, cats string
}

type sourceState struct {
	seen   bool
	last   time.Time
	fired  uint64
	storms []stormState
}

type stormState struct {
	times []time.Time // a ring of the last Count reconnects
	next  int
}

// New compiles rules into a Detector. It validates the rules, resolves every desk's time zone
// and calendar, and refuses a sequence_gap rule without Options.Sequence (ErrNoSequence).
// Errors about a rule are *RulesError values naming it and the field; an invalid calendar in
// Options.Calendars is a *CalendarError.
func New(rules *Rules, opts Options) (*Detector, error) {
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	if opts.LoadLocation == nil {
		opts.LoadLocation = time.LoadLocation
	}
	if opts.Calendars == nil {
		opts.Calendars = []*Calendar{HongKongCalendar()}
	}
	if opts.PartyCorp == nil {
		opts.PartyCorp = DefaultPartyCorp
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.MaxSenders, DefaultMaxSenders)
	def(&opts.MaxConversations, DefaultMaxConversations)
	def(&opts.MaxSources, DefaultMaxSources)
	def(&opts.MaxPairs, DefaultMaxPairs)
	def(&opts.MaxParticipants, DefaultMaxParticipants)

	type calIndex struct {
		idx   map[int32]string
		years map[int]bool
	}
	cals := make(map[string]calIndex)
	for _, c := range opts.Calendars {
		idx, err := c.index()
		if err != nil {
			return nil, err
		}
		years := make(map[int]bool)
		for _, y := range c.Years {
			years[y] = true
		}
		cals[c.Region] = calIndex{idx, years}
	}

	d := &Detector{version: rules.Version, opts: opts, firm: make(map[string]bool)}
	for _, c := range rules.FirmCorpIDs {
		d.firm[c] = true
	}
	for i, r := range rules.Rules {
		// Copy what the detector reads later, so that changing rules after New changes nothing.
		r.Burst, r.OffChannel, r.SourceSilence = clone(r.Burst), clone(r.OffChannel), clone(r.SourceSilence)
		r.ConversationSilence, r.ReconnectStorm = clone(r.ConversationSilence), clone(r.ReconnectStorm)
		cr := rule{Rule: r, bit: 1 << uint(i), defDesk: -1}
		fail := func(field string, err error) (*Detector, error) {
			return nil, &RulesError{Version: rules.Version, Rule: r.ID, Field: field, Err: err}
		}
		switch r.Kind {
		case KindOffHours:
			cr.bySender = make(map[string]int)
			for k, dk := range r.OffHours.Desks {
				loc, err := opts.LoadLocation(dk.TimeZone)
				if err != nil || loc == nil {
					return fail(fmt.Sprintf("off_hours.desks[%d].time_zone", k), fmt.Errorf("%w: %q: %v", scan.ErrInvalidValue, dk.TimeZone, err))
				}
				cd := desk{Desk: dk, loc: loc}
				for _, wd := range dk.Days {
					cd.days[wd] = true
				}
				if dk.Calendar != "" {
					ci, ok := cals[dk.Calendar]
					if !ok {
						return fail(fmt.Sprintf("off_hours.desks[%d].calendar", k), fmt.Errorf("%w: no calendar for region %q", scan.ErrInvalidValue, dk.Calendar))
					}
					cd.cal, cd.years, cd.calName = ci.idx, ci.years, dk.Calendar
				}
				for _, s := range dk.Senders {
					cr.bySender[s] = k
				}
				if dk.Name == r.OffHours.DefaultDesk {
					cr.defDesk = k
				}
				cr.desks = append(cr.desks, cd)
			}
		case KindBurst:
			cr.slot = d.burstRules
			d.burstRules++
		case KindOffChannel:
			cr.slot = d.ocRules
			d.ocRules++
			cr.cats = make(map[string]bool)
			for _, c := range r.OffChannel.Categories {
				cr.cats[c] = true
			}
			d.needConv = true
		case KindFirstContact:
			d.needConv, d.needFirst = true, true
		case KindConversationSilence:
			d.needConv, d.needConvSource = true, true
		case KindSequenceGap:
			if opts.Sequence == nil {
				return fail(string(KindSequenceGap), ErrNoSequence)
			}
			d.needConv = true
		case KindSourceSilence:
			d.needSource = true
		case KindReconnectStorm:
			cr.slot = d.stormRules
			d.stormRules++
		}
		d.rules = append(d.rules, cr)
	}
	d.senders = newLRU[senderState](opts.MaxSenders)
	d.convs = newLRU[convState](opts.MaxConversations)
	d.convs.onEvict = func(_ string, c *convState) {
		for _, p := range c.pending {
			if p.set {
				d.stats.DroppedPending++
			}
		}
	}
	d.sources = newLRU[sourceState](opts.MaxSources)
	d.pairs = newLRU[struct{}](opts.MaxPairs)
	return d, nil
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// Version returns the version of the rules the detector runs.
func (d *Detector) Version() string { return d.version }

// Stats returns the detector's counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Senders, s.Conversations, s.Sources, s.Pairs = d.senders.len(), d.convs.len(), d.sources.len(), d.pairs.len()
	s.EvictedSenders, s.EvictedConversations, s.EvictedSources, s.EvictedPairs = d.senders.evicted, d.convs.evicted, d.sources.evicted, d.pairs.evicted
	return s
}

// msgTime is the time rules use for a message: SentAt, else CapturedAt; false if neither is
// set or usable.
func msgTime(m *capture.Message) (time.Time, bool) {
	if !m.SentAt.IsZero() {
		return m.SentAt, usableTime(m.SentAt)
	}
	return m.CapturedAt, usableTime(m.CapturedAt)
}

// usableTime reports whether t is set and has a year from 0 to 9999, the range RFC 3339 (so a
// finding's JSON, and capture.Message's) can represent.
func usableTime(t time.Time) bool {
	y := t.Year()
	return !t.IsZero() && y >= 0 && y <= 9999
}

// partyID is the key of a party: its platform id, else its staff id.
func partyID(p *capture.Party) string {
	if p.ID != "" {
		return p.ID
	}
	return p.StaffID
}

// staffName is how a staff member is reported: staff id, else platform id.
func staffName(p *capture.Party) string {
	if p.StaffID != "" {
		return p.StaffID
	}
	return p.ID
}

// DefaultPartyCorp is the default Options.PartyCorp. capture.Message has no per-party corp
// id (Tenant is the capturing organization's), so it reads what there is: for the sender of a
// DingTalk message, senderCorpId from the raw payload; otherwise a party with a StaffID
// (DingTalk gives staff ids only to members of the organization) is in m.Tenant; anyone else
// is unknown ("").
func DefaultPartyCorp(m *capture.Message, p *capture.Party) string {
	if p == &m.Sender && m.Platform == capture.PlatformDingTalk && bytes.Contains(m.Raw, []byte(`"senderCorpId"`)) {
		var probe struct {
			SenderCorpID string `json:"senderCorpId"`
		}
		if json.Unmarshal(m.Raw, &probe) == nil && probe.SenderCorpID != "" {
			return probe.SenderCorpID
		}
	}
	if p.StaffID != "" {
		return m.Tenant
	}
	return ""
}

// Observe runs the rules over one message and returns the findings it caused, in rule order.
// categories are the categories of the message's lexicon findings (scan.Finding.Category), in
// any order, duplicates allowed; only off_channel rules read them. A nil m is ignored.
func (d *Detector) Observe(m *capture.Message, categories []string) []Finding {
	if m == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Messages++
	t, timed := msgTime(m)
	if !timed {
		d.stats.Untimed++
		t = time.Time{} // findings of an untimed message have a zero At
	}
	var conv *convState
	if d.needConv {
		d.keyBuf = append(append(append(append(append(d.keyBuf[:0], m.Platform...), 0), m.Tenant...), 0), m.Conversation.ID...)
		var created bool
		conv, created = d.convs.getBytes(d.keyBuf)
		if created {
			conv.platform, conv.tenant, conv.id = m.Platform, m.Tenant, m.Conversation.ID
		}
	}
	var src *sourceState
	if (d.needSource || d.needConvSource) && timed {
		var name string
		if d.opts.SourceOf != nil {
			name = d.opts.SourceOf(m)
			d.keyBuf = append(d.keyBuf[:0], name...)
		} else { // Platform + "/" + Tenant, without allocating
			d.keyBuf = append(append(append(d.keyBuf[:0], m.Platform...), '/'), m.Tenant...)
		}
		if d.needSource {
			src, _ = d.sources.getBytes(d.keyBuf)
		}
		if d.needConvSource && conv.source != string(d.keyBuf) { // compared without allocating
			conv.source = string(d.keyBuf)
		}
	}
	var snd *senderState
	if d.burstRules > 0 && timed {
		d.keyBuf = append(append(append(d.keyBuf[:0], m.Tenant...), 0), partyID(&m.Sender)...)
		snd, _ = d.senders.getBytes(d.keyBuf)
		if snd.bursts == nil {
			snd.bursts = make([]burstState, d.burstRules)
		}
	}
	var out []Finding
	f := func(r *rule) Finding {
		return Finding{Rule: r.ID, Kind: r.Kind, Severity: r.Severity, Rules: d.version,
			Platform: m.Platform, Tenant: m.Tenant, MsgID: m.ID, Conversation: m.Conversation.ID,
			Sender: partyID(&m.Sender), At: t}
	}
	var newPairs [][2]string
	if d.needFirst {
		newPairs = d.meet(m, conv)
	}
	for i := range d.rules {
		r := &d.rules[i]
		switch r.Kind {
		case KindOffHours:
			if timed {
				if reason := d.offHours(r, m, t); reason != "" {
					fd := f(r)
					fd.Reason = reason
					out = append(out, fd)
				}
			}
		case KindBurst:
			if timed {
				if reason := snd.bursts[r.slot].observe(r.Burst, t); reason != "" {
					fd := f(r)
					fd.Reason = reason
					out = append(out, fd)
				}
			}
		case KindOffChannel:
			if !timed {
				continue
			}
			if conv.pending == nil {
				conv.pending = make([]pendingOC, d.ocRules)
			}
			p := &conv.pending[r.slot]
			if p.set && !t.Before(p.at) { // a message sent before the flagged one ends nothing
				if gap := t.Sub(p.at); gap >= r.OffChannel.Silence {
					fd := f(r)
					fd.MsgID, fd.Sender, fd.Since = p.msgID, p.sender, p.at
					fd.Reason = fmt.Sprintf("%s, then no message in the conversation for %v (silence window %v)", p.cats, gap, r.OffChannel.Silence)
					out = append(out, fd)
				}
				*p = pendingOC{}
			}
			if cats := matchCategories(r.cats, categories); cats != "" && !p.set { // a late one does not displace a later one
				*p = pendingOC{set: true, at: t, msgID: m.ID, sender: partyID(&m.Sender), cats: cats}
			}
		case KindFirstContact:
			for _, pr := range newPairs {
				fd := f(r)
				fd.External, fd.Staff = pr[0], pr[1]
				fd.Reason = "first conversation between this external party and this staff member"
				out = append(out, fd)
			}
		case KindSequenceGap:
			seq, ok := d.opts.Sequence(m)
			if !ok {
				continue
			}
			switch {
			case !conv.haveSeq:
				conv.haveSeq, conv.seq = true, seq
			case seq <= conv.seq:
				d.stats.SequenceRegressions++
			default:
				if seq > conv.seq+1 {
					fd := f(r)
					fd.Reason = fmt.Sprintf("sequence %d after %d: %d missing", seq, conv.seq, seq-conv.seq-1)
					out = append(out, fd)
				}
				conv.seq = seq
			}
		}
	}
	if timed {
		if conv != nil {
			if !conv.seen || t.After(conv.last) {
				conv.last = t
			}
			conv.seen, conv.fired = true, 0
		}
		if src != nil {
			if !src.seen || t.After(src.last) {
				src.last = t
			}
			src.seen, src.fired = true, 0
		}
	}
	return out
}

// matchCategories returns the rule's categories among cats, sorted and joined ("category
// off_channel"), or "" if none.
func matchCategories(want map[string]bool, cats []string) string {
	var hit []string
	for _, c := range cats {
		if want[c] && !slices.Contains(hit, c) {
			hit = append(hit, c)
		}
	}
	if len(hit) == 0 {
		return ""
	}
	slices.Sort(hit)
	s := "lexicon category"
	if len(hit) > 1 {
		s = "lexicon categories"
	}
	for i, c := range hit {
		if i > 0 {
			s += ","
		}
		s += " " + c
	}
	return s
}

// offHours returns why t is outside the sender's desk's session, or "".
func (d *Detector) offHours(r *rule, m *capture.Message, t time.Time) string {
	k, ok := -1, false
	if m.Sender.StaffID != "" {
		k, ok = r.bySender[m.Sender.StaffID]
	}
	if !ok && m.Sender.ID != "" {
		k, ok = r.bySender[m.Sender.ID]
	}
	if !ok {
		k = r.defDesk
	}
	if k < 0 {
		return ""
	}
	dk := &r.desks[k]
	lt := dk.local(t)
	hh, mm, ss := lt.Clock()
	tod := time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(lt.Nanosecond())
	y, mo, da := lt.Date()
	in := false
	if dk.Open < dk.Close {
		in = tod >= dk.Open && tod < dk.Close
	} else if tod >= dk.Open {
		in = true
	} else if tod < dk.Close {
		in = true
		da-- // the overnight session opened the day before
	}
	local := func() string { return t.In(dk.loc).Format("2006-01-02 15:04 Mon ") + dk.TimeZone }
	if !in {
		return fmt.Sprintf("sent %s, outside desk %s hours %s-%s", local(), dk.Name, clock(dk.Open), clock(dk.Close))
	}
	day := time.Date(y, mo, da, 12, 0, 0, 0, time.UTC) // normalizes da-1
	if !dk.days[day.Weekday()] {
		return fmt.Sprintf("sent %s, in a session of %s, a day without trading for desk %s", local(), day.Format("Mon 2006-01-02"), dk.Name)
	}
	if dk.cal != nil {
		if !dk.years[day.Year()] {
			d.stats.CalendarMisses++
		} else if name, hol := dk.cal[dateKey(day.Year(), day.Month(), day.Day())]; hol {
			return fmt.Sprintf("sent %s, in a session of %s, a %s holiday (%s) for desk %s", local(), day.Format("Mon 2006-01-02"), dk.calName, name, dk.Name)
		}
	}
	return ""
}

// local returns t's wall clock in the desk's zone, as a UTC time with the same reading.
func (dk *desk) local(t time.Time) time.Time {
	if !dk.zoneSet || !dk.zoneStart.IsZero() && t.Before(dk.zoneStart) || !dk.zoneEnd.IsZero() && !t.Before(dk.zoneEnd) {
		lt := t.In(dk.loc)
		_, dk.zoneOff = lt.Zone()
		dk.zoneStart, dk.zoneEnd = lt.ZoneBounds()
		dk.zoneSet = true
	}
	return t.UTC().Add(time.Duration(dk.zoneOff) * time.Second)
}

// since is t's offset from the Unix epoch, saturated to the range of time.Duration, so that
// times far from the present stay ordered and never overflow.
func since(t time.Time) int64 { return int64(t.Sub(time.Unix(0, 0))) }

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// observe counts one message at t and returns a reason if the sender's sliding count is over
// the threshold and no finding was given in the last window.
func (b *burstState) observe(cfg *Burst, t time.Time) string {
	w := int64(cfg.Window)
	bw := w / burstBuckets
	ns := since(t)
	bi, wi := floorDiv(ns, bw), floorDiv(ns, w)
	if !b.started {
		b.started, b.bucket, b.window, b.lastFire = true, bi, wi, math.MinInt64
	}
	if bi > b.bucket {
		if steps := bi - b.bucket; steps >= burstBuckets {
			b.ring = [burstBuckets]uint32{}
		} else {
			for s := int64(1); s <= steps; s++ {
				b.ring[mod(b.bucket+s, burstBuckets)] = 0
			}
		}
		b.bucket = bi
	}
	if wi > b.window {
		b.fold(float64(b.windowCount), cfg.Alpha)
		for k, gap := int64(0), wi-b.window-1; k < min(gap, maxEmptyWindows); k++ {
			b.fold(0, cfg.Alpha)
		}
		b.windowCount, b.window = 0, wi
	}
	// A late message (bi < b.bucket) counts in the newest bucket and window.
	slot := mod(b.bucket, burstBuckets)
	if b.ring[slot] < math.MaxUint32 {
		b.ring[slot]++
	}
	if b.windowCount < math.MaxUint32 {
		b.windowCount++
	}
	var count uint64
	for _, c := range b.ring {
		count += uint64(c)
	}
	sd := math.Sqrt(b.vari)
	thr := math.Max(float64(cfg.MinCount), b.mean+float64(cfg.K*sd))
	if float64(count) <= thr || b.lastFire != math.MinInt64 && b.bucket-b.lastFire < burstBuckets {
		return ""
	}
	b.lastFire = b.bucket
	return fmt.Sprintf("%d messages in %v; baseline %.2f (sd %.2f) over %d windows; threshold %.2f",
		count, cfg.Window, b.mean, sd, b.windows, thr)
}

// fold adds one whole window's count to the exponentially weighted mean and variance. The
// explicit float64 conversions keep the compiler from fusing multiply-adds, whose rounding
// differs by architecture: the baseline must come out the same everywhere.
func (b *burstState) fold(x, alpha float64) {
	if b.windows == 0 {
		b.mean, b.vari = x, 0
	} else {
		diff := x - b.mean
		incr := float64(alpha * diff)
		b.mean = b.mean + incr
		b.vari = float64((1 - alpha) * float64(b.vari+float64(diff*incr)))
	}
	if b.windows < math.MaxUint32 {
		b.windows++
	}
}

// meet adds the classified parties of m to its conversation and returns the (external,
// staff) pairs that met for the first time.
func (d *Detector) meet(m *capture.Message, conv *convState) [][2]string {
	var pairs [][2]string
	add := func(p *capture.Party) {
		id := partyID(p)
		if id == "" || slices.Contains(conv.external, id) || slices.Contains(conv.internal, staffName(p)) {
			return // known here already: a party's corp is taken to be stable
		}
		corp := d.opts.PartyCorp(m, p)
		if corp == "" {
			return
		}
		internal := d.firm[corp] || len(d.firm) == 0 && corp == m.Tenant
		name := id
		if internal {
			name = staffName(p)
		}
		if len(conv.internal)+len(conv.external) >= d.opts.MaxParticipants {
			d.stats.ParticipantsDropped++
			return
		}
		others := conv.internal
		if internal {
			conv.internal = append(conv.internal, name)
			others = conv.external
		} else {
			conv.external = append(conv.external, name)
		}
		for _, o := range others {
			pr := [2]string{name, o}
			if internal {
				pr = [2]string{o, name}
			}
			if _, created := d.pairs.get(pr[0] + "\x00" + pr[1]); created {
				pairs = append(pairs, pr)
			}
		}
	}
	add(&m.Sender)
	for i := range m.Mentions {
		add(&m.Mentions[i])
	}
	return pairs
}

// Reconnect records that source reconnected at t and returns the reconnect_storm findings it
// caused: Count reconnects within Window. After a finding the count starts again.
func (d *Detector) Reconnect(source string, t time.Time) []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Reconnects++
	if !usableTime(t) {
		d.stats.UnusableTimes++
		return nil
	}
	if d.stormRules == 0 {
		return nil
	}
	src, _ := d.sources.get(source)
	if src.storms == nil {
		src.storms = make([]stormState, d.stormRules)
	}
	var out []Finding
	for i := range d.rules {
		r := &d.rules[i]
		if r.Kind != KindReconnectStorm {
			continue
		}
		st := &src.storms[r.slot]
		n := r.ReconnectStorm.Count
		if len(st.times) < n {
			st.times = append(st.times, t)
		} else {
			st.times[st.next] = t
			st.next = (st.next + 1) % n
		}
		if len(st.times) < n {
			continue
		}
		oldest := st.times[st.next]
		if span := t.Sub(oldest); span >= 0 && span <= r.ReconnectStorm.Window {
			out = append(out, Finding{Rule: r.ID, Kind: r.Kind, Severity: r.Severity, Rules: d.version, Source: source, At: t,
				Reason: fmt.Sprintf("%d reconnects in %v (window %v)", n, span, r.ReconnectStorm.Window)})
			st.times, st.next = st.times[:0], 0
		}
	}
	return out
}

// Tick reports silences that have lasted until now: off_channel silences not yet ended by a
// message, and source_silence and conversation_silence (once per silence; the next message
// re-arms them). Findings come in rule order, then by conversation or source key. Call it
// periodically with the current time (or, when replaying, with the times the original run
// used); it never reads the clock itself. Its cost is linear in the state held, plus a sort.
func (d *Detector) Tick(now time.Time) []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Ticks++
	if !usableTime(now) {
		d.stats.UnusableTimes++
		return nil
	}
	var out []Finding
	var convKeys, srcKeys []string
	for i := range d.rules {
		r := &d.rules[i]
		switch r.Kind {
		case KindOffChannel, KindConversationSilence:
			if convKeys == nil {
				convKeys = sortedKeys(d.convs.m)
			}
			for _, k := range convKeys {
				c := d.convs.peek(k)
				if r.Kind == KindOffChannel {
					if c.pending == nil || !c.pending[r.slot].set {
						continue
					}
					p := &c.pending[r.slot]
					if gap := now.Sub(p.at); gap >= r.OffChannel.Silence {
						out = append(out, Finding{Rule: r.ID, Kind: r.Kind, Severity: r.Severity, Rules: d.version,
							Platform: c.platform, Tenant: c.tenant, MsgID: p.msgID, Conversation: c.id, Sender: p.sender, At: now, Since: p.at,
							Reason: fmt.Sprintf("%s, then no message in the conversation for %v so far (silence window %v)", p.cats, gap, r.OffChannel.Silence)})
						*p = pendingOC{}
					}
					continue
				}
				if gap := now.Sub(c.last); c.seen && c.fired&r.bit == 0 && gap >= r.ConversationSilence.Window {
					c.fired |= r.bit
					out = append(out, Finding{Rule: r.ID, Kind: r.Kind, Severity: r.Severity, Rules: d.version,
						Platform: c.platform, Tenant: c.tenant, Conversation: c.id, Source: c.source, At: now, Since: c.last,
						Reason: fmt.Sprintf("no message in the conversation for %v (window %v)", gap, r.ConversationSilence.Window)})
				}
			}
		case KindSourceSilence:
			if srcKeys == nil {
				srcKeys = sortedKeys(d.sources.m)
			}
			for _, k := range srcKeys {
				s := d.sources.peek(k)
				if gap := now.Sub(s.last); s.seen && s.fired&r.bit == 0 && gap >= r.SourceSilence.Window {
					s.fired |= r.bit
					out = append(out, Finding{Rule: r.ID, Kind: r.Kind, Severity: r.Severity, Rules: d.version, Source: k, At: now, Since: s.last,
						Reason: fmt.Sprintf("no message from the source for %v (window %v)", gap, r.SourceSilence.Window)})
				}
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]*lruNode[V]) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// burstMemory is how many whole windows a burst baseline is taken to remember: ceil(3/alpha),
// after which a window's weight in the baseline, (1-alpha)^n, is below e^-3 (5%); at most
// maxEmptyWindows, beyond which a silence folds no more windows in.
func burstMemory(alpha float64) int64 {
	n := math.Ceil(3 / alpha)
	if !(n < maxEmptyWindows) { // NaN too
		return maxEmptyWindows
	}
	return int64(n)
}

// UsesCategories reports whether a loaded rule reads the lexicon categories Observe is given
// (off_channel): without one, a caller may pass nil and skip scanning for them.
func (d *Detector) UsesCategories() bool { return d.ocRules > 0 }

// Memory returns how far back in message time the rules' state reaches, for a program that
// rebuilds a detector by replaying messages (after a restart): replaying the messages of the
// last window before where the original stopped gives the state the rules use. window is the
// longest of the silence windows (source_silence, conversation_silence, off_channel) and of
// the span a burst baseline remembers (the burst window times ceil(3/alpha) windows, after
// which a window weighs less than 5% in the baseline, plus the sliding window itself).
// unbounded is true when a rule keeps state with no time bound: first_contact (the pairs that
// have met, and who is in each conversation) and sequence_gap (a conversation's last
// sequence); replaying a window rebuilds those only as far as the window reaches, and the
// caller chooses how far that is. reconnect_storm counts reconnects, which are not messages:
// its state is not rebuilt by a replay.
func (d *Detector) Memory() (window time.Duration, unbounded bool) {
	for i := range d.rules {
		r := &d.rules[i]
		switch r.Kind {
		case KindBurst:
			window = max(window, r.Burst.Window*time.Duration(burstMemory(r.Burst.Alpha)+1))
		case KindOffChannel:
			window = max(window, r.OffChannel.Silence)
		case KindSourceSilence:
			window = max(window, r.SourceSilence.Window)
		case KindConversationSilence:
			window = max(window, r.ConversationSilence.Window)
		case KindFirstContact, KindSequenceGap:
			unbounded = true
		}
	}
	return window, unbounded
}

// Restore tells a detector being rebuilt that it reported f before (f as the original
// detector returned it, read back from where it was kept), at the point of the replay where f
// was reported, so that it does not report it again: the silence f names (source_silence,
// conversation_silence, or an off_channel silence reported by Tick), if it is still going on
// from the same Since, counts as reported; the (external, staff) pair of a first_contact
// finding counts as met, even when the messages in which they met are older than the replay.
// Other findings, and findings of rules the detector does not have (by id and kind), change
// nothing. It reports whether f changed the state.
func (d *Detector) Restore(f Finding) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.rules {
		r := &d.rules[i]
		if r.ID != f.Rule || r.Kind != f.Kind {
			continue
		}
		switch r.Kind {
		case KindFirstContact:
			if f.External == "" || f.Staff == "" {
				return false
			}
			_, created := d.pairs.get(f.External + "\x00" + f.Staff)
			return created
		case KindSourceSilence:
			if s := d.sources.peek(f.Source); s != nil && s.seen && s.fired&r.bit == 0 && s.last.Equal(f.Since) {
				s.fired |= r.bit
				return true
			}
		case KindConversationSilence:
			if c := d.convs.peek(f.Platform + "\x00" + f.Tenant + "\x00" + f.Conversation); c != nil && c.seen && c.fired&r.bit == 0 && c.last.Equal(f.Since) {
				c.fired |= r.bit
				return true
			}
		case KindOffChannel:
			c := d.convs.peek(f.Platform + "\x00" + f.Tenant + "\x00" + f.Conversation)
			if c == nil || c.pending == nil {
				return false
			}
			if p := &c.pending[r.slot]; p.set && p.msgID == f.MsgID && p.at.Equal(f.Since) {
				*p = pendingOC{}
				return true
			}
		}
		return false
	}
	return false
}
