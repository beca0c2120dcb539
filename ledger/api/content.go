package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/ledger/search"
)

// SearchRequest is the body of POST /v1/search: a search.Query and, unless the X-Commseal-Why
// header gives it, the reason.
type SearchRequest struct {
	search.Query
	Why string `json:"why,omitempty"`
}

// search answers POST /v1/search. search.Index.Search checks the query (400, nothing sealed),
// seals who, why and the query, then answers.
func (h *handler) search(w http.ResponseWriter, r *request) error {
	var req SearchRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	why, err := reason(r, req.Why)
	if err != nil {
		return err
	}
	if h.opts.Index == nil {
		return errorf(http.StatusNotImplemented, "no search index is configured")
	}
	res, err := h.opts.Index.Search(r.Context(), h.accessor(r, why, "query"), req.Query)
	if err != nil {
		return err
	}
	return writeJSON(w, res)
}

// Entry is the answer of GET /v1/entries/{i}: an entry's kind and its decoded content.
type Entry struct {
	Index   uint64           `json:"index"`
	Kind    string           `json:"kind"`
	KeyID   string           `json:"key_id,omitempty"`  // the data key's id, on an encrypted ledger
	Message *capture.Message `json:"message,omitempty"` // a message entry
	Record  *capture.Record  `json:"record,omitempty"`  // a record entry (context, media, capture error, annotation)
	// Body is the content of any other kind of entry (access, shred, hold, ...), as sealed.
	Body json.RawMessage `json:"body,omitempty"`
}

// index parses the {i} of a route.
func (h *handler) index(r *request) (uint64, error) {
	i, err := strconv.ParseUint(r.PathValue("i"), 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "bad entry index %q", r.PathValue("i"))
	}
	if size := h.l.Size(); i >= size {
		return 0, errorf(http.StatusNotFound, "no entry %d (the ledger holds %d)", i, size)
	}
	return i, nil
}

// entry answers GET /v1/entries/{i}: Accessor.Get seals the reading, then decrypts.
func (h *handler) entry(w http.ResponseWriter, r *request) error {
	why, err := reason(r, "")
	if err != nil {
		return err
	}
	i, err := h.index(r)
	if err != nil {
		return err
	}
	e, err := h.accessor(r, why, "read").Get(r.Context(), i)
	if err != nil {
		return err
	}
	out := Entry{Index: e.Index, Kind: e.Leaf.Kind.String(), KeyID: e.Leaf.KeyID, Message: e.Message, Record: e.Record}
	if e.Message == nil && e.Record == nil && json.Valid(e.Body) {
		out.Body = e.Body
	}
	return writeJSON(w, &out)
}

// blob answers GET /v1/blobs/{sha256}: Accessor.Blob seals the reading, then decrypts.
func (h *handler) blob(w http.ResponseWriter, r *request) error {
	why, err := reason(r, "")
	if err != nil {
		return err
	}
	var sum [32]byte
	if s := r.PathValue("sha256"); len(s) != 64 {
		return errorf(http.StatusBadRequest, "bad attachment digest: want 64 hex digits")
	} else if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return errorf(http.StatusBadRequest, "bad attachment digest: want 64 hex digits")
	}
	b, err := h.accessor(r, why, "read").Blob(r.Context(), sum)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, err := w.Write(b); err != nil {
		return &errStarted{err}
	}
	return nil
}

// ExportRequest is the body of POST /v1/export: the entries to export, either by a search
// (Query; its paging applies, with a limit of MaxExportEntries when it sets none) or by
// ledger index (Indexes), and, unless the X-Commseal-Why header gives it, the reason. A
// search exports each hit with the records it takes along (search.Result.Indexes: media
// records, findings); Indexes exports exactly the entries named (a hit's Records names its). The
// response's X-Commseal-Entries header counts the entries exported and, for a search,
// X-Commseal-Matched the hits before paging: more than exported means the next page is
// another export (Query.Offset).
type ExportRequest struct {
	Query   *search.Query `json:"query,omitempty"`
	Indexes []uint64      `json:"indexes,omitempty"`
	Why     string        `json:"why,omitempty"`
	// Formats are the renderings besides messages.jsonl and the evidence (export.FormatRSMF,
	// export.FormatEML); an unknown one is 400.
	Formats []string `json:"formats,omitempty"`
}

// export answers POST /v1/export with a zip of the bundle ledger/export.Write makes: the
// search (if any) and the reading are sealed first; the bundle is built in memory
// (export.Build) and streamed, with no file of it on this server's disk.
func (h *handler) export(w http.ResponseWriter, r *request) error {
	var req ExportRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	why, err := reason(r, req.Why)
	if err != nil {
		return err
	}
	for _, f := range req.Formats {
		if f != export.FormatRSMF && f != export.FormatEML && f != export.FormatJSONL {
			return errorf(http.StatusBadRequest, "unknown format %q (rsmf, eml, jsonl)", f)
		}
	}
	if (req.Query == nil) == (len(req.Indexes) == 0) {
		return errorf(http.StatusBadRequest, "an export names either a query or indexes")
	}
	if len(req.Indexes) > MaxExportEntries {
		return errorf(http.StatusBadRequest, "at most %d entries in one export", MaxExportEntries)
	}
	if h.opts.Signer == nil {
		return errorf(http.StatusNotImplemented, "exports are not configured (no manifest signer)")
	}
	idx, query, matched := req.Indexes, "", -1
	if req.Query != nil {
		if h.opts.Index == nil {
			return errorf(http.StatusNotImplemented, "no search index is configured")
		}
		q := *req.Query
		if q.Limit == 0 {
			q.Limit = MaxExportEntries
		}
		res, err := h.opts.Index.Search(r.Context(), h.accessor(r, why, "export"), q)
		if err != nil {
			return err
		}
		if len(res.Hits) == 0 {
			return errorf(http.StatusNotFound, "the query matched nothing")
		}
		matched = res.Total
		idx = res.Indexes()
		b, err := json.Marshal(q)
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		query = string(b)
	} else {
		size := h.l.Size()
		for _, i := range idx {
			if i >= size {
				return errorf(http.StatusNotFound, "no entry %d (the ledger holds %d)", i, size)
			}
		}
	}
	b, err := export.Build(r.Context(), h.l, export.Request{
		Who: r.who.Name, Why: why, Indexes: idx, Query: query, Signer: h.opts.Signer, Formats: req.Formats,
	})
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return errorf(http.StatusNotFound, "%v", err)
		}
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="commseal-export-%d.zip"`, b.TreeSize))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Commseal-Entries", strconv.Itoa(b.Entries))
	if matched >= 0 {
		w.Header().Set("X-Commseal-Matched", strconv.Itoa(matched)) // beyond the page: export the next with offset
	}
	cw := &countWriter{w: w}
	if err := b.WriteZip(cw); err != nil {
		if cw.n > 0 {
			return &errStarted{err} // the zip lacks its central directory: clients refuse it
		}
		return err
	}
	return nil
}

// countWriter counts what went through.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
