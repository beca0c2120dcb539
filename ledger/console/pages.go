package console

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/api"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/verify"
)

// PageSize is how many hits a search page shows.
const PageSize = 50

// filters are the search form's fields.
type filters struct {
	Q, Sender, Conversation, From, To, Kind, Rule, Severity, Disposition string
	Offset                                                               int
}

// Kinds, severities and dispositions the forms offer.
var (
	formKinds        = []string{"text", "rich_text", "picture", "audio", "video", "file", "event", "unknown"}
	formSeverities   = []string{"high", "medium", "low", "info"}
	formDispositions = []string{"open", "dismissed", "escalated", "note", "assigned"}
)

// readFilters reads the filters from a query string or a form.
func readFilters(v url.Values) filters {
	f := filters{Q: v.Get("q"), Sender: v.Get("sender"), Conversation: v.Get("conversation"), From: v.Get("from"),
		To: v.Get("to"), Kind: v.Get("kind"), Rule: v.Get("rule"), Severity: v.Get("severity"), Disposition: v.Get("disposition")}
	f.Offset, _ = strconv.Atoi(v.Get("offset"))
	f.Offset = max(f.Offset, 0)
	return f
}

// empty reports whether no filter is set: the form is shown, nothing searched.
func (f filters) empty() bool {
	return f == (filters{Offset: f.Offset})
}

// values are the filters as a query string.
func (f filters) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": f.Q, "sender": f.Sender, "conversation": f.Conversation, "from": f.From,
		"to": f.To, "kind": f.Kind, "rule": f.Rule, "severity": f.Severity, "disposition": f.Disposition} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// parseTime reads a datetime-local ("2006-01-02T15:04") or a date, in UTC.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, refusef(http.StatusBadRequest, "badtime", "%q", s)
}

// query turns the filters into a search query: the full text as written, the field filters
// as field:"value" terms joined to it.
func (f filters) query(limit int) (search.Query, error) {
	q := search.Query{Limit: limit, Offset: f.Offset}
	var parts []string
	if t := strings.TrimSpace(f.Q); t != "" {
		parts = append(parts, "("+t+")")
	}
	for _, fv := range [][2]string{{search.FieldSender, f.Sender}, {search.FieldConversation, f.Conversation},
		{search.FieldRule, f.Rule}, {search.FieldSeverity, f.Severity}, {search.FieldDisposition, f.Disposition}} {
		v := strings.TrimSpace(fv[1])
		if v == "" {
			continue
		}
		if strings.Contains(v, `"`) {
			return q, refusef(http.StatusBadRequest, "badfilter", "(%s)", fv[0])
		}
		parts = append(parts, fv[0]+`:"`+v+`"`)
	}
	q.Text = strings.Join(parts, " AND ")
	if f.Kind != "" {
		q.Kinds = []string{f.Kind}
	}
	var err error
	if f.From != "" {
		if q.From, err = parseTime(f.From); err != nil {
			return q, err
		}
	}
	if f.To != "" {
		if q.To, err = parseTime(f.To); err != nil {
			return q, err
		}
		if len(f.To) == len("2006-01-02") {
			q.To = q.To.AddDate(0, 0, 1) // a date "to" includes that day
		}
	}
	for _, s := range []string{f.Q, f.Sender, f.Conversation, f.Rule, f.Severity, f.Disposition} {
		if err := checkText(s, search.MaxQueryLen); err != nil {
			return q, err
		}
	}
	return q, nil
}

// searchData is the search page's data.
type searchData struct {
	F            filters
	Kinds        []string
	Severities   []string
	Dispositions []string
	Searched     bool
	Hits         []msgView
	Total        int
	From, To     int
	Prev, Next   string
}

// newSearchData starts the data of a page with the filter form, filled with f.
func newSearchData(f filters) *searchData {
	return &searchData{F: f, Kinds: formKinds, Severities: formSeverities, Dispositions: formDispositions}
}

// badQuery answers the page name again, 400, with the index's complaint about the query.
func (h *handler) badQuery(w http.ResponseWriter, r *request, name string, d any, err error) error {
	p := h.newPage(r, name, d)
	p.Error = p.T("badquery") + " " + strings.TrimPrefix(err.Error(), "search: bad query: ")
	return h.render(w, http.StatusBadRequest, name, p)
}

func (h *handler) needIndex() error {
	if h.opts.Index == nil {
		return refuse(http.StatusNotImplemented, "noindex")
	}
	return nil
}

// search answers the search page: the index seals the query, then one access entry seals the
// reading of the hits' messages and their findings; the page is rendered after both.
func (h *handler) search(w http.ResponseWriter, r *request) error {
	if err := h.needIndex(); err != nil {
		return err
	}
	f := readFilters(r.URL.Query())
	d := newSearchData(f)
	if !f.empty() {
		q, err := f.query(PageSize)
		if err != nil {
			return err
		}
		res, err := h.opts.Index.Search(r.Context(), h.accessor(r, "query"), q)
		if errors.Is(err, search.ErrQuery) {
			return h.badQuery(w, r, "search", d, err)
		}
		if err != nil {
			return err
		}
		rd, err := h.read(r, res.Indexes())
		if err != nil {
			return err
		}
		d.Searched, d.Total = true, res.Total
		for _, hit := range res.Hits {
			d.Hits = append(d.Hits, rd.view(hit.Index, hit.Records))
		}
		d.From, d.To = f.Offset+1, f.Offset+len(res.Hits)
		if f.Offset > 0 {
			v := f.values()
			v.Set("offset", strconv.Itoa(max(0, f.Offset-PageSize)))
			d.Prev = "/search?" + v.Encode()
		}
		if f.Offset+len(res.Hits) < res.Total {
			v := f.values()
			v.Set("offset", strconv.Itoa(f.Offset+PageSize))
			d.Next = "/search?" + v.Encode()
		}
	}
	return h.render(w, http.StatusOK, "search", h.newPage(r, "search", d))
}

// ContextMessages is how many messages the conversation page shows on each side of the one
// asked for; MaxConversationPages bounds the pages of search.MaxLimit messages it looks
// through for that one.
const (
	ContextMessages      = 25
	MaxConversationPages = 20
)

// convData is the conversation page's data.
type convData struct {
	ID       string
	Title    []seg
	Msgs     []msgView
	Earlier  string
	Later    string
	Total    int
	NotFound bool
}

// conversation shows a conversation in time order around one message: the index seals the
// query of the conversation, one access entry the reading of the messages shown.
func (h *handler) conversation(w http.ResponseWriter, r *request) error {
	if err := h.needIndex(); err != nil {
		return err
	}
	cid := r.URL.Query().Get("c")
	if cid == "" {
		return refuse(http.StatusBadRequest, "badinput")
	}
	if err := checkText(cid, 1024); err != nil {
		return err
	}
	at, atErr := strconv.ParseUint(r.URL.Query().Get("at"), 10, 64)
	// The conversation in sent order, page by page (each search sealed) until the message
	// asked for is found, within MaxConversationPages pages.
	q := search.Query{Conversations: []string{cid}, Limit: search.MaxLimit}
	acc := h.accessor(r, "query")
	var res *search.Result
	pos := -1
	for page := 1; ; page++ {
		var err error
		if res, err = h.opts.Index.Search(r.Context(), acc, q); err != nil {
			return err
		}
		if atErr != nil {
			break
		}
		if pos = slices.IndexFunc(res.Hits, func(x search.Hit) bool { return x.Index == at }); pos >= 0 ||
			q.Offset+len(res.Hits) >= res.Total || page == MaxConversationPages {
			break
		}
		q.Offset += len(res.Hits)
	}
	d := &convData{ID: cid, Total: res.Total, NotFound: atErr == nil && pos < 0}
	pos = max(pos, 0)
	lo, hi := max(0, pos-ContextMessages), min(len(res.Hits), pos+ContextMessages+1)
	window := res.Hits[lo:hi]
	var idx []uint64
	for _, x := range window {
		idx = append(append(idx, x.Index), x.Records...)
	}
	rd, err := h.read(r, idx)
	if err != nil {
		return err
	}
	for _, x := range window {
		v := rd.view(x.Index, x.Records)
		v.Current = atErr == nil && x.Index == at
		if d.Title == nil && v.ConvTitle != nil {
			d.Title = v.ConvTitle
		}
		d.Msgs = append(d.Msgs, v)
	}
	if lo > 0 {
		d.Earlier = convLink(cid, res.Hits[max(0, lo-ContextMessages-1)].Index)
	}
	if hi < len(res.Hits) {
		d.Later = convLink(cid, res.Hits[min(len(res.Hits)-1, hi+ContextMessages)].Index)
	}
	return h.render(w, http.StatusOK, "conversation", h.newPage(r, "search", d))
}

// inline are the content types a blob is served as inline (pictures, audio), decided by its
// bytes, never by a name or a type the message gives.
var inline = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"image/bmp": true, "audio/mpeg": true, "audio/wave": true, "audio/ogg": true, "audio/aiff": true}

// blob serves an attachment through Accessor.Blob, which seals the reading first. Pictures
// and audio recognized by their bytes are served inline; anything else as a download.
func (h *handler) blob(w http.ResponseWriter, r *request) error {
	var sum [32]byte
	s := r.PathValue("sha256")
	if !isSHA256Hex(s) {
		return refuse(http.StatusBadRequest, "badinput")
	}
	_, _ = hex.Decode(sum[:], []byte(s))
	b, err := h.accessor(r, "read").Blob(r.Context(), sum)
	if err != nil {
		if errors.Is(err, capture.ErrBlobNotFound) || errors.Is(err, store.ErrNotFound) {
			return refuse(http.StatusNotFound, "notfound")
		}
		return err
	}
	ctype := http.DetectContentType(b)
	if i := strings.IndexByte(ctype, ';'); i >= 0 {
		ctype = ctype[:i]
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if inline[ctype] {
		hd.Set("Content-Type", ctype)
		hd.Set("Content-Disposition", "inline")
	} else {
		name := r.URL.Query().Get("name")
		if checkText(name, 255) != nil || name == "" {
			name = s
		}
		hd.Set("Content-Type", "application/octet-stream")
		cd := mime.FormatMediaType("attachment", map[string]string{"filename": name})
		if cd == "" {
			cd = "attachment"
		}
		hd.Set("Content-Disposition", cd)
	}
	_, _ = w.Write(b)
	return nil
}

// alertView is an alert as the alerts page lists it.
type alertView struct {
	Index    uint64
	Message  uint64
	Sent     string
	Sender   string
	Conv     string
	Severity string
	sev      int
	Rules    []string
	Findings []findingView
	Open     bool
	Last     string // the latest disposition, "who: what (note)"
	Link     string
}

// ruleStat is a rule's line in the precision table.
type ruleStat struct {
	Rule                                         string
	Alerts, Open, Reviewed, Dismissed, Escalated int
	Precision                                    string // 1 - dismissed/reviewed, or "—"
}

// alertsData is the alerts page's data.
type alertsData struct {
	Open       []alertView
	Closed     int
	Rules      []ruleStat
	Done       string
	Severity   string
	Rule       string
	Severities []string
}

// alerts shows the open queue, most severe first, then by rule; reading the queue is one access
// entry (surveil.Alerts). The precision of each rule comes from the dispositions of all alerts.
func (h *handler) alerts(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	d := &alertsData{Done: q.Get("done"), Severity: q.Get("severity"), Rule: q.Get("rule"), Severities: formSeverities}
	all, err := surveil.Alerts(r.Context(), h.l, h.accessor(r, "review"))
	if err != nil {
		return err
	}
	stats := map[string]*ruleStat{}
	for _, a := range all {
		v := alertView{Index: a.Index, Open: a.Open()}
		switch {
		case a.Findings != nil:
			v.Message, v.Sender, v.Conv, v.Sent = a.Findings.Message.Index, a.Findings.Message.Sender,
				a.Findings.Message.Conversation, formatTime(a.Findings.Message.Sent)
			for _, f := range a.Findings.Findings {
				v.Rules = append(v.Rules, f.Rule)
				v.sev = max(v.sev, int(f.Severity))
				v.Findings = append(v.Findings, findingView{Rule: f.Rule, Category: f.Category, Severity: f.Severity.String(),
					Term: f.Term, Field: f.Field})
			}
			v.Link = convLink(v.Conv, v.Message)
		case a.Behaviour != nil:
			f := a.Behaviour.Finding
			v.Conv, v.Sent = cmp.Or(f.Conversation, a.Conversation), formatTime(a.At)
			v.Rules, v.sev = []string{f.Rule}, int(f.Severity)
			v.Findings = []findingView{{Rule: f.Rule, Category: string(f.Kind), Severity: f.Severity.String()}}
			if v.Conv != "" {
				v.Link = "/conversation?" + url.Values{"c": {v.Conv}}.Encode()
			}
		default:
			continue
		}
		slices.Sort(v.Rules)
		v.Rules = slices.Compact(v.Rules)
		v.Severity = severityName(v.sev)
		if n := len(a.Dispositions); n > 0 {
			x := a.Dispositions[n-1]
			v.Last = x.Who + ": " + string(x.Disposition)
			if x.Note != "" {
				v.Last += " (" + x.Note + ")"
			}
		}
		var dismissed, escalated bool
		for _, x := range a.Dispositions {
			dismissed = dismissed || x.Disposition == surveil.Dismissed
			escalated = escalated || x.Disposition == surveil.Escalated
		}
		for _, rule := range v.Rules {
			st := stats[rule]
			if st == nil {
				st = &ruleStat{Rule: rule}
				stats[rule] = st
			}
			st.Alerts++
			switch {
			case v.Open:
				st.Open++
			case dismissed:
				st.Reviewed++
				st.Dismissed++
			default:
				st.Reviewed++
				st.Escalated++
			}
		}
		if !v.Open {
			d.Closed++
			continue
		}
		if (d.Severity != "" && v.Severity != d.Severity) || (d.Rule != "" && !slices.Contains(v.Rules, d.Rule)) {
			continue
		}
		d.Open = append(d.Open, v)
	}
	slices.SortStableFunc(d.Open, func(a, b alertView) int {
		return cmp.Or(cmp.Compare(b.sev, a.sev), cmp.Compare(strings.Join(a.Rules, ","), strings.Join(b.Rules, ",")),
			cmp.Compare(a.Message, b.Message))
	})
	for _, st := range stats {
		st.Precision = "—"
		if st.Reviewed > 0 {
			st.Precision = strconv.FormatFloat(1-float64(st.Dismissed)/float64(st.Reviewed), 'f', 2, 64)
		}
		d.Rules = append(d.Rules, *st)
	}
	slices.SortFunc(d.Rules, func(a, b ruleStat) int { return cmp.Compare(a.Rule, b.Rule) })
	return h.render(w, http.StatusOK, "alerts", h.newPage(r, "alerts", d))
}

// severityName is the lexicon spelling of a scan.Severity's number, "" for none.
func severityName(n int) string {
	if s := scan.Severity(n); s >= scan.Info && s <= scan.High {
		return s.String()
	}
	return ""
}

// dispose seals a disposition through surveil.Dispose (which reads the alert as an access of
// the user for the session's reason) and goes back to the queue.
func (h *handler) dispose(w http.ResponseWriter, r *request) error {
	i, err := strconv.ParseUint(r.PostFormValue("alert"), 10, 64)
	if err != nil || i >= h.l.Size() {
		return refuse(http.StatusBadRequest, "badinput")
	}
	d := surveil.Disposition(r.PostFormValue("disposition"))
	if !slices.Contains([]surveil.Disposition{surveil.Dismissed, surveil.Escalated, surveil.Noted, surveil.Assigned}, d) {
		return refuse(http.StatusBadRequest, "badinput")
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if err := checkText(note, surveil.MaxNoteLen); err != nil {
		return err
	}
	if (d == surveil.Noted || d == surveil.Assigned) && note == "" {
		return refuse(http.StatusBadRequest, "neednote")
	}
	if _, err := surveil.Dispose(r.Context(), h.l, r.ss.name, h.sess.reason(r.ss), i, d, note); err != nil {
		if errors.Is(err, surveil.ErrNotAnAlert) {
			return refuse(http.StatusBadRequest, "notalert")
		}
		return err
	}
	http.Redirect(w, r.Request, "/alerts?done="+strconv.FormatUint(i, 10), http.StatusSeeOther)
	return nil
}

// exportData is the export pages' data.
type exportData struct {
	searchData
	Formats []string
	ID      string
	State   exportState
}

// exportPage shows the export form (the search filters).
func (h *handler) exportPage(w http.ResponseWriter, r *request) error {
	d := &exportData{searchData: *newSearchData(readFilters(r.URL.Query()))}
	return h.render(w, http.StatusOK, "export", h.newPage(r, "export", d))
}

// export builds a bundle of what the filters select (export.Build: the search and the reading
// are sealed first) and keeps it in the session, in memory, for one download.
func (h *handler) export(w http.ResponseWriter, r *request) error {
	if err := h.needIndex(); err != nil {
		return err
	}
	if h.opts.Signer == nil {
		return refuse(http.StatusNotImplemented, "noexport")
	}
	if err := r.ParseForm(); err != nil {
		return refuse(http.StatusBadRequest, "badinput")
	}
	f := readFilters(r.PostForm)
	f.Offset = 0
	d := &exportData{searchData: *newSearchData(f)}
	for _, x := range r.PostForm["format"] {
		if x != export.FormatRSMF && x != export.FormatEML {
			return refuse(http.StatusBadRequest, "badinput")
		}
		d.Formats = append(d.Formats, x)
	}
	if f.empty() {
		p := h.newPage(r, "export", d)
		p.Error = p.T("needfilter")
		return h.render(w, http.StatusBadRequest, "export", p)
	}
	q, err := f.query(api.MaxExportEntries)
	if err != nil {
		return err
	}
	why := h.sess.reason(r.ss)
	res, err := h.opts.Index.Search(r.Context(), h.accessor(r, "export"), q)
	if errors.Is(err, search.ErrQuery) {
		return h.badQuery(w, r, "export", d, err)
	}
	if err != nil {
		return err
	}
	if len(res.Hits) == 0 {
		p := h.newPage(r, "export", d)
		p.Error = p.T("nomatch")
		return h.render(w, http.StatusOK, "export", p)
	}
	qj, _ := json.Marshal(q)
	// The bundle is built off the request, so that a large export can show its progress; it
	// reads through the accessor (sealed first) like any export, and stops when the session
	// ends or starts another.
	bctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	hb := &heldBundle{id: randomToken(), matched: res.Total, cancel: cancel}
	h.sess.start(r.ss, hb)
	req := export.Request{Who: r.ss.name, Why: why, Indexes: res.Indexes(), Query: string(qj), Signer: h.opts.Signer,
		Formats: d.Formats, Progress: func(phase string, done, total int) { h.sess.progress(hb, phase, done, total) }}
	go func() {
		defer cancel()
		b, err := export.Build(bctx, h.l, req)
		if err != nil && bctx.Err() == nil {
			h.log.Error("console: an export failed", "who", req.Who, "err", err)
		}
		h.sess.finish(hb, b, err)
	}()
	http.Redirect(w, r.Request, "/export/status?id="+hb.id, http.StatusSeeOther)
	return nil
}

// exportStatus shows how far the session's export is (the page reloads itself every second
// while it is built), then its summary and the download link.
func (h *handler) exportStatus(w http.ResponseWriter, r *request) error {
	id := r.URL.Query().Get("id")
	st, ok := h.sess.state(r.ss, id)
	if !ok {
		return refuse(http.StatusNotFound, "nobundle")
	}
	d := &exportData{ID: id, State: st}
	p := h.newPage(r, "export", d)
	switch {
	case st.Failed:
		p.Error = p.T("exportfailed")
		if errors.Is(st.err, ledger.ErrShredded) || errors.Is(st.err, ledger.ErrNotFound) {
			p.Error += " " + st.err.Error()
		}
	case !st.Ready:
		p.Refresh = 1
	}
	return h.render(w, http.StatusOK, "exported", p)
}

// download streams the session's bundle as a zip, once.
func (h *handler) download(w http.ResponseWriter, r *request) error {
	b := h.sess.take(r.ss, r.URL.Query().Get("id"))
	if b == nil {
		return refuse(http.StatusNotFound, "nobundle")
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="commseal-export-%d.zip"`, b.TreeSize))
	if err := b.WriteZip(w); err != nil {
		h.log.Error("console: writing an export failed part way", "err", err)
	}
	return nil
}

// integrityData is the integrity page's data.
type integrityData struct {
	api.Status
	Root         string
	Signed       string
	CanVerify    bool
	Health       string
	Verification *api.Verification
	ProofOf      string // the entry asked for
	Proof        string // its C2SP tlog-proof@v1 against the latest checkpoint
	Anchors      []anchorView
	AnchorSize   uint64
	Charts       []chart
	Unchanged    []unchanged
	Window       string
}

// anchorView is an anchor entry of the latest anchored checkpoint: a time-stamp or a
// witness's cosignature.
type anchorView struct {
	Index     uint64
	Type      string
	Authority string
	Time      string
}

// integrity shows the ledger's checkpoint, size, key, index coverage, the last verification
// and capture health. It decrypts nothing and seals nothing.
func (h *handler) integrity(w http.ResponseWriter, r *request) error {
	d := &integrityData{CanVerify: h.opts.Store != nil}
	d.Origin, d.VerifierKey, d.TreeSize = h.l.Origin(), h.l.VerifierKey(), h.l.Size()
	if signed, cp, err := h.l.Checkpoint(); err == nil {
		d.Checkpoint = &cp
		d.Root = hex.EncodeToString(cp.Root[:])
		d.Signed = string(signed)
	}
	if h.opts.Index != nil {
		s := h.opts.Index.Stats()
		d.Index = &api.IndexStatus{Size: s.Size, Messages: s.Messages, Shredded: s.Shredded, OnDisk: s.OnDisk}
		if d.TreeSize > s.Size {
			d.Index.Behind = d.TreeSize - s.Size
		}
	}
	h.lastMu.Lock()
	d.Verification = h.last
	h.lastMu.Unlock()
	anchors, err := h.l.LatestAnchors(r.Context())
	if err != nil {
		return err
	}
	for _, a := range anchors {
		d.AnchorSize = a.Size
		d.Anchors = append(d.Anchors, anchorView{Index: a.Index, Type: a.Type, Authority: a.Authority, Time: formatTime(a.Time)})
	}
	if h.opts.Health != nil {
		if b, err := json.MarshalIndent(h.opts.Health(), "", "  "); err == nil {
			d.Health = string(b)
		}
	}
	if h.opts.HealthHistory != nil {
		d.Charts, d.Unchanged, d.Window = h.opts.HealthHistory.charts()
	}
	p := h.newPage(r, "integrity", d)
	if s := r.URL.Query().Get("proof"); s != "" {
		d.ProofOf = s
		i, err := strconv.ParseUint(s, 10, 64)
		switch {
		case err != nil || i >= d.TreeSize:
			p.Error = p.T("noentry")
		default:
			pr, err := h.l.Prove(r.Context(), i)
			if errors.Is(err, ledger.ErrNotCovered) {
				p.Error = p.T("notcovered")
			} else if err != nil {
				return err
			} else {
				d.Proof = string(pr.Marshal())
			}
		}
	}
	return h.render(w, http.StatusOK, "integrity", p)
}

// verify runs verify.Ledger over the store, read only, up to its size at the start, and
// remembers the result for the integrity page.
func (h *handler) verify(w http.ResponseWriter, r *request) error {
	if h.opts.Store == nil {
		return refuse(http.StatusNotImplemented, "noverify")
	}
	if !h.verifyMu.TryLock() {
		return refuse(http.StatusConflict, "verifying")
	}
	defer h.verifyMu.Unlock()
	v, err := seal.NewVerifier(h.l.VerifierKey())
	if err != nil {
		return fmt.Errorf("console: the ledger's verifier key: %w", err)
	}
	_, _, cpErr := h.l.Checkpoint()
	start := h.opts.Now()
	pin, size, err := verify.Pin(r.Context(), h.opts.Store)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	rep, err := verify.Ledger(r.Context(), pin, v, verify.Options{AllowUnsigned: errors.Is(cpErr, ledger.ErrNotFound)})
	if err != nil && !verify.Altered(err) {
		return fmt.Errorf("console: verifying: %w", err)
	}
	res := &api.Verification{Started: start.UTC(), Duration: h.opts.Now().Sub(start).String(), OK: err == nil,
		Altered: err != nil, Size: size, Report: rep}
	if err != nil {
		res.Error = err.Error()
		h.log.Error("console: the ledger does not verify", "err", err)
	}
	h.lastMu.Lock()
	h.last = res
	h.lastMu.Unlock()
	http.Redirect(w, r.Request, "/integrity", http.StatusSeeOther)
	return nil
}

// AccessPage is how many ledger entries one access-log page examines.
const AccessPage = 2000

// accessEntry is an access entry as the access log lists it: api.AccessEntry (who read what,
// why and when) with the entries a read named, which the page shows too. The query of a
// search is not shown (on an encrypted ledger it is encrypted in the entry).
type accessEntry struct {
	api.AccessEntry
	Entries string `json:"entries"` // the entries a read named, as ranges
	Count   int    `json:"count"`
}

// What says what the access read, for the page.
func (a *accessEntry) What() string {
	switch {
	case a.Entries != "":
		return fmt.Sprintf("%d: %s", a.Count, a.Entries)
	case len(a.Blobs) == 1:
		return "blob " + a.Blobs[0]
	case len(a.Blobs) > 1:
		return fmt.Sprintf("%d blobs", len(a.Blobs))
	case a.Op == "query":
		return fmt.Sprintf("search over [0, %d)", a.To)
	case a.To == a.From+1:
		return "entry " + strconv.FormatUint(a.From, 10)
	}
	return fmt.Sprintf("entries [%d, %d)", a.From, a.To)
}

// accessData is the access log page's data.
type accessData struct {
	Entries []accessEntry
	From    uint64
	To      uint64
	Older   string
}

// AccessLogWhy is the reason an access-log view is sealed with when the session gives none.
const AccessLogWhy = "access log review"

// accessLog lists the access entries among the latest ledger entries, newest first. Viewing
// it is itself an access: an entry naming the user and the range is sealed before the page
// is rendered (access entries are not encrypted: nothing is decrypted).
func (h *handler) accessLog(w http.ResponseWriter, r *request) error {
	size := h.l.Size()
	to := size
	if s := r.URL.Query().Get("before"); s != "" {
		b, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return refuse(http.StatusBadRequest, "badinput")
		}
		to = min(b, size)
	}
	from := to - min(to, AccessPage)
	why := cmp.Or(h.sess.reason(r.ss), AccessLogWhy)
	if err := h.l.Access(r.ss.name, why).For("access-log").Query(r.Context(),
		fmt.Sprintf("access log of entries [%d, %d)", from, to), size); err != nil {
		return err
	}
	d := &accessData{From: from, To: to}
	for i := to; i > from; i-- {
		e, err := h.l.Get(r.Context(), i-1)
		if e == nil {
			return err
		}
		if e.Leaf.Kind != seal.KindAccess {
			continue
		}
		var a accessEntry
		if json.Unmarshal(e.Body, &a) != nil {
			continue
		}
		a.Index = i - 1
		d.Entries = append(d.Entries, a)
	}
	if from > 0 {
		d.Older = "/access?before=" + strconv.FormatUint(from, 10)
	}
	return h.render(w, http.StatusOK, "access", h.newPage(r, "access", d))
}
