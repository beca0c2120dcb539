package behaviour

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
)

// anyZone resolves every zone name without touching the file system; fuzzed names are many.
func anyZone(name string) (*time.Location, error) { return time.FixedZone(name, 8*3600), nil }

// FuzzParseRules: any input either parses to rules that validate and build a detector (or
// fail New with a *RulesError, for a calendar region that does not exist), or fails with a
// *RulesError. A detector built from fuzzed rules survives a few calls.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(fullRules))
	f.Add([]byte(allRules))
	f.Add([]byte(offHoursRules))
	f.Add([]byte(rulesOf(`{"id":"b","severity":"low","burst":{"window":"1s","min_count":1,"k":0,"alpha":1}}`)))
	f.Add([]byte(rulesOf(`{"id":"o","severity":"low","off_hours":{"desks":[{"name":"d","time_zone":"X","open":"23:59","close":"00:00","days":["sun"]}]}}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules(data)
		if err != nil {
			var re *RulesError
			if !errors.As(err, &re) {
				t.Fatalf("error is not a *RulesError: %v", err)
			}
			return
		}
		if err := rs.Validate(); err != nil {
			t.Fatalf("parsed rules do not validate: %v", err)
		}
		opts := testOptions(4)
		opts.LoadLocation = anyZone
		d, err := New(rs, opts)
		if err != nil {
			var re *RulesError
			if !errors.As(err, &re) {
				t.Fatalf("New: error is not a *RulesError: %v", err)
			}
			return
		}
		for i, e := range timeline(uint64(len(data)), 50) {
			e.apply(d)
			if i == 25 {
				d.Tick(e.at.Add(1000 * time.Hour))
			}
		}
	})
}

// FuzzParseCalendar: any input parses to a calendar whose every holiday is in its index, or
// fails with a *CalendarError.
func FuzzParseCalendar(f *testing.F) {
	f.Add(HongKongCalendarJSON())
	f.Add([]byte(`{"format":"commseal.behaviour.calendar/v1","region":"X","name":"n","years":[2026],
		"sources":[{"years":[2026],"url":"u","retrieved":"2026-01-01"}],"holidays":[{"date":"2026-01-01","weekday":"thu","name":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCalendar(data)
		if err != nil {
			var ce *CalendarError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *CalendarError: %v", err)
			}
			return
		}
		idx, err := c.index()
		if err != nil {
			t.Fatalf("parsed calendar does not validate: %v", err)
		}
		for _, h := range c.Holidays {
			d, err := time.Parse(time.DateOnly, h.Date)
			if err != nil || idx[dateKey(d.Year(), d.Month(), d.Day())] != h.Name {
				t.Fatalf("holiday %+v not indexed", h)
			}
		}
	})
}

// FuzzDetector drives a detector with every rule kind by calls decoded from the input: it
// never panics, and two detectors fed the same calls agree.
func FuzzDetector(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var evs []event
		for len(data) >= 8 {
			v := binary.LittleEndian.Uint64(data)
			data = data[8:]
			// Times anywhere in int64 seconds, so that saturation and far dates are covered.
			at := time.Unix(int64(v>>8)-int64(1<<55), 0)
			if v&0x80 == 0 {
				at = t0.Add(time.Duration(v>>8%100000) * time.Second)
			}
			switch v & 7 {
			case 0:
				evs = append(evs, event{tick: true, at: at})
			case 1:
				evs = append(evs, event{source: fmt.Sprint(v >> 60), at: at})
			default:
				conv := fmt.Sprintf("c%d", v>>3&3)
				m := &capture.Message{Platform: "dingtalk", Tenant: "t", ID: fmt.Sprintf("%s#%d", conv, v>>40&0xff),
					Conversation: capture.Conversation{ID: conv}, Sender: capture.Party{ID: []string{"s0", "s3", "ext-x-1", ""}[v>>5&3]}, SentAt: at}
				if v&0x100 != 0 {
					m.SentAt = time.Time{}
				}
				evs = append(evs, event{m: m, cats: []string{"off_channel"}[:v>>9&1], at: at})
			}
		}
		a := run(t, mustNew(t, allRules, testOptions(3)), evs)
		b := run(t, mustNew(t, allRules, testOptions(3)), evs)
		if !slices.Equal(a, b) {
			t.Fatal("two detectors disagree")
		}
	})
}
