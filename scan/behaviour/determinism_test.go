package behaviour

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
)

// allRules has every kind, with windows short enough that a random timeline trips them.
const allRules = `{"version": "all-1", "firm_corp_ids": ["firm"], "rules": [
  {"id": "oh", "severity": "medium", "off_hours": {"desks": [
     {"name": "hk", "time_zone": "Asia/Hong_Kong", "senders": ["s0", "s1", "s2"], "open": "09:00", "close": "18:00", "calendar": "HK"},
     {"name": "ny", "time_zone": "America/New_York", "senders": ["s3"], "open": "22:00", "close": "04:00"}],
     "default_desk": "hk"}},
  {"id": "burst", "severity": "low", "burst": {"window": "5m", "min_count": 4, "k": 2, "alpha": 0.3}},
  {"id": "oc", "severity": "high", "off_channel": {"categories": ["off_channel"], "silence": "20m"}},
  {"id": "oc2", "severity": "medium", "off_channel": {"categories": ["off_channel", "secrecy"], "silence": "2h"}},
  {"id": "fc", "severity": "info", "first_contact": {}},
  {"id": "src", "severity": "high", "source_silence": {"window": "30m"}},
  {"id": "conv", "severity": "info", "conversation_silence": {"window": "3h"}},
  {"id": "gap", "severity": "high", "sequence_gap": {}},
  {"id": "storm", "severity": "medium", "reconnect_storm": {"count": 3, "window": "15m"}}
]}`

// event is one call: a message with its categories, a reconnect, or a tick.
type event struct {
	m      *capture.Message
	cats   []string
	source string // Reconnect when set
	tick   bool
	at     time.Time
}

// testOptions reads a party's corp from its id ("ext-<corp>-n" is external) and the sequence
// from the message id ("<conv>#<seq>").
func testOptions(maxEntries int) Options {
	return Options{
		PartyCorp: func(m *capture.Message, p *capture.Party) string {
			if rest, ok := strings.CutPrefix(p.ID, "ext-"); ok {
				corp, _, _ := strings.Cut(rest, "-")
				return corp
			}
			return "firm"
		},
		Sequence: func(m *capture.Message) (uint64, bool) {
			_, s, ok := strings.Cut(m.ID, "#")
			n, err := strconv.ParseUint(s, 10, 64)
			return n, ok && err == nil
		},
		MaxSenders: maxEntries, MaxConversations: maxEntries, MaxSources: maxEntries, MaxPairs: maxEntries, MaxParticipants: maxEntries,
	}
}

// timeline generates n random events from seed: mostly increasing times with some jitter back,
// quiet spells, bursts, flagged messages, outsiders, skipped sequence numbers.
func timeline(seed uint64, n int) []event {
	r := rand.New(rand.NewPCG(seed, 42))
	at := utc("2026-02-13T00:00:00Z") // a Friday before Lunar New Year
	seq := map[string]uint64{}
	var evs []event
	for i := 0; i < n; i++ {
		switch x := r.IntN(100); {
		case x < 3:
			at = at.Add(time.Duration(r.IntN(600)) * time.Minute) // a quiet spell
		case x < 60:
			at = at.Add(time.Duration(r.IntN(90)) * time.Second)
		case x < 65:
			at = at.Add(-time.Duration(r.IntN(60)) * time.Second) // a late message
		}
		switch x := r.IntN(100); {
		case x < 5:
			evs = append(evs, event{source: fmt.Sprintf("dingtalk/t%d", r.IntN(2)), at: at})
		case x < 10:
			evs = append(evs, event{tick: true, at: at})
		default:
			conv := fmt.Sprintf("c%d", r.IntN(12))
			seq[conv] += uint64(1 + r.IntN(20)/19) // now and then a gap
			sender := fmt.Sprintf("s%d", r.IntN(6))
			if r.IntN(10) == 0 {
				sender = fmt.Sprintf("ext-corp%d-%d", r.IntN(3), r.IntN(4))
			}
			m := &capture.Message{Platform: "dingtalk", Tenant: fmt.Sprintf("t%d", r.IntN(2)),
				ID: fmt.Sprintf("%s#%d", conv, seq[conv]), Conversation: capture.Conversation{ID: conv},
				Sender: capture.Party{ID: sender, StaffID: sender}, SentAt: at}
			if r.IntN(4) == 0 {
				m.Mentions = []capture.Party{{ID: fmt.Sprintf("s%d", r.IntN(8))}}
			}
			if r.IntN(8) == 0 {
				m.Mentions = append(m.Mentions, capture.Party{ID: fmt.Sprintf("ext-corp%d-%d", r.IntN(3), r.IntN(4))})
			}
			var cats []string
			if r.IntN(10) == 0 {
				cats = []string{[]string{"off_channel", "secrecy", "gifts"}[r.IntN(3)]}
			}
			evs = append(evs, event{m: m, cats: cats, at: at})
		}
	}
	return evs
}

// timelineLen is the length of the random timelines: shorter under the race detector.
func timelineLen() int {
	if raceEnabled {
		return 1000
	}
	return 3000
}

func (e event) apply(d *Detector) []Finding {
	switch {
	case e.m != nil:
		return d.Observe(e.m, e.cats)
	case e.tick:
		return d.Tick(e.at)
	default:
		return d.Reconnect(e.source, e.at)
	}
}

func run(t *testing.T, d *Detector, evs []event) []string {
	t.Helper()
	var out []string
	for i, e := range evs {
		for _, f := range e.apply(d) {
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d %s", i, b))
		}
	}
	return out
}

// TestDeterministic: two detectors fed the same calls give byte-identical findings, whatever
// the caps; and the timeline trips every kind of rule, so the comparison covers them all.
func TestDeterministic(t *testing.T) {
	for _, maxEntries := range []int{0, 3} {
		for seed := uint64(1); seed <= 5; seed++ {
			evs := timeline(seed, timelineLen())
			a := run(t, mustNew(t, allRules, testOptions(maxEntries)), evs)
			b := run(t, mustNew(t, allRules, testOptions(maxEntries)), evs)
			if !slices.Equal(a, b) {
				t.Fatalf("seed %d cap %d: outputs differ", seed, maxEntries)
			}
			if maxEntries == 0 && seed == 1 {
				kinds := map[string]int{}
				for _, line := range a {
					var f Finding
					_ = json.Unmarshal([]byte(line[strings.IndexByte(line, ' ')+1:]), &f)
					kinds[f.Rule]++
				}
				for _, r := range []string{"oh", "burst", "oc", "oc2", "fc", "src", "conv", "gap", "storm"} {
					if kinds[r] == 0 {
						t.Errorf("the timeline never trips %s: %v", r, kinds)
					}
				}
			}
		}
	}
}

// TestRebuild: a detector rebuilt after a restart gives what the original would have.
//   - Replaying the same calls (prefix), then continuing, equals the uninterrupted run.
//   - Replaying only the prefix's messages (what the ledger holds) loses no finding and adds
//     none: the union of the original's prefix findings and the rebuilt detector's findings on
//     the rest has the same keys as the uninterrupted run (a silence may be told twice).
func TestRebuild(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		evs := timeline(seed, timelineLen())
		whole := mustNew(t, allRules, testOptions(0))
		var wholeOut [][]Finding
		for _, e := range evs {
			wholeOut = append(wholeOut, e.apply(whole))
		}
		for _, k := range []int{0, 1, 777, timelineLen() / 2, timelineLen() - 1} {
			re := mustNew(t, allRules, testOptions(0))
			run(t, re, evs[:k])
			for i := k; i < len(evs); i++ {
				got, _ := json.Marshal(evs[i].apply(re))
				want, _ := json.Marshal(wholeOut[i])
				if string(got) != string(want) {
					t.Fatalf("seed %d prefix %d: event %d: %s, want %s", seed, k, i, got, want)
				}
			}

			// Messages only, and no reconnects anywhere: the ledger does not hold them.
			var noReconnect []event
			for _, e := range evs {
				if e.source == "" {
					noReconnect = append(noReconnect, e)
				}
			}
			k2 := min(k, len(noReconnect))
			orig := mustNew(t, allRules, testOptions(0))
			keys := map[string]bool{}
			for _, e := range noReconnect[:k2] {
				for _, f := range e.apply(orig) {
					keys[f.Key()] = true
				}
			}
			all := map[string]bool{}
			for k := range keys {
				all[k] = true
			}
			for _, e := range noReconnect[k2:] {
				for _, f := range e.apply(orig) {
					all[f.Key()] = true
				}
			}
			rebuilt := mustNew(t, allRules, testOptions(0))
			for _, e := range noReconnect[:k2] {
				if e.m != nil {
					rebuilt.Observe(e.m, e.cats)
				}
			}
			for _, e := range noReconnect[k2:] {
				for _, f := range e.apply(rebuilt) {
					keys[f.Key()] = true
				}
			}
			if len(keys) != len(all) {
				var extra, missing []string
				for k := range keys {
					if !all[k] {
						extra = append(extra, k)
					}
				}
				for k := range all {
					if !keys[k] {
						missing = append(missing, k)
					}
				}
				t.Fatalf("seed %d prefix %d: rebuilt from messages: extra %v, missing %v", seed, k, extra, missing)
			}
		}
	}
}

func TestCapsEvictAndCount(t *testing.T) {
	d := mustNew(t, allRules, testOptions(2))
	for _, e := range timeline(9, 2000) {
		e.apply(d)
	}
	s := d.Stats()
	if s.Senders > 2 || s.Conversations > 2 || s.Sources > 2 || s.Pairs > 2 {
		t.Fatalf("over the caps: %+v", s)
	}
	if s.EvictedSenders == 0 || s.EvictedConversations == 0 || s.EvictedPairs == 0 || s.ParticipantsDropped == 0 {
		t.Fatalf("caps never bit: %+v", s)
	}
	if s.Messages+s.Reconnects+s.Ticks != 2000 {
		t.Fatalf("counted %d calls", s.Messages+s.Reconnects+s.Ticks)
	}
}

func TestDroppedPendingCounted(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"oc","severity":"high","off_channel":{"categories":["off_channel"],"silence":"30m"}}`),
		Options{MaxConversations: 1})
	d.Observe(msg("1", "c1", "a", t0), []string{"off_channel"})
	d.Observe(msg("2", "c2", "a", t0.Add(time.Minute)), nil) // evicts c1 and its pending silence
	if fs := d.Tick(t0.Add(time.Hour)); len(fs) != 0 {
		t.Fatal(fs)
	}
	if s := d.Stats(); s.DroppedPending != 1 || s.EvictedConversations != 1 {
		t.Fatalf("%+v", s)
	}
}

// TestConcurrentCalls runs every entry point from several goroutines under -race.
func TestConcurrentCalls(t *testing.T) {
	d := mustNew(t, allRules, testOptions(0))
	evs := timeline(3, 2000)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(evs); i += 4 {
				evs[i].apply(d)
				if i%100 == 0 {
					_ = d.Stats()
				}
			}
		}()
	}
	wg.Wait()
	if s := d.Stats(); s.Messages+s.Reconnects+s.Ticks != 2000 {
		t.Fatalf("%+v", s)
	}
}

func TestObserveNil(t *testing.T) {
	d := mustNew(t, allRules, testOptions(0))
	if fs := d.Observe(nil, nil); fs != nil || d.Stats().Messages != 0 {
		t.Fatal(fs)
	}
}

// TestRebuildWithRestore: a detector rebuilt from what a ledger holds (the prefix's messages,
// and the findings its Tick calls reported, restored where they were reported) continues
// exactly as the uninterrupted one: it reports no silence twice, misses none. Reconnects are
// not in a ledger, so reconnect_storm findings are left out of the comparison.
func TestRebuildWithRestore(t *testing.T) {
	noStorm := func(fs []Finding) string {
		var keep []Finding
		for _, f := range fs {
			if f.Kind != KindReconnectStorm {
				keep = append(keep, f)
			}
		}
		b, _ := json.Marshal(keep)
		return string(b)
	}
	for seed := uint64(1); seed <= 5; seed++ {
		evs := timeline(seed, timelineLen())
		whole := mustNew(t, allRules, testOptions(0))
		var wholeOut [][]Finding
		restored := 0
		for _, e := range evs {
			wholeOut = append(wholeOut, e.apply(whole))
		}
		for _, k := range []int{1, 777, timelineLen() / 2, timelineLen() - 1} {
			re := mustNew(t, allRules, testOptions(0))
			for i, e := range evs[:k] {
				switch {
				case e.m != nil:
					re.Observe(e.m, e.cats)
				case e.tick:
					for _, f := range wholeOut[i] {
						if re.Restore(f) {
							restored++
						}
					}
				}
			}
			for i := k; i < len(evs); i++ {
				if got, want := noStorm(evs[i].apply(re)), noStorm(wholeOut[i]); got != want {
					t.Fatalf("seed %d prefix %d: event %d: %s, want %s", seed, k, i, got, want)
				}
			}
		}
		if restored == 0 {
			t.Fatalf("seed %d: no tick finding restored: the test tests nothing", seed)
		}
	}
}

// TestRestoreAndMemory: Restore counts a silence as reported only while it goes on from the
// same Since, remembers a first contact whose messages were not replayed, and ignores
// findings of rules the detector does not have; Memory names the longest window and whether
// some rule remembers without a time bound.
func TestRestoreAndMemory(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"conv","severity":"info","conversation_silence":{"window":"1h"}}`,
		`{"id":"burst","severity":"low","burst":{"window":"10m","alpha":0.5}}`,
		`{"id":"fc","severity":"info","first_contact":{}}`), testOptions(0))
	if w, unbounded := d.Memory(); w != 70*time.Minute || !unbounded {
		t.Fatalf("memory %v %v, want 70m (10m x (ceil(3/0.5)+1)) and unbounded", w, unbounded)
	}
	if w, unbounded := mustNew(t, rulesOf(`{"id":"s","severity":"low","source_silence":{"window":"15m"}}`), Options{}).Memory(); w != 15*time.Minute || unbounded {
		t.Fatalf("memory %v %v", w, unbounded)
	}

	d.Observe(msg("1", "c1", "a", t0), nil)
	stale := Finding{Rule: "conv", Kind: KindConversationSilence, Platform: capture.PlatformDingTalk, Tenant: "corp", Conversation: "c1", Since: t0.Add(-time.Hour)}
	if d.Restore(stale) {
		t.Fatal("restored a silence that ended")
	}
	current := stale
	current.Since = t0
	if !d.Restore(current) {
		t.Fatal("did not restore the silence going on")
	}
	if fs := d.Tick(t0.Add(2 * time.Hour)); len(fs) != 0 {
		t.Fatalf("a restored silence reported again: %+v", fs)
	}
	other := current
	other.Rule = "nope"
	if d.Restore(other) {
		t.Fatal("restored a finding of an unknown rule")
	}

	pair := Finding{Rule: "fc", Kind: KindFirstContact, External: "ext-x-1", Staff: "s1"}
	if !d.Restore(pair) {
		t.Fatal("pair not restored")
	}
	m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "corp", ID: "2", Conversation: capture.Conversation{ID: "c9"},
		Sender: capture.Party{ID: "s1", StaffID: "s1"}, Mentions: []capture.Party{{ID: "ext-x-1"}}, SentAt: t0.Add(3 * time.Hour)}
	for _, f := range d.Observe(m, nil) {
		if f.Kind == KindFirstContact {
			t.Fatalf("a restored pair met for the first time again: %+v", f)
		}
	}
}
