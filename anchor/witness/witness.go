package witness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/commseal/commseal/seal"
)

// emptyRoot is the RFC 6962 hash of the empty tree: SHA-256 of the empty string.
var emptyRoot = seal.Hash(sha256.Sum256(nil))

// Options configure a Witness.
type Options struct {
	Signer *seal.CosignatureSigner // the witness's key (required)
	Logs   []Log                   // the logs it cosigns for (origins must be distinct)
	Store  Store                   // where it keeps each log's latest checkpoint (required)
	Logger *slog.Logger            // nil: slog.Default(); refused requests are logged at Warn
	Now    func() time.Time        // the clock of the cosignatures; nil: time.Now
}

// Witness is a tlog-witness server: an http.Handler, and AddCheckpoint for callers in process.
type Witness struct {
	signer *seal.CosignatureSigner
	logs   map[string]*witnessedLog
	byHash map[string]string // hex SHA-256 of each origin -> origin, for the monitoring URL
	store  Store
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
}

// witnessedLog is a known log with the lock that makes its check-and-store atomic.
type witnessedLog struct {
	Log
	mu sync.Mutex
}

// New returns a Witness.
func New(opts Options) (*Witness, error) {
	if opts.Signer == nil || opts.Store == nil {
		return nil, errors.New("witness: Options.Signer and Options.Store are required")
	}
	w := &Witness{signer: opts.Signer, store: opts.Store, log: opts.Logger, now: opts.Now, logs: map[string]*witnessedLog{}, byHash: map[string]string{}}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.now == nil {
		w.now = time.Now
	}
	for _, l := range opts.Logs {
		if l.Origin == "" || len(l.Verifiers) == 0 {
			return nil, fmt.Errorf("witness: log %q needs an origin and at least one key", l.Origin)
		}
		if w.logs[l.Origin] != nil {
			return nil, fmt.Errorf("witness: log %q configured twice", l.Origin)
		}
		w.logs[l.Origin] = &witnessedLog{Log: l}
		h := sha256.Sum256([]byte(l.Origin))
		w.byHash[hex.EncodeToString(h[:])] = l.Origin
	}
	w.mux = http.NewServeMux()
	w.mux.HandleFunc("POST /add-checkpoint", w.serveAddCheckpoint)
	w.mux.HandleFunc("GET /{origin}/checkpoint", w.serveCheckpoint)
	return w, nil
}

// VerifierKey returns the witness's verifier key, for the logs' clients and for verifiers.
func (w *Witness) VerifierKey() string { return w.signer.VerifierKey() }

// AddCheckpoint is add-checkpoint without HTTP: it checks the signed checkpoint and the
// consistency proof from oldSize against the log's latest cosigned checkpoint, records the
// new one and returns the witness's cosignature. Errors wrap ErrMalformedRequest,
// ErrLogSignature, ErrUnknownLog, ErrConflict (a *ConflictError) or ErrInconsistent; any other
// error is the store's.
func (w *Witness) AddCheckpoint(ctx context.Context, oldSize uint64, proof []seal.Hash, signed []byte) ([]seal.Cosignature, error) {
	l, n, c, err := w.open(signed)
	if err != nil {
		return nil, err
	}
	if len(proof) > MaxProofLines {
		return nil, fmt.Errorf("%w: %d proof hashes", ErrMalformedRequest, len(proof))
	}
	if oldSize > c.Size {
		return nil, fmt.Errorf("%w: old size %d is above the checkpoint's %d", ErrMalformedRequest, oldSize, c.Size)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, err := w.store.Load(ctx, l.Origin)
	if err != nil {
		return nil, err
	}
	if oldSize != cur.Size {
		return nil, &ConflictError{Size: cur.Size}
	}
	if err := checkConsistency(cur, c, proof); err != nil {
		// A validly signed checkpoint that does not extend what we cosigned may be evidence
		// of a fork: keep it in the log.
		w.log.WarnContext(ctx, "witness: refused inconsistent checkpoint", "origin", l.Origin,
			"known_size", cur.Size, "size", c.Size, "err", err, "checkpoint", string(signed), "proof", proofText(proof))
		return nil, err
	}
	now := w.now()
	if now.Unix() < 1 {
		return nil, fmt.Errorf("witness: clock reads %v, before 1970", now)
	}
	cos, err := w.signer.Cosign(n.Text, now)
	if err != nil {
		return nil, err
	}
	next := State{Size: c.Size, Root: c.Root, Note: stateNote(n, cos)}
	if err := w.store.CompareAndSwap(ctx, l.Origin, cur, next); err != nil {
		if errors.Is(err, ErrStateChanged) {
			if now, lerr := w.store.Load(ctx, l.Origin); lerr == nil {
				return nil, &ConflictError{Size: now.Size}
			}
		}
		return nil, err
	}
	w.log.DebugContext(ctx, "witness: cosigned", "origin", l.Origin, "old_size", oldSize, "size", c.Size)
	return []seal.Cosignature{cos}, nil
}

// open finds the checkpoint's log, verifies the log's signature and parses the checkpoint.
func (w *Witness) open(signed []byte) (*witnessedLog, *note.Note, seal.Checkpoint, error) {
	var c seal.Checkpoint
	if len(signed) > MaxCheckpointSize {
		return nil, nil, c, fmt.Errorf("%w: checkpoint of %d bytes", ErrMalformedRequest, len(signed))
	}
	origin, _, ok := strings.Cut(string(signed), "\n")
	if !ok {
		return nil, nil, c, fmt.Errorf("%w: checkpoint has no origin line", ErrMalformedRequest)
	}
	l := w.logs[origin]
	if l == nil {
		return nil, nil, c, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	n, err := note.Open(signed, note.VerifierList(l.Verifiers...))
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		if errors.As(err, &unv) || errors.As(err, &inv) {
			return nil, nil, c, fmt.Errorf("%w: %q: %v", ErrLogSignature, origin, err)
		}
		return nil, nil, c, fmt.Errorf("%w: checkpoint note: %v", ErrMalformedRequest, err)
	}
	c, err = seal.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, nil, c, fmt.Errorf("%w: %v", ErrMalformedRequest, err)
	}
	if c.Text() != n.Text {
		return nil, nil, c, fmt.Errorf("%w: checkpoint text is not canonical", ErrMalformedRequest)
	}
	return l, n, c, nil
}

// checkConsistency applies the spec's 422 rules to the new checkpoint c against cur, the
// latest cosigned one, of the same size as the request's old size.
func checkConsistency(cur State, c seal.Checkpoint, proof []seal.Hash) error {
	switch {
	case c.Size == 0 && c.Root != emptyRoot:
		return fmt.Errorf("%w: an empty tree's root must be the hash of the empty string", ErrInconsistent)
	case cur.Size == 0 && len(proof) != 0:
		return fmt.Errorf("%w: a proof from size 0 must be empty", ErrInconsistent)
	case cur.Size == 0:
		return nil
	case cur.Size == c.Size && (cur.Root != c.Root || len(proof) != 0):
		return fmt.Errorf("%w: size %d with another root than the one cosigned (a fork)", ErrInconsistent, c.Size)
	case cur.Size == c.Size:
		return nil
	}
	if err := seal.CheckConsistency(proof, c.Size, c.Root, cur.Size, cur.Root); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	return nil
}

// stateNote is the note the witness keeps and serves to monitors: the checkpoint text, the
// log signatures it verified and its own cosignature.
func stateNote(n *note.Note, cos seal.Cosignature) []byte {
	var b strings.Builder
	b.WriteString(n.Text)
	b.WriteString("\n")
	for _, s := range n.Sigs {
		b.WriteString("— " + s.Name + " " + s.Base64 + "\n")
	}
	b.WriteString(cos.Line())
	return []byte(b.String())
}

func proofText(p []seal.Hash) []string {
	s := make([]string, len(p))
	for i, h := range p {
		s[i] = h.String()
	}
	return s
}

// ServeHTTP serves the witness's HTTP interface (see the package documentation).
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.mux.ServeHTTP(rw, r) }

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(rw, "request too large", http.StatusBadRequest)
			return
		}
		http.Error(rw, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := ParseRequest(body)
	var cos []seal.Cosignature
	if err == nil {
		cos, err = w.AddCheckpoint(r.Context(), req.OldSize, req.Proof, req.Checkpoint)
	}
	var conflict *ConflictError
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, c := range cos {
			io.WriteString(rw, c.Line())
		}
	case errors.As(err, &conflict):
		rw.Header().Set("Content-Type", SizeContentType)
		rw.WriteHeader(http.StatusConflict)
		io.WriteString(rw, strconv.FormatUint(conflict.Size, 10)+"\n")
	case errors.Is(err, ErrMalformedRequest):
		http.Error(rw, err.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrUnknownLog):
		http.Error(rw, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrLogSignature):
		http.Error(rw, err.Error(), http.StatusForbidden)
	case errors.Is(err, ErrInconsistent):
		http.Error(rw, err.Error(), http.StatusUnprocessableEntity)
	default:
		w.log.ErrorContext(r.Context(), "witness: add-checkpoint failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
	}
}

// serveCheckpoint serves GET /<origin hash>/checkpoint, the spec's monitoring call.
func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	origin, ok := w.byHash[r.PathValue("origin")]
	if !ok {
		http.Error(rw, "unknown log", http.StatusNotFound)
		return
	}
	st, err := w.store.Load(r.Context(), origin)
	if err != nil {
		w.log.ErrorContext(r.Context(), "witness: reading state", "origin", origin, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	if st.Note == nil {
		http.Error(rw, "no checkpoint cosigned for this log", http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Write(st.Note)
}
