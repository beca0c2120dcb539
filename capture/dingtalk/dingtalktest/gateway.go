// Package dingtalktest provides a local DingTalk gateway for tests: a real implementation of the
// Stream protocol and of the few OpenAPI endpoints a capture needs, on 127.0.0.1, that the
// official Go Stream SDK connects to through client.WithOpenApiHost.
//
// It plays the role net/http/httptest plays for HTTP handlers: New starts a gateway, URL is what
// the SDK (or commseal's dingtalk.Source) is pointed at, Close shuts it down. Between the two a
// test pushes bot messages and events, and the gateway behaves as DingTalk does:
//
//   - POST /v1.0/gateway/connections/open checks the credentials and issues a single-use ticket
//     that expires after Config.TicketTTL (90 s by default); the websocket upgrade at the
//     returned endpoint refuses a missing, reused or expired ticket with 401 before upgrading.
//   - Pushes are text frames with string headers and a unique messageId, written under one
//     writer lock per connection, to a live connection chosen at random among those subscribed
//     to the frame's type and topic.
//   - Acks are correlated by messageId and kept with the time they arrived (Deliveries), so a
//     test can check when each push was acknowledged.
//   - A push not acknowledged with code 200 (and, for events, not with status LATER) within
//     Config.RedeliverAfter is pushed again with a new messageId, up to Config.MaxRedeliveries
//     times; after that it is given up, as DingTalk would.
//   - Each websocket Ping is answered with exactly one Pong; no Pong is ever sent unasked.
//   - SYSTEM ping frames (PingAll, or every Config.SystemPingInterval) and SYSTEM disconnect
//     (Disconnect, DisconnectAll): a disconnected connection gets no more pushes and is closed
//     after Config.DisconnectGrace.
//
// Faults are injected by methods: FailOpens, SwallowPings, AbruptClose, Zombie, PushRaw
// (malformed frames), QuotaPayload (content-less bot payloads), PushBurst, FailDownloads and
// Config.DownloadQPS. The OpenAPI side fakes /v1.0/oauth2/accessToken,
// /v1.0/robot/messageFiles/download and the temporary file links it hands out (AddFile).
//
// NewUpstream adapts a gateway to capturetest.Upstream, so that capturetest.RunSource checks a
// DingTalk source through the real SDK. The in-memory sink that used to live here is
// capturetest.Sink (Sink and NewSink remain as deprecated aliases).
//
// Only loopback addresses are used.
package dingtalktest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Topics and frame types of the Stream protocol.
const (
	TopicBotMessage = "/v1.0/im/bot/messages/get" // bot message callbacks
	TopicAllEvents  = "*"                         // EVENT frames are pushed on this topic

	TypeSystem   = "SYSTEM"
	TypeEvent    = "EVENT"
	TypeCallback = "CALLBACK"
)

// Default credentials used when Config leaves them empty.
const (
	DefaultClientID     = "dingtest-client-id"
	DefaultClientSecret = "dingtest-client-secret"
)

// Config configures a Gateway. The zero value is usable; each field documents its default.
type Config struct {
	ClientID     string // the AppKey the open endpoint accepts; default DefaultClientID
	ClientSecret string // the AppSecret; default DefaultClientSecret
	RobotCode    string // the robotCode the download API accepts; default ClientID

	TicketTTL time.Duration // how long a ticket stays usable; default 90 s

	// RedeliverAfter is how long a push may stay without a successful ack before it is pushed
	// again; default 60 s (DingTalk's reported behaviour for bot callbacks). Tests use less.
	RedeliverAfter time.Duration
	// MaxRedeliveries bounds how often one push is pushed again; default 5. Negative: never
	// pushed again.
	MaxRedeliveries int
	// DropWhileDisconnected makes a push with no live connection lost (given up) at once, as
	// DingTalk appears to do. By default it waits until a connection arrives.
	DropWhileDisconnected bool

	DisconnectGrace    time.Duration // from a SYSTEM disconnect to closing; default 10 s
	SystemPingInterval time.Duration // SYSTEM ping to every live connection; 0: only PingAll
	WriteTimeout       time.Duration // per frame write; default 5 s

	TokenTTL    time.Duration // lifetime of an access token; default 7200 s
	DownloadQPS int           // messageFiles/download calls per second before throttling; 0: unlimited
}

func (c *Config) defaults() {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.ClientSecret == "" {
		c.ClientSecret = DefaultClientSecret
	}
	if c.RobotCode == "" {
		c.RobotCode = c.ClientID
	}
	if c.TicketTTL <= 0 {
		c.TicketTTL = 90 * time.Second
	}
	if c.RedeliverAfter <= 0 {
		c.RedeliverAfter = 60 * time.Second
	}
	if c.MaxRedeliveries == 0 {
		c.MaxRedeliveries = 5
	}
	if c.DisconnectGrace <= 0 {
		c.DisconnectGrace = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 7200 * time.Second
	}
}

// Gateway is a local DingTalk Stream gateway and OpenAPI fake. Its methods are safe for
// concurrent use.
type Gateway struct {
	// URL is the gateway's base URL, http://127.0.0.1:port, to pass to
	// client.WithOpenApiHost (or dingtalk.Options.OpenAPIHost).
	URL string
	// Config is the gateway's configuration. Set it before Start; it must not change after.
	Config Config

	srv      *httptest.Server
	upgrader websocket.Upgrader
	stopPing chan struct{}
	bg       sync.WaitGroup

	mu        sync.Mutex
	started   bool
	closed    bool
	changed   chan struct{} // closed and replaced whenever state changes
	tickets   map[string]*ticket
	conns     []*conn
	nextConn  int
	nextMsg   uint64
	pushes    []*push
	attempts  map[string]*attempt // by frame messageId
	waiting   []*push             // pushes with no live connection yet
	sysFrames map[string]string   // messageId -> opaque of SYSTEM pings awaiting an answer
	failOpens int
	swallow   bool
	stats     Stats

	tokens     map[string]time.Time // access token -> expiry
	files      map[string]file      // downloadCode -> content
	links      map[string]string    // file link id -> downloadCode
	dlFaults   map[string]int       // downloadCode -> failures left
	dlWindow   time.Time
	dlInWindow int
}

type ticket struct {
	expires time.Time
	used    bool
	subs    map[string]bool // "TYPE topic"
}

type file struct {
	content     []byte
	contentType string
}

// ConnState is the gateway's view of one websocket connection.
type ConnState int

// Connection states.
const (
	ConnLive          ConnState = iota // receiving pushes
	ConnDisconnecting                  // sent a SYSTEM disconnect; no more pushes; closing soon
	ConnZombie                         // open but dead: pushes, pings and acks vanish
	ConnClosed                         // gone
)

// String names the state.
func (s ConnState) String() string {
	switch s {
	case ConnLive:
		return "live"
	case ConnDisconnecting:
		return "disconnecting"
	case ConnZombie:
		return "zombie"
	case ConnClosed:
		return "closed"
	}
	return "ConnState(" + strconv.Itoa(int(s)) + ")"
}

type conn struct {
	id       string
	ws       *websocket.Conn
	subs     map[string]bool
	openedAt time.Time
	wmu      sync.Mutex // the one writer lock of this connection
	state    ConnState  // guarded by Gateway.mu
}

type push struct {
	id       int
	typ      string
	topic    string
	headers  map[string]string
	data     string
	attempts []*attempt
	settled  bool
	givenUp  bool
	done     chan struct{}
}

type attempt struct {
	p        *push
	n        int
	msgID    string
	conn     string
	sentAt   time.Time
	ackAt    time.Time
	code     int
	status   string
	ackData  string
	acked    bool
	writeErr error
}

// Stats counts what a gateway did.
type Stats struct {
	Opens          int         // tickets issued
	OpensFailed    int         // open calls refused (bad credentials or FailOpens)
	TicketsRefused int         // websocket upgrades refused with 401
	Connections    int         // websocket connections accepted
	Pushes         int         // distinct pushes (PushBotMessage, PushEvent, PushFrame)
	Frames         int         // frames written for pushes, redeliveries included
	Redeliveries   int         // frames that were redeliveries
	GivenUp        int         // pushes abandoned after MaxRedeliveries (or dropped while disconnected)
	Acks           map[int]int // acks of pushes by code
	Later          int         // event acks with status LATER
	LateAcks       int         // acks for an attempt that had already been superseded
	UnknownAcks    int         // acks whose messageId the gateway never sent (or unparsable)
	RawFrames      int         // PushRaw frames
	Pings          int         // websocket Pings received
	Pongs          int         // Pongs sent (always one per answered Ping)
	PingsSwallowed int         // Pings left unanswered (SwallowPings or zombie)
	SystemPings    int         // SYSTEM ping frames sent
	SystemPongs    int         // SYSTEM ping acks with code 200 echoing the opaque
	Disconnects    int         // SYSTEM disconnect frames sent
	TokenRequests  int
	Downloads      int // messageFiles/download calls answered with a link
	DownloadErrors int // messageFiles/download calls answered with an error
	FileGets       int // file link fetches served
}

// New starts and returns a gateway on 127.0.0.1 configured by cfg. The caller must Close it.
func New(cfg Config) *Gateway {
	g := NewUnstarted(cfg)
	g.Start()
	return g
}

// NewUnstarted returns a gateway that is not yet listening; adjust Config and call Start.
func NewUnstarted(cfg Config) *Gateway {
	g := &Gateway{
		Config:    cfg,
		changed:   make(chan struct{}),
		tickets:   map[string]*ticket{},
		attempts:  map[string]*attempt{},
		sysFrames: map[string]string{},
		tokens:    map[string]time.Time{},
		files:     map[string]file{},
		links:     map[string]string{},
		dlFaults:  map[string]int{},
		stopPing:  make(chan struct{}),
	}
	g.stats.Acks = map[int]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.0/gateway/connections/open", g.handleOpen)
	mux.HandleFunc("GET /connect", g.handleConnect)
	mux.HandleFunc("POST /v1.0/oauth2/accessToken", g.handleToken)
	mux.HandleFunc("POST /v1.0/robot/messageFiles/download", g.handleDownload)
	mux.HandleFunc("GET /files/{id}", g.handleFile)
	g.srv = httptest.NewUnstartedServer(mux) // listens on 127.0.0.1:0
	return g
}

// Start starts listening. Calling it again does nothing.
func (g *Gateway) Start() {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return
	}
	g.started = true
	g.Config.defaults()
	g.mu.Unlock()
	g.srv.Start()
	g.URL = g.srv.URL
	if iv := g.Config.SystemPingInterval; iv > 0 {
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			t := time.NewTicker(iv)
			defer t.Stop()
			for {
				select {
				case <-g.stopPing:
					return
				case <-t.C:
					g.PingAll()
				}
			}
		}()
	}
}

// Close closes every connection, stops redelivery and shuts the gateway down.
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	conns := slices.Clone(g.conns)
	g.notifyLocked()
	g.mu.Unlock()
	close(g.stopPing)
	for _, c := range conns {
		_ = c.ws.Close()
	}
	g.srv.Close()
	g.bg.Wait()
}

// notifyLocked wakes everyone waiting for a state change. g.mu must be held.
func (g *Gateway) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// apiError writes a DingTalk-style OpenAPI error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg, "requestid": rand.Text()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (g *Gateway) handleOpen(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID      string `json:"clientId"`
		ClientSecret  string `json:"clientSecret"`
		Subscriptions []struct {
			Type  string `json:"type"`
			Topic string `json:"topic"`
		} `json:"subscriptions"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failOpens > 0 {
		g.failOpens--
		g.stats.OpensFailed++
		apiError(w, http.StatusInternalServerError, "ServiceUnavailable", "injected failure")
		return
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		g.stats.OpensFailed++
		apiError(w, http.StatusBadRequest, "InvalidParameter", "malformed body")
		return
	}
	if req.ClientID != g.Config.ClientID || req.ClientSecret != g.Config.ClientSecret {
		g.stats.OpensFailed++
		apiError(w, http.StatusUnauthorized, "InvalidAuthentication", "clientId or clientSecret is wrong")
		return
	}
	t := &ticket{expires: time.Now().Add(g.Config.TicketTTL), subs: map[string]bool{}}
	for _, s := range req.Subscriptions {
		t.subs[s.Type+" "+s.Topic] = true
	}
	id := rand.Text()
	g.tickets[id] = t
	g.stats.Opens++
	writeJSON(w, map[string]string{
		"endpoint": "ws://" + g.srv.Listener.Addr().String() + "/connect",
		"ticket":   id,
	})
}

func (g *Gateway) handleConnect(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("ticket")
	g.mu.Lock()
	t := g.tickets[id]
	ok := t != nil && !t.used && time.Now().Before(t.expires) && !g.closed
	if t != nil {
		t.used = true // single use, even when it had expired
	}
	if !ok {
		g.stats.TicketsRefused++
		g.mu.Unlock()
		apiError(w, http.StatusUnauthorized, "InvalidTicket", "ticket is missing, used or expired")
		return
	}
	g.mu.Unlock()
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &conn{ws: ws, subs: t.subs, openedAt: time.Now()}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = ws.Close()
		return
	}
	g.nextConn++
	c.id = "conn-" + strconv.Itoa(g.nextConn)
	g.conns = append(g.conns, c)
	g.stats.Connections++
	waiting := g.waiting
	g.waiting = nil
	g.notifyLocked()
	// Added under g.mu while not closed, so that Close's Wait never races this Add: the
	// connection is hijacked and httptest.Server.Close does not wait for this handler.
	g.bg.Add(1)
	g.mu.Unlock()

	ws.SetPingHandler(func(data string) error {
		g.mu.Lock()
		g.stats.Pings++
		answer := !g.swallow && c.state != ConnZombie
		if !answer {
			g.stats.PingsSwallowed++
		} else {
			g.stats.Pongs++
		}
		g.mu.Unlock()
		if !answer {
			return nil
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(g.Config.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
		return nil
	})
	for _, p := range waiting {
		g.deliver(p)
	}
	go func() {
		defer g.bg.Done()
		g.readLoop(c)
	}()
}

func (g *Gateway) readLoop(c *conn) {
	defer func() {
		_ = c.ws.Close()
		g.mu.Lock()
		c.state = ConnClosed
		g.notifyLocked()
		g.mu.Unlock()
	}()
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		g.mu.Lock()
		zombie := c.state == ConnZombie
		g.mu.Unlock()
		if zombie || typ != websocket.TextMessage {
			continue
		}
		g.handleAck(c, b)
	}
}

// frame is the Stream protocol's envelope as the gateway writes it.
type frame struct {
	SpecVersion string            `json:"specVersion"`
	Type        string            `json:"type"`
	Headers     map[string]string `json:"headers"`
	Data        string            `json:"data"`
}

func (g *Gateway) newMsgIDLocked() string {
	g.nextMsg++
	return fmt.Sprintf("msg-%d-%s", g.nextMsg, rand.Text()[:8])
}

// pickLocked returns a random live connection subscribed to typ/topic, or nil.
func (g *Gateway) pickLocked(typ, topic string) *conn {
	var live []*conn
	for _, c := range g.conns {
		if (c.state == ConnLive || c.state == ConnZombie) && c.subs[typ+" "+topic] {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[mrand.IntN(len(live))]
}

func (c *conn) write(b []byte, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// deliver pushes (or pushes again) p on a live connection, or parks it until one arrives.
func (g *Gateway) deliver(p *push) {
	g.mu.Lock()
	if g.closed || p.settled {
		g.mu.Unlock()
		return
	}
	c := g.pickLocked(p.typ, p.topic)
	if c == nil {
		if g.Config.DropWhileDisconnected {
			g.giveUpLocked(p)
		} else {
			g.waiting = append(g.waiting, p)
		}
		g.mu.Unlock()
		return
	}
	a := &attempt{p: p, n: len(p.attempts) + 1, msgID: g.newMsgIDLocked(), conn: c.id, sentAt: time.Now()}
	p.attempts = append(p.attempts, a)
	g.attempts[a.msgID] = a
	g.stats.Frames++
	if a.n > 1 {
		g.stats.Redeliveries++
	}
	h := make(map[string]string, len(p.headers)+5)
	for k, v := range p.headers {
		h[k] = v
	}
	h["messageId"] = a.msgID
	h["topic"] = p.topic
	h["contentType"] = "application/json"
	h["time"] = strconv.FormatInt(a.sentAt.UnixMilli(), 10)
	h["connectionId"] = c.id
	h["appId"] = g.Config.ClientID
	zombie := c.state == ConnZombie
	g.mu.Unlock()

	time.AfterFunc(g.Config.RedeliverAfter, func() { g.expire(a) })
	if zombie {
		return // the server believes it sent it; nothing arrives
	}
	b, _ := json.Marshal(frame{SpecVersion: "1.0", Type: p.typ, Headers: h, Data: p.data})
	if err := c.write(b, g.Config.WriteTimeout); err != nil {
		g.mu.Lock()
		a.writeErr = err
		g.mu.Unlock()
	}
}

// expire runs RedeliverAfter after attempt a was sent: if its push is still unsettled and a is
// its latest attempt, the push goes out again or is given up.
func (g *Gateway) expire(a *attempt) {
	g.mu.Lock()
	p := a.p
	if g.closed || p.settled || p.attempts[len(p.attempts)-1] != a {
		g.mu.Unlock()
		return
	}
	if g.Config.MaxRedeliveries < 0 || len(p.attempts) > g.Config.MaxRedeliveries {
		g.giveUpLocked(p)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.deliver(p)
}

func (g *Gateway) giveUpLocked(p *push) {
	p.settled, p.givenUp = true, true
	g.stats.GivenUp++
	close(p.done)
	g.notifyLocked()
}

func (g *Gateway) handleAck(c *conn, b []byte) {
	var ack struct {
		Code    int               `json:"code"`
		Headers map[string]string `json:"headers"`
		Message string            `json:"message"`
		Data    string            `json:"data"`
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if json.Unmarshal(b, &ack) != nil {
		g.stats.UnknownAcks++
		return
	}
	id := ack.Headers["messageId"]
	if opaque, ok := g.sysFrames[id]; ok {
		delete(g.sysFrames, id)
		if ack.Code == 200 && strings.Contains(ack.Data, opaque) {
			g.stats.SystemPongs++
		}
		return
	}
	a := g.attempts[id]
	if a == nil || a.acked {
		g.stats.UnknownAcks++
		return
	}
	a.acked, a.ackAt, a.code, a.ackData = true, now, ack.Code, ack.Data
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal([]byte(ack.Data), &st) == nil {
		a.status = st.Status
	}
	g.stats.Acks[ack.Code]++
	p := a.p
	if p.attempts[len(p.attempts)-1] != a {
		g.stats.LateAcks++
	}
	ok := ack.Code == 200
	if p.typ == TypeEvent && a.status == "LATER" {
		g.stats.Later++
		ok = false
	}
	if ok && !p.settled {
		p.settled = true
		close(p.done)
	}
	g.notifyLocked()
}

// Push is the handle of one pushed message, across its redeliveries.
type Push struct {
	g *Gateway
	p *push
}

// ID is the push's index in the order of pushing, starting at 0.
func (h *Push) ID() int { return h.p.id }

// Done is closed when the push is settled: acknowledged successfully or given up.
func (h *Push) Done() <-chan struct{} { return h.p.done }

// ErrClosed is returned by waits that the gateway's Close ended.
var ErrClosed = errors.New("dingtalktest: gateway closed")

// Answered blocks until a frame of the push has been acknowledged (with any code, LATER
// included) and returns the first such delivery; it returns an error when ctx ends or the
// gateway closes first.
func (h *Push) Answered(ctx context.Context) (Delivery, error) {
	g := h.g
	for {
		g.mu.Lock()
		for _, a := range h.p.attempts {
			if a.acked {
				d := a.delivery()
				g.mu.Unlock()
				return d, nil
			}
		}
		closed, ch := g.closed, g.changed
		g.mu.Unlock()
		if closed {
			return Delivery{}, ErrClosed
		}
		select {
		case <-ctx.Done():
			return Delivery{}, fmt.Errorf("dingtalktest: push %d not answered: %w", h.p.id, ctx.Err())
		case <-ch:
		}
	}
}

// delivery describes a. g.mu must be held.
func (a *attempt) delivery() Delivery {
	p := a.p
	return Delivery{
		Push: p.id, Attempt: a.n, MessageID: a.msgID, Conn: a.conn, Type: p.typ, Data: p.data,
		SentAt: a.sentAt, Acked: a.acked, AckedAt: a.ackAt, Code: a.code, Status: a.status,
		AckData: a.ackData, WriteErr: a.writeErr,
	}
}

// Delivery is one frame written for a push, and its ack if one arrived.
type Delivery struct {
	Push      int       // Push.ID
	Attempt   int       // 1 for the first frame, 2 for the first redelivery, ...
	MessageID string    // the frame's messageId header
	Conn      string    // the connection it was written to
	Type      string    // CALLBACK or EVENT
	Data      string    // the frame's data
	SentAt    time.Time // when it was handed to the connection
	Acked     bool
	AckedAt   time.Time // when the ack arrived (with a monotonic clock reading)
	Code      int       // the ack's code
	Status    string    // the ack data's "status" (events: SUCCESS or LATER)
	AckData   string    // the ack's data
	WriteErr  error     // the write failed (the connection was going away)
}

// Frame is a push the caller composes: type, topic, extra headers and data. messageId, topic,
// contentType, time, connectionId and appId headers are set by the gateway.
type Frame struct {
	Type    string            // TypeCallback or TypeEvent
	Topic   string            // e.g. TopicBotMessage, TopicAllEvents
	Headers map[string]string // extra headers (string values, as DingTalk sends them)
	Data    []byte            // the payload, sent as a JSON string
}

// PushFrame pushes f to a live connection (or parks it until one arrives) and tracks its ack
// and redeliveries.
func (g *Gateway) PushFrame(f Frame) *Push {
	g.mu.Lock()
	p := &push{id: len(g.pushes), typ: f.Type, topic: f.Topic, data: string(f.Data), done: make(chan struct{})}
	if len(f.Headers) > 0 {
		p.headers = make(map[string]string, len(f.Headers))
		for k, v := range f.Headers {
			p.headers[k] = v
		}
	}
	g.pushes = append(g.pushes, p)
	g.stats.Pushes++
	g.mu.Unlock()
	g.deliver(p)
	return &Push{g: g, p: p}
}

// PushBotMessage pushes a bot message callback whose data is the given payload (see BotMessage
// and QuotaPayload).
func (g *Gateway) PushBotMessage(data []byte) *Push {
	return g.PushFrame(Frame{Type: TypeCallback, Topic: TopicBotMessage, Data: data})
}

// PushEvent pushes an EVENT frame of the given type (e.g. "chat_add_member") for corpID with a
// fresh eventId; data is the event's JSON payload.
func (g *Gateway) PushEvent(eventType, corpID string, data []byte) *Push {
	return g.PushFrame(Frame{Type: TypeEvent, Topic: TopicAllEvents, Data: data, Headers: map[string]string{
		"eventId":           "evt-" + rand.Text()[:16],
		"eventType":         eventType,
		"eventCorpId":       corpID,
		"eventBornTime":     strconv.FormatInt(time.Now().UnixMilli(), 10),
		"eventUnifiedAppId": "unified-app",
	}})
}

// PushBurst pushes every payload as a bot message as fast as the connections take them, from
// several goroutines at once, and returns the handles in order.
func (g *Gateway) PushBurst(payloads [][]byte) []*Push {
	out := make([]*Push, len(payloads))
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(payloads); i += workers {
				out[i] = g.PushBotMessage(payloads[i])
			}
		})
	}
	wg.Wait()
	return out
}

// PushRaw writes b verbatim as a text frame to a random live connection (a malformed frame, a
// frame with numeric headers, ...). It is not tracked for acks. It reports whether a live
// connection took it.
func (g *Gateway) PushRaw(b []byte) bool {
	g.mu.Lock()
	var live []*conn
	for _, c := range g.conns {
		if c.state == ConnLive {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		g.mu.Unlock()
		return false
	}
	c := live[mrand.IntN(len(live))]
	g.stats.RawFrames++
	g.mu.Unlock()
	return c.write(b, g.Config.WriteTimeout) == nil
}

// Wait blocks until every push so far is settled (acknowledged successfully or given up) or ctx
// ends.
func (g *Gateway) Wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		pending := 0
		for _, p := range g.pushes {
			if !p.settled {
				pending++
			}
		}
		ch := g.changed
		g.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dingtalktest: %d pushes still unsettled: %w", pending, ctx.Err())
		case <-ch:
		}
	}
}

// WaitConns blocks until at least n connections are live or ctx ends.
func (g *Gateway) WaitConns(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		live := 0
		for _, c := range g.conns {
			if c.state == ConnLive {
				live++
			}
		}
		ch := g.changed
		g.mu.Unlock()
		if live >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dingtalktest: %d of %d connections live: %w", live, n, ctx.Err())
		case <-ch:
		}
	}
}

// Deliveries returns every frame written for pushes so far, in order of sending.
func (g *Gateway) Deliveries() []Delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Delivery
	for _, p := range g.pushes {
		for _, a := range p.attempts {
			out = append(out, a.delivery())
		}
	}
	slices.SortStableFunc(out, func(a, b Delivery) int { return a.SentAt.Compare(b.SentAt) })
	return out
}

// Unsettled returns the IDs of pushes neither acknowledged successfully nor given up.
func (g *Gateway) Unsettled() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for _, p := range g.pushes {
		if !p.settled {
			out = append(out, p.id)
		}
	}
	return out
}

// GivenUp returns the IDs of pushes the gateway abandoned.
func (g *Gateway) GivenUp() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for _, p := range g.pushes {
		if p.givenUp {
			out = append(out, p.id)
		}
	}
	return out
}

// Stats returns a snapshot of the gateway's counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Acks = make(map[int]int, len(g.stats.Acks))
	for k, v := range g.stats.Acks {
		s.Acks[k] = v
	}
	return s
}

// Conn describes one connection.
type Conn struct {
	ID       string
	State    ConnState
	OpenedAt time.Time
}

// Conns lists every connection the gateway has accepted, closed ones included.
func (g *Gateway) Conns() []Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Conn, 0, len(g.conns))
	for _, c := range g.conns {
		out = append(out, Conn{ID: c.id, State: c.state, OpenedAt: c.openedAt})
	}
	return out
}

func (g *Gateway) findLocked(id string) *conn {
	for _, c := range g.conns {
		if c.id == id {
			return c
		}
	}
	return nil
}

// inStateLocked returns the connections in one of the given states.
func (g *Gateway) inStateLocked(states ...ConnState) []*conn {
	var out []*conn
	for _, c := range g.conns {
		if slices.Contains(states, c.state) {
			out = append(out, c)
		}
	}
	return out
}

// ErrNoConn is returned for a connection id the gateway does not know or that is closed.
var ErrNoConn = errors.New("dingtalktest: no such open connection")

func (g *Gateway) systemFrame(c *conn, topic, data string) error {
	g.mu.Lock()
	id := g.newMsgIDLocked()
	if topic == "ping" {
		g.sysFrames[id] = data
		g.stats.SystemPings++
	} else {
		g.stats.Disconnects++
	}
	g.mu.Unlock()
	b, _ := json.Marshal(frame{SpecVersion: "1.0", Type: TypeSystem, Data: data, Headers: map[string]string{
		"messageId": id, "topic": topic, "contentType": "application/json",
		"time": strconv.FormatInt(time.Now().UnixMilli(), 10), "connectionId": c.id,
	}})
	return c.write(b, g.Config.WriteTimeout)
}

// PingAll sends a SYSTEM ping frame to every live connection. The client must answer each with
// code 200 echoing the data (Stats.SystemPongs counts the answers).
func (g *Gateway) PingAll() {
	g.mu.Lock()
	live := g.inStateLocked(ConnLive)
	g.mu.Unlock()
	for _, c := range live {
		opaque, _ := json.Marshal(map[string]string{"opaque": rand.Text()})
		_ = g.systemFrame(c, "ping", string(opaque))
	}
}

// Disconnect sends a SYSTEM disconnect to connection id: it gets no more pushes and is closed
// after Config.DisconnectGrace (the client normally closes it first and reconnects).
func (g *Gateway) Disconnect(id string) error {
	g.mu.Lock()
	c := g.findLocked(id)
	if c == nil || c.state != ConnLive {
		g.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoConn, id)
	}
	c.state = ConnDisconnecting
	g.notifyLocked()
	g.mu.Unlock()
	err := g.systemFrame(c, "disconnect", `{"reason":"gateway maintenance"}`)
	time.AfterFunc(g.Config.DisconnectGrace, func() { _ = c.ws.Close() })
	return err
}

// DisconnectAll sends a SYSTEM disconnect to every live connection and returns how many.
func (g *Gateway) DisconnectAll() int {
	g.mu.Lock()
	live := g.inStateLocked(ConnLive)
	g.mu.Unlock()
	n := 0
	for _, c := range live {
		if g.Disconnect(c.id) == nil {
			n++
		}
	}
	return n
}

// AbruptClose closes connection id's TCP connection without a websocket close frame, as a
// crashed gateway or a cut network would.
func (g *Gateway) AbruptClose(id string) error {
	g.mu.Lock()
	c := g.findLocked(id)
	g.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNoConn, id)
	}
	return c.ws.NetConn().Close()
}

// AbruptCloseAll closes every open connection abruptly and returns how many.
func (g *Gateway) AbruptCloseAll() int {
	g.mu.Lock()
	open := g.inStateLocked(ConnLive, ConnDisconnecting, ConnZombie)
	g.mu.Unlock()
	for _, c := range open {
		_ = c.ws.NetConn().Close()
	}
	return len(open)
}

// Zombie turns connection id into a zombie: it stays open and keeps being chosen for pushes,
// but nothing is written to it, its Pings are not answered and its acks are ignored. Only the
// client's keepalive can detect it.
func (g *Gateway) Zombie(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.findLocked(id)
	if c == nil || c.state == ConnClosed {
		return fmt.Errorf("%w: %s", ErrNoConn, id)
	}
	c.state = ConnZombie
	g.notifyLocked()
	return nil
}

// FailOpens makes the next n open calls fail with HTTP 500.
func (g *Gateway) FailOpens(n int) {
	g.mu.Lock()
	g.failOpens = n
	g.mu.Unlock()
}

// SwallowPings makes the gateway stop (true) or resume (false) answering websocket Pings.
func (g *Gateway) SwallowPings(on bool) {
	g.mu.Lock()
	g.swallow = on
	g.mu.Unlock()
}
