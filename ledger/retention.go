package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// Period is a retention period in calendar units.
type Period struct {
	Years, Months, Days int
}

func (p Period) after(t time.Time) time.Time { return t.AddDate(p.Years, p.Months, p.Days) }

// RetentionRule keeps the entries it matches for a period after the end of their month.
// Empty fields match anything.
type RetentionRule struct {
	Name          string   // names the rule in shred entries
	Tenant        string   // the tenant it applies to
	Conversations []string // the conversations it applies to
	Kinds         []string // entry kinds (seal.Kind names) it applies to
	Keep          Period
}

func (r *RetentionRule) matchesScope(sc *keyScope) bool {
	return (r.Tenant == "" || r.Tenant == sc.Tenant) &&
		(len(r.Conversations) == 0 || slices.Contains(r.Conversations, sc.Conversation))
}

// matchesKind reports whether r applies to entries of kind ("" for a key that does not record
// its kinds, which only a rule for every kind matches).
func (r *RetentionRule) matchesKind(kind string) bool {
	return len(r.Kinds) == 0 || kind != "" && slices.Contains(r.Kinds, kind)
}

// RetentionPolicy maps scopes to retention periods. A data key protects every entry of a scope
// (tenant × conversation × month), whatever its kind, so it expires only when everything it
// protects has: for each kind of entry sealed under it, the longest period of the rules that
// match the scope and that kind applies, and the key expires when the last of these ends. A
// kind that no rule matches keeps the key: a scope no rule matches is kept.
type RetentionPolicy struct {
	Rules []RetentionRule
}

// expiry returns when the key of scope sc (of the month ending at end) expires under p, and
// the rule that sets that time (for the latest-expiring kind); ok is false when some kind of
// its entries is matched by no rule, which keeps the key.
func (p *RetentionPolicy) expiry(sc *keyScope, end time.Time) (rule *RetentionRule, expires time.Time, ok bool) {
	kinds := sc.Kinds
	if len(kinds) == 0 {
		kinds = []string{""}
	}
	for _, kind := range kinds {
		var kr *RetentionRule
		var ke time.Time
		for k := range p.Rules {
			r := &p.Rules[k]
			if r.matchesScope(sc) && r.matchesKind(kind) && (kr == nil || r.Keep.after(end).After(ke)) {
				kr, ke = r, r.Keep.after(end)
			}
		}
		if kr == nil {
			return nil, time.Time{}, false
		}
		if rule == nil || ke.After(expires) {
			rule, expires = kr, ke
		}
	}
	return rule, expires, true
}

// Hold is a legal hold: while active, it keeps every scope of its tenant (and conversation, if
// set) whatever the retention policy says.
type Hold struct {
	ID           string    `json:"id"`
	Tenant       string    `json:"tenant"`
	Conversation string    `json:"conversation,omitempty"` // empty: the whole tenant
	Reason       string    `json:"reason"`
	By           string    `json:"by"`
	From         time.Time `json:"from"`
	// Released is set on the entry that releases a hold.
	Released bool `json:"released,omitempty"`
}

func (h *Hold) covers(sc *keyScope) bool {
	return h.Tenant == sc.Tenant && (h.Conversation == "" || h.Conversation == sc.Conversation)
}

// Legal holds are chained: every hold entry (placed or released) is sealed in one reserved
// conversation, holdChain, and carries, beside the change, the full set of holds active after
// it. The latest entry of that conversation, which the ledger's index finds directly, is the
// current set: reading it costs one entry however long the ledger. Verify checks the chain
// like any conversation's, so a hold entry cannot go missing unnoticed.
//
// The chain's conversation digest has an empty platform, which no captured message or record
// may have, so nothing else can join it.
var holdChain = seal.ConversationDigest("", "commseal", "legal-holds")

// holdEntry is the body of a chained hold entry: the change (the Hold, Released set for a
// release) and the holds active after it.
type holdEntry struct {
	Hold
	Active []Hold `json:"active"`
}

// holdLog serializes the changes of legal holds with the sealing of shred entries: mu is held
// while a hold is placed or released (read the set, seal the entry with the new set) and while
// ApplyRetention checks the holds and seals a shred entry, so a hold sealed before a shred
// entry is always seen by it. Lock order: holdLog.mu, then the ledger's pipeline (submit);
// never the data key cache's locks while holding it.
type holdLog struct {
	mu sync.Mutex
	// Ledgers written before holds were chained hold unchained hold entries; while the chain
	// is empty their set is read from them, once per Open, and kept here.
	scanned uint64          // entries [0, scanned) were read for unchained hold entries
	active  map[string]Hold // their active holds
	order   []string        // ids in the order placed
}

// PlaceHold seals a legal hold into the ledger and returns its entry's index. A hold placed
// with the id of an active hold replaces it.
func (l *Ledger) PlaceHold(ctx context.Context, h Hold) (uint64, error) {
	if h.ID == "" || h.Tenant == "" || h.Reason == "" || h.By == "" {
		return 0, errors.New("ledger: a hold needs an id, tenant, reason and who placed it")
	}
	if h.From.IsZero() {
		h.From = l.opts.Now().UTC()
	}
	h.Released = false
	l.holds.mu.Lock()
	defer l.holds.mu.Unlock()
	active, err := l.activeHolds(ctx)
	if err != nil {
		return 0, err
	}
	if i := slices.IndexFunc(active, func(a Hold) bool { return a.ID == h.ID }); i >= 0 {
		active[i] = h
	} else {
		active = append(active, h)
	}
	return l.appendHold(ctx, h, active)
}

// ReleaseHold seals the release of a hold placed earlier.
func (l *Ledger) ReleaseHold(ctx context.Context, id, by, reason string) (uint64, error) {
	l.holds.mu.Lock()
	defer l.holds.mu.Unlock()
	active, err := l.activeHolds(ctx)
	if err != nil {
		return 0, err
	}
	i := slices.IndexFunc(active, func(h Hold) bool { return h.ID == id })
	if i < 0 {
		return 0, fmt.Errorf("%w: no active hold %q", ErrNotFound, id)
	}
	h := active[i]
	h.Released, h.By, h.Reason, h.From = true, by, reason, l.opts.Now().UTC()
	return l.appendHold(ctx, h, slices.Delete(active, i, i+1))
}

// appendHold seals a hold entry on the chain. The caller holds l.holds.mu.
func (l *Ledger) appendHold(ctx context.Context, h Hold, active []Hold) (uint64, error) {
	if active == nil {
		active = []Hold{}
	}
	body := holdEntry{Hold: h, Active: active}
	rc, err := l.submit(ctx, &request{kind: seal.KindHold, time: l.opts.Now().UTC(), conv: holdChain}, 512+256*len(active), jsonOf(body))
	return rc.Index, err
}

// Holds returns the active legal holds, in the order they were placed. It reads the latest
// entry of the hold chain (one entry, whatever the ledger's size).
func (l *Ledger) Holds(ctx context.Context) ([]Hold, error) {
	l.holds.mu.Lock()
	defer l.holds.mu.Unlock()
	return l.activeHolds(ctx)
}

// activeHolds returns the active holds: the set the latest chained hold entry carries, or,
// while the chain is empty, the set of the unchained hold entries of earlier versions. The
// caller holds l.holds.mu; the result is the caller's.
func (l *Ledger) activeHolds(ctx context.Context) ([]Hold, error) {
	i, ok, err := l.idx.lastInConversation(ctx, holdChain)
	if err != nil {
		return nil, fmt.Errorf("ledger: finding the latest hold entry: %w", err)
	}
	if !ok {
		return l.unchainedHolds(ctx)
	}
	e, err := store.ReadEntry(ctx, l.st, i)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading hold entry %d: %w", i, err)
	}
	d, err := Decode(e)
	if err != nil {
		return nil, fmt.Errorf("ledger: hold entry %d: %w", i, err)
	}
	if d.Leaf.Kind != seal.KindHold || d.Leaf.Conversation != holdChain {
		return nil, fmt.Errorf("%w: the latest entry of the hold chain, %d, is no hold entry", store.ErrCorrupt, i)
	}
	var he holdEntry
	if err := json.Unmarshal(d.Body, &he); err != nil {
		return nil, fmt.Errorf("%w: hold entry %d: %v", store.ErrCorrupt, i, err)
	}
	return slices.Clone(he.Active), nil
}

// unchainedHolds reads the hold entries that earlier versions sealed outside the chain, from
// where the last call stopped, and returns the holds they leave active.
func (l *Ledger) unchainedHolds(ctx context.Context) ([]Hold, error) {
	hl := &l.holds
	if hl.active == nil {
		hl.active = map[string]Hold{}
	}
	size := l.Size()
	for e, err := range l.st.Entries(ctx, hl.scanned, size) {
		if err != nil {
			return nil, fmt.Errorf("ledger: reading holds: %w", err)
		}
		if k, err := seal.LeafKind(e.Leaf); err != nil || k != seal.KindHold {
			continue // a malformed leaf is Verify's to report
		}
		d, err := Decode(e)
		if err != nil {
			return nil, err
		}
		var h Hold
		if err := json.Unmarshal(d.Body, &h); err != nil {
			return nil, fmt.Errorf("ledger: hold entry %d: %w", e.Index, err)
		}
		if h.Released {
			delete(hl.active, h.ID)
			hl.order = slices.DeleteFunc(hl.order, func(id string) bool { return id == h.ID })
			continue
		}
		if _, ok := hl.active[h.ID]; !ok {
			hl.order = append(hl.order, h.ID)
		}
		hl.active[h.ID] = h
	}
	hl.scanned = size
	out := make([]Hold, 0, len(hl.order))
	for _, id := range hl.order {
		out = append(out, hl.active[id])
	}
	return out, nil
}

// ApplyOptions tune ApplyRetention.
type ApplyOptions struct {
	Now       time.Time // the time to judge expiry by; default the ledger's clock
	DryRun    bool      // list what would go, destroy nothing, append nothing
	Authority string    // who authorized this run; required unless DryRun
}

// Shred describes a data key that retention destroyed (or, in a dry run, would destroy).
type Shred struct {
	KeyID        string    `json:"key_id"`
	Tenant       string    `json:"tenant"`
	Conversation string    `json:"conversation,omitempty"`
	Month        string    `json:"month"`
	Rule         string    `json:"rule"`
	ExpiredAt    time.Time `json:"expired_at"`
	Blobs        []string  `json:"blobs,omitempty"` // blob keys destroyed with it
	Authority    string    `json:"authority"`
	At           time.Time `json:"at"`
	Index        uint64    `json:"-"` // the shred entry's index (zero in a dry run)
}

// ApplyRetention destroys the data keys of every scope whose retention period under p has
// ended and that no active legal hold covers, and seals a shred entry for each (which key,
// which rule, when, on whose authority). Blob keys go when every scope that referenced them has
// gone. The shred entry is sealed before the key is destroyed, and is deduplicated on the key
// id, so a run interrupted between the two completes on the next run. Entries are never
// rewritten: proofs and Verify stay valid; reading shredded content returns ErrShredded.
func (l *Ledger) ApplyRetention(ctx context.Context, p RetentionPolicy, opts ApplyOptions) ([]Shred, error) {
	if l.dk == nil {
		return nil, errors.New("ledger: retention by shredding needs an encrypted ledger")
	}
	if !opts.DryRun && opts.Authority == "" {
		return nil, errors.New("ledger: ApplyOptions.Authority is required")
	}
	now := opts.Now
	if now.IsZero() {
		now = l.opts.Now()
	}
	now = now.UTC()
	holds, err := l.Holds(ctx)
	if err != nil {
		return nil, err
	}
	vault := l.dk.enc.Vault
	type blobKey struct {
		id     string
		scopes []string
	}
	var due []Shred
	gone := map[string]bool{}
	var blobs []blobKey
	for wk, err := range vault.Keys(ctx) {
		if err != nil {
			return nil, fmt.Errorf("ledger: listing data keys: %w", err)
		}
		var sc keyScope
		if err := json.Unmarshal(wk.Meta, &sc); err != nil {
			return nil, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, wk.ID, err)
		}
		if wk.Destroyed {
			gone[wk.ID] = true
			continue
		}
		if sc.Blob != "" {
			blobs = append(blobs, blobKey{wk.ID, sc.Scopes})
			continue
		}
		if sc.State != "" {
			continue // local state (a journal, an index) forgets shredded content itself
		}
		month, err := time.Parse("2006-01", sc.Month)
		if err != nil {
			return nil, fmt.Errorf("%w: data key %s has month %q", store.ErrCorrupt, wk.ID, sc.Month)
		}
		rule, expires, ok := p.expiry(&sc, month.AddDate(0, 1, 0))
		if !ok || expires.After(now) {
			continue
		}
		if slices.ContainsFunc(holds, func(h Hold) bool { return h.covers(&sc) }) {
			continue // checked again before each shred entry is sealed
		}
		due = append(due, Shred{KeyID: wk.ID, Tenant: sc.Tenant, Conversation: sc.Conversation, Month: sc.Month,
			Rule: rule.Name, ExpiredAt: expires, Authority: opts.Authority, At: now})
		gone[wk.ID] = true
	}
	// A blob goes with the last scope that referenced it.
	for _, b := range blobs {
		if len(b.scopes) == 0 || !all(b.scopes, func(s string) bool { return gone[s] }) {
			continue
		}
		// Attribute it to the first scope shredded in this run, if any.
		for k := range due {
			if slices.Contains(b.scopes, due[k].KeyID) {
				due[k].Blobs = append(due[k].Blobs, b.id)
				break
			}
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].KeyID < due[j].KeyID })
	if opts.DryRun {
		return due, nil
	}
	done := due[:0]
	for k := range due {
		s := due[k]
		sealed, err := l.sealShred(ctx, &s)
		if err != nil {
			return done, err
		}
		if !sealed {
			continue
		}
		for _, id := range append([]string{s.KeyID}, s.Blobs...) {
			if err := vault.DestroyKey(ctx, id); err != nil {
				return done, fmt.Errorf("ledger: destroying %s: %w", id, err)
			}
			l.dk.forget(id)
		}
		done = append(done, s)
		l.log.Info("ledger: shredded", "key", s.KeyID, "rule", s.Rule, "blobs", len(s.Blobs), "entry", s.Index)
	}
	return done, nil
}

// sealShred seals the shred entry s unless an active hold covers its scope, and reports
// whether it did. Holds are read and the entry sealed under l.holds.mu, so a hold sealed
// before the shred entry always stops it.
func (l *Ledger) sealShred(ctx context.Context, s *Shred) (bool, error) {
	l.holds.mu.Lock()
	defer l.holds.mu.Unlock()
	holds, err := l.activeHolds(ctx)
	if err != nil {
		return false, err
	}
	sc := keyScope{Tenant: s.Tenant, Conversation: s.Conversation}
	if i := slices.IndexFunc(holds, func(h Hold) bool { return h.covers(&sc) }); i >= 0 {
		l.log.Info("ledger: shred stopped by a legal hold", "key", s.KeyID, "hold", holds[i].ID)
		return false, nil
	}
	rc, err := l.submit(ctx, &request{kind: seal.KindShred, time: s.At,
		identity: seal.IdentityDigest("shred", "commseal", "", s.KeyID)}, 512, jsonOf(s))
	if err != nil {
		return false, fmt.Errorf("ledger: sealing shred of %s: %w", s.KeyID, err)
	}
	s.Index = rc.Index
	return true, nil
}

func all[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}
