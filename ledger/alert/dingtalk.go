package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DingTalkRobotURL is the endpoint of DingTalk's custom group robots; the robot's settings page
// gives it with the access_token query parameter filled in.
const DingTalkRobotURL = "https://oapi.dingtalk.com/robot/send"

// DingTalkInterval is the spacing between messages that keeps one custom robot under
// DingTalk's limit of 20 messages a minute (beyond it the robot is throttled, errcode 130101).
// Set OutboxOptions.MinInterval to it for an Outbox that feeds a DingTalk sender.
const DingTalkInterval = 3 * time.Second

// DingTalkOptions configures a DingTalk sender.
type DingTalkOptions struct {
	// URL is the robot's webhook, as its settings page shows it:
	// DingTalkRobotURL + "?access_token=…". Tests point it at a local server. Required, with an
	// access_token.
	URL string
	// Secret is the robot's signing secret (加签, the "SEC…" string). Required: an unsigned
	// robot accepts messages from anyone who learns its URL.
	Secret string
	// Client sends the requests. Default: a client with a 30 s timeout that does not follow
	// redirects (a throttled robot is reported to answer 302; that is retried, not followed).
	Client *http.Client
	// IncludeExcerpt puts Alert.Excerpt in the message when it is set. Default false: the group
	// sees references only.
	IncludeExcerpt bool
	// Title starts every message's title (robots with a keyword rule need the keyword there).
	// Default "commseal alert".
	Title string
	// Now gives the signing time. Default time.Now.
	Now func() time.Time
}

// DingTalk is a Sender that posts each alert as a markdown message to a DingTalk custom group
// robot, for the compliance team's group. Each request is signed as DingTalk documents for
// custom robots (自定义机器人安全设置, "加签"): the query parameters timestamp (Unix
// milliseconds) and sign = urlencode(base64(HmacSHA256(key = secret, message = timestamp +
// "\n" + secret))), with UTF-8 strings; DingTalk refuses a timestamp more than an hour from its
// clock. Source: DingTalk's open-platform page on custom robot security settings (自定义机器人
// 安全设置, "加签"), as mirrored at https://apifox.com/apidoc/docs-site/467052/doc-3550006 with
// its Java and Python samples; the limit of 20 messages a minute per robot is from the custom
// robot access page (https://open.dingtalk.com/document/group/custom-robot-access, as quoted at
// http://zhuoqun.info/article/182).
//
// DingTalk answers HTTP 200 with {"errcode":0,"errmsg":"ok"} when it posted the message.
// Another errcode is a failure with its errmsg: -1 (system busy), 130101 (more than 20
// messages a minute; retried after a minute) and 90030 (webhook over limit; after an hour) are
// retried; every other code (310000: signature, keyword or IP rule not
// met; an unknown access_token; …) is permanent, since sending again the same way cannot succeed.
// HTTP statuses are treated as by Webhook. Put it behind an Outbox.
type DingTalk struct {
	url     *url.URL
	secret  string
	client  *http.Client
	excerpt bool
	title   string
	now     func() time.Time
}

// NewDingTalk checks opts and returns a DingTalk sender.
func NewDingTalk(opts DingTalkOptions) (*DingTalk, error) {
	u, err := checkURL("dingtalk robot", opts.URL)
	if err != nil {
		return nil, err
	}
	if u.Query().Get("access_token") == "" {
		return nil, errors.New("alert: dingtalk robot URL has no access_token")
	}
	if opts.Secret == "" {
		return nil, errors.New("alert: dingtalk robot secret is empty")
	}
	d := &DingTalk{url: u, secret: opts.Secret, client: opts.Client, excerpt: opts.IncludeExcerpt,
		title: opts.Title, now: opts.Now}
	if d.client == nil {
		d.client = defaultClient()
	}
	if d.title == "" {
		d.title = "commseal alert"
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// DingTalkSign returns the sign query parameter's value before URL encoding:
// base64(HmacSHA256(key = secret, message = timestamp + "\n" + secret)), timestamp being the
// decimal Unix milliseconds sent as the timestamp parameter.
func DingTalkSign(timestampMillis int64, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// dingReply is DingTalk's answer to a robot message.
type dingReply struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// dingRetry says whether an errcode is worth another attempt, and how long to wait first.
func dingRetry(code int) (bool, time.Duration) {
	switch code {
	case -1: // system busy
		return true, 0
	case 130101: // more than 20 messages a minute; reports say the robot is then held for 10 min
		return true, time.Minute
	case 90030: // "webhook over limit": the robot's quota is used up for now
		return true, time.Hour
	}
	return false, 0
}

// Send posts a once. See Sender and DingTalk.
func (d *DingTalk) Send(ctx context.Context, a Alert) error {
	a, err := prepare(a, d.excerpt)
	if err != nil {
		return err
	}
	title, text := d.Markdown(&a)
	body, err := json.Marshal(map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": title, "text": text},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidAlert, err)
	}
	now := d.now()
	ms := now.UnixMilli()
	u := *d.url
	q := u.Query()
	q.Set("timestamp", strconv.FormatInt(ms, 10))
	q.Set("sign", DingTalkSign(ms, d.secret))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return redact(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	resp, err := d.client.Do(req)
	if err != nil {
		return redact(err)
	}
	defer resp.Body.Close()
	reply := readReply(resp)
	if err := classify(resp, now, reply); err != nil {
		return err
	}
	var r dingReply
	if err := json.Unmarshal([]byte(reply), &r); err != nil || r.ErrCode == nil {
		// Not DingTalk's answer (a proxy's page?): try again later.
		return &DeliveryError{StatusCode: resp.StatusCode, Msg: "reply is not a DingTalk result: " + shorten(reply, 100)}
	}
	if *r.ErrCode == 0 {
		return nil
	}
	retry, wait := dingRetry(*r.ErrCode)
	return &DeliveryError{StatusCode: resp.StatusCode, Code: *r.ErrCode, Msg: shorten(r.ErrMsg, 200),
		Permanent: !retry, RetryAfter: wait}
}

// Markdown returns the title and markdown text that Send posts for a: severity, rule,
// category, and where to find the message (ledger index, message, conversation, sender,
// lexicon, time, alert id). The excerpt is included only with IncludeExcerpt.
func (d *DingTalk) Markdown(a *Alert) (title, text string) {
	// The title is plain text (DingTalk shows it in notifications); the heading is markdown.
	title = oneLine(d.title + ": " + a.Severity.String() + " " + a.Rule)
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", mdText(title))
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "- %s: %s\n", k, mdCode(v))
		}
	}
	line("severity", a.Severity.String())
	line("rule", a.Rule)
	line("category", a.Category)
	line("ledger index", strconv.FormatUint(a.Index, 10))
	line("message", a.Platform+"/"+a.Tenant+"/"+a.MessageID)
	line("conversation", a.Conversation)
	line("sender", a.Sender)
	if a.LexiconName != "" || a.LexiconVersion != "" {
		line("lexicon", strings.TrimSpace(a.LexiconName+" "+a.LexiconVersion))
	}
	if !a.Time.IsZero() {
		line("time", a.Time.UTC().Format(time.RFC3339))
	}
	line("alert", a.ID)
	if d.excerpt && a.Excerpt != "" {
		fmt.Fprintf(&b, "\n> %s\n", mdText(a.Excerpt))
	}
	return title, b.String()
}

// mdText makes s one line of plain markdown text: control characters become spaces and the
// characters markdown acts on are escaped, so a field cannot restructure the message.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		case strings.ContainsRune("\\`*_[]()#>!<|~", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine replaces control characters with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// mdCode renders s as inline code on one line.
func mdCode(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '`' {
			return ' '
		}
		return r
	}, s)
	return "`" + s + "`"
}
