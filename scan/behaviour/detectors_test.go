package behaviour

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
)

var t0 = utc("2026-03-02T00:00:00Z") // a Monday, on a 10-minute boundary

func TestBurstAgainstOwnBaseline(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"b","severity":"low","burst":{"window":"10m","min_count":5,"k":3,"alpha":0.5}}`), Options{})
	n := 0
	send := func(sender string, at time.Time) []Finding {
		n++
		return d.Observe(msg(fmt.Sprint(n), "c", sender, at), nil)
	}
	// A steady sender: 8 messages per 10-minute window for 6 windows. Their baseline becomes 8
	// (sd 0), so 8 in a window never fires, although 8 > min_count.
	var fired []Finding
	for w := 0; w < 6; w++ {
		for k := 0; k < 8; k++ {
			fired = append(fired, send("steady", t0.Add(time.Duration(w)*10*time.Minute+time.Duration(k)*time.Minute))...)
		}
	}
	// The very first window has no baseline: min_count (5) is the threshold, so the sixth
	// message of window 0 fires once.
	if len(fired) != 1 || fired[0].MsgID != "6" || !strings.Contains(fired[0].Reason, "6 messages in 10m0s") {
		t.Fatalf("steady sender: %v", fired)
	}
	// Now 12 in one window (at 30-second spacing): the count passes 8 + 3·0 at the 9th.
	fired = nil
	start := t0.Add(60 * time.Minute)
	for k := 0; k < 12; k++ {
		fired = append(fired, send("steady", start.Add(time.Duration(k)*30*time.Second))...)
	}
	if len(fired) != 1 || !strings.Contains(fired[0].Reason, "9 messages in 10m0s; baseline 8.00 (sd 0.00) over 6 windows; threshold 8.00") {
		t.Fatalf("burst: %v", fired)
	}
	// Another sender at 4 a window never reaches min_count.
	fired = nil
	for w := 0; w < 8; w++ {
		for k := 0; k < 4; k++ {
			fired = append(fired, send("quiet", t0.Add(time.Duration(w)*10*time.Minute+time.Duration(k)*time.Second))...)
		}
	}
	if len(fired) != 0 {
		t.Fatalf("quiet sender: %v", fired)
	}
}

func TestBurstSlidingWindowEdges(t *testing.T) {
	// No baseline effect (alpha 1, k 0 and an empty past): the threshold is min_count 3 until
	// a whole window has passed.
	rules := rulesOf(`{"id":"b","severity":"low","burst":{"window":"10m","min_count":3,"k":0,"alpha":1}}`)
	for _, tc := range []struct {
		name    string
		offsets []time.Duration
		fire    bool
	}{
		{"4 within one bucket", []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, true},
		{"4 spanning exactly 9 buckets", []time.Duration{0, 3 * time.Minute, 6 * time.Minute, 9*time.Minute + 59*time.Second}, true},
		// The sliding window moves in whole buckets: at 10m the first bucket has left.
		{"4 spanning 10 buckets", []time.Duration{0, 3 * time.Minute, 6 * time.Minute, 10 * time.Minute}, false},
		{"3 is not more than 3", []time.Duration{0, time.Second, 2 * time.Second}, false},
	} {
		d := mustNew(t, rules, Options{})
		var fs []Finding
		for i, off := range tc.offsets {
			fs = append(fs, d.Observe(msg(fmt.Sprint(i), "c", "s", t0.Add(off)), nil)...)
		}
		if (len(fs) == 1) != tc.fire || len(fs) > 1 {
			t.Errorf("%s: %v", tc.name, fs)
		}
	}
}

func TestBurstFiresOncePerWindowAndLateMessages(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"b","severity":"low","burst":{"window":"1m","min_count":2,"k":0,"alpha":1}}`), Options{})
	var fs []Finding
	for i := 0; i < 50; i++ { // 50 messages in 50 seconds: one finding, not 48
		fs = append(fs, d.Observe(msg(fmt.Sprint(i), "c", "s", t0.Add(time.Duration(i)*time.Second)), nil)...)
	}
	if len(fs) != 1 {
		t.Fatalf("%d findings: %v", len(fs), ids(fs))
	}
	// A message dated an hour earlier counts at the latest time: no panic, no new window.
	fs = d.Observe(msg("late", "c", "s", t0.Add(-time.Hour)), nil)
	if len(fs) != 0 {
		t.Fatalf("late: %v", fs)
	}
	// Far-away dates saturate instead of overflowing.
	d.Observe(msg("old", "c", "t", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)), nil)
	d.Observe(msg("new", "c", "t", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)), nil)
}

func TestOffChannelSilence(t *testing.T) {
	rules := rulesOf(`{"id":"oc","severity":"high","off_channel":{"categories":["off_channel","secrecy"],"silence":"30m"}}`)
	flag := []string{"guarantee_of_returns", "off_channel", "off_channel"}
	t.Run("next message after the window", func(t *testing.T) {
		d := mustNew(t, rules, Options{})
		if fs := d.Observe(msg("1", "c", "a", t0), flag); len(fs) != 0 {
			t.Fatal(fs)
		}
		// Another conversation's messages do not end this one's silence.
		d.Observe(msg("x", "other", "a", t0.Add(10*time.Minute)), nil)
		fs := d.Observe(msg("2", "c", "b", t0.Add(30*time.Minute)), nil) // exactly the window
		if len(fs) != 1 || fs[0].MsgID != "1" || fs[0].Sender != "uid-a" || fs[0].Conversation != "c" ||
			fs[0].Reason != "lexicon category off_channel, then no message in the conversation for 30m0s (silence window 30m0s)" ||
			!fs[0].At.Equal(t0.Add(30*time.Minute)) {
			t.Fatalf("%+v", fs)
		}
		if fs := d.Tick(t0.Add(10 * time.Hour)); len(fs) != 0 {
			t.Fatalf("reported twice: %v", fs)
		}
	})
	t.Run("next message in time cancels", func(t *testing.T) {
		d := mustNew(t, rules, Options{})
		d.Observe(msg("1", "c", "a", t0), []string{"secrecy"})
		if fs := d.Observe(msg("2", "c", "b", t0.Add(30*time.Minute-1)), nil); len(fs) != 0 {
			t.Fatal(fs)
		}
		if fs := d.Tick(t0.Add(10 * time.Hour)); len(fs) != 0 {
			t.Fatal(fs)
		}
	})
	t.Run("tick while silent", func(t *testing.T) {
		d := mustNew(t, rules, Options{})
		d.Observe(msg("1", "c", "a", t0), []string{"secrecy", "off_channel"})
		if fs := d.Tick(t0.Add(29 * time.Minute)); len(fs) != 0 {
			t.Fatal(fs)
		}
		fs := d.Tick(t0.Add(45 * time.Minute))
		if len(fs) != 1 || fs[0].MsgID != "1" || !strings.Contains(fs[0].Reason, "lexicon categories off_channel, secrecy, then no message in the conversation for 45m0s so far") {
			t.Fatalf("%+v", fs)
		}
		if fs := d.Observe(msg("2", "c", "b", t0.Add(50*time.Minute)), nil); len(fs) != 0 {
			t.Fatalf("reported again when the silence ended: %v", fs)
		}
	})
	t.Run("a flagged reply restarts the wait", func(t *testing.T) {
		d := mustNew(t, rules, Options{})
		d.Observe(msg("1", "c", "a", t0), flag)
		d.Observe(msg("2", "c", "b", t0.Add(time.Minute)), flag)
		fs := d.Observe(msg("3", "c", "a", t0.Add(40*time.Minute)), nil)
		if got := ids(fs); !slices.Equal(got, []string{"oc:2"}) {
			t.Fatalf("%v", got)
		}
	})
	t.Run("a late message sent before the flagged one does not end the silence", func(t *testing.T) {
		d := mustNew(t, rules, Options{})
		d.Observe(msg("1", "c", "a", t0), flag)
		if fs := d.Observe(msg("0", "c", "b", t0.Add(-time.Minute)), flag); len(fs) != 0 {
			t.Fatal(fs)
		}
		if got := ids(d.Tick(t0.Add(31 * time.Minute))); !slices.Equal(got, []string{"oc:1"}) {
			t.Fatalf("%v", got)
		}
	})
	t.Run("other categories do nothing", func(t *testing.T) {
		d := mustNew(t, rules, Options{})
		d.Observe(msg("1", "c", "a", t0), []string{"gifts"})
		if fs := d.Tick(t0.Add(10 * time.Hour)); len(fs) != 0 {
			t.Fatal(fs)
		}
	})
}

// party builds a party; corp "" means unknown.
type party struct{ id, staff, corp string }

func TestFirstContact(t *testing.T) {
	rules := `{"version":"fc","firm_corp_ids":["firm","firm-hk"],"rules":[{"id":"fc","severity":"info","first_contact":{}}]}`
	corps := map[string]string{}
	opts := Options{PartyCorp: func(m *capture.Message, p *capture.Party) string { return corps[p.ID] }}
	d := mustNew(t, rules, opts)
	mk := func(id, conv string, sender party, mentions ...party) *capture.Message {
		corps[sender.id] = sender.corp
		m := &capture.Message{Platform: "dingtalk", Tenant: "firm", ID: id, Conversation: capture.Conversation{ID: conv},
			Sender: capture.Party{ID: sender.id, StaffID: sender.staff}, SentAt: t0}
		for _, p := range mentions {
			corps[p.id] = p.corp
			m.Mentions = append(m.Mentions, capture.Party{ID: p.id, StaffID: p.staff})
		}
		return m
	}
	alice := party{"u-alice", "S001", "firm"}
	bob := party{"u-bob", "S002", "firm-hk"}
	client := party{"u-client", "", "clientcorp"}
	ghost := party{"u-ghost", "", ""}

	steps := []struct {
		m    *capture.Message
		want []string // "external/staff"
	}{
		{mk("1", "g1", alice), nil},                            // only staff
		{mk("2", "g1", client), []string{"u-client/S001"}},     // the client meets alice
		{mk("3", "g1", client), nil},                           // nothing new
		{mk("4", "g1", alice, bob), []string{"u-client/S002"}}, // bob, mentioned, joins: meets the client
		{mk("5", "g2", client, alice), nil},                    // the pair met already, elsewhere
		{mk("6", "g2", ghost, bob), nil},                       // unknown corp: skipped
		{mk("7", "g3", party{"u-rival", "", "rival"}, alice, bob), []string{"u-rival/S001", "u-rival/S002"}},
	}
	for i, s := range steps {
		var got []string
		for _, f := range d.Observe(s.m, nil) {
			if f.Kind != KindFirstContact || f.MsgID != s.m.ID || f.Conversation != s.m.Conversation.ID {
				t.Fatalf("step %d: %+v", i, f)
			}
			got = append(got, f.External+"/"+f.Staff)
		}
		if !slices.Equal(got, s.want) {
			t.Fatalf("step %d: %v, want %v", i, got, s.want)
		}
	}
}

func TestDefaultPartyCorp(t *testing.T) {
	raw := []byte(`{"msgId":"m1","senderCorpId":"outsidecorp","chatbotCorpId":"firm","senderId":"u1"}`)
	m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "firm", Raw: raw,
		Sender:   capture.Party{ID: "u1"},
		Mentions: []capture.Party{{ID: "u2", StaffID: "S2"}, {ID: "u3"}}}
	if got := DefaultPartyCorp(m, &m.Sender); got != "outsidecorp" {
		t.Errorf("sender corp %q", got)
	}
	if got := DefaultPartyCorp(m, &m.Mentions[0]); got != "firm" {
		t.Errorf("mention with staff id: %q", got)
	}
	if got := DefaultPartyCorp(m, &m.Mentions[1]); got != "" {
		t.Errorf("mention without staff id: %q", got)
	}
	m.Raw = []byte(`not json "senderCorpId"`)
	m.Sender.StaffID = "S1"
	if got := DefaultPartyCorp(m, &m.Sender); got != "firm" {
		t.Errorf("broken raw, staff id: %q", got)
	}
	// End to end with the default: an outside sender meets the staff member already there.
	d := mustNew(t, rulesOf(`{"id":"fc","severity":"info","first_contact":{}}`), Options{})
	staff := msg("1", "g", "S9", t0)
	staff.Tenant = "firm"
	d.Observe(staff, nil)
	out := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "firm", ID: "2", Conversation: capture.Conversation{ID: "g"},
		Sender: capture.Party{ID: "u1"}, SentAt: t0, Raw: raw}
	fs := d.Observe(out, nil)
	if len(fs) != 1 || fs[0].External != "u1" || fs[0].Staff != "S9" {
		t.Fatalf("%+v", fs)
	}
}

func TestSourceAndConversationSilence(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"src","severity":"high","source_silence":{"window":"15m"}}`,
		`{"id":"conv","severity":"info","conversation_silence":{"window":"1h"}}`), Options{})
	if fs := d.Tick(t0); len(fs) != 0 { // nothing known yet
		t.Fatal(fs)
	}
	d.Observe(msg("1", "c1", "a", t0), nil)
	d.Observe(msg("2", "c2", "a", t0.Add(10*time.Minute)), nil)
	if fs := d.Tick(t0.Add(25*time.Minute - 1)); len(fs) != 0 {
		t.Fatal(fs)
	}
	fs := d.Tick(t0.Add(25 * time.Minute))
	if len(fs) != 1 || fs[0].Rule != "src" || fs[0].Source != "dingtalk/corp" || fs[0].Reason != "no message from the source for 15m0s (window 15m0s)" {
		t.Fatalf("%+v", fs)
	}
	if fs := d.Tick(t0.Add(30 * time.Minute)); len(fs) != 0 { // once per silence
		t.Fatal(fs)
	}
	fs = d.Tick(t0.Add(70*time.Minute - 1))
	if got := ids(fs); !slices.Equal(got, []string{"conv:"}) || fs[0].Conversation != "c1" {
		t.Fatalf("%+v", fs)
	}
	fs = d.Tick(t0.Add(70 * time.Minute))
	if len(fs) != 1 || fs[0].Conversation != "c2" {
		t.Fatalf("%+v", fs)
	}
	// A message re-arms both for its source and conversation.
	d.Observe(msg("3", "c1", "a", t0.Add(90*time.Minute)), nil)
	fs = d.Tick(t0.Add(200 * time.Minute))
	var got []string
	for _, f := range fs {
		got = append(got, f.Rule+"/"+f.Source+"/"+f.Conversation)
	}
	if !slices.Equal(got, []string{"src/dingtalk/corp/", "conv/dingtalk/corp/c1"}) {
		t.Fatalf("%v", got)
	}
}

// TestConversationSilenceNamesItsSource: a conversation_silence finding names the capture
// source of the conversation's last message (Options.SourceOf), with or without a
// source_silence rule, so that a capture-health alert says where to look.
func TestConversationSilenceNamesItsSource(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"conv","severity":"info","conversation_silence":{"window":"1h"}}`),
		Options{SourceOf: func(m *capture.Message) string { return "stream-" + m.Sender.StaffID }})
	d.Observe(msg("1", "c1", "a", t0), nil)
	d.Observe(msg("2", "c1", "b", t0.Add(time.Minute)), nil)
	fs := d.Tick(t0.Add(2 * time.Hour))
	if len(fs) != 1 || fs[0].Source != "stream-b" || fs[0].Conversation != "c1" {
		t.Fatalf("%+v", fs)
	}
	if st := d.Stats(); st.Sources != 0 {
		t.Fatalf("no source_silence rule, yet %d sources tracked", st.Sources)
	}
}

func TestReconnectStorm(t *testing.T) {
	d := mustNew(t, rulesOf(`{"id":"storm","severity":"medium","reconnect_storm":{"count":3,"window":"10m"}}`), Options{})
	if fs := d.Reconnect("s1", t0); len(fs) != 0 {
		t.Fatal(fs)
	}
	d.Reconnect("s1", t0.Add(5*time.Minute))
	d.Reconnect("s2", t0.Add(6*time.Minute))        // another source
	fs := d.Reconnect("s1", t0.Add(10*time.Minute)) // 3 in exactly 10m
	if len(fs) != 1 || fs[0].Source != "s1" || fs[0].Reason != "3 reconnects in 10m0s (window 10m0s)" {
		t.Fatalf("%+v", fs)
	}
	// The count starts again after a finding; 3 spread over more than the window do not fire.
	d.Reconnect("s1", t0.Add(11*time.Minute))
	d.Reconnect("s1", t0.Add(16*time.Minute))
	if fs := d.Reconnect("s1", t0.Add(21*time.Minute+1)); len(fs) != 0 {
		t.Fatal(fs)
	}
	// The ring slides: the 2nd, 3rd and a 4th close together do.
	if fs := d.Reconnect("s1", t0.Add(22*time.Minute)); len(fs) != 1 {
		t.Fatalf("%+v", fs)
	}
}

func TestSequenceGap(t *testing.T) {
	seqs := map[string]uint64{}
	d := mustNew(t, rulesOf(`{"id":"gap","severity":"high","sequence_gap":{}}`), Options{
		Sequence: func(m *capture.Message) (uint64, bool) { s, ok := seqs[m.ID]; return s, ok },
	})
	feed := func(id, conv string, seq uint64, has bool) []Finding {
		if has {
			seqs[id] = seq
		}
		return d.Observe(msg(id, conv, "a", t0), nil)
	}
	feed("a", "c", 7, true) // the first seen sets the start
	if fs := feed("b", "c", 8, true); len(fs) != 0 {
		t.Fatal(fs)
	}
	fs := feed("c", "c", 11, true)
	if len(fs) != 1 || fs[0].MsgID != "c" || fs[0].Reason != "sequence 11 after 8: 2 missing" {
		t.Fatalf("%+v", fs)
	}
	if fs := feed("d", "c", 9, true); len(fs) != 0 || d.Stats().SequenceRegressions != 1 { // late arrival of a missing one
		t.Fatalf("%v %+v", fs, d.Stats())
	}
	if fs := feed("e", "c", 0, false); len(fs) != 0 { // no sequence: skipped
		t.Fatal(fs)
	}
	if fs := feed("f", "other", 100, true); len(fs) != 0 { // per conversation
		t.Fatal(fs)
	}
	if fs := feed("g", "c", 12, true); len(fs) != 0 {
		t.Fatal(fs)
	}
}

// TestBurstBaselineMatchesWeightedDefinition checks the incremental baseline against the
// definition computed in two passes: weights (1-α)^(n-1) for the first window and
// α(1-α)^(n-i) for window i after it; mean = Σ w·x, variance = Σ w·(x - mean)².
func TestBurstBaselineMatchesWeightedDefinition(t *testing.T) {
	for _, alpha := range []float64{0.05, 0.1, 0.3, 0.5, 1} {
		xs := []float64{3, 0, 12, 7, 7, 1, 0, 0, 25, 4, 9, 9, 2}
		var b burstState
		for n := 1; n <= len(xs); n++ {
			b.fold(xs[n-1], alpha)
			w := make([]float64, n)
			for i := range n {
				if i == 0 {
					w[i] = math.Pow(1-alpha, float64(n-1))
				} else {
					w[i] = alpha * math.Pow(1-alpha, float64(n-1-i))
				}
			}
			var mean, vari float64
			for i := range n {
				mean += w[i] * xs[i]
			}
			for i := range n {
				vari += w[i] * (xs[i] - mean) * (xs[i] - mean)
			}
			if math.Abs(b.mean-mean) > 1e-9 || math.Abs(b.vari-vari) > 1e-9 {
				t.Fatalf("alpha %v after %d windows: mean %v var %v, want %v %v", alpha, n, b.mean, b.vari, mean, vari)
			}
		}
	}
}

// TestBurstDeviationRaisesThreshold: for a sender whose counts swing between 2 and 10 a
// window, 11 is within k=3 deviations of the mean; with k=0 the same timeline fires.
func TestBurstDeviationRaisesThreshold(t *testing.T) {
	for _, tc := range []struct {
		k    string
		fire bool
	}{{"3", false}, {"0", true}} {
		d := mustNew(t, rulesOf(`{"id":"b","severity":"low","burst":{"window":"10m","min_count":1,"k":`+tc.k+`,"alpha":0.5}}`), Options{})
		var fs []Finding
		n := 0
		for w := 0; w < 12; w++ {
			count := 2
			if w%2 == 1 {
				count = 10
			}
			if w == 11 {
				count = 11
			}
			for k := 0; k < count; k++ {
				// Messages at the end of each window: the sliding count is the window's own.
				at := t0.Add(time.Duration(w)*10*time.Minute + 9*time.Minute + time.Duration(k)*time.Second)
				got := d.Observe(msg(fmt.Sprint(n), "c", "s", at), nil)
				n++
				if w == 11 {
					fs = append(fs, got...)
				}
			}
		}
		if (len(fs) > 0) != tc.fire {
			t.Errorf("k=%s: %v", tc.k, fs)
		}
	}
}
