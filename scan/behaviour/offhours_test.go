package behaviour

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/scan"
)

func TestShippedCalendar(t *testing.T) {
	c, err := ParseCalendar(HongKongCalendarJSON())
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "HK" || len(c.Years) != 3 || len(c.Sources) != 3 {
		t.Fatalf("calendar %+v", c)
	}
	perYear := map[string]int{}
	for _, h := range c.Holidays {
		perYear[h.Date[:4]]++
		d, _ := time.Parse(time.DateOnly, h.Date)
		if d.Weekday() == time.Sunday {
			t.Errorf("%s %s is a Sunday: Sundays are holidays anyway and a Sunday holiday moves to the next day", h.Date, h.Name)
		}
	}
	for _, y := range []string{"2025", "2026", "2027"} {
		if perYear[y] != 17 { // Hong Kong has 17 general holidays besides Sundays
			t.Errorf("%s has %d holidays, want 17", y, perYear[y])
		}
	}
	for _, s := range c.Sources {
		if !strings.HasPrefix(s.URL, "https://") || s.Retrieved == "" {
			t.Errorf("source %+v lacks a URL or retrieval date", s)
		}
	}
	// Spot checks against the 2026 press release: the day after Ching Ming (Sunday 5 Apr) and
	// the extra day after Easter Monday; the day after the Buddha's Birthday (Sunday 24 May).
	idx, _ := c.index()
	for _, want := range []struct {
		y    int
		m    time.Month
		d    int
		name string
	}{{2026, 4, 6, "The day following Ching Ming Festival"}, {2026, 4, 7, "The day following Easter Monday"},
		{2026, 5, 25, "The day following the Birthday of the Buddha"}, {2025, 1, 29, "Lunar New Year's Day"},
		{2027, 2, 9, "The fourth day of Lunar New Year"}, {2027, 12, 27, "The first weekday after Christmas Day"}} {
		if got := idx[dateKey(want.y, want.m, want.d)]; got != want.name {
			t.Errorf("%d-%02d-%02d: %q, want %q", want.y, want.m, want.d, got, want.name)
		}
	}
	if _, ok := idx[dateKey(2026, 4, 5)]; ok {
		t.Error("2026-04-05 (a Sunday) listed")
	}
}

func TestParseCalendarErrors(t *testing.T) {
	base := func(years, sources, holidays string) string {
		return `{"format":"commseal.behaviour.calendar/v1","region":"XX","name":"test","years":` + years +
			`,"sources":` + sources + `,"holidays":` + holidays + `}`
	}
	src := `[{"years":[2026],"url":"https://example.org","retrieved":"2026-11-29"}]`
	for _, tc := range []struct {
		name, js, field string
		want            error
	}{
		{"not json", `[`, "", scan.ErrSyntax},
		{"unknown field", `{"format":"commseal.behaviour.calendar/v1","colour":1}`, "", scan.ErrUnknownField},
		{"wrong format", `{"format":"v0"}`, "format", scan.ErrInvalidValue},
		{"no years", base(`[]`, src, `[]`), "years", scan.ErrMissingField},
		{"bad year", base(`[26]`, src, `[]`), "years[0]", scan.ErrInvalidValue},
		{"no sources", base(`[2026]`, `[]`, `[{"date":"2026-01-01","name":"x"}]`), "sources", scan.ErrMissingField},
		{"source year not covered", base(`[2026]`, `[{"years":[2025],"url":"u","retrieved":"2026-11-29"}]`, `[]`), "sources[0].years[0]", scan.ErrInvalidValue},
		{"bad retrieved", base(`[2026]`, `[{"years":[2026],"url":"u","retrieved":"yesterday"}]`, `[]`), "sources[0].retrieved", scan.ErrInvalidValue},
		{"bad date", base(`[2026]`, src, `[{"date":"2026-02-30","name":"x"}]`), "holidays[0].date", scan.ErrInvalidValue},
		{"date outside years", base(`[2026]`, src, `[{"date":"2027-01-01","name":"x"}]`), "holidays[0].date", scan.ErrInvalidValue},
		{"unsorted", base(`[2026]`, src, `[{"date":"2026-02-01","name":"x"},{"date":"2026-01-01","name":"y"}]`), "holidays[1].date", scan.ErrInvalidValue},
		{"duplicate", base(`[2026]`, src, `[{"date":"2026-01-01","name":"x"},{"date":"2026-01-01","name":"y"}]`), "holidays[1].date", scan.ErrInvalidValue},
		{"wrong weekday", base(`[2026]`, src, `[{"date":"2026-01-01","weekday":"fri","name":"x"}]`), "holidays[0].weekday", scan.ErrInvalidValue},
		{"no name", base(`[2026]`, src, `[{"date":"2026-01-01"}]`), "holidays[0].name", scan.ErrMissingField},
		{"year without holidays", base(`[2026,2027]`, `[{"years":[2026,2027],"url":"u","retrieved":"2026-11-29"}]`, `[{"date":"2026-01-01","name":"x"}]`), "holidays", scan.ErrMissingField},
		{"year without source", base(`[2026,2027]`, src, `[{"date":"2026-01-01","name":"x"},{"date":"2027-01-01","name":"x"}]`), "sources", scan.ErrMissingField},
		{"invalid utf8", "{\"format\":\"\xff\"}", "", scan.ErrInvalidUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCalendar([]byte(tc.js))
			var ce *CalendarError
			if !errors.As(err, &ce) || !errors.Is(err, tc.want) || ce.Field != tc.field {
				t.Fatalf("got %v (field %q), want field %q wrapping %v", err, fieldOf(ce), tc.field, tc.want)
			}
		})
	}
	if _, err := ParseCalendar([]byte(base(`[2026]`, src, `[{"date":"2026-01-01","weekday":"thu","name":"x"}]`))); err != nil {
		t.Fatalf("a good calendar: %v", err)
	}
}

func fieldOf(ce *CalendarError) string {
	if ce == nil {
		return "<nil>"
	}
	return ce.Field
}

const offHoursRules = `{"version": "oh-1", "rules": [{"id": "oh", "severity": "medium", "off_hours": {
  "desks": [
    {"name": "hk", "time_zone": "Asia/Hong_Kong", "senders": ["hk1"], "open": "09:00", "close": "18:00", "calendar": "HK"},
    {"name": "ny", "time_zone": "America/New_York", "senders": ["ny1"], "open": "09:30", "close": "16:00"},
    {"name": "night", "time_zone": "Asia/Hong_Kong", "senders": ["owl"], "open": "22:00", "close": "06:00", "calendar": "HK"},
    {"name": "allday", "time_zone": "UTC", "senders": ["any"], "days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "00:00", "close": "24:00"}
  ],
  "default_desk": "hk"}}]}`

func TestOffHours(t *testing.T) {
	d := mustNew(t, offHoursRules, Options{})
	for _, tc := range []struct {
		name, sender, at string
		fire             bool
		reason           string // a part of the reason
	}{
		// Hong Kong is UTC+8 all year: 09:00 HKT is 01:00Z.
		{"hk open edge", "hk1", "2026-03-03T01:00:00Z", false, ""},
		{"hk one ns before open", "hk1", "2026-03-03T00:59:59.999999999Z", true, "08:59 Tue Asia/Hong_Kong, outside desk hk hours 09:00-18:00"},
		{"hk close edge is outside", "hk1", "2026-03-03T10:00:00Z", true, "18:00"},
		{"hk just before close", "hk1", "2026-03-03T09:59:59Z", false, ""},
		{"hk saturday", "hk1", "2026-03-07T03:00:00Z", true, "Sat 2026-03-07, a day without trading"},
		{"hk sunday UTC is monday HKT", "hk1", "2026-03-08T23:30:00Z", true, "07:30 Mon"}, // 07:30 Monday HKT: before open
		{"hk friday 23:30 UTC is saturday HKT", "hk1", "2026-03-06T23:30:00Z", true, "outside desk hk hours"},
		{"hk holiday on a weekday", "hk1", "2026-02-17T03:00:00Z", true, "Tue 2026-02-17, a HK holiday (Lunar New Year's Day)"},
		{"hk extra easter holiday", "hk1", "2026-04-07T03:00:00Z", true, "The day following Easter Monday"},
		{"hk ordinary weekday", "hk1", "2026-04-08T03:00:00Z", false, ""},
		{"default desk for unknown sender", "stranger", "2026-04-08T12:00:00Z", true, "desk hk"},
		// New York: EST (UTC-5) until 8 March 2026, then EDT (UTC-4). 09:30 opens at 14:30Z, then 13:30Z.
		{"ny winter 13:45Z is 08:45 EST", "ny1", "2026-03-06T13:45:00Z", true, "08:45 Fri America/New_York"},
		{"ny summer 13:45Z is 09:45 EDT", "ny1", "2026-03-09T13:45:00Z", false, ""},
		{"ny winter 20:59Z is 15:59 EST", "ny1", "2026-03-06T20:59:00Z", false, ""},
		{"ny summer 20:30Z is 16:30 EDT", "ny1", "2026-03-09T20:30:00Z", true, "16:30 Mon"},
		{"ny has no calendar", "ny1", "2026-02-17T15:00:00Z", false, ""},
		// Overnight desk 22:00-06:00 HKT belongs to the day it opens.
		{"night before midnight", "owl", "2026-03-03T15:00:00Z", false, ""},                                                 // Tue 23:00 HKT
		{"night after midnight", "owl", "2026-03-03T20:00:00Z", false, ""},                                                  // Wed 04:00, Tue's session
		{"night at close", "owl", "2026-03-03T22:00:00Z", true, "06:00 Wed"},                                                // Wed 06:00
		{"night saturday morning is friday session", "owl", "2026-03-06T20:00:00Z", false, ""},                              // Sat 04:00, Fri's session
		{"night sunday morning is saturday session", "owl", "2026-03-07T20:00:00Z", true, "in a session of Sat 2026-03-07"}, // Sun 04:00
		{"night monday 01:00 is sunday session", "owl", "2026-03-08T17:00:00Z", true, "Sun 2026-03-08"},
		{"night on eve of holiday opens the holiday session", "owl", "2026-02-16T15:00:00Z", false, ""}, // Mon 23:00 HKT, Mon's session
		{"night after midnight into holiday is the monday session", "owl", "2026-02-16T17:00:00Z", false, ""},
		{"night holiday evening", "owl", "2026-02-17T15:00:00Z", true, "Lunar New Year's Day"},
		{"all-day desk at midnight", "any", "2026-03-07T00:00:00Z", false, ""},
		{"all-day desk a ns before midnight", "any", "2026-03-07T23:59:59.999999999Z", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := msg("m", "c", tc.sender, utc(tc.at))
			fs := d.Observe(m, nil)
			if got := len(fs) == 1; got != tc.fire || len(fs) > 1 {
				t.Fatalf("findings %v, want fire=%v", fs, tc.fire)
			}
			if tc.fire {
				f := fs[0]
				if !strings.Contains(f.Reason, tc.reason) {
					t.Fatalf("reason %q lacks %q", f.Reason, tc.reason)
				}
				if f.Rule != "oh" || f.Kind != KindOffHours || f.Severity != scan.Medium || f.Rules != "oh-1" ||
					f.MsgID != "m" || f.Conversation != "c" || f.Sender != "uid-"+tc.sender || !f.At.Equal(utc(tc.at)) {
					t.Fatalf("finding %+v", f)
				}
			}
		})
	}
}

func TestOffHoursCalendarMissesAndNoDesk(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[
		{"name":"hk","time_zone":"Asia/Hong_Kong","senders":["hk1"],"open":"09:00","close":"18:00","calendar":"HK"}]}}`), Options{})
	// 2028 is not in the shipped calendar: a weekday in hours is not flagged, and the miss is counted.
	if fs := d.Observe(msg("m1", "c", "hk1", utc("2028-01-26T03:00:00Z")), nil); len(fs) != 0 {
		t.Fatalf("2028: %v", fs)
	}
	if s := d.Stats(); s.CalendarMisses != 1 {
		t.Fatalf("calendar misses %d", s.CalendarMisses)
	}
	// No default desk: a sender in no desk is not checked.
	if fs := d.Observe(msg("m2", "c", "other", utc("2026-03-07T23:00:00Z")), nil); len(fs) != 0 {
		t.Fatalf("unlisted sender: %v", fs)
	}
	// A message without any time is counted, not flagged.
	m := msg("m3", "c", "hk1", time.Time{})
	if fs := d.Observe(m, nil); len(fs) != 0 || d.Stats().Untimed != 1 {
		t.Fatalf("untimed: %v %+v", fs, d.Stats())
	}
	// CapturedAt stands in for a missing SentAt.
	m.CapturedAt = utc("2026-03-07T03:00:00Z")
	if fs := d.Observe(m, nil); len(fs) != 1 {
		t.Fatalf("captured-at only: %v", fs)
	}
}

func TestOffHoursCustomCalendar(t *testing.T) {
	cal, err := ParseCalendar([]byte(`{"format":"commseal.behaviour.calendar/v1","region":"HK","name":"firm closure days",
		"years":[2026],"sources":[{"years":[2026],"url":"https://intranet.example/closures","retrieved":"2026-11-29"}],
		"holidays":[{"date":"2026-03-04","name":"Firm offsite"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	d := mustNew(t, rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[
		{"name":"hk","time_zone":"Asia/Hong_Kong","senders":["hk1"],"open":"09:00","close":"18:00","calendar":"HK"}]}}`),
		Options{Calendars: []*Calendar{cal}})
	if fs := d.Observe(msg("a", "c", "hk1", utc("2026-03-04T03:00:00Z")), nil); len(fs) != 1 || !strings.Contains(fs[0].Reason, "Firm offsite") {
		t.Fatalf("custom holiday: %v", fs)
	}
	// The custom calendar replaced the shipped one: Lunar New Year is a working day here.
	if fs := d.Observe(msg("b", "c", "hk1", utc("2026-02-17T03:00:00Z")), nil); len(fs) != 0 {
		t.Fatalf("shipped holiday still applied: %v", fs)
	}
}
