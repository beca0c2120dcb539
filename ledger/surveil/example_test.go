package surveil_test

import (
	"fmt"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
)

// A program that scans on its own turns its findings into the annotation record that seals
// them (append it with ledger.AppendRecord).
func ExampleNewRecord() {
	s, _ := scan.Default()
	m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: "msg-1",
		Conversation: capture.Conversation{ID: "cid-1", Type: capture.ConversationDirect},
		Kind:         capture.KindText, Text: "call me on WhatsApp", SentAt: time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)}
	findings := surveil.ScanMessage(s, m)
	rec, err := surveil.NewRecord(m, 41, surveil.Lexicon{Name: s.Name(), Version: s.Version()}, findings, m.SentAt)
	if err != nil {
		fmt.Println(err)
		return
	}
	a, _ := surveil.ParseAnnotation(rec.Body)
	f := a.Findings[0]
	fmt.Println(rec.Kind, rec.About.ID, f.Rule, f.Field, m.Text[f.Start:f.End])
	// Output: annotation msg-1 off-channel.move text WhatsApp
}
