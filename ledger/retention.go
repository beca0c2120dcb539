package ledger

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
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
// release), the holds active after it and the holds released before it (Past, one per tenant
// and conversation they covered, the latest release kept). Past tells a blob store's legal
// holds that the ledger may have set (see ApplyLocks) from those it never set: the ledger
// clears only the former. Entries of earlier versions have no Past; their releases predate
// the ledger setting any.
type holdEntry struct {
	Hold
	Active []Hold `json:"active"`
	Past   []Hold `json:"past,omitempty"`
}

// holdLog serializes the changes of legal holds with the sealing of shred entries: mu is held
// while a hold is placed or released (read the set, seal the entry with the new set) and while
// ApplyRetention checks the holds and seals a shred entry, so a hold sealed before a shred
// entry is always seen by it. lockMu is held while a hold is placed or released and the blob
// store's locks are then brought in line with it, and by every other pass over those locks
// (objectlock.go), so that the last pass sees the last hold change; it is taken with lockLocks,
// which gives up when the caller's context ends (a pass can wait long on the blob store).
// Lock order: runs, lockMu, mu, then the ledger's pipeline (submit); never the data key
// cache's locks while holding mu.
type holdLog struct {
	mu     sync.Mutex
	runs   sync.Mutex    // one ApplyRetention at a time (taken before lockMu and mu)
	lockMu chan struct{} // the pass lock: a send takes it (lockLocks), a receive releases it
	locks  objectLocks   // guarded by lockMu
	// Ledgers written before holds were chained hold unchained hold entries; while the chain
	// is empty their set is read from them, once per Open (this version never writes one, and
	// one process at a time writes a ledger), and kept here.
	scanned  bool            // the unchained hold entries were read
	active   map[string]Hold // their active holds
	order    []string        // ids in the order placed
	released []Hold          // their released holds
}

// lockLocks takes lockMu, or returns ctx's error if ctx ends first.
func (h *holdLog) lockLocks(ctx context.Context) error {
	select {
	case h.lockMu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ledger: waiting for the pass over the blob store's locks: %w", ctx.Err())
	}
}

// unlockLocks releases lockMu.
func (h *holdLog) unlockLocks() { <-h.lockMu }

// PlaceHold seals a legal hold into the ledger and returns its entry's index. A hold placed
// with the id of an active hold replaces it. With a blob store that locks objects, it then
// places the storage's legal hold on the attachments of the scopes it covers (see ReleaseHold
// for what a failure there returns).
func (l *Ledger) PlaceHold(ctx context.Context, h Hold) (uint64, error) {
	if h.ID == "" || h.Tenant == "" || h.Reason == "" || h.By == "" {
		return 0, errors.New("ledger: a hold needs an id, tenant, reason and who placed it")
	}
	if h.From.IsZero() {
		h.From = l.opts.Now().UTC()
	}
	h.Released = false
	if err := l.holds.lockLocks(ctx); err != nil {
		return 0, err
	}
	defer l.holds.unlockLocks()
	i, err := l.placeHold(ctx, h)
	if err != nil {
		return i, err
	}
	return i, l.lockHeldBlobs(ctx)
}

// placeHold seals the entry of PlaceHold.
func (l *Ledger) placeHold(ctx context.Context, h Hold) (uint64, error) {
	return l.changeHolds(ctx, func(active, past []Hold) (Hold, []Hold, []Hold, error) {
		if i := slices.IndexFunc(active, func(a Hold) bool { return a.ID == h.ID }); i >= 0 {
			if old := active[i]; old.Tenant != h.Tenant || old.Conversation != h.Conversation {
				old.Released = true // what it covered is no longer held by it
				past = addPast(past, old)
			}
			active[i] = h
		} else {
			active = append(active, h)
		}
		return h, active, past, nil
	})
}

// changeHolds seals the hold entry change makes of the active and released holds as the latest
// hold entry has them. The entry follows that latest one (chainAt): if a writer of a shared
// ledger sealed another hold entry in between, the append is refused (errChainMoved) and the
// change is made again on the newer sets.
func (l *Ledger) changeHolds(ctx context.Context, change func(active, past []Hold) (Hold, []Hold, []Hold, error)) (uint64, error) {
	l.holds.mu.Lock()
	defer l.holds.mu.Unlock()
	var i uint64
	err := afterLatestHold(ctx, func() error {
		active, past, head, err := l.holdSets(ctx)
		if err != nil {
			return err
		}
		h, active, past, err := change(active, past)
		if err != nil {
			return err
		}
		i, err = l.appendHold(ctx, h, active, past, head)
		return err
	})
	return i, err
}

// afterLatestHold runs try, which reads the latest hold entry and seals an entry that follows
// it (chainAt), again while another writer's hold entry comes first (errChainMoved), backing
// off at random, up to maxChainRetries times.
func afterLatestHold(ctx context.Context, try func() error) error {
	for attempt := 0; ; attempt++ {
		err := try()
		if !errors.Is(err, errChainMoved) || attempt == maxChainRetries {
			return err
		}
		if err := backOff(ctx, attempt); err != nil {
			return err
		}
	}
}

// ReleaseHold seals the release of a hold placed earlier.
//
// With a blob store that locks objects (an ObjectLocker), PlaceHold and ReleaseHold then set
// or clear the storage's legal hold on the attachments of the scopes the hold covers (see
// ApplyLocks). The entry is sealed first: when the storage fails, the hold is in force in the
// ledger all the same (its index is returned) and the error wraps ErrLocksPending; ApplyLocks
// or the next ApplyRetention finishes the job.
func (l *Ledger) ReleaseHold(ctx context.Context, id, by, reason string) (uint64, error) {
	if err := l.holds.lockLocks(ctx); err != nil {
		return 0, err
	}
	defer l.holds.unlockLocks()
	i, err := l.releaseHold(ctx, id, by, reason)
	if err != nil {
		return i, err
	}
	return i, l.lockHeldBlobs(ctx)
}

// releaseHold seals the entry of ReleaseHold.
func (l *Ledger) releaseHold(ctx context.Context, id, by, reason string) (uint64, error) {
	return l.changeHolds(ctx, func(active, past []Hold) (Hold, []Hold, []Hold, error) {
		i := slices.IndexFunc(active, func(h Hold) bool { return h.ID == id })
		if i < 0 {
			return Hold{}, nil, nil, fmt.Errorf("%w: no active hold %q", ErrNotFound, id)
		}
		h := active[i]
		h.Released, h.By, h.Reason, h.From = true, by, reason, l.opts.Now().UTC()
		return h, slices.Delete(active, i, i+1), addPast(past, h), nil
	})
}

// addPast adds released hold h to past, replacing an earlier release of the same coverage.
func addPast(past []Hold, h Hold) []Hold {
	past = slices.DeleteFunc(past, func(p Hold) bool { return p.Tenant == h.Tenant && p.Conversation == h.Conversation })
	return append(past, h)
}

// appendHold seals a hold entry on the chain, after the hold entry head (-1: the chain's first).
// The caller holds l.holds.mu.
func (l *Ledger) appendHold(ctx context.Context, h Hold, active, past []Hold, head int64) (uint64, error) {
	if active == nil {
		active = []Hold{}
	}
	body := holdEntry{Hold: h, Active: active, Past: past}
	r := &request{kind: seal.KindHold, time: l.opts.Now().UTC(), conv: holdChain, after: &chainAt{holdChain, head}}
	rc, err := l.submit(ctx, r, 512+256*(len(active)+len(past)), jsonOf(body))
	return rc.Index, err
}

// maxChainRetries bounds how often a hold or shred entry is made again because another writer
// sealed a hold entry first; backOff spaces the tries, at random, so that writers racing for
// the chain do not keep colliding.
const maxChainRetries = 32

// backOff waits a random while, longer after each attempt (up to some 100 ms), or until ctx ends.
func backOff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(mrand.Int64N(int64(min(attempt+1, 20)) * int64(5*time.Millisecond))))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
	active, _, _, err := l.holdSets(ctx)
	return active, err
}

// holdSets returns the active holds and the released ones (Past; see holdEntry), from the
// latest chained hold entry or, while the chain is empty, from the unchained hold entries of
// earlier versions, and the index of that entry (head; -1 while the chain is empty), which the
// next hold or shred entry names as the one it follows (chainAt). The caller holds l.holds.mu;
// the results are the caller's.
func (l *Ledger) holdSets(ctx context.Context) (active, past []Hold, head int64, err error) {
	i, ok, err := l.idx.lastInConversation(ctx, holdChain)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("ledger: finding the latest hold entry: %w", err)
	}
	if !ok {
		active, past, err := l.unchainedHolds(ctx)
		return active, past, -1, err
	}
	e, err := store.ReadEntry(ctx, l.st, i)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("ledger: reading hold entry %d: %w", i, err)
	}
	d, err := Decode(e)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("ledger: hold entry %d: %w", i, err)
	}
	if d.Leaf.Kind != seal.KindHold || d.Leaf.Conversation != holdChain {
		return nil, nil, 0, fmt.Errorf("%w: the latest entry of the hold chain, %d, is no hold entry", store.ErrCorrupt, i)
	}
	var he holdEntry
	if err := json.Unmarshal(d.Body, &he); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: hold entry %d: %v", store.ErrCorrupt, i, err)
	}
	return slices.Clone(he.Active), slices.Clone(he.Past), int64(i), nil
}

// unchainedHolds returns the holds left active, and those released, by the hold entries that
// earlier versions sealed outside the chain, reading them at its first call.
func (l *Ledger) unchainedHolds(ctx context.Context) (active, past []Hold, err error) {
	hl := &l.holds
	if !hl.scanned {
		if err := l.scanUnchainedHolds(ctx); err != nil {
			return nil, nil, err
		}
	}
	out := make([]Hold, 0, len(hl.order))
	for _, id := range hl.order {
		out = append(out, hl.active[id])
	}
	return out, slices.Clone(hl.released), nil
}

func (l *Ledger) scanUnchainedHolds(ctx context.Context) error {
	hl := &l.holds
	active, order, released := map[string]Hold{}, []string(nil), []Hold(nil)
	for e, err := range l.st.Entries(ctx, 0, l.Size()) {
		if err != nil {
			return fmt.Errorf("ledger: reading holds: %w", err)
		}
		if k, err := seal.LeafKind(e.Leaf); err != nil || k != seal.KindHold {
			continue // a malformed leaf is Verify's to report
		}
		d, err := Decode(e)
		if err != nil {
			return err
		}
		var h Hold
		if err := json.Unmarshal(d.Body, &h); err != nil {
			return fmt.Errorf("ledger: hold entry %d: %w", e.Index, err)
		}
		if h.Released {
			if was, ok := active[h.ID]; ok {
				was.Released = true
				released = addPast(released, was)
			}
			delete(active, h.ID)
			order = slices.DeleteFunc(order, func(id string) bool { return id == h.ID })
			continue
		}
		if _, ok := active[h.ID]; !ok {
			order = append(order, h.ID)
		}
		active[h.ID] = h
	}
	hl.active, hl.order, hl.released, hl.scanned = active, order, released, true
	return nil
}

// ApplyOptions tune ApplyRetention.
type ApplyOptions struct {
	Now       time.Time // the time to judge expiry by; default the ledger's clock
	DryRun    bool      // list what would go, destroy nothing, append nothing
	Authority string    // who authorized this run; required unless DryRun
}

// Shred describes a data key that retention destroyed (or, in a dry run, would destroy). It is
// the body of the shred entry.
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
	// Resumed is set for a shred whose entry another run sealed (an earlier, interrupted one,
	// or one in another writer of a shared ledger), and whose destructions this run finished.
	Resumed bool `json:"-"`
}

// ErrCannotRetireKEK is returned by ApplyRetention, before it destroys anything, when the
// ledger's keyring is no seal.KEKRetirer: destroyed keys would survive, unwrappable, in every
// copy of the vault (backups, snapshots, disk blocks) for as long as their KEK lives.
var ErrCannotRetireKEK = errors.New("ledger: shredding needs a keyring that can retire key-encryption keys (seal.KEKRetirer)")

// orphanRule names the rule of a shred entry for an attachment whose every referencing scope
// was shredded without it (by an earlier version, interrupted).
const orphanRule = "attachment of shredded scopes"

// ApplyRetention destroys the data keys of every scope that has expired under p and that no
// active legal hold covers, with the keys of the attachments only they referenced, and seals a
// shred entry for each (which key, which rule, when, on whose authority, which attachments).
// Entries are never rewritten: proofs and Verify stay valid; reading shredded content returns
// ErrShredded. It needs a keyring that retires KEKs (ErrCannotRetireKEK otherwise, unless
// DryRun); retention runs one at a time.
//
// Each key goes in four durable steps: its metadata is marked "shredding" with the attachments
// it takes along (from then on nothing new is encrypted under it, and its expiry is checked
// again against the kinds it protects now), and so is each of those attachments' keys, while
// none of its scopes is live but this one (from then on no record ties it to another scope; one
// tied first stays out); the active holds are read and, unless one covers
// the scope, the shred entry is sealed, both under the lock that PlaceHold takes, so that a
// hold sealed before the shred entry always wins (and clears the mark); the attachments' keys
// are destroyed, then the scope's key. A run that stops part way is finished by the next one,
// which first completes every marked key whose shred entry is sealed (destroying all the entry
// names) and clears the marks of the others (the new run decides again).
//
// When anything was destroyed (by this run or one it finishes), the run ends by retiring the
// KEKs that wrapped destroyed keys (see Ledger.RetireKEKs), so that copies of the vault that
// the ledger cannot reach no longer unwrap them. That step too is finished by the next run if
// it is interrupted.
//
// With a blob store that locks objects (an ObjectLocker), a run that is not a dry run ends with
// ApplyLocks(ctx, &p): the attachments of the live scopes are locked until the end of their
// scopes' retention under p, and held while a hold covers them. When that last step fails, the
// shreds are returned with an error that wraps ErrLocksPending.
func (l *Ledger) ApplyRetention(ctx context.Context, p RetentionPolicy, opts ApplyOptions) ([]Shred, error) {
	if l.dk == nil {
		return nil, errors.New("ledger: retention by shredding needs an encrypted ledger")
	}
	if !opts.DryRun && opts.Authority == "" {
		return nil, errors.New("ledger: ApplyOptions.Authority is required")
	}
	ring, canRetire := l.dk.enc.Keyring.(seal.KEKRetirer)
	if !opts.DryRun && !canRetire {
		return nil, fmt.Errorf("%w: %T cannot", ErrCannotRetireKEK, l.dk.enc.Keyring)
	}
	now := opts.Now
	if now.IsZero() {
		now = l.opts.Now()
	}
	now = now.UTC()
	l.holds.runs.Lock()
	defer l.holds.runs.Unlock()

	var out []Shred
	if !opts.DryRun {
		resumed, err := l.resumeShreds(ctx)
		out = append(out, resumed...)
		if err != nil {
			return out, err
		}
	}
	inv, err := l.dk.inventory(ctx)
	if err != nil {
		return out, err
	}
	holds, err := l.Holds(ctx)
	if err != nil {
		return out, err
	}
	due, err := inv.due(&p, now, holds, opts.Authority)
	if err != nil {
		return out, err
	}
	if opts.DryRun {
		gone := maps.Clone(inv.gone)
		for k := range due {
			due[k].Blobs = inv.blobsGoingWith(due[k].KeyID, gone)
			gone[due[k].KeyID] = true
		}
		return due, nil
	}
	run := rand.Text() // names this run's shredding marks
	for _, s := range due {
		done, err := l.shred(ctx, inv, &p, s, run)
		if err != nil {
			return out, err
		}
		if done != nil {
			out = append(out, *done)
		}
	}
	if _, err := l.dk.retireKEKs(ctx, ring, false); err != nil {
		return out, fmt.Errorf("ledger: shredded %d keys, then retiring their KEK failed (the next run finishes it): %w", len(out), err)
	}
	if _, ok := l.objectLocker(); ok {
		if _, err := l.ApplyLocks(ctx, &p); err != nil {
			return out, err
		}
	}
	return out, nil
}

// keyInventory is what retention needs to know of the vault's keys.
type keyInventory struct {
	scopes  []listedKey         // live scope keys
	blobs   map[string][]string // live blob key -> the scope keys that reference it
	addrs   map[string]string   // live blob key -> the hex SHA-256 of its stored ciphertext
	byScope map[string][]string // scope key -> the live blob keys it references, sorted
	gone    map[string]bool     // destroyed keys
}

type listedKey struct {
	id    string
	scope keyScope
}

// inventory lists the vault.
func (c *keyCache) inventory(ctx context.Context) (*keyInventory, error) {
	inv := &keyInventory{blobs: map[string][]string{}, addrs: map[string]string{}, byScope: map[string][]string{}, gone: map[string]bool{}}
	for wk, err := range c.enc.Vault.Keys(ctx) {
		if err != nil {
			return nil, fmt.Errorf("ledger: listing data keys: %w", err)
		}
		if wk.Destroyed {
			inv.gone[wk.ID] = true // a tombstone's metadata may be empty (earlier versions)
			continue
		}
		var sc keyScope
		if err := json.Unmarshal(wk.Meta, &sc); err != nil {
			return nil, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, wk.ID, err)
		}
		switch {
		case sc.Blob != "":
			inv.blobs[wk.ID] = sc.Scopes
			inv.addrs[wk.ID] = sc.Blob
			for _, scope := range sc.Scopes {
				inv.byScope[scope] = append(inv.byScope[scope], wk.ID) // Keys yields ids in order
			}
		case sc.State != "":
			// local state (a journal, an index) forgets shredded content itself
		default:
			inv.scopes = append(inv.scopes, listedKey{wk.ID, sc})
		}
	}
	return inv, nil
}

// due lists the keys to shred, in key id order: expired unheld scopes, and attachments whose
// every referencing scope is gone.
func (inv *keyInventory) due(p *RetentionPolicy, now time.Time, holds []Hold, authority string) ([]Shred, error) {
	var due []Shred
	for _, k := range inv.scopes {
		s, ok, err := expired(p, k.id, &k.scope, now)
		if err != nil {
			return nil, err
		}
		if !ok || slices.ContainsFunc(holds, func(h Hold) bool { return h.covers(&k.scope) }) {
			continue // holds are checked again before each shred entry is sealed
		}
		s.Authority, s.At = authority, now
		due = append(due, s)
	}
	for id, scopes := range inv.blobs {
		if len(scopes) > 0 && all(scopes, func(s string) bool { return inv.gone[s] }) {
			due = append(due, Shred{KeyID: id, Rule: orphanRule, ExpiredAt: now, Authority: authority, At: now})
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].KeyID < due[j].KeyID })
	return due, nil
}

// expired reports whether the scope key id, with scope sc, has expired under p at now, and
// describes its shred.
func expired(p *RetentionPolicy, id string, sc *keyScope, now time.Time) (Shred, bool, error) {
	month, err := time.Parse("2006-01", sc.Month)
	if err != nil {
		return Shred{}, false, fmt.Errorf("%w: data key %s has month %q", store.ErrCorrupt, id, sc.Month)
	}
	rule, expires, ok := p.expiry(sc, month.AddDate(0, 1, 0))
	if !ok || expires.After(now) {
		return Shred{}, false, nil
	}
	return Shred{KeyID: id, Tenant: sc.Tenant, Conversation: sc.Conversation, Month: sc.Month, Rule: rule.Name, ExpiredAt: expires}, true, nil
}

// blobsGoingWith returns the attachments that go with scope key id: those it references and
// whose other referencing scopes are all gone. An attachment goes with the last of its scopes.
func (inv *keyInventory) blobsGoingWith(id string, gone map[string]bool) []string {
	var out []string
	for _, b := range inv.byScope[id] {
		if takesBlob(inv.blobs[b], id, gone) {
			out = append(out, b)
		}
	}
	return out
}

func takesBlob(scopes []string, id string, gone map[string]bool) bool {
	return slices.Contains(scopes, id) && all(scopes, func(s string) bool { return s == id || gone[s] })
}

// shred takes one due key through its four steps (mark, check holds and seal, destroy the
// attachments, destroy the key). It returns nil, and leaves the key unmarked, when the key is
// no longer due (its kinds changed, it was destroyed) or a hold now covers it.
func (l *Ledger) shred(ctx context.Context, inv *keyInventory, p *RetentionPolicy, s Shred, run string) (*Shred, error) {
	// 1. Mark, checking while holding the key's slot in the cache (and tieMu, so that no
	// attachment is tied meanwhile) that the key is still due with the kinds it protects now,
	// and choosing the attachments that go with it from their current scopes.
	marked, err := l.dk.mark(ctx, s.KeyID, run, func(sc *keyScope) ([]string, bool, error) {
		if s.Rule == orphanRule {
			return nil, len(sc.Scopes) > 0 && all(sc.Scopes, func(x string) bool { return inv.gone[x] }), nil
		}
		again, ok, err := expired(p, s.KeyID, sc, s.At)
		if err != nil || !ok {
			return nil, false, err
		}
		s.Rule, s.ExpiredAt = again.Rule, again.ExpiredAt
		var blobs []string
		for _, b := range inv.byScope[s.KeyID] {
			bs, err := l.dk.readScope(ctx, b)
			if errors.Is(err, store.ErrDestroyed) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			if takesBlob(bs.Scopes, s.KeyID, inv.gone) {
				blobs = append(blobs, b)
			}
		}
		return blobs, true, nil
	})
	if err != nil || marked == nil {
		return nil, err
	}
	// The attachments chosen are marked too: from then on no record ties one to another scope,
	// and one tied meanwhile (by another writer of a shared vault) stays out of the shred.
	s.Blobs, err = l.dk.markBlobs(ctx, s.KeyID, run, marked.Blobs, inv.gone)
	if err != nil {
		return nil, err // the marks stay; the next run clears them (no entry was sealed)
	}
	// 2. Check the holds and seal the shred entry, under the holds' lock.
	sealed, err := l.sealShred(ctx, &s)
	if err != nil {
		return nil, err // the mark stays; the next run clears it (no entry was sealed)
	}
	if !sealed {
		return nil, l.dk.unmark(ctx, s.KeyID, run)
	}
	// 3 and 4. Destroy the attachments, then the key.
	if err := l.destroyShredded(ctx, &s); err != nil {
		return nil, err
	}
	for _, id := range append([]string{s.KeyID}, s.Blobs...) {
		inv.gone[id] = true
	}
	l.log.Info("ledger: shredded", "key", s.KeyID, "rule", s.Rule, "blobs", len(s.Blobs), "entry", s.Index)
	return &s, nil
}

// destroyShredded destroys every key a sealed shred entry names: the attachments first, the
// scope's key last (whose mark keeps the job findable until then).
func (l *Ledger) destroyShredded(ctx context.Context, s *Shred) error {
	for _, id := range append(slices.Clone(s.Blobs), s.KeyID) {
		if id != s.KeyID {
			if kept, err := l.keptLive(ctx, id, s.KeyID, s.Index); err != nil || kept {
				if err != nil {
					return fmt.Errorf("ledger: checking %s, named by shred entry %d (the next run finishes it): %w", id, s.Index, err)
				}
				continue
			}
		}
		if err := l.dk.enc.Vault.DestroyKey(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("ledger: destroying %s, named by shred entry %d (the next run finishes it): %w", id, s.Index, err)
		}
		l.dk.forget(id)
	}
	return nil
}

// keptLive reports whether the attachment key id, named by the shred entry at index of scope
// key scope, is tied to a live scope by now (its mark was cleared under it), and logs it: the
// entry names more than goes, and the live conversation keeps it.
func (l *Ledger) keptLive(ctx context.Context, id, scope string, index uint64) (bool, error) {
	live, err := l.dk.liveScope(ctx, id, scope)
	if err != nil || live == "" {
		return false, err
	}
	l.log.Error("ledger: an attachment named by a shred entry is tied to a live scope: kept", "key", id, "entry", index, "live", live)
	return true, nil
}

// resumeShreds finishes what interrupted runs left: every key marked "shredding" whose shred
// entry is sealed has everything the entry names destroyed; the marks of the others are
// cleared (in a shared ledger, those older than staleMark: a younger one may be another
// writer's run, between marking and sealing). Attachments that an earlier version left behind when it shredded their last scope
// are destroyed when a sealed shred entry names them.
func (l *Ledger) resumeShreds(ctx context.Context) ([]Shred, error) {
	var out []Shred
	var orphans []listedKey
	gone := map[string]bool{}
	for wk, err := range l.dk.enc.Vault.Keys(ctx) {
		if err != nil {
			return out, fmt.Errorf("ledger: listing data keys: %w", err)
		}
		if wk.Destroyed {
			gone[wk.ID] = true
			continue
		}
		var sc keyScope
		if err := json.Unmarshal(wk.Meta, &sc); err != nil {
			return out, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, wk.ID, err)
		}
		if sc.Blob != "" && len(sc.Scopes) > 0 {
			orphans = append(orphans, listedKey{wk.ID, sc})
		}
		if sc.Shredding == nil {
			continue
		}
		if with := sc.Shredding.With; with != "" {
			// An attachment marked to go with a scope's shred: if that shred's entry is sealed
			// and names it, it is destroyed with the scope (below, or as an orphan); else the
			// mark is cleared as a scope's is.
			s, err := l.sealedShred(ctx, with)
			if err != nil {
				return out, err
			}
			if s != nil && slices.Contains(s.Blobs, wk.ID) || l.shared != nil && time.Since(sc.Shredding.At) < staleMark {
				continue
			}
			if err := l.dk.unmark(ctx, wk.ID, sc.Shredding.Run); err != nil { // the mark seen, and no other
				return out, err
			}
			continue
		}
		s, err := l.sealedShred(ctx, wk.ID)
		if err != nil {
			return out, err
		}
		if s == nil {
			if l.shared != nil && time.Since(sc.Shredding.At) < staleMark {
				continue // another writer's run, still going (a mark from before At: stale)
			}
			if err := l.dk.unmark(ctx, wk.ID, sc.Shredding.Run); err != nil { // the mark seen, and no other
				return out, err
			}
			continue
		}
		if err := l.destroyShredded(ctx, s); err != nil {
			return out, err
		}
		for _, id := range append([]string{s.KeyID}, s.Blobs...) {
			gone[id] = true
		}
		l.log.Info("ledger: finished an interrupted shred", "key", s.KeyID, "blobs", len(s.Blobs), "entry", s.Index)
		out = append(out, *s)
	}
	for _, b := range orphans {
		if gone[b.id] || !all(b.scope.Scopes, func(s string) bool { return gone[s] }) {
			continue
		}
		for _, scope := range b.scope.Scopes {
			s, err := l.sealedShred(ctx, scope)
			if err != nil {
				return out, err
			}
			if s == nil || !slices.Contains(s.Blobs, b.id) {
				continue
			}
			if kept, err := l.keptLive(ctx, b.id, scope, s.Index); err != nil || kept {
				if err != nil {
					return out, err
				}
				break
			}
			if err := l.dk.enc.Vault.DestroyKey(ctx, b.id); err != nil {
				return out, fmt.Errorf("ledger: destroying %s, named by shred entry %d: %w", b.id, s.Index, err)
			}
			l.dk.forget(b.id)
			gone[b.id] = true
			l.log.Info("ledger: finished an interrupted shred", "key", s.KeyID, "blob", b.id, "entry", s.Index)
			out = append(out, *s)
			break
		}
	}
	return out, nil
}

// sealedShred returns the shred entry sealed for key id, or nil if there is none.
func (l *Ledger) sealedShred(ctx context.Context, id string) (*Shred, error) {
	i, ok, err := l.idx.lookup(ctx, shredIdentity(id))
	if err != nil || !ok {
		return nil, err
	}
	e, err := store.ReadEntry(ctx, l.st, i)
	if err != nil {
		return nil, fmt.Errorf("ledger: reading shred entry %d: %w", i, err)
	}
	d, err := Decode(e)
	if err != nil {
		return nil, fmt.Errorf("ledger: shred entry %d: %w", i, err)
	}
	var s Shred
	if err := json.Unmarshal(d.Body, &s); err != nil || d.Leaf.Kind != seal.KindShred || s.KeyID != id {
		return nil, fmt.Errorf("%w: entry %d is not the shred entry of %s", store.ErrCorrupt, i, id)
	}
	s.Index, s.Resumed = i, true
	return &s, nil
}

// shredIdentity is the identity of a key's shred entry: one per key, so that sealing it again
// (a run finishing another) is a duplicate.
func shredIdentity(keyID string) seal.Hash {
	return seal.IdentityDigest("shred", "commseal", "", keyID)
}

// sealShred seals the shred entry s unless an active hold covers its scope, and reports
// whether it did. Holds are read and the entry sealed under l.holds.mu, so a hold sealed
// before the shred entry always stops it.
func (l *Ledger) sealShred(ctx context.Context, s *Shred) (bool, error) {
	l.holds.mu.Lock()
	defer l.holds.mu.Unlock()
	sealed := false
	err := afterLatestHold(ctx, func() error {
		// A shred entry another run (another writer's) sealed already stands, whatever hold
		// came after it: its run may be destroying what it names, so this one finishes it
		// rather than clear the marks that keep those attachments from being tied again.
		if done, err := l.sealedShred(ctx, s.KeyID); err != nil || done != nil {
			if done != nil {
				*s, sealed = *done, true
			}
			return err
		}
		holds, _, head, err := l.holdSets(ctx)
		if err != nil {
			return err
		}
		sc := keyScope{Tenant: s.Tenant, Conversation: s.Conversation}
		if i := slices.IndexFunc(holds, func(h Hold) bool { return h.covers(&sc) }); i >= 0 {
			l.log.Info("ledger: shred stopped by a legal hold", "key", s.KeyID, "hold", holds[i].ID)
			return nil
		}
		// The shred entry follows the hold entry whose holds it checked: a hold another
		// writer seals in between refuses it, and the holds are checked again.
		r := &request{kind: seal.KindShred, time: s.At, identity: shredIdentity(s.KeyID), after: &chainAt{holdChain, head}}
		rc, err := l.submit(ctx, r, 512, jsonOf(s))
		if err != nil {
			return fmt.Errorf("ledger: sealing shred of %s: %w", s.KeyID, err)
		}
		if rc.Duplicate {
			// Another run (another writer's) sealed this key's shred entry first: what is
			// destroyed is what that entry names, not what this run chose.
			if err := l.takeSealedShred(ctx, s); err != nil {
				return err
			}
		}
		s.Index, sealed = rc.Index, true // (the same index as the sealed entry's)
		return nil
	})
	return sealed, err
}

// takeSealedShred replaces s with the shred entry sealed for its key by another run (Resumed
// set).
func (l *Ledger) takeSealedShred(ctx context.Context, s *Shred) error {
	sealed, err := l.sealedShred(ctx, s.KeyID)
	if err == nil && sealed == nil {
		err = fmt.Errorf("%w: the shred entry of %s was reported sealed but is not found", store.ErrCorrupt, s.KeyID)
	}
	if err != nil {
		return err
	}
	*s = *sealed
	return nil
}

func all[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// ShredEntry returns the shred entry sealed when retention destroyed data key keyID (its Index
// set), or nil if that key was not shredded by retention. An export cites it beside the
// entries the key protected, so that whoever checks the bundle sees why their content is gone.
func (l *Ledger) ShredEntry(ctx context.Context, keyID string) (*Shred, error) {
	s, err := l.sealedShred(ctx, keyID)
	if s != nil {
		s.Resumed = false
	}
	return s, err
}
