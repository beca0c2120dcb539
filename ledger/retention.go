package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
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

// PlaceHold seals a legal hold into the ledger and returns its entry's index.
func (l *Ledger) PlaceHold(ctx context.Context, h Hold) (uint64, error) {
	if h.ID == "" || h.Tenant == "" || h.Reason == "" || h.By == "" {
		return 0, errors.New("ledger: a hold needs an id, tenant, reason and who placed it")
	}
	if h.From.IsZero() {
		h.From = l.opts.Now().UTC()
	}
	h.Released = false
	return l.appendHold(ctx, h)
}

// ReleaseHold seals the release of a hold placed earlier.
func (l *Ledger) ReleaseHold(ctx context.Context, id, by, reason string) (uint64, error) {
	holds, err := l.Holds(ctx)
	if err != nil {
		return 0, err
	}
	i := slices.IndexFunc(holds, func(h Hold) bool { return h.ID == id })
	if i < 0 {
		return 0, fmt.Errorf("%w: no active hold %q", ErrNotFound, id)
	}
	h := holds[i]
	h.Released, h.By, h.Reason, h.From = true, by, reason, l.opts.Now().UTC()
	return l.appendHold(ctx, h)
}

func (l *Ledger) appendHold(ctx context.Context, h Hold) (uint64, error) {
	rc, err := l.submit(ctx, &request{kind: seal.KindHold, time: l.opts.Now().UTC()}, 512, jsonOf(h))
	return rc.Index, err
}

// Holds returns the active legal holds, from the hold entries in the ledger.
func (l *Ledger) Holds(ctx context.Context) ([]Hold, error) {
	active := map[string]Hold{}
	var order []string
	for e, err := range l.st.Entries(ctx, 0, l.Size()) {
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
			delete(active, h.ID)
			continue
		}
		if _, ok := active[h.ID]; !ok {
			order = append(order, h.ID)
		}
		active[h.ID] = h
	}
	var out []Hold
	for _, id := range order {
		if h, ok := active[id]; ok {
			out = append(out, h)
		}
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
		if slices.ContainsFunc(holds, func(h Hold) bool {
			return h.Tenant == sc.Tenant && (h.Conversation == "" || h.Conversation == sc.Conversation)
		}) {
			continue
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
	for k := range due {
		s := &due[k]
		rc, err := l.submit(ctx, &request{kind: seal.KindShred, time: now,
			identity: seal.IdentityDigest("shred", "commseal", "", s.KeyID)}, 512, jsonOf(s))
		if err != nil {
			return due[:k], fmt.Errorf("ledger: sealing shred of %s: %w", s.KeyID, err)
		}
		s.Index = rc.Index
		for _, id := range append([]string{s.KeyID}, s.Blobs...) {
			if err := vault.DestroyKey(ctx, id); err != nil {
				return due[:k], fmt.Errorf("ledger: destroying %s: %w", id, err)
			}
			l.dk.forget(id)
		}
		l.log.Info("ledger: shredded", "key", s.KeyID, "rule", s.Rule, "blobs", len(s.Blobs), "entry", s.Index)
	}
	return due, nil
}

func all[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}
