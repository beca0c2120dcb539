package capture_test

import (
	"testing"

	"github.com/commseal/commseal/capture"
)

// BenchmarkValidate measures Message.Validate on a typical captured text message (every field
// checked, no allocation).
//
//	go test -run XXX -bench Validate ./capture/
func BenchmarkValidate(b *testing.B) {
	m := &capture.Message{Platform: "dingtalk", Tenant: "dingQSbroker8f3a2c1e", ID: "msgQS000000010042",
		Conversation: capture.Conversation{ID: "cidQS2hkEqDeskTradZ8pL4w==", Type: "group", Title: "港股交易 HK Equities Desk"},
		Sender:       capture.Party{ID: "$:LWCP_v1:$QSa1b2c3d4e5f6", StaffID: "100231", Name: "Chan Tai Man 陳大文"},
		Mentions:     []capture.Party{{ID: "$:LWCP_v1:$QSbotuser000001"}},
		Kind:         "text", Text: "幫我喺收市前以市價買入騰訊 2000 股", Raw: make([]byte, 700)}
	for b.Loop() {
		if err := m.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
