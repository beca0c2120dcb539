package alert_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"time"

	"github.com/commseal/commseal/ledger/alert"
	"github.com/commseal/commseal/scan"
)

func finding() alert.Alert {
	return alert.Alert{
		Index:          42,
		Platform:       "dingtalk",
		Tenant:         "ding-corp-1",
		MessageID:      "msgA1",
		Conversation:   "cid-desk",
		Sender:         "staff-7",
		Rule:           "guarantee.returns",
		Category:       "guarantee_of_returns",
		Severity:       scan.High,
		LexiconName:    "desk-lexicon",
		LexiconVersion: "sha256:3f2a",
		Time:           time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC),
		Excerpt:        "guaranteed 30% return", // dropped: nobody opted in
	}
}

// A log Alerter writes references and severities, never the excerpt.
func ExampleNewLog() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // keep the example's output stable
		}
		return a
	}})
	al := alert.NewLog(slog.New(h))
	if err := al.Alert(context.Background(), finding()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// level=WARN msg=alert id=a-9327a140526fd69bc02f2ecd7342b178 index=42 platform=dingtalk tenant=ding-corp-1 msg_id=msgA1 conversation=cid-desk sender=staff-7 rule=guarantee.returns category=guarantee_of_returns severity=high lexicon_name=desk-lexicon lexicon_version=sha256:3f2a sent_at=2026-11-02T09:30:00.000Z
}

// An Outbox in front of a Webhook: Alert returns once the alert is on disk, Run delivers it,
// and the receiver checks the signature and deduplicates on the Idempotency-Key.
func ExampleOutbox() {
	secret := []byte("a shared secret of 32 bytes.....")
	received := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := alert.VerifySignature(secret, r.Header.Get(alert.HeaderTimestamp),
			r.Header.Get(alert.HeaderSignature), body, time.Now(), 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		received <- r.Header.Get(alert.HeaderIdempotencyKey)
	}))
	defer srv.Close()

	dir, err := os.MkdirTemp("", "outbox")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	hook, err := alert.NewWebhook(alert.WebhookOptions{URL: srv.URL, Secret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	box, err := alert.OpenOutbox(dir, hook, alert.OutboxOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer box.Close()
	go box.Run(context.Background())

	a := finding()
	if err := box.Alert(context.Background(), a); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("received", <-received == alert.NewID(a.Index, a.Rule, a.LexiconVersion))
	// Output:
	// received true
}

// DingTalkSign is the robot signature that DingTalk documents; the sender URL-encodes it.
func ExampleDingTalkSign() {
	fmt.Println(url.QueryEscape(alert.DingTalkSign(1700000000000, "secret")))
	// Output:
	// OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D
}

// A DingTalk robot for the compliance group, behind an outbox spaced for DingTalk's limit of
// 20 messages a minute.
func ExampleNewDingTalk() {
	robot, err := alert.NewDingTalk(alert.DingTalkOptions{
		URL:    alert.DingTalkRobotURL + "?access_token=YOUR_TOKEN",
		Secret: "SECyour-signing-secret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// To deliver: alert.OpenOutbox(dir, robot, alert.OutboxOptions{MinInterval: alert.DingTalkInterval}).
	// Here, what the group would see:
	a := finding()
	a.ID = alert.NewID(a.Index, a.Rule, a.LexiconVersion)
	title, text := robot.Markdown(&a)
	fmt.Println(title)
	fmt.Print(text)
	// Output:
	// commseal alert: high guarantee.returns
	// ### commseal alert: high guarantee.returns
	//
	// - severity: `high`
	// - rule: `guarantee.returns`
	// - category: `guarantee_of_returns`
	// - ledger index: `42`
	// - message: `dingtalk/ding-corp-1/msgA1`
	// - conversation: `cid-desk`
	// - sender: `staff-7`
	// - lexicon: `desk-lexicon sha256:3f2a`
	// - time: `2026-11-02T09:30:00Z`
	// - alert: `a-9327a140526fd69bc02f2ecd7342b178`
}
