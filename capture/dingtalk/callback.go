package dingtalk

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
)

// Errors of HTTP callback mode. The handler answers each with a 4xx status and stores nothing.
var (
	ErrCallbackMalformed = errors.New("dingtalk: malformed callback")
	ErrBadSignature      = errors.New("dingtalk: callback signature does not match")
	ErrStaleTimestamp    = errors.New("dingtalk: callback timestamp outside the freshness window")
	ErrReplayedNonce     = errors.New("dingtalk: callback nonce already seen")
	ErrOwnerKey          = errors.New("dingtalk: callback encrypted for another owner key")
)

// CallbackCrypto implements DingTalk's callback encryption: AES-256-CBC under the 43-character
// aesKey (base64 of the key without its padding), IV the key's first 16 bytes, plaintext
// random(16) ‖ uint32 big-endian length ‖ message ‖ owner key, PKCS#7-padded to 32-byte blocks;
// and the signature: lowercase hex SHA-1 of token, timestamp, nonce and the ciphertext sorted
// and concatenated.
type CallbackCrypto struct {
	token    string
	ownerKey string
	block    cipher.Block
	iv       []byte
}

// NewCallbackCrypto checks the callback credentials. ownerKey is the AppKey of an internal app,
// the CorpId of a legacy registration, or the SuiteKey of an ISV app.
func NewCallbackCrypto(token, aesKey, ownerKey string) (*CallbackCrypto, error) {
	if token == "" || ownerKey == "" {
		return nil, fmt.Errorf("%w: callback token and owner key are required", ErrConfig)
	}
	if len(aesKey) != 43 {
		return nil, fmt.Errorf("%w: the callback aesKey must have 43 characters, not %d", ErrConfig, len(aesKey))
	}
	key, err := base64.StdEncoding.DecodeString(aesKey + "=")
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: the callback aesKey is not base64 of 32 bytes", ErrConfig)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return &CallbackCrypto{token: token, ownerKey: ownerKey, block: block, iv: key[:16]}, nil
}

const callbackBlock = 32 // DingTalk pads to 32 bytes, not AES's 16

// Sign returns the signature of a callback or a reply.
func (c *CallbackCrypto) Sign(timestamp, nonce, encrypt string) string {
	parts := []string{c.token, timestamp, nonce, encrypt}
	slices.Sort(parts)
	h := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(h[:])
}

// Verify checks signature in constant time.
func (c *CallbackCrypto) Verify(signature, timestamp, nonce, encrypt string) error {
	want := c.Sign(timestamp, nonce, encrypt)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) != 1 {
		return ErrBadSignature
	}
	return nil
}

// Encrypt encrypts msg for the owner key with fresh random bytes.
func (c *CallbackCrypto) Encrypt(msg []byte) (string, error) {
	pt := make([]byte, 0, 20+len(msg)+len(c.ownerKey)+callbackBlock)
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	pt = append(pt, rnd[:]...)
	pt = binary.BigEndian.AppendUint32(pt, uint32(len(msg)))
	pt = append(pt, msg...)
	pt = append(pt, c.ownerKey...)
	pad := callbackBlock - len(pt)%callbackBlock
	pt = append(pt, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt), nil
}

// Decrypt decrypts an encrypt field and checks that it was encrypted for the owner key. Errors
// wrap ErrCallbackMalformed or ErrOwnerKey.
func (c *CallbackCrypto) Decrypt(encrypt string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypt is not base64: %v", ErrCallbackMalformed, err)
	}
	if len(ct) < aes.BlockSize*2 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext length %d is not a positive multiple of the block size", ErrCallbackMalformed, len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > callbackBlock || pad > len(pt) {
		return nil, fmt.Errorf("%w: bad padding", ErrCallbackMalformed)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrCallbackMalformed)
		}
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < 20 {
		return nil, fmt.Errorf("%w: plaintext too short", ErrCallbackMalformed)
	}
	n := binary.BigEndian.Uint32(pt[16:20])
	if uint64(n) > uint64(len(pt)-20) {
		return nil, fmt.Errorf("%w: message length %d exceeds the plaintext", ErrCallbackMalformed, n)
	}
	msg, owner := pt[20:20+n], pt[20+n:]
	if subtle.ConstantTimeCompare(owner, []byte(c.ownerKey)) != 1 {
		return nil, ErrOwnerKey
	}
	return slices.Clone(msg), nil
}

// CallbackOptions configures a CallbackHandler.
type CallbackOptions struct {
	Token    string // the callback's signing token
	AESKey   string // the 43-character encoding key
	OwnerKey string // AppKey (internal app), CorpId (legacy) or SuiteKey (ISV)

	// Sink receives bot messages delivered over HTTP; Records receives events (as
	// capture.RecordContext) and is required. Sink may be nil if the subscription carries no
	// bot messages; a bot message then gets a 500.
	Sink    capture.Sink
	Records capture.RecordSink

	// FreshWindow is how far a callback's timestamp may be from now; default DefaultFreshWindow
	// (5 minutes).
	FreshWindow time.Duration
	// MaxNonces bounds the replay cache (nonces seen within the window); default
	// DefaultMaxNonces (100,000). When full, callbacks are refused with 503 until old entries
	// age out.
	MaxNonces int
	// Budget is the time DingTalk gives for the reply; default DefaultBudget (2,500 ms). A sink
	// slower than the budget (minus a margin) gets the callback answered with 503 so DingTalk
	// keeps it as a failed push (GET /v1.0/event/callbacks/failedResults).
	Budget time.Duration
	// MaxBody bounds the request body, read before the signature can be checked. The default
	// fits the largest payload a capture error can hold whole (capture.MaxRawLen, about 22 MB
	// once encrypted and base64-encoded), so that a signed payload over a field limit is sealed
	// as a capture error rather than refused; a body over MaxBody is answered 413 and nothing
	// is stored (DingTalk keeps it as a failed push). Lower it to spend less memory per request
	// at that cost.
	MaxBody int64

	Logger *slog.Logger     // nil discards
	Now    func() time.Time // default time.Now
}

// CallbackHandler is an http.Handler for DingTalk's HTTP callback mode (event subscription
// over HTTP). Each request is checked in this order: method, query and body shape, signature
// (constant time), timestamp freshness, decryption and owner key, nonce replay; any failure is
// answered with a 4xx and stores nothing. The first push, {"EventType":"check_url"}, is
// answered without storing. Events are sealed as capture.RecordContext records with the
// decrypted payload as Raw; bot message payloads go to the Sink. An authenticated payload that
// cannot be stored as either (not a JSON object, malformed, over a capture limit, refused by
// the sink with capture.ErrInvalidMessage) is sealed with CaptureErrorRecord, the record Source
// makes of the same payload. Only once the sink returned nil is the encrypted "success" reply
// sent; a transient sink error gets a 5xx, so DingTalk keeps the push as failed and it can be
// fetched again.
//
// # Replays
//
// The nonces of the freshness window are kept in memory only: a request replayed within
// FreshWindow to the same process is refused with 409, but after a restart (or at another
// instance behind the same URL) it passes every check again. It then stores nothing new,
// because everything the handler stores is deduplicated by the sink on an identity the replay
// repeats: a bot message on its msgId, an event on the SHA-256 of its payload, a capture error
// on the SHA-256 of its payload. The replay is answered like the original, with the encrypted
// "success" that tells an attacker nothing, and logged as already stored.
type CallbackHandler struct {
	c    *CallbackCrypto
	opts CallbackOptions

	mu     sync.Mutex
	nonces map[string]time.Time // "timestamp|nonce" -> when it stops mattering
	inUse  map[string]bool      // being processed
}

// NewCallbackHandler checks opts and returns the handler.
func NewCallbackHandler(opts CallbackOptions) (*CallbackHandler, error) {
	c, err := NewCallbackCrypto(opts.Token, opts.AESKey, opts.OwnerKey)
	if err != nil {
		return nil, err
	}
	if opts.Records == nil {
		return nil, fmt.Errorf("%w: CallbackOptions.Records is required", ErrConfig)
	}
	if opts.FreshWindow <= 0 {
		opts.FreshWindow = DefaultFreshWindow
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = DefaultMaxNonces
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = maxCallbackBody(len(opts.OwnerKey))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CallbackHandler{c: c, opts: opts, nonces: map[string]time.Time{}, inUse: map[string]bool{}}, nil
}

// maxCallbackBody is the size of a callback body whose payload is capture.MaxRawLen bytes: the
// plaintext adds 20 bytes, the owner key and up to a block of padding, base64 adds a third, and
// the {"encrypt":"..."} envelope a little more.
func maxCallbackBody(ownerKeyLen int) int64 {
	return int64(base64.StdEncoding.EncodedLen(capture.MaxRawLen+20+ownerKeyLen+callbackBlock)) + 64
}

// Crypto returns the handler's callback crypto, e.g. to build test requests.
func (h *CallbackHandler) Crypto() *CallbackCrypto { return h.c }

func (h *CallbackHandler) refuse(w http.ResponseWriter, status int, err error) {
	h.opts.Logger.Warn("dingtalk: callback refused", "status", status, "err", err)
	http.Error(w, err.Error(), status)
}

// callbackTime parses a callback timestamp in seconds or milliseconds.
func callbackTime(s string) (time.Time, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return time.Time{}, fmt.Errorf("%w: timestamp %q", ErrCallbackMalformed, s)
	}
	if v > 1e11 {
		return time.UnixMilli(v), nil
	}
	return time.Unix(v, 0), nil
}

// ServeHTTP handles one callback.
func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: method %s", ErrCallbackMalformed, r.Method))
		return
	}
	q := r.URL.Query()
	sig, ts, nonce := q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce")
	if sig == "" || ts == "" || nonce == "" || len(nonce) > 128 || len(ts) > 32 {
		h.refuse(w, http.StatusBadRequest, fmt.Errorf("%w: msg_signature, timestamp and nonce are required", ErrCallbackMalformed))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.opts.MaxBody+1))
	if err != nil || int64(len(body)) > h.opts.MaxBody {
		h.refuse(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: body unreadable or over %d bytes", ErrCallbackMalformed, h.opts.MaxBody))
		return
	}
	var env struct {
		Encrypt string `json:"encrypt"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Encrypt == "" {
		h.refuse(w, http.StatusBadRequest, fmt.Errorf("%w: body is not {\"encrypt\":...}", ErrCallbackMalformed))
		return
	}
	if err := h.c.Verify(sig, ts, nonce, env.Encrypt); err != nil {
		h.refuse(w, http.StatusUnauthorized, err)
		return
	}
	at, err := callbackTime(ts)
	if err != nil {
		h.refuse(w, http.StatusBadRequest, err)
		return
	}
	now := h.opts.Now()
	if d := now.Sub(at); d > h.opts.FreshWindow || d < -h.opts.FreshWindow {
		h.refuse(w, http.StatusForbidden, fmt.Errorf("%w: %s is %v from now", ErrStaleTimestamp, ts, d.Round(time.Second)))
		return
	}
	msg, err := h.c.Decrypt(env.Encrypt)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrOwnerKey) {
			status = http.StatusForbidden
		}
		h.refuse(w, status, err)
		return
	}
	key := ts + "|" + nonce
	if status, err := h.claimNonce(key, now); err != nil {
		h.refuse(w, status, err)
		return
	}
	stored := false
	defer func() { h.releaseNonce(key, stored, now) }()

	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Budget-time.Since(start)-300*time.Millisecond)
	defer cancel()
	dup, err := h.store(ctx, msg)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusServiceUnavailable
		}
		h.opts.Logger.Warn("dingtalk: callback not stored; DingTalk keeps it as a failed push", "err", err)
		http.Error(w, "not stored", status)
		return
	}
	if dup {
		h.opts.Logger.Info("dingtalk: callback already stored (a redelivery or a replay); answered without storing", "timestamp", ts)
	}
	stored = true
	reply, err := h.reply(now)
	if err != nil {
		http.Error(w, "reply", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(reply)
}

func (h *CallbackHandler) claimNonce(key string, now time.Time) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.nonces[key]; ok || h.inUse[key] {
		return http.StatusConflict, ErrReplayedNonce
	}
	if len(h.nonces) >= h.opts.MaxNonces {
		for k, exp := range h.nonces {
			if now.After(exp) {
				delete(h.nonces, k)
			}
		}
		if len(h.nonces) >= h.opts.MaxNonces {
			return http.StatusServiceUnavailable, fmt.Errorf("dingtalk: callback nonce cache is full (%d)", h.opts.MaxNonces)
		}
	}
	h.inUse[key] = true
	return 0, nil
}

// releaseNonce remembers a nonce once its callback was handled; a callback that failed may be
// pushed again with the same nonce, so it is forgotten.
func (h *CallbackHandler) releaseNonce(key string, stored bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.inUse, key)
	if stored {
		// Twice the window: a timestamp may be up to one window in the future.
		h.nonces[key] = now.Add(2 * h.opts.FreshWindow)
	}
}

// store seals one authenticated callback payload: check_url stores nothing, a bot message goes
// to the Sink, an event becomes a capture.RecordContext; what cannot be stored as such for good
// (not a JSON object, malformed, over a limit, refused with capture.ErrInvalidMessage) is sealed
// with CaptureErrorRecord, as Source does. It reports whether the sink had it already.
func (h *CallbackHandler) store(ctx context.Context, msg []byte) (duplicate bool, err error) {
	// Only the members that route the payload are read here, each leniently: a member of an
	// unexpected type is left to the parser of what the payload turns out to be.
	var head struct {
		EventType, MsgID, CorpID, TimeStamp json.RawMessage
	}
	if err := json.Unmarshal(msg, &head); err != nil {
		// Not a JSON object: nothing tells an event from a bot message. It is handled as a bot
		// message, whose parser gives the reason the capture error records, as Source does.
		return h.storeBot(ctx, msg)
	}
	eventType := jsonString(head.EventType)
	switch {
	case eventType == "check_url":
		return false, nil
	case eventType == "" && len(head.MsgID) > 0 && string(head.MsgID) != "null":
		return h.storeBot(ctx, msg)
	}
	sum := sha256.Sum256(msg)
	headers := map[string]string{
		"eventType": eventType, "eventCorpId": jsonString(head.CorpID),
		"eventBornTime": strings.Trim(string(head.TimeStamp), `"`),
		"eventId":       "http-" + hex.EncodeToString(sum[:16]),
	}
	rec := EventRecord(headers, msg, h.opts.Now())
	if err := rec.Validate(); err != nil {
		return h.captureError(ctx, msg, err)
	}
	rc, err := h.opts.Records.AppendRecord(ctx, rec)
	if errors.Is(err, capture.ErrInvalidMessage) {
		return h.captureError(ctx, msg, err)
	}
	return rc.Duplicate, err
}

// storeBot stores a bot message payload, or seals it as a capture error when it cannot be one.
func (h *CallbackHandler) storeBot(ctx context.Context, msg []byte) (duplicate bool, err error) {
	m, err := ParseBotMessage(msg)
	if err != nil {
		return h.captureError(ctx, msg, err)
	}
	if h.opts.Sink == nil {
		return false, errors.New("dingtalk: a bot message arrived over HTTP but CallbackOptions.Sink is nil")
	}
	m.CapturedAt = h.opts.Now().UTC()
	rc, err := h.opts.Sink.Append(ctx, m)
	if errors.Is(err, capture.ErrInvalidMessage) {
		return h.captureError(ctx, msg, err) // permanent: a retry cannot help
	}
	return rc.Duplicate, err
}

// jsonString returns the string that raw encodes, or "" when it encodes something else.
func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// captureError seals msg with CaptureErrorRecord, the same record Source makes of it.
func (h *CallbackHandler) captureError(ctx context.Context, msg []byte, cause error) (bool, error) {
	rec := CaptureErrorRecord(msg, cause, h.opts.Now().UTC())
	rc, err := h.opts.Records.AppendRecord(ctx, rec)
	if err != nil {
		return false, err
	}
	h.opts.Logger.Warn("dingtalk: callback recorded as a capture error", "cause", cut(cause.Error(), 512),
		"tenant", rec.Tenant, "record", rec.ID, "duplicate", rc.Duplicate)
	return rc.Duplicate, nil
}

func (h *CallbackHandler) reply(now time.Time) ([]byte, error) {
	enc, err := h.c.Encrypt([]byte("success"))
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	nonce := rand.Text()[:16]
	return json.Marshal(map[string]string{
		"msg_signature": h.c.Sign(ts, nonce, enc), "timeStamp": ts, "nonce": nonce, "encrypt": enc,
	})
}
