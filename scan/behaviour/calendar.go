package behaviour

import (
	_ "embed"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/scan"
)

//go:embed data/hk_holidays.json
var hkHolidaysJSON []byte

// CalendarFormat is the value of the "format" field of a calendar file.
const CalendarFormat = "commseal.behaviour.calendar/v1"

// Limits on a calendar file.
const (
	MaxCalendarBytes = 1 << 20 // size of a calendar file
	MaxHolidays      = 10_000  // holidays in one calendar
)

// CalendarError reports what is wrong with a calendar file and where, such as
// "holidays[3].date". It wraps one of package scan's sentinel errors.
type CalendarError struct {
	Region string // the calendar's region, if known
	Field  string // the JSON field, with indexes for list elements
	Err    error  // a sentinel error, possibly wrapped with detail
}

// Error formats the error as `behaviour: calendar "region": field "f": problem`.
func (e *CalendarError) Error() string {
	return fileError("calendar", e.Region, "", e.Field, e.Err)
}

// Unwrap returns the underlying sentinel error.
func (e *CalendarError) Unwrap() error { return e.Err }

// Calendar is a dated list of public holidays of one region, for the off-hours rule. A desk
// names it by Region. It covers whole years: in a year not in Years nothing is known, and the
// detector counts such lookups in Stats.CalendarMisses.
type Calendar struct {
	Region   string           // e.g. "HK"; ASCII letters, digits and . _ - : /
	Name     string           // what the list is, for people
	Years    []int            // the years the list is complete for
	Sources  []CalendarSource // where the dates come from
	Holidays []Holiday        // sorted by date, no date twice
}

// CalendarSource says where a calendar's dates for some years come from and when they were read.
type CalendarSource struct {
	Years     []int
	URL       string
	Retrieved string // YYYY-MM-DD
	Note      string
}

// Holiday is one day off, as a local date of the calendar's region.
type Holiday struct {
	Date string // YYYY-MM-DD
	Name string
}

type calendarJSON struct {
	Format  string `json:"format"`
	Region  string `json:"region"`
	Name    string `json:"name"`
	Years   []int  `json:"years"`
	Sources []struct {
		Years     []int  `json:"years"`
		URL       string `json:"url"`
		Retrieved string `json:"retrieved"`
		Note      string `json:"note"`
	} `json:"sources"`
	Holidays []struct {
		Date    string `json:"date"`
		Weekday string `json:"weekday"`
		Name    string `json:"name"`
	} `json:"holidays"`
}

// HongKongCalendarJSON returns the shipped calendar file: the Hong Kong general holidays
// (other than Sundays) of 2025, 2026 and 2027, with the sources and retrieval dates of each
// year. Holidays are gazetted about a year ahead; replace the file (Options.Calendars) when
// the next year's list is out.
func HongKongCalendarJSON() []byte { return slices.Clone(hkHolidaysJSON) }

// HongKongCalendar returns the shipped calendar parsed (see HongKongCalendarJSON).
func HongKongCalendar() *Calendar {
	c, err := ParseCalendar(hkHolidaysJSON)
	if err != nil { // the shipped file is tested; this cannot happen in a released build
		return &Calendar{Region: "HK"}
	}
	return c
}

// ParseCalendar parses and validates a calendar file:
//
//	{"format": "commseal.behaviour.calendar/v1", "region": "HK", "name": "...",
//	 "years": [2026],
//	 "sources": [{"years": [2026], "url": "https://...", "retrieved": "2026-11-29", "note": "..."}],
//	 "holidays": [{"date": "2026-01-01", "weekday": "thu", "name": "The first day of January"}]}
//
// weekday is optional; when present it must be the date's weekday, a check against typing
// errors. Every year in years needs at least one holiday and one source; every holiday lies
// in one of the years. Errors are *CalendarError values naming the field.
func ParseCalendar(data []byte) (*Calendar, error) {
	if len(data) > MaxCalendarBytes {
		return nil, &CalendarError{Err: fmt.Errorf("%w: %d bytes, limit %d", scan.ErrTooLarge, len(data), MaxCalendarBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &CalendarError{Err: scan.ErrInvalidUTF8}
	}
	var cj calendarJSON
	if err := scan.DecodeStrict(data, &cj, "object"); err != nil {
		return nil, &CalendarError{Err: err}
	}
	if cj.Format != CalendarFormat {
		return nil, &CalendarError{Region: cj.Region, Field: "format", Err: fmt.Errorf("%w: want %q", scan.ErrInvalidValue, CalendarFormat)}
	}
	c := &Calendar{Region: cj.Region, Name: cj.Name, Years: cj.Years}
	for _, s := range cj.Sources {
		c.Sources = append(c.Sources, CalendarSource{Years: s.Years, URL: s.URL, Retrieved: s.Retrieved, Note: s.Note})
	}
	if len(cj.Holidays) > MaxHolidays {
		return nil, &CalendarError{Region: c.Region, Field: "holidays", Err: fmt.Errorf("%w: %d holidays, limit %d", scan.ErrTooLarge, len(cj.Holidays), MaxHolidays)}
	}
	for i, h := range cj.Holidays {
		if h.Weekday != "" {
			d, err := time.Parse(time.DateOnly, h.Date)
			wd, ok := parseWeekday(h.Weekday)
			if err == nil && (!ok || d.Weekday() != wd) {
				return nil, &CalendarError{Region: c.Region, Field: fmt.Sprintf("holidays[%d].weekday", i),
					Err: fmt.Errorf("%w: %s is a %s, not %q", scan.ErrInvalidValue, h.Date, weekdayNames[d.Weekday()], h.Weekday)}
			}
		}
		c.Holidays = append(c.Holidays, Holiday{Date: h.Date, Name: h.Name})
	}
	if _, err := c.index(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the calendar's fields; New calls it for each of Options.Calendars.
func (c *Calendar) Validate() error {
	_, err := c.index()
	return err
}

// index validates c and returns its holidays by date key (see dateKey).
func (c *Calendar) index() (map[int32]string, error) {
	if c == nil {
		return nil, &CalendarError{Err: fmt.Errorf("%w: nil calendar", scan.ErrMissingField)}
	}
	fail := func(field string, err error) (map[int32]string, error) {
		return nil, &CalendarError{Region: c.Region, Field: field, Err: err}
	}
	if err := checkID(c.Region); err != nil {
		return fail("region", err)
	}
	if err := checkName(c.Name, 4096); err != nil {
		return fail("name", err)
	}
	if len(c.Years) == 0 {
		return fail("years", scan.ErrMissingField)
	}
	years := make(map[int]bool, len(c.Years))
	for k, y := range c.Years {
		if y < 1900 || y > 9999 {
			return fail(fmt.Sprintf("years[%d]", k), fmt.Errorf("%w: %d, want 1900 to 9999", scan.ErrInvalidValue, y))
		}
		if years[y] {
			return fail(fmt.Sprintf("years[%d]", k), fmt.Errorf("%w: %d twice", scan.ErrInvalidValue, y))
		}
		years[y] = true
	}
	sourced := make(map[int]bool)
	if len(c.Sources) == 0 {
		return fail("sources", scan.ErrMissingField)
	}
	for i, s := range c.Sources {
		f := func(n string) string { return fmt.Sprintf("sources[%d].%s", i, n) }
		if len(s.Years) == 0 {
			return fail(f("years"), scan.ErrMissingField)
		}
		for k, y := range s.Years {
			if !years[y] {
				return fail(fmt.Sprintf("sources[%d].years[%d]", i, k), fmt.Errorf("%w: %d is not one of the calendar's years", scan.ErrInvalidValue, y))
			}
			sourced[y] = true
		}
		if err := checkName(s.URL, 2048); err != nil {
			return fail(f("url"), err)
		}
		if _, err := time.Parse(time.DateOnly, s.Retrieved); err != nil {
			return fail(f("retrieved"), fmt.Errorf("%w: %q: want YYYY-MM-DD", scan.ErrInvalidValue, s.Retrieved))
		}
		if !utf8.ValidString(s.Note) || len(s.Note) > 4096 {
			return fail(f("note"), fmt.Errorf("%w: not UTF-8 or over 4096 bytes", scan.ErrInvalidValue))
		}
	}
	if len(c.Holidays) > MaxHolidays {
		return fail("holidays", fmt.Errorf("%w: %d holidays, limit %d", scan.ErrTooLarge, len(c.Holidays), MaxHolidays))
	}
	idx := make(map[int32]string, len(c.Holidays))
	held := make(map[int]bool)
	var last string
	for i, h := range c.Holidays {
		f := func(n string) string { return fmt.Sprintf("holidays[%d].%s", i, n) }
		d, err := time.Parse(time.DateOnly, h.Date)
		if err != nil {
			return fail(f("date"), fmt.Errorf("%w: %q: want YYYY-MM-DD", scan.ErrInvalidValue, h.Date))
		}
		if !years[d.Year()] {
			return fail(f("date"), fmt.Errorf("%w: %s is not in the calendar's years", scan.ErrInvalidValue, h.Date))
		}
		if h.Date <= last {
			return fail(f("date"), fmt.Errorf("%w: %s after %s: dates must be sorted with none twice", scan.ErrInvalidValue, h.Date, last))
		}
		last = h.Date
		if err := checkName(h.Name, 256); err != nil {
			return fail(f("name"), err)
		}
		idx[dateKey(d.Year(), d.Month(), d.Day())] = h.Name
		held[d.Year()] = true
	}
	for _, y := range c.Years {
		if !held[y] {
			return fail("holidays", fmt.Errorf("%w: no holiday in %d", scan.ErrMissingField, y))
		}
		if !sourced[y] {
			return fail("sources", fmt.Errorf("%w: no source for %d", scan.ErrMissingField, y))
		}
	}
	return idx, nil
}

// dateKey packs a date as YYYYMMDD.
func dateKey(y int, m time.Month, d int) int32 { return int32(y*10000 + int(m)*100 + d) }
