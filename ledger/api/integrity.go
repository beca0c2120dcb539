package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
)

// checkpoint answers GET /v1/checkpoint: the latest signed checkpoint, as a C2SP signed note.
func (h *handler) checkpoint(w http.ResponseWriter, r *request) error {
	cp, _, err := h.l.Checkpoint()
	if err != nil {
		return err
	}
	return writeText(w, cp)
}

// proof answers GET /v1/proof/{i}: a C2SP tlog-proof@v1 of entry i against the latest
// checkpoint, with the leaf bytes as its extra data.
func (h *handler) proof(w http.ResponseWriter, r *request) error {
	i, err := h.index(r)
	if err != nil {
		return err
	}
	p, err := h.l.Prove(r.Context(), i)
	if err != nil {
		return err
	}
	return writeText(w, p.Marshal())
}

// writeText answers b as text/plain.
func writeText(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, err := w.Write(b); err != nil {
		return &errStarted{err}
	}
	return nil
}

// Consistency is the answer of GET /v1/consistency: the RFC 6962 consistency proof that the
// tree of Old entries is a prefix of the tree of New entries.
type Consistency struct {
	Old    uint64      `json:"old"`
	New    uint64      `json:"new"`
	Hashes []seal.Hash `json:"hashes"` // base64, in RFC 6962 order
}

// consistency answers GET /v1/consistency?old=N&new=M (new defaults to the latest checkpoint's
// size).
func (h *handler) consistency(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	old, err := strconv.ParseUint(q.Get("old"), 10, 64)
	if err != nil {
		return errorf(http.StatusBadRequest, "bad or missing old=N")
	}
	var size uint64
	if s := q.Get("new"); s != "" {
		if size, err = strconv.ParseUint(s, 10, 64); err != nil {
			return errorf(http.StatusBadRequest, "bad new=M")
		}
	} else {
		_, cp, err := h.l.Checkpoint()
		if err != nil {
			return err
		}
		size = cp.Size
	}
	if old > size {
		return errorf(http.StatusBadRequest, "old=%d is beyond new=%d", old, size)
	}
	if cur := h.l.Size(); size > cur {
		return errorf(http.StatusNotFound, "new=%d is beyond the ledger's %d entries", size, cur)
	}
	hs, err := h.l.ConsistencyProof(r.Context(), old, size)
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []seal.Hash{}
	}
	return writeJSON(w, &Consistency{Old: old, New: size, Hashes: hs})
}

// Status is the answer of GET /v1/status.
type Status struct {
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	TreeSize    uint64 `json:"tree_size"` // durable entries
	// Checkpoint is the latest signed checkpoint's size and root; nil before the first.
	Checkpoint *seal.Checkpoint `json:"checkpoint,omitempty"`
	// Index is the search index's coverage; nil without an index.
	Index *IndexStatus `json:"index,omitempty"`
	// Verification is the latest POST /v1/verify result; nil before the first.
	Verification *Verification `json:"verification,omitempty"`
}

// IndexStatus is the search index's coverage.
type IndexStatus struct {
	Size     uint64 `json:"size"`     // the tree size it covers
	Behind   uint64 `json:"behind"`   // entries of the ledger it does not cover yet
	Messages int    `json:"messages"` // messages indexed and not shredded
	Shredded int    `json:"shredded"` // messages dropped because their scope was shredded
	OnDisk   bool   `json:"on_disk"`
}

// Verification is the result of a verification of the store (POST /v1/verify).
type Verification struct {
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	OK       bool      `json:"ok"`      // the store verified
	Altered  bool      `json:"altered"` // the store was altered or damaged (verify.Altered)
	Error    string    `json:"error,omitempty"`
	// Size is the tree size verified (the store's size when the verification started).
	Size   uint64         `json:"size"`
	Report *verify.Report `json:"report,omitempty"`
}

// status answers GET /v1/status.
func (h *handler) status(w http.ResponseWriter, r *request) error {
	st := Status{Origin: h.l.Origin(), VerifierKey: h.l.VerifierKey(), TreeSize: h.l.Size()}
	if _, cp, err := h.l.Checkpoint(); err == nil {
		st.Checkpoint = &cp
	}
	if h.opts.Index != nil {
		s := h.opts.Index.Stats()
		st.Index = &IndexStatus{Size: s.Size, Messages: s.Messages, Shredded: s.Shredded, OnDisk: s.OnDisk}
		if st.TreeSize > s.Size {
			st.Index.Behind = st.TreeSize - s.Size
		}
	}
	h.lastMu.Lock()
	st.Verification = h.last
	h.lastMu.Unlock()
	return writeJSON(w, &st)
}

// verify answers POST /v1/verify: it verifies the store read-only with the ledger's verifier
// key, up to the store's size when it starts, and remembers the result for GET /v1/status.
// One verification runs at a time; another request meanwhile gets 409.
func (h *handler) verify(w http.ResponseWriter, r *request) error {
	if h.opts.Store == nil {
		return errorf(http.StatusNotImplemented, "verification is not configured (no store)")
	}
	if !h.verifyMu.TryLock() {
		return errorf(http.StatusConflict, "a verification is already running")
	}
	defer h.verifyMu.Unlock()
	v, err := seal.NewVerifier(h.l.VerifierKey())
	if err != nil {
		return fmt.Errorf("api: the ledger's verifier key: %w", err)
	}
	// A ledger that has not signed its first checkpoint yet is not altered for that.
	_, _, cpErr := h.l.Checkpoint()
	start := h.opts.Now()
	pin, size, err := verify.Pin(r.Context(), h.opts.Store)
	if err != nil {
		return err
	}
	rep, err := verify.Ledger(r.Context(), pin, v, verify.Options{AllowUnsigned: errors.Is(cpErr, ledger.ErrNotFound)})
	if err != nil && !verify.Altered(err) {
		return fmt.Errorf("api: verifying: %w", err) // not a result about the ledger
	}
	res := &Verification{Started: start.UTC(), Duration: h.opts.Now().Sub(start).String(), OK: err == nil,
		Altered: err != nil, Size: size, Report: rep}
	if err != nil {
		res.Error = err.Error()
		h.log.Error("api: the ledger does not verify", "err", err)
	}
	h.lastMu.Lock()
	h.last = res
	h.lastMu.Unlock()
	return writeJSON(w, res)
}

// AccessEntry is one access entry's metadata, as GET /v1/access lists it: who read what, why
// and when. The query of a search is not shown (it is encrypted in the entry).
type AccessEntry struct {
	Index uint64   `json:"index"`
	Who   string   `json:"who"`
	Why   string   `json:"why"`
	Op    string   `json:"op"`            // get, scan, blob, query
	For   string   `json:"for,omitempty"` // the purpose: read, query, export
	From  uint64   `json:"from"`          // the entries read: [from, to)
	To    uint64   `json:"to"`
	Blobs []string `json:"blobs,omitempty"`
	At    string   `json:"at"`
}

// AccessLog is the answer of GET /v1/access: the access entries among the ledger entries
// [From, Next).
type AccessLog struct {
	From    uint64        `json:"from"`
	Next    uint64        `json:"next"` // where to continue
	Entries []AccessEntry `json:"entries"`
}

// Paging of GET /v1/access, in ledger entries examined.
const (
	DefaultAccessPage = 1000
	MaxAccessPage     = 10000
)

// access answers GET /v1/access?from=N&limit=M: the access entries among ledger entries
// [N, N+M). Access entries are not encrypted: listing them decrypts nothing and seals nothing.
func (h *handler) access(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	var from uint64
	limit := uint64(DefaultAccessPage)
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = strconv.ParseUint(s, 10, 64); err != nil {
			return errorf(http.StatusBadRequest, "bad from=N")
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.ParseUint(s, 10, 64); err != nil || limit == 0 || limit > MaxAccessPage {
			return errorf(http.StatusBadRequest, "limit=M must be between 1 and %d", MaxAccessPage)
		}
	}
	size := h.l.Size()
	out := AccessLog{From: from, Next: from, Entries: []AccessEntry{}}
	for i := from; i < size && i-from < limit; i++ {
		out.Next = i + 1
		e, err := h.l.Get(r.Context(), i)
		if e == nil || e.Leaf.Kind != seal.KindAccess {
			if e == nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		a := AccessEntry{Index: i}
		if err := json.Unmarshal(e.Body, &a); err != nil {
			return fmt.Errorf("api: access entry %d: %w", i, err)
		}
		a.Index = i
		out.Entries = append(out.Entries, a)
	}
	return writeJSON(w, &out)
}
