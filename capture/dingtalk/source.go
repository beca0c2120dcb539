package dingtalk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/commseal/commseal/capture"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	sdklogger "github.com/open-dingtalk/dingtalk-stream-sdk-go/logger"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"
)

// OpenAPI hosts. A Hong Kong tenant on overseas DingTalk uses HostOverseas; check which one the
// tenant's developer console shows.
const (
	HostMainland = "https://api.dingtalk.com"
	HostOverseas = "https://api.dingtalk.io"
)

// TopicBotMessage is the Stream topic of bot message callbacks.
const TopicBotMessage = "/v1.0/im/bot/messages/get"

// Errors a caller can branch on.
var (
	// ErrConfig is wrapped by NewSource and NewCallbackHandler for unusable options.
	ErrConfig = errors.New("dingtalk: invalid configuration")
	// ErrRunning is returned by Run when the source is already running.
	ErrRunning = errors.New("dingtalk: source is already running")
	// ErrNoRecordSink is returned by Run when neither Options.Records is set nor the sink
	// implements capture.RecordSink: capture errors and group events would have nowhere to go.
	ErrNoRecordSink = errors.New("dingtalk: no capture.RecordSink for events and capture errors")
)

// Options configures a Source. ClientID and ClientSecret are required; every other field has a
// documented default.
type Options struct {
	ClientID     string // the app's AppKey (ClientId)
	ClientSecret string // the app's AppSecret

	// OpenAPIHost is where the Stream gateway is opened and media is downloaded; default
	// HostMainland. Tests point it at a dingtalktest.Gateway.
	OpenAPIHost string

	// Connections is how many Stream connections to keep open; default DefaultConnections (2).
	// DingTalk spreads pushes over the live connections of an app at random (up to 50) and
	// appears to drop what it pushes while none is live, so a second connection covers the
	// other's reconnects.
	Connections int
	// MaxInFlight bounds concurrently handled frames per connection (the SDK's handler cap);
	// default DefaultMaxInFlight (100). Frames beyond it are left unacknowledged and DingTalk
	// pushes them again.
	MaxInFlight int
	// KeepAlive is the silence after which the SDK pings the gateway (and gives up on it 5 s
	// later without a Pong); default the SDK's 120 s, minimum 3 s.
	KeepAlive time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between failed connection attempts;
	// defaults DefaultReconnectMin (3 s) and DefaultReconnectMax (60 s), with up to 20% jitter.
	ReconnectMin, ReconnectMax time.Duration
	// CheckInterval is how often each connection is checked and re-opened when it has died;
	// default DefaultCheckInterval (500 ms).
	CheckInterval time.Duration

	// AppendTimeout bounds one sink call; default DefaultAppendTimeout (30 s), below DingTalk's
	// redelivery delay.
	AppendTimeout time.Duration
	// DrainTimeout bounds how long Run waits for in-flight appends after ctx ends; default
	// DefaultDrainTimeout (10 s).
	DrainTimeout time.Duration
	// SilenceWindow, if positive, reports (Health.Silent, a slog warning) when no bot message or
	// event has arrived for that long.
	SilenceWindow time.Duration

	// Records receives group events (capture.RecordContext), capture errors
	// (capture.RecordCaptureError) and media results (capture.RecordMedia). Default: the sink
	// given to Run, which must then implement capture.RecordSink.
	Records capture.RecordSink
	// Media configures attachment fetching.
	Media MediaOptions

	// Logger receives the source's events; nil discards them.
	Logger *slog.Logger
	// Now is the clock for CapturedAt and record times; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.OpenAPIHost == "" {
		o.OpenAPIHost = HostMainland
	}
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = DefaultReconnectMin
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = max(DefaultReconnectMax, o.ReconnectMin)
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = DefaultAppendTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Source captures a DingTalk app's bot messages and events over Stream mode, through the
// official SDK (github.com/open-dingtalk/dingtalk-stream-sdk-go v0.9.2-beta.1).
//
// Each bot message frame is parsed with ParseBotMessage from the raw frame data (kept byte for
// byte) and appended to the sink; the frame is acknowledged with code 200 only after Append
// returned nil. A sink error is answered with code 500, so that DingTalk pushes the message
// again. Events become capture.RecordContext records (acked SUCCESS once durable, LATER
// otherwise). A frame that cannot become a message (malformed data, a field over a capture
// limit, a quota-exhausted payload without content) or that the sink refuses with
// capture.ErrInvalidMessage becomes a capture.RecordCaptureError record made by
// CaptureErrorRecord, so the gap is sealed instead of silent, and it is acked once that record
// is durable: a permanent failure is never answered "push again".
//
// Attachments are fetched after their message is sealed; see MediaOptions.
//
// What the source cannot see: frames the SDK itself drops before any handler runs (frames that
// are not JSON, or whose headers are not all strings) are neither acknowledged nor reported to
// the application; DingTalk pushes them again and finally gives up. Health and the gateway's
// failed-push reports are the only trace of them.
type Source struct {
	opts   Options
	tokens *TokenCache
	media  *mediaManager

	mu       sync.Mutex
	running  bool
	stopping bool
	inflight sync.WaitGroup
	slots    []*slot
	h        healthCounters
	sink     capture.Sink
	records  capture.RecordSink
	workCtx  context.Context // in-flight appends: outlives runCtx by up to DrainTimeout
	runCtx   context.Context // Run's ctx: once it has ended no frame is taken
}

// sdkLoggerInit makes the SDK's lazily initialized global logger initialized before any
// connection goroutine reads it: the SDK sets it without synchronization on first use, which
// is a data race when two clients start at once.
var sdkLoggerInit sync.Once

// NewSource checks opts and returns a Source. It does not connect; Run does.
func NewSource(opts Options) (*Source, error) {
	opts.defaults()
	if opts.ClientID == "" || opts.ClientSecret == "" {
		return nil, fmt.Errorf("%w: ClientID and ClientSecret are required", ErrConfig)
	}
	if opts.KeepAlive < 0 {
		return nil, fmt.Errorf("%w: KeepAlive is negative", ErrConfig)
	}
	sdkLoggerInit.Do(func() { sdklogger.GetLogger() })
	s := &Source{opts: opts}
	s.h.acks = map[int]int64{}
	if !opts.Media.Disabled {
		if opts.Media.Journal == nil {
			return nil, fmt.Errorf("%w: Media.Journal is required unless Media.Disabled is set (see NewDirJournal)", ErrConfig)
		}
		s.tokens = NewTokenCache(opts.OpenAPIHost, opts.ClientID, opts.ClientSecret, opts.Media.HTTPClient)
		s.media = newMediaManager(s, opts.Media)
	}
	return s, nil
}

// slot is one Stream connection the source keeps open.
type slot struct {
	n        int
	cli      *client.StreamClient
	state    string // guarded by Source.mu
	since    time.Time
	connects int
	lastErr  string
	kick     chan struct{}
}

// Connection states reported by Health.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateReconnecting = "reconnecting"
	StateStopped      = "stopped"
)

// Run connects and captures into sink until ctx ends, as capture.Source requires. Once ctx has
// ended it takes no new frame (each is answered 500, or LATER for events, so DingTalk pushes it
// again), lets in-flight appends finish (up to Options.DrainTimeout; those still running then
// are cancelled and their frames answered for a push again), closes every connection without
// reconnecting and returns nil. Pending media fetches stay in the journal for the next Run. Run
// returns an error only when it cannot start: ErrConfig, ErrNoRecordSink or ErrRunning.
func (s *Source) Run(ctx context.Context, sink capture.Sink) error {
	if sink == nil {
		return fmt.Errorf("%w: nil sink", ErrConfig)
	}
	records := s.opts.Records
	if records == nil {
		rs, ok := sink.(capture.RecordSink)
		if !ok {
			return ErrNoRecordSink
		}
		records = rs
	}
	var blobs capture.BlobStore
	if s.media != nil {
		blobs = s.opts.Media.Blobs
		if blobs == nil {
			bs, ok := sink.(capture.BlobStore)
			if !ok {
				return fmt.Errorf("%w: media fetching needs Media.Blobs or a sink that implements capture.BlobStore", ErrConfig)
			}
			blobs = bs
		}
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	s.running, s.stopping = true, false
	s.sink, s.records, s.workCtx, s.runCtx = sink, records, workCtx, ctx
	s.slots = nil
	now := s.opts.Now()
	s.h.started = now
	s.h.lastActivity = now
	for i := range s.opts.Connections {
		sl := &slot{n: i, state: StateConnecting, since: now, kick: make(chan struct{}, 1)}
		sl.cli = s.newClient(sl)
		s.slots = append(s.slots, sl)
	}
	slots := s.slots
	s.mu.Unlock()

	var bg sync.WaitGroup
	if s.media != nil {
		if err := s.media.start(ctx, records, blobs, &bg); err != nil {
			s.opts.Logger.Error("dingtalk: media journal could not be read; pending fetches wait for the next run", "err", err)
		}
	}
	for _, sl := range slots {
		bg.Go(func() { s.maintain(ctx, sl) })
	}
	if s.opts.SilenceWindow > 0 {
		bg.Go(func() { s.watchSilence(ctx) })
	}
	s.opts.Logger.Info("dingtalk: source started", "connections", len(slots), "host", s.opts.OpenAPIHost)

	<-ctx.Done()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	bg.Wait() // connection keepers and media workers are done; no reconnect from here on
	drained := make(chan struct{})
	go func() { s.inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(s.opts.DrainTimeout):
		s.opts.Logger.Warn("dingtalk: in-flight appends did not finish in time; they are cancelled and will be pushed again", "timeout", s.opts.DrainTimeout)
		cancelWork()
		<-drained
	}
	// The SDK writes each ack after its handler returned: give the last ones a moment on the wire
	// before closing (an ack lost here only makes DingTalk push a duplicate).
	time.Sleep(ackGrace)
	for _, sl := range slots {
		// AutoReconnect was off from the start (writing the field now would race the SDK).
		sl.cli.Close()
	}
	s.mu.Lock()
	for _, sl := range slots {
		sl.state, sl.since = StateStopped, s.opts.Now()
	}
	s.running = false
	s.mu.Unlock()
	s.opts.Logger.Info("dingtalk: source stopped")
	return nil
}

func (s *Source) newClient(sl *slot) *client.StreamClient {
	opts := []client.ClientOption{
		client.WithAppCredential(client.NewAppCredentialConfig(s.opts.ClientID, s.opts.ClientSecret)),
		client.WithOpenApiHost(s.opts.OpenAPIHost),
		// The source re-opens dead connections itself (maintain), with its own backoff, so that
		// Close never races a reconnect and Health knows every reconnect.
		client.WithAutoReconnect(false),
		client.WithMaxPendingHandlers(s.opts.MaxInFlight),
		client.WithSubscription("SYSTEM", "ping", s.onPing),
		client.WithSubscription("SYSTEM", "disconnect", func(ctx context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
			return s.onDisconnect(sl, df)
		}),
	}
	if s.opts.KeepAlive > 0 {
		opts = append(opts, client.WithKeepAlive(s.opts.KeepAlive))
	}
	cli := client.NewStreamClient(opts...)
	cli.RegisterCallbackRouter(TopicBotMessage, s.onBot)
	cli.RegisterAllEventRouter(s.onEvent)
	return cli
}

// maintain keeps one connection open until ctx ends. The SDK's Start is a no-op while its
// connection is alive and opens a new one (new ticket, new websocket) once it has died; an
// httptrace hook on the context tells the two apart.
func (s *Source) maintain(ctx context.Context, sl *slot) {
	backoff := s.opts.ReconnectMin
	for {
		var dialed atomic.Bool
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GetConn: func(string) { dialed.Store(true) }})
		err := sl.cli.Start(tctx)
		if ctx.Err() != nil {
			return
		}
		wait := s.opts.CheckInterval
		s.mu.Lock()
		switch {
		case err != nil:
			if sl.state == StateConnected {
				sl.since = s.opts.Now()
			}
			if sl.connects > 0 {
				sl.state = StateReconnecting
			}
			sl.lastErr = err.Error()
			s.h.connectFailures++
			wait = backoff + time.Duration(mrand.Int64N(int64(backoff)/5+1))
			backoff = min(2*backoff, s.opts.ReconnectMax)
		case dialed.Load():
			sl.state, sl.since, sl.lastErr = StateConnected, s.opts.Now(), ""
			sl.connects++
			if sl.connects > 1 {
				s.h.reconnects++
			}
			backoff = s.opts.ReconnectMin
		}
		connects := sl.connects
		s.mu.Unlock()
		switch {
		case err != nil:
			s.opts.Logger.Warn("dingtalk: connection attempt failed", "connection", sl.n, "err", err, "retry_in", wait)
		case dialed.Load():
			s.opts.Logger.Info("dingtalk: connected", "connection", sl.n, "reconnect", connects > 1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-sl.kick:
			t.Stop()
		}
	}
}

func (s *Source) onPing(_ context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	s.mu.Lock()
	s.h.lastFrame = s.opts.Now()
	s.h.systemFrames++
	s.mu.Unlock()
	pong := payload.NewDataFrameAckPong(df.GetMessageId())
	pong.Data = df.Data
	return pong, nil
}

func (s *Source) onDisconnect(sl *slot, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	s.mu.Lock()
	s.h.lastFrame = s.opts.Now()
	s.h.systemFrames++
	s.h.disconnects++
	s.mu.Unlock()
	s.opts.Logger.Info("dingtalk: gateway asked to disconnect", "connection", sl.n, "data", df.Data)
	// The SDK acks this frame and then closes the connection; maintain opens a new one on its
	// next check. Kick it a little later so that the close has happened.
	time.AfterFunc(20*time.Millisecond, func() {
		select {
		case sl.kick <- struct{}{}:
		default:
		}
	})
	return nil, nil
}

// enter registers an in-flight frame; false means the source is stopping and the frame must be
// answered so that DingTalk pushes it again.
func (s *Source) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The run's ctx is checked as well as the flag: between ctx ending and Run setting stopping,
	// a frame would otherwise still be taken.
	if s.stopping || !s.running || s.runCtx == nil || s.runCtx.Err() != nil {
		return false
	}
	s.inflight.Add(1)
	s.h.frames++
	now := s.opts.Now()
	s.h.lastFrame, s.h.lastActivity = now, now
	if s.h.silent {
		s.h.silent = false
		s.opts.Logger.Info("dingtalk: frames arrive again after a silence", "since", s.h.silentSince)
	}
	return true
}

func (s *Source) count(f func(h *healthCounters)) {
	s.mu.Lock()
	f(&s.h)
	s.mu.Unlock()
}

func callbackAck(code int) *payload.DataFrameResponse {
	r := payload.NewDataFrameResponse(code)
	if code == payload.DataFrameResponseStatusCodeKOK {
		r.Message = "OK"
		r.Data = `{"response":null}`
	} else {
		r.Message = "not stored; push again"
	}
	return r
}

// eventAck answers an event: SUCCESS with 200, or LATER with 500 (as the SDK's own event
// handler does), which DingTalk treats as "push again" whichever of the two it reads.
func eventAck(ok bool) *payload.DataFrameResponse {
	r := payload.NewDataFrameResponse(payload.DataFrameResponseStatusCodeKOK)
	r.Message = "ok"
	r.Data = `{"status":"SUCCESS","message":"success"}`
	if !ok {
		r.Code = payload.DataFrameResponseStatusCodeKInternalError
		r.Data = `{"status":"LATER","message":"not stored; push again"}`
	}
	return r
}

func (s *Source) onBot(_ context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	if !s.enter() {
		s.count(func(h *healthCounters) { h.acks[500]++ })
		return callbackAck(500), nil
	}
	defer s.inflight.Done()
	ok := s.captureBot(df)
	code := 200
	if !ok {
		code = 500
	}
	s.count(func(h *healthCounters) { h.acks[code]++ })
	return callbackAck(code), nil
}

// captureBot stores one bot message frame and reports whether it may be acknowledged.
func (s *Source) captureBot(df *payload.DataFrame) bool {
	raw := []byte(df.Data)
	m, err := ParseBotMessage(raw)
	if err != nil {
		return s.captureError(df, err)
	}
	m.CapturedAt = s.opts.Now().UTC()
	ctx, cancel := context.WithTimeout(s.workCtx, s.opts.AppendTimeout)
	defer cancel()
	r, err := s.sink.Append(ctx, m)
	if err != nil {
		if errors.Is(err, capture.ErrInvalidMessage) {
			// Permanent: pushing it again cannot help. Seal the raw frame as a capture error.
			return s.captureError(df, err)
		}
		s.count(func(h *healthCounters) { h.sinkErrors++ })
		s.opts.Logger.Warn("dingtalk: sink append failed; the message will be pushed again", "msg", m.Identity().String(), "err", err)
		return false
	}
	s.count(func(h *healthCounters) {
		h.messages++
		if r.Duplicate {
			h.duplicates++
		}
	})
	if s.media != nil && len(m.Attachments) > 0 {
		if err := s.media.enqueue(ctx, m); err != nil {
			// The message is sealed, but its fetch is not yet durable: do not ack, so that the
			// redelivery (a duplicate append) journals it again.
			s.count(func(h *healthCounters) { h.sinkErrors++ })
			s.opts.Logger.Warn("dingtalk: media journal failed; the message will be pushed again", "msg", m.Identity().String(), "err", err)
			return false
		}
	}
	return true
}

// ackGrace is how long Run waits between the last handler returning and closing connections.
const ackGrace = 50 * time.Millisecond

// maxErrorRaw is how much of an event's data a context record keeps, as for capture errors.
const maxErrorRaw = capture.MaxCaptureErrorRaw

// captureError seals a frame that could not become a message or event record, with
// CaptureErrorRecord (as CallbackHandler does). It reports whether the record is durable (and
// the frame may be acknowledged).
func (s *Source) captureError(df *payload.DataFrame, cause error) bool {
	rec := CaptureErrorRecord([]byte(df.Data), cause, s.opts.Now().UTC())
	quota := errors.Is(cause, ErrQuotaExhausted)
	reason := cut(cause.Error(), 512)
	frame := []any{"frame", safeID(df.GetMessageId()), "frame_type", safeID(df.Type), "topic", safeID(df.GetTopic()),
		"connection", safeID(df.GetHeader("connectionId")), "tenant", rec.Tenant, "record", rec.ID}
	ctx, cancel := context.WithTimeout(s.workCtx, s.opts.AppendTimeout)
	defer cancel()
	r, err := s.records.AppendRecord(ctx, rec)
	if err != nil {
		s.count(func(h *healthCounters) { h.sinkErrors++ })
		s.opts.Logger.Warn("dingtalk: capture error could not be recorded; the frame will be pushed again",
			append(frame, "cause", reason, "err", err)...)
		return false
	}
	s.count(func(h *healthCounters) {
		if r.Duplicate {
			h.duplicates++
			return
		}
		h.captureErrors++
		if quota {
			h.quotaExhausted++
		}
	})
	s.opts.Logger.Warn("dingtalk: frame recorded as a capture error", append(frame, "cause", reason, "quota_exhausted", quota)...)
	return true
}

// GroupEvents are the event types that describe group membership and identity. They are
// recorded as context; other event types the app subscribes to are recorded the same way.
var groupEvents = map[string]bool{
	"chat_add_member": true, "chat_remove_member": true, "chat_quit": true,
	"chat_update_owner": true, "chat_update_title": true, "chat_disband": true,
}

func (s *Source) onEvent(_ context.Context, df *payload.DataFrame) (*payload.DataFrameResponse, error) {
	if !s.enter() {
		s.count(func(h *healthCounters) { h.later++ })
		return eventAck(false), nil
	}
	defer s.inflight.Done()
	ok := s.captureEvent(df)
	s.count(func(h *healthCounters) {
		if ok {
			h.acks[200]++
		} else {
			h.later++
		}
	})
	return eventAck(ok), nil
}

// EventRecord turns an EVENT frame's headers and data into a capture.RecordContext record. The
// data is kept verbatim in Raw; the body lists the event headers. It never fails: a frame
// whose headers are unusable simply yields a record without them.
func EventRecord(headers map[string]string, data []byte, observed time.Time) *capture.Record {
	h := func(k string) string { return safeID(headers[k]) }
	body := map[string]any{
		"event_type":           h("eventType"),
		"event_id":             h("eventId"),
		"event_corp_id":        h("eventCorpId"),
		"event_unified_app_id": h("eventUnifiedAppId"),
		"group_event":          groupEvents[headers["eventType"]],
	}
	at := observed
	if ms, err := strconv.ParseInt(headers["eventBornTime"], 10, 64); err == nil && ms > 0 {
		at = time.UnixMilli(ms)
		body["event_born_time"] = ms
	}
	// The conversation is read as CaptureErrorRecord reads it, so that an event and the capture
	// error it may become are filed under the same conversation (and its holds).
	conv := readHints(data).conversation()
	if !isJSONObject(data) {
		body["data_not_json"] = true
	}
	raw := data
	if len(raw) > maxErrorRaw {
		raw = raw[:maxErrorRaw]
		body["raw_truncated"] = true
		body["data_sha256"] = hexSHA256(data)
		body["data_len"] = len(data)
	}
	b, _ := json.Marshal(body)
	rec := &capture.Record{
		Kind:         capture.RecordContext,
		Platform:     capture.PlatformDingTalk,
		Tenant:       h("eventCorpId"),
		Conversation: capture.Conversation{ID: safeID(conv), Type: capture.ConversationGroup},
		At:           at.UTC(),
		Body:         b,
		Raw:          append([]byte(nil), raw...),
	}
	if conv == "" {
		rec.Conversation = capture.Conversation{}
	}
	if id := h("eventId"); id != "" {
		rec.ID = "event:" + id
	}
	return rec
}

func (s *Source) captureEvent(df *payload.DataFrame) bool {
	rec := EventRecord(df.Headers, []byte(df.Data), s.opts.Now())
	if err := rec.Validate(); err != nil {
		return s.captureError(df, err)
	}
	ctx, cancel := context.WithTimeout(s.workCtx, s.opts.AppendTimeout)
	defer cancel()
	r, err := s.records.AppendRecord(ctx, rec)
	if err != nil {
		if errors.Is(err, capture.ErrInvalidMessage) {
			return s.captureError(df, err)
		}
		s.count(func(h *healthCounters) { h.sinkErrors++ })
		s.opts.Logger.Warn("dingtalk: event could not be recorded; answering LATER", "event", rec.ID, "err", err)
		return false
	}
	s.count(func(h *healthCounters) {
		h.events++
		if r.Duplicate {
			h.duplicates++
		}
	})
	return true
}

// safeID returns s if it can be stored as an identifier (valid UTF-8, within capture.MaxIDLen),
// and "" otherwise.
func safeID(s string) string {
	if len(s) > capture.MaxIDLen || !utf8.ValidString(s) {
		return ""
	}
	return s
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (s *Source) watchSilence(ctx context.Context) {
	iv := min(s.opts.SilenceWindow/4, time.Second)
	t := time.NewTicker(max(iv, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		quiet := s.opts.Now().Sub(s.h.lastActivity)
		report := quiet > s.opts.SilenceWindow && !s.h.silent
		last := s.h.lastActivity
		if report {
			s.h.silent, s.h.silentSince = true, s.h.lastActivity
			s.h.silences++
		}
		s.mu.Unlock()
		if report {
			s.opts.Logger.Warn("dingtalk: no bot message or event within the silence window; check the connection and the bot's reach",
				"window", s.opts.SilenceWindow, "last_activity", last)
		}
	}
}
