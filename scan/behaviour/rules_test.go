package behaviour

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/scan"
)

const fullRules = `{
  "version": "2026-11-29.1",
  "firm_corp_ids": ["corp"],
  "rules": [
    {"id": "after-hours", "severity": "medium", "description": "outside the session",
     "off_hours": {
       "desks": [{"name": "hk-equities", "time_zone": "Asia/Hong_Kong", "senders": ["staff01", "staff02"],
                  "open": "09:00", "close": "18:00", "calendar": "HK"},
                 {"name": "ny", "time_zone": "America/New_York", "senders": ["nyc01"],
                  "days": ["mon","tue","wed","thu","fri"], "open": "09:30", "close": "16:00"},
                 {"name": "night", "time_zone": "Asia/Hong_Kong", "senders": ["owl"],
                  "days": ["mon","tue","wed","thu","fri"], "open": "22:00", "close": "06:00", "calendar": "HK"}],
       "default_desk": "hk-equities"}},
    {"id": "burst", "severity": "low", "burst": {"window": "10m", "min_count": 5, "k": 3, "alpha": 0.5}},
    {"id": "gone-quiet", "severity": "high", "off_channel": {"categories": ["off_channel"], "silence": "30m"}},
    {"id": "new-external", "severity": "info", "first_contact": {}},
    {"id": "source-down", "severity": "high", "source_silence": {"window": "15m"}},
    {"id": "chat-quiet", "severity": "info", "conversation_silence": {"window": "72h"}},
    {"id": "flapping", "severity": "medium", "reconnect_storm": {"count": 3, "window": "10m"}}
  ]
}`

func TestParseRulesFull(t *testing.T) {
	rs := mustRules(t, fullRules)
	if rs.Version != "2026-11-29.1" || len(rs.Rules) != 7 || rs.FirmCorpIDs[0] != "corp" {
		t.Fatalf("parsed %+v", rs)
	}
	oh := rs.Rules[0]
	if oh.Kind != KindOffHours || oh.Severity != scan.Medium || oh.Description != "outside the session" {
		t.Fatalf("rule 0: %+v", oh)
	}
	hk := oh.OffHours.Desks[0]
	if hk.Open != 9*time.Hour || hk.Close != 18*time.Hour || len(hk.Days) != 5 || hk.Days[0] != time.Monday || hk.Calendar != "HK" {
		t.Fatalf("desk defaults: %+v", hk)
	}
	if b := rs.Rules[1].Burst; b.Window != 10*time.Minute || b.MinCount != 5 || b.K != 3 || b.Alpha != 0.5 {
		t.Fatalf("burst: %+v", b)
	}
	if b := mustRules(t, rulesOf(`{"id":"b","severity":"low","burst":{"window":"1m"}}`)).Rules[0].Burst; b.MinCount != 20 || b.K != 3 || b.Alpha != 0.1 {
		t.Fatalf("burst defaults: %+v", b)
	}
	wantKinds := []Kind{KindOffHours, KindBurst, KindOffChannel, KindFirstContact, KindSourceSilence, KindConversationSilence, KindReconnectStorm}
	for i, k := range wantKinds {
		if rs.Rules[i].Kind != k {
			t.Errorf("rule %d kind %s, want %s", i, rs.Rules[i].Kind, k)
		}
	}
	if _, err := New(rs, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestParseRulesErrors(t *testing.T) {
	desk := func(extra string) string {
		return `{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"Asia/Hong_Kong","open":"09:00","close":"18:00"` + extra + `}]}}`
	}
	for _, tc := range []struct {
		name, js    string
		rule, field string
		want        error
	}{
		{"not json", `{`, "", "", scan.ErrSyntax},
		{"trailing", rulesOf(`{"id":"a","severity":"low","first_contact":{}}`) + `{}`, "", "", scan.ErrSyntax},
		{"invalid utf8", "{\"version\":\"\xff\",\"rules\":[]}", "", "", scan.ErrInvalidUTF8},
		{"unknown top field", `{"version":"v","rulez":[]}`, "", "", scan.ErrUnknownField},
		{"no version", `{"rules":[{"id":"a","severity":"low","first_contact":{}}]}`, "", "version", scan.ErrMissingField},
		{"no rules", `{"version":"v","rules":[]}`, "", "rules", scan.ErrMissingField},
		{"unknown rule field", rulesOf(`{"id":"a","severity":"low","first_contact":{},"colour":"red"}`), "a", "", scan.ErrUnknownField},
		{"unknown kind field", rulesOf(`{"id":"a","severity":"low","first_contact":{"x":1}}`), "a", "", scan.ErrUnknownField},
		{"wrong type", rulesOf(`{"id":"a","severity":"low","burst":{"window":"1m","min_count":"many"}}`), "a", "", scan.ErrSyntax},
		{"no kind", rulesOf(`{"id":"a","severity":"low"}`), "a", "", scan.ErrInvalidValue},
		{"two kinds", rulesOf(`{"id":"a","severity":"low","first_contact":{},"sequence_gap":{}}`), "a", "", scan.ErrInvalidValue},
		{"no severity", rulesOf(`{"id":"a","first_contact":{}}`), "a", "severity", scan.ErrMissingField},
		{"bad severity", rulesOf(`{"id":"a","severity":"urgent","first_contact":{}}`), "a", "severity", scan.ErrUnknownSeverity},
		{"bad id", rulesOf(`{"id":"a b","severity":"low","first_contact":{}}`), "#1", "id", scan.ErrInvalidValue},
		{"duplicate id", rulesOf(`{"id":"a","severity":"low","first_contact":{}}`, `{"id":"a","severity":"low","sequence_gap":{}}`), "a", "id", scan.ErrDuplicateID},
		{"burst no window", rulesOf(`{"id":"b","severity":"low","burst":{}}`), "b", "burst.window", scan.ErrMissingField},
		{"burst bad window", rulesOf(`{"id":"b","severity":"low","burst":{"window":"soon"}}`), "b", "burst.window", scan.ErrInvalidValue},
		{"burst tiny window", rulesOf(`{"id":"b","severity":"low","burst":{"window":"10ms"}}`), "b", "burst.window", scan.ErrInvalidValue},
		{"burst huge window", rulesOf(`{"id":"b","severity":"low","burst":{"window":"800h"}}`), "b", "burst.window", scan.ErrInvalidValue},
		{"burst alpha 0", rulesOf(`{"id":"b","severity":"low","burst":{"window":"1m","alpha":0}}`), "b", "burst.alpha", scan.ErrInvalidValue},
		{"burst k negative", rulesOf(`{"id":"b","severity":"low","burst":{"window":"1m","k":-1}}`), "b", "burst.k", scan.ErrInvalidValue},
		{"burst min_count 0", rulesOf(`{"id":"b","severity":"low","burst":{"window":"1m","min_count":0}}`), "b", "burst.min_count", scan.ErrInvalidValue},
		{"oc no categories", rulesOf(`{"id":"o","severity":"low","off_channel":{"silence":"1m"}}`), "o", "off_channel.categories", scan.ErrMissingField},
		{"oc bad category", rulesOf(`{"id":"o","severity":"low","off_channel":{"categories":["a b"],"silence":"1m"}}`), "o", "off_channel.categories[0]", scan.ErrInvalidValue},
		{"oc dup category", rulesOf(`{"id":"o","severity":"low","off_channel":{"categories":["a","a"],"silence":"1m"}}`), "o", "off_channel.categories[1]", scan.ErrInvalidValue},
		{"oc no silence", rulesOf(`{"id":"o","severity":"low","off_channel":{"categories":["a"]}}`), "o", "off_channel.silence", scan.ErrMissingField},
		{"storm no count", rulesOf(`{"id":"s","severity":"low","reconnect_storm":{"window":"1m"}}`), "s", "reconnect_storm.count", scan.ErrMissingField},
		{"storm count 1", rulesOf(`{"id":"s","severity":"low","reconnect_storm":{"count":1,"window":"1m"}}`), "s", "reconnect_storm.count", scan.ErrInvalidValue},
		{"silence no window", rulesOf(`{"id":"s","severity":"low","source_silence":{}}`), "s", "source_silence.window", scan.ErrMissingField},
		{"conv silence bad", rulesOf(`{"id":"s","severity":"low","conversation_silence":{"window":"-5m"}}`), "s", "conversation_silence.window", scan.ErrInvalidValue},
		{"no desks", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[]}}`), "oh", "off_hours.desks", scan.ErrMissingField},
		{"open 25:00", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"UTC","open":"25:00","close":"18:00"}]}}`), "oh", "off_hours.desks[0].open", scan.ErrInvalidValue},
		{"open 9am", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"UTC","open":"9am","close":"18:00"}]}}`), "oh", "off_hours.desks[0].open", scan.ErrInvalidValue},
		{"no close", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"UTC","open":"09:00"}]}}`), "oh", "off_hours.desks[0].close", scan.ErrMissingField},
		{"empty session", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"UTC","open":"09:00","close":"09:00"}]}}`), "oh", "off_hours.desks[0].close", scan.ErrInvalidValue},
		{"bad day", rulesOf(desk(`,"days":["monday"]`)), "oh", "off_hours.desks[0].days[0]", scan.ErrInvalidValue},
		{"day twice", rulesOf(desk(`,"days":["mon","mon"]`)), "oh", "off_hours.desks[0].days[1]", scan.ErrInvalidValue},
		{"no zone", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","open":"09:00","close":"18:00"}]}}`), "oh", "off_hours.desks[0].time_zone", scan.ErrMissingField},
		{"sender twice", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[
			{"name":"a","time_zone":"UTC","open":"09:00","close":"18:00","senders":["x"]},
			{"name":"b","time_zone":"UTC","open":"09:00","close":"18:00","senders":["y","x"]}]}}`), "oh", "off_hours.desks[1].senders[1]", scan.ErrInvalidValue},
		{"desk twice", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[
			{"name":"a","time_zone":"UTC","open":"09:00","close":"18:00"},
			{"name":"a","time_zone":"UTC","open":"09:00","close":"18:00"}]}}`), "oh", "off_hours.desks[1].name", scan.ErrInvalidValue},
		{"unknown default desk", rulesOf(`{"id":"oh","severity":"low","off_hours":{"default_desk":"zz","desks":[{"name":"a","time_zone":"UTC","open":"09:00","close":"18:00"}]}}`), "oh", "off_hours.default_desk", scan.ErrInvalidValue},
		{"dup corp", `{"version":"v","firm_corp_ids":["a","a"],"rules":[{"id":"a","severity":"low","first_contact":{}}]}`, "", "firm_corp_ids[1]", scan.ErrInvalidValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.js))
			if err == nil {
				t.Fatal("parsed")
			}
			re := asRulesError(err)
			if re == nil {
				t.Fatalf("not a *RulesError: %T %v", err, err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v does not wrap %v", err, tc.want)
			}
			if tc.rule != "" && re.Rule != tc.rule || tc.field != "" && re.Field != tc.field {
				t.Fatalf("error names rule %q field %q, want %q %q: %v", re.Rule, re.Field, tc.rule, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), "behaviour: rules") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestParseRulesTooLarge(t *testing.T) {
	big := make([]byte, MaxRulesBytes+1)
	if _, err := ParseRules(big); !errors.Is(err, scan.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	var rules []string
	for i := 0; i <= MaxRules; i++ {
		rules = append(rules, `{"id":"r`+strings.Repeat("x", i)+`","severity":"low","first_contact":{}}`)
	}
	if _, err := ParseRules([]byte(rulesOf(rules...))); !errors.Is(err, scan.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestValidateRulesBuiltInCode(t *testing.T) {
	ok := &Rules{Version: "v", Rules: []Rule{{ID: "a", Kind: KindFirstContact, Severity: scan.Low, FirstContact: &FirstContact{}}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		r     Rule
		field string
	}{
		{"kind without object", Rule{ID: "a", Kind: KindBurst, Severity: scan.Low}, "burst"},
		{"object of another kind", Rule{ID: "a", Kind: KindFirstContact, Severity: scan.Low, FirstContact: &FirstContact{}, SequenceGap: &SequenceGap{}}, "sequence_gap"},
		{"unknown kind", Rule{ID: "a", Kind: "telepathy", Severity: scan.Low}, "kind"},
		{"no severity", Rule{ID: "a", Kind: KindFirstContact, FirstContact: &FirstContact{}}, "severity"},
		{"burst window not divisible", Rule{ID: "a", Kind: KindBurst, Severity: scan.Low, Burst: &Burst{Window: time.Second + 1, MinCount: 1, Alpha: 1}}, "burst.window"},
		{"weekday out of range", Rule{ID: "a", Kind: KindOffHours, Severity: scan.Low, OffHours: &OffHours{Desks: []Desk{{Name: "d", TimeZone: "UTC", Days: []time.Weekday{9}, Open: time.Hour, Close: 2 * time.Hour}}}}, "off_hours.desks[0].days[0]"},
		{"open not whole minutes", Rule{ID: "a", Kind: KindOffHours, Severity: scan.Low, OffHours: &OffHours{Desks: []Desk{{Name: "d", TimeZone: "UTC", Days: []time.Weekday{1}, Open: time.Second, Close: 2 * time.Hour}}}}, "off_hours.desks[0].open"},
	} {
		rs := &Rules{Version: "v", Rules: []Rule{tc.r}}
		err := rs.Validate()
		re := asRulesError(err)
		if re == nil || re.Field != tc.field || re.Rule != "a" {
			t.Errorf("%s: got %v, want field %q", tc.name, err, tc.field)
		}
	}
	if err := (*Rules)(nil).Validate(); !errors.Is(err, scan.ErrMissingField) {
		t.Fatalf("nil rules: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	seq := rulesOf(`{"id":"g","severity":"high","sequence_gap":{}}`)
	if _, err := New(mustRules(t, seq), Options{}); !errors.Is(err, ErrNoSequence) || asRulesError(err) == nil || asRulesError(err).Rule != "g" {
		t.Fatalf("sequence_gap without Options.Sequence: %v", err)
	}
	zone := rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"Mars/Olympus_Mons","open":"09:00","close":"18:00"}]}}`)
	_, err := New(mustRules(t, zone), Options{})
	if re := asRulesError(err); re == nil || re.Field != "off_hours.desks[0].time_zone" || !errors.Is(err, scan.ErrInvalidValue) {
		t.Fatalf("unknown zone: %v", err)
	}
	cal := rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"UTC","open":"09:00","close":"18:00","calendar":"UK"}]}}`)
	_, err = New(mustRules(t, cal), Options{})
	if re := asRulesError(err); re == nil || re.Field != "off_hours.desks[0].calendar" {
		t.Fatalf("unknown calendar: %v", err)
	}
	// The resolver is the only way zones are loaded: one that refuses everything is obeyed.
	resolverCalled := false
	_, err = New(mustRules(t, fullRules), Options{LoadLocation: func(name string) (*time.Location, error) {
		resolverCalled = true
		return nil, errors.New("no zones here")
	}})
	if !resolverCalled || err == nil || !strings.Contains(err.Error(), "no zones here") {
		t.Fatalf("resolver: called %v, err %v", resolverCalled, err)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestNewCopiesRules(t *testing.T) {
	rs := mustRules(t, rulesOf(`{"id":"b","severity":"low","burst":{"window":"1m","min_count":2,"k":0,"alpha":1}}`,
		`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"UTC","open":"09:00","close":"18:00"}],"default_desk":"d"}}`))
	d, err := New(rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs.Rules[0].Burst.Window = 0 // would divide by zero if the detector still read it
	rs.Rules[1].OffHours.Desks[0].Open = 0
	for i := range 3 {
		d.Observe(msg(fmt.Sprint(i), "c", "a", t0.Add(10*time.Hour+time.Duration(i)*time.Second)), nil)
	}
	if fs := d.Observe(msg("x", "c", "a", t0.Add(time.Hour)), nil); len(fs) != 1 || fs[0].Rule != "oh" {
		t.Fatalf("%v", fs) // 01:00 is still outside 09:00-18:00; the burst fired earlier, once
	}
}

func TestFileErrorText(t *testing.T) {
	bad := errors.New("bad")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&RulesError{Version: "v1", Rule: "r", Field: "f", Err: bad}, `behaviour: rules "v1": rule "r": field "f": bad`},
		{&RulesError{Err: bad}, `behaviour: rules: bad`},
		{&CalendarError{Region: "HK", Field: "holidays[3].date", Err: bad}, `behaviour: calendar "HK": field "holidays[3].date": bad`},
		{&CalendarError{Err: bad}, `behaviour: calendar: bad`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
