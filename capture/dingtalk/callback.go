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

	// FreshWindow is how far a callback's timestamp may be from now; default 5 minutes.
	FreshWindow time.Duration
	// MaxNonces bounds the replay cache (nonces seen within the window); default 100,000.
	// When full, callbacks are refused with 503 until old entries age out.
	MaxNonces int
	// Budget is the time DingTalk gives for the reply; default 2,500 ms. A sink slower than the
	// budget (minus a margin) gets the callback answered with 503 so DingTalk keeps it as a
	// failed push (GET /v1.0/event/callbacks/failedResults).
	Budget time.Duration
	// MaxBody bounds the request body; default 1 MiB.
	MaxBody int64

	Logger *slog.Logger     // nil discards
	Now    func() time.Time // default time.Now
}

// CallbackHandler is an http.Handler for DingTalk's HTTP callback mode (event subscription
// over HTTP). Each request is checked in this order: method, query and body shape, signature
// (constant time), timestamp freshness, decryption and owner key, nonce replay; any failure is
// answered with a 4xx and stores nothing. The first push, {"EventType":"check_url"}, is
// answered without storing. Events are sealed as capture.RecordContext records with the
// decrypted payload as Raw; bot message payloads go to the Sink. Only once that returned nil is
// the encrypted "success" reply sent; a sink error gets a 5xx, so DingTalk keeps the push as
// failed and it can be fetched again.
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
		opts.FreshWindow = 5 * time.Minute
	}
	if opts.MaxNonces <= 0 {
		opts.MaxNonces = 100_000
	}
	if opts.Budget <= 0 {
		opts.Budget = 2500 * time.Millisecond
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CallbackHandler{c: c, opts: opts, nonces: map[string]time.Time{}, inUse: map[string]bool{}}, nil
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
	var head struct {
		EventType string `json:"EventType"`
		MsgID     string `json:"msgId"`
		MsgType   string `json:"msgtype"`
		CorpID    string `json:"CorpId"`
	}
	if err := json.Unmarshal(msg, &head); err != nil {
		h.refuse(w, http.StatusBadRequest, fmt.Errorf("%w: decrypted payload is not a JSON object: %v", ErrCallbackMalformed, err))
		return
	}

	key := ts + "|" + nonce
	if status, err := h.claimNonce(key, now); err != nil {
		h.refuse(w, status, err)
		return
	}
	stored := false
	defer func() { h.releaseNonce(key, stored, now) }()

	if head.EventType != "check_url" {
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Budget-time.Since(start)-300*time.Millisecond)
		defer cancel()
		if err := h.store(ctx, msg, head.EventType, head.CorpID, head.MsgID != "" && head.EventType == ""); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusServiceUnavailable
			}
			h.opts.Logger.Warn("dingtalk: callback not stored; DingTalk keeps it as a failed push", "err", err)
			http.Error(w, "not stored", status)
			return
		}
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

func (h *CallbackHandler) store(ctx context.Context, msg []byte, eventType, corpID string, bot bool) error {
	if bot {
		if h.opts.Sink == nil {
			return errors.New("dingtalk: a bot message arrived over HTTP but CallbackOptions.Sink is nil")
		}
		m, err := ParseBotMessage(msg)
		if err == nil {
			m.CapturedAt = h.opts.Now().UTC()
			_, err = h.opts.Sink.Append(ctx, m)
			if !errors.Is(err, capture.ErrInvalidMessage) {
				return err
			}
			// Permanent: a retry cannot help, so the payload is sealed as a capture error.
		}
		return h.captureError(ctx, msg, err)
	}
	var ts struct {
		TimeStamp json.Number `json:"TimeStamp"`
	}
	_ = json.Unmarshal(msg, &ts)
	headers := map[string]string{"eventType": eventType, "eventCorpId": corpID, "eventBornTime": ts.TimeStamp.String()}
	sum := sha256.Sum256(msg)
	headers["eventId"] = "http-" + hex.EncodeToString(sum[:16])
	rec := EventRecord(headers, msg, h.opts.Now())
	if err := rec.Validate(); err != nil {
		return h.captureError(ctx, msg, err)
	}
	_, err := h.opts.Records.AppendRecord(ctx, rec)
	return err
}

func (h *CallbackHandler) captureError(ctx context.Context, msg []byte, cause error) error {
	body, _ := json.Marshal(map[string]any{"reason": cause.Error(), "via": "http_callback", "data_sha256": hexSHA256(msg)})
	raw := msg
	if len(raw) > maxErrorRaw {
		raw = raw[:maxErrorRaw]
	}
	_, err := h.opts.Records.AppendRecord(ctx, &capture.Record{
		Kind: capture.RecordCaptureError, Platform: capture.PlatformDingTalk,
		ID: "http-" + hexSHA256(msg)[:32], At: h.opts.Now().UTC(), Body: body, Raw: raw,
	})
	return err
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
