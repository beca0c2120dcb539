package behaviour

import (
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/scan"
)

// benchMessages are 4096 messages of 200 senders in 500 conversations, with DingTalk-like raw
// payloads (for DefaultPartyCorp) and short texts; one in 20 flagged off_channel.
func benchMessages() ([]*capture.Message, [][]string) {
	var ms []*capture.Message
	var cats [][]string
	for i := range 4096 {
		sender := fmt.Sprintf("staff%03d", i*7%200)
		corp := "firm"
		if i%50 == 0 {
			sender, corp = fmt.Sprintf("client%02d", i%30), "clientcorp"
		}
		m := &capture.Message{Platform: capture.PlatformDingTalk, Tenant: "firm", ID: fmt.Sprintf("msg%06d", i),
			Conversation: capture.Conversation{ID: fmt.Sprintf("cid%04d", i*13%500), Type: capture.ConversationGroup},
			Sender:       capture.Party{ID: "u-" + sender, StaffID: sender},
			Kind:         capture.KindText, Text: "please confirm the allocation for the 2pm block, thanks",
			Raw: []byte(`{"msgId":"` + fmt.Sprint(i) + `","senderCorpId":"` + corp + `","chatbotCorpId":"firm","senderStaffId":"` +
				sender + `","text":{"content":"please confirm the allocation for the 2pm block, thanks"}}`)}
		if corp != "firm" {
			m.Sender.StaffID = ""
		}
		var c []string
		if i%20 == 0 {
			c = []string{"off_channel"}
		}
		ms = append(ms, m)
		cats = append(cats, c)
	}
	return ms, cats
}

// BenchmarkObserve measures Observe per message (ns/op is per message) for each rule kind
// alone and all together, beside the lexicon scan of the same message text with the default
// lexicon (the work that runs next to it on every message) as the baseline. Messages are
// 150 ms apart, so the clock crosses session edges and windows as in a busy day.
//
//	go test -run XXX -bench BenchmarkObserve -benchmem ./scan/behaviour/
func BenchmarkObserve(b *testing.B) {
	ms, cats := benchMessages()
	base := utc("2026-03-03T00:00:00Z")
	seq := func(m *capture.Message) (uint64, bool) { return 0, false }
	for _, bc := range []struct{ name, rules string }{
		{"off_hours", rulesOf(`{"id":"oh","severity":"low","off_hours":{"desks":[{"name":"hk","time_zone":"Asia/Hong_Kong","open":"09:00","close":"18:00","calendar":"HK"}],"default_desk":"hk"}}`)},
		{"burst", rulesOf(`{"id":"b","severity":"low","burst":{"window":"10m"}}`)},
		{"off_channel", rulesOf(`{"id":"oc","severity":"low","off_channel":{"categories":["off_channel"],"silence":"30m"}}`)},
		{"first_contact", rulesOf(`{"id":"fc","severity":"low","first_contact":{}}`)},
		{"health", rulesOf(`{"id":"s","severity":"low","source_silence":{"window":"15m"}}`, `{"id":"c","severity":"low","conversation_silence":{"window":"24h"}}`, `{"id":"g","severity":"low","sequence_gap":{}}`)},
		{"all", fullRules},
	} {
		b.Run("rules="+bc.name, func(b *testing.B) {
			d := mustNew(b, bc.rules, Options{Sequence: seq})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := ms[i%len(ms)]
				m.SentAt = base.Add(time.Duration(i) * 150 * time.Millisecond)
				d.Observe(m, cats[i%len(ms)])
				i++
			}
		})
	}
	b.Run("baseline=lexicon-scan", func(b *testing.B) {
		sc, err := scan.Default()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sc.ScanString(ms[i%len(ms)].Text)
			i++
		}
	})
}
