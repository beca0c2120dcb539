package behaviour_test

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // the desks' zones, without relying on the system's zone database

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/scan/behaviour"
)

// A day on a Hong Kong desk: the lexicon scan gives each message its categories, the
// behaviour rules look at when and where it was said.
func Example() {
	rules, err := behaviour.ParseRules([]byte(`{
	  "version": "2026-11-29.1",
	  "rules": [
	    {"id": "after-hours", "severity": "medium", "off_hours": {"desks": [
	       {"name": "hk-equities", "time_zone": "Asia/Hong_Kong", "open": "09:00", "close": "18:00",
	        "calendar": "HK"}], "default_desk": "hk-equities"}},
	    {"id": "gone-quiet", "severity": "high",
	     "off_channel": {"categories": ["off_channel"], "silence": "30m"}}
	  ]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := behaviour.New(rules, behaviour.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	lexicon, err := scan.Default()
	if err != nil {
		fmt.Println(err)
		return
	}
	hk := time.FixedZone("HKT", 8*3600)
	say := func(id, sender, text string, at time.Time) *capture.Message {
		return &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "dingcorp", ID: id,
			Conversation: capture.Conversation{ID: "cid-client-7"},
			Sender:       capture.Party{ID: "u-" + sender, StaffID: sender}, SentAt: at, Text: text}
	}
	day := []*capture.Message{
		say("m0", "S001", "Happy new year!", time.Date(2026, 2, 17, 11, 0, 0, 0, hk)),
		say("m1", "S001", "Morning, the order is filled.", time.Date(2026, 3, 3, 10, 5, 0, 0, hk)),
		say("m2", "S001", "Let's continue on WhatsApp", time.Date(2026, 3, 3, 10, 7, 0, 0, hk)),
		say("m3", "S001", "Results tomorrow.", time.Date(2026, 3, 3, 21, 40, 0, 0, hk)),
	}
	for _, m := range day {
		var categories []string
		for _, f := range lexicon.ScanString(m.Text) {
			categories = append(categories, f.Category)
		}
		for _, f := range d.Observe(m, categories) {
			fmt.Printf("%s %s %s: %s\n", f.Rule, f.Severity, f.MsgID, f.Reason)
		}
	}
	// Output:
	// after-hours medium m0: sent 2026-02-17 11:00 Tue Asia/Hong_Kong, in a session of Tue 2026-02-17, a HK holiday (Lunar New Year's Day) for desk hk-equities
	// after-hours medium m3: sent 2026-03-03 21:40 Tue Asia/Hong_Kong, outside desk hk-equities hours 09:00-18:00
	// gone-quiet high m2: lexicon category off_channel, then no message in the conversation for 11h33m0s (silence window 30m0s)
}

// Tick reports silences that are still going on: here a capture source that stopped sending.
func ExampleDetector_Tick() {
	rules, _ := behaviour.ParseRules([]byte(`{"version": "health-1", "rules": [
	    {"id": "source-down", "severity": "high", "source_silence": {"window": "15m"}},
	    {"id": "flapping", "severity": "medium", "reconnect_storm": {"count": 3, "window": "5m"}}]}`))
	d, _ := behaviour.New(rules, behaviour.Options{})
	t0 := time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC)
	d.Observe(&capture.Message{Platform: "dingtalk", Tenant: "dingcorp", ID: "m1", SentAt: t0}, nil)
	for i := range 3 {
		for _, f := range d.Reconnect("dingtalk/dingcorp", t0.Add(time.Duration(i)*time.Minute)) {
			fmt.Println(f.Rule, f.Source, f.Reason)
		}
	}
	for _, now := range []time.Time{t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), t0.Add(30 * time.Minute)} {
		for _, f := range d.Tick(now) {
			fmt.Println(f.Rule, f.Source, f.Reason)
		}
	}
	// Output:
	// flapping dingtalk/dingcorp 3 reconnects in 2m0s (window 5m0s)
	// source-down dingtalk/dingcorp no message from the source for 20m0s (window 15m0s)
}

func ExampleParseRules_error() {
	_, err := behaviour.ParseRules([]byte(`{"version": "v2", "rules": [
	    {"id": "burst", "severity": "low", "burst": {"window": "soon"}}]}`))
	fmt.Println(err)
	var re *behaviour.RulesError
	fmt.Println(errors.As(err, &re), re.Rule, re.Field, errors.Is(err, scan.ErrInvalidValue))
	// Output:
	// behaviour: rules "v2": rule "burst": field "burst.window": invalid value: "soon": want a duration such as "15m" or "2h"
	// true burst burst.window true
}

func ExampleHongKongCalendar() {
	c := behaviour.HongKongCalendar()
	fmt.Println(c.Region, c.Years, len(c.Holidays))
	for _, h := range c.Holidays[17:21] {
		fmt.Println(h.Date, h.Name)
	}
	// Output:
	// HK [2025 2026 2027] 51
	// 2026-01-01 The first day of January
	// 2026-02-17 Lunar New Year's Day
	// 2026-02-18 The second day of Lunar New Year
	// 2026-02-19 The third day of Lunar New Year
}
