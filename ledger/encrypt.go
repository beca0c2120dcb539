package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
)

// Encryption turns on envelope encryption: every message and record payload (content,
// metadata, raw source bytes) and every blob is encrypted with XChaCha20-Poly1305 under a data
// key; data keys are wrapped by the Keyring and kept in the Vault. A message's data key is
// scoped to its tenant, conversation and month (UTC, of the time it was sent), so shredding one
// scope never touches another. The leaf carries the key id, the hash of the ciphertext and the
// salted commitment to the plaintext; the salt is inside the ciphertext, so it goes with the key.
//
// A record about a message (capture.Record.About) is encrypted under the message's data key,
// so that it goes when the message goes. Appending to a scope that was already shredded (a
// backfilled message from an expired month) fails with ErrShredded: its key cannot come back.
//
// Entries that are the ledger's own audit trail (access, hold, shred) are not encrypted.
type Encryption struct {
	Keyring seal.Keyring
	Vault   store.KeyVault
	// CachedKeys is how many unwrapped data keys stay in memory (default 65,536, some tens of
	// megabytes). A reader of a ledger with more scopes than that (a firm of 20,000
	// conversations over 18 months has 360,000) reloads keys from the vault as it goes; a
	// process that reads such a ledger whole, or runs for months, may hold them all.
	CachedKeys int
}

// ErrShredded is returned when reading content whose data key was destroyed. The entry's leaf,
// commitment and proofs remain; the content is gone.
var ErrShredded = errors.New("ledger: content shredded (its data key was destroyed)")

// keyScope is what a data key covers; it is kept as the key's metadata.
type keyScope struct {
	Tenant       string   `json:"tenant"`
	Conversation string   `json:"conversation,omitempty"`
	Month        string   `json:"month"` // YYYY-MM, UTC
	Kinds        []string `json:"kinds,omitempty"`
	Blob         string   `json:"blob,omitempty"`   // for a blob key: the hex SHA-256 of its stored ciphertext
	Scopes       []string `json:"scopes,omitempty"` // for a blob key: the scope keys of the records that reference it
	State        string   `json:"state,omitempty"`  // for a state key: the name of the local state it protects
	// Shredding marks a key that retention is destroying: nothing new is encrypted under it,
	// and a run interrupted after sealing its shred entry is finished by the next one.
	Shredding *shredMark `json:"shredding,omitempty"`
}

// shredMark is what a key marked for shredding records: a scope's key, the attachments' keys
// that go with it; an attachment's key, the scope key it goes with.
type shredMark struct {
	Blobs []string `json:"blobs"`
	// With is set on an attachment's key that goes with the shred of scope key With: while it
	// is, no record ties the attachment to another scope (addBlobScope refuses), so it cannot
	// become a live conversation's between the choice and the destruction.
	With string `json:"with,omitempty"`
	// Run names the retention run that made the mark (or adopted it from one that stopped):
	// only that run, or one that finds the mark stale under the same name, clears it.
	Run string `json:"run,omitempty"`
	// At is when the mark was made (the machine's clock): a shared ledger leaves a mark without
	// a sealed shred entry to the writer that made it until staleMark has passed.
	At time.Time `json:"at,omitzero"`
}

// staleMark is how old a shredding mark without a sealed shred entry must be before a writer
// of a shared ledger takes it for one a crashed run left, and clears it: until then, another
// writer's run may be between marking the key and sealing its shred entry.
const staleMark = 10 * time.Minute

// scopeKeyID returns the key id of a scope: the month in clear (retention needs it) and a digest
// of tenant and conversation (which leaves must not reveal).
func scopeKeyID(tenant, conversation string, t time.Time) (string, keyScope) {
	month := t.UTC().Format("2006-01")
	d := sha256.Sum256([]byte("commseal/scope/v1\x00" + tenant + "\x00" + conversation))
	return "dk1." + month + "." + hex.EncodeToString(d[:12]), keyScope{Tenant: tenant, Conversation: conversation, Month: month}
}

func blobKeyID(sum [32]byte) string { return "blob1." + hex.EncodeToString(sum[:16]) }

// PrepareMonth makes, ahead of time, the data keys of the month that holds t (UTC) for every
// conversation that has a live key in the month before it. At a month boundary every active
// conversation's first message would otherwise make its key and store it durably at the same
// moment, and capture would wait on all of them at once: with the DingTalk SDK's handler cap,
// pushes beyond it are then left unacknowledged until DingTalk pushes them again. A prepared key
// records the message kind, as the first message would; other kinds add themselves as before.
// A key that exists is left as it is, and so is a conversation whose key is being shredded, so
// calling it again, or from several writers of a shared ledger, makes no key twice. It returns
// how many keys it made. An archiver calls it in the last hour of each month
// (examples/archiver does). It fails without Options.Encryption.
func (l *Ledger) PrepareMonth(ctx context.Context, t time.Time) (int, error) {
	if l.dk == nil {
		return 0, errors.New("ledger: data keys need an encrypted ledger (Options.Encryption)")
	}
	t = t.UTC()
	prev := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	prefix := "dk1." + prev.Format("2006-01") + "." // scopeKeyID's ids of that month, in a run
	var active []keyScope
	for wk, err := range l.dk.enc.Vault.Keys(ctx) {
		if err != nil {
			return 0, fmt.Errorf("ledger: listing data keys: %w", err)
		}
		if !strings.HasPrefix(wk.ID, prefix) {
			if wk.ID > prefix {
				break // Keys yields ids in order: the month's are behind
			}
			continue
		}
		if wk.Destroyed {
			continue
		}
		var sc keyScope
		if err := json.Unmarshal(wk.Meta, &sc); err != nil {
			return 0, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, wk.ID, err)
		}
		if sc.Shredding == nil {
			active = append(active, sc)
		}
	}
	made := 0
	for _, was := range active {
		id, sc := l.dk.keyID(was.Tenant, was.Conversation, t)
		_, err := l.dk.enc.Vault.Key(ctx, id)
		switch {
		case err == nil, errors.Is(err, store.ErrDestroyed):
			continue // made already (or made and shredded: never again)
		case !errors.Is(err, store.ErrNotFound):
			return made, fmt.Errorf("ledger: data key %s: %w", id, err)
		}
		if _, err := l.dk.get(ctx, id, sc, true, seal.KindMessage.String()); err != nil {
			return made, err
		}
		made++
	}
	return made, nil
}

// ErrBadStateName is returned by StateKey for a name that is not 1 to 64 characters of
// lowercase letters, digits and hyphens.
var ErrBadStateName = errors.New("ledger: a state key name is 1 to 64 of a-z, 0-9 and -")

// StateKey returns the data key that protects the named local state a program keeps beside the
// ledger (a media journal, a search index), so that nothing of a message is ever on disk in
// plain. The key is created on first use, wrapped by the keyring and kept in the vault like
// every data key (so KEK rotation rewraps it), and retention never destroys it: the state it
// protects must itself forget what retention shreds. It fails without Options.Encryption.
func (l *Ledger) StateKey(ctx context.Context, name string) ([]byte, error) {
	if l.dk == nil {
		return nil, errors.New("ledger: state keys need an encrypted ledger (Options.Encryption)")
	}
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return nil, fmt.Errorf("%w: %q", ErrBadStateName, name)
	}
	dek, err := l.dk.get(ctx, stateKeyID(name), keyScope{State: name}, true, "")
	if err != nil {
		return nil, err
	}
	return slices.Clone(dek), nil
}

// stateKeyID is the key id of the state key StateKey(name) returns.
func stateKeyID(name string) string { return "state1." + name }

// keyCache holds unwrapped data keys in memory and creates new ones single-flight.
//
// Slots: the vault and keyring work on one key id (loading the key, creating it, recording a new
// kind in its metadata, marking or unmarking it for shredding, tying a blob to a scope, storing
// a blob's key) is done by one goroutine at a time, the one that holds the id's slot (its entry
// in slots); no mutex is held across that work. Callers of the same id wait for the slot and
// then, as a rule, find the key cached: a new key is created once. Callers of different ids
// create or load concurrently, and a key that is cached and serves the caller is returned
// without waiting for any slot. Since only the holder of an id's slot changes its metadata, a
// cached key's scope is the vault's; marking and unmarking drop the key from the cache, so an
// append meanwhile waits for the slot and then reads the mark from the vault.
//
// Locks, in the order they are taken: retireMu makes one KEK retirement at a time; then the slot
// of one key id (no one holds two); tieMu is held while a blob is tied to a scope and while a key
// is marked for shredding, so that the attachments chosen to go with a key gain no scope
// meanwhile; kekMu is held for reading while a new key is wrapped and stored, and for writing
// while KEKs are retired, so that no key is wrapped under a KEK being retired; mu guards keys and
// slots only, and is held for a few map operations, never across vault or keyring work and
// never while waiting. None is held while the ledger's pipeline is waited on.
//
// The cache holds up to limit keys (32 bytes each, with their scope). When it is full, each key
// it adds drops one other, chosen at random (a map's iteration starts at a random entry): a pass
// over more scopes than it holds (a read of the whole ledger, in ledger order) loses one cached
// key per miss, so keys used again soon after (the scopes of the month being read) mostly stay
// cached. (It used to clear itself whole when full, and such a pass then reloaded every key
// from the vault.)
type keyCache struct {
	enc      *Encryption
	retireMu sync.Mutex
	tieMu    sync.Mutex
	kekMu    sync.RWMutex
	mu       sync.RWMutex
	keys     map[string]*cachedKey // values are never changed, only replaced
	slots    map[string]*keySlot   // the held slots
	limit    int

	idMu sync.RWMutex
	ids  map[scopeName]scopeID // memoized scopeKeyID

	// shared is set for a ledger whose vault other processes write too (Options.Shared):
	// another writer's retention may mark a key for shredding without this cache knowing, so
	// an append takes a key from the cache as it is only for a scope that cannot have expired
	// (its month is not over), and for the others first reads its metadata from the vault.
	shared bool
	now    func() time.Time
}

// keyCacheLimit is how many data keys the cache holds: 65,536 keys (32 bytes each, with their
// scope and id) take some tens of megabytes at most.
const keyCacheLimit = 1 << 16

// keySlot is a held slot: done is closed when its holder releases it.
type keySlot struct {
	done chan struct{}
	// stale (guarded by keyCache.mu) is set by forget: the key was destroyed while the holder
	// worked, so what it loaded is not cached.
	stale bool
}

type scopeID struct{ id, month string }

type scopeName struct {
	tenant, conversation string
	year                 int
	month                time.Month
}

// keyID returns scopeKeyID's id and scope, memoized: the digest is on every append's path.
func (c *keyCache) keyID(tenant, conversation string, t time.Time) (string, keyScope) {
	t = t.UTC()
	n := scopeName{tenant, conversation, t.Year(), t.Month()}
	c.idMu.RLock()
	m, ok := c.ids[n]
	c.idMu.RUnlock()
	if ok {
		return m.id, keyScope{Tenant: tenant, Conversation: conversation, Month: m.month}
	}
	id, sc := scopeKeyID(tenant, conversation, t)
	c.idMu.Lock()
	if len(c.ids) >= 1<<16 {
		clear(c.ids)
	}
	c.ids[n] = scopeID{id: id, month: sc.Month}
	c.idMu.Unlock()
	return id, sc
}

type cachedKey struct {
	dek   []byte
	scope keyScope
	// checked is when the vault last said the key is live and not being shredded (Unix
	// nanoseconds, the machine's clock, not Options.Now): a shared ledger's readers trust that
	// for keyRecheck.
	checked atomic.Int64
}

// keyRecheck is how long a shared ledger serves reads with a past month's data key before it
// asks the vault again whether another writer's retention has destroyed it. (Appends ask every
// time: one sealed under a key being destroyed would be lost.)
const keyRecheck = time.Second

// serves reports whether the cached key may be handed out as it is: to a reader (kind ""), or
// to an append of kind if its metadata records the kind and it is not being shredded.
func (ck *cachedKey) serves(kind string) bool {
	return kind == "" || ck.scope.Shredding == nil && slices.Contains(ck.scope.Kinds, kind)
}

func newKeyCache(enc *Encryption) *keyCache {
	limit := keyCacheLimit
	if enc.CachedKeys > 0 {
		limit = enc.CachedKeys
	}
	return &keyCache{enc: enc, keys: map[string]*cachedKey{}, slots: map[string]*keySlot{}, limit: limit, ids: map[scopeName]scopeID{}}
}

// get returns the data key for id, creating it with scope sc when absent and create is set.
// A kind not yet recorded in the key's metadata is added, durably, before the key is returned.
func (c *keyCache) get(ctx context.Context, id string, sc keyScope, create bool, kind string) ([]byte, error) {
	c.mu.RLock()
	ck, ok := c.keys[id]
	c.mu.RUnlock()
	if ok && ck.serves(kind) {
		if !c.shared || ck.scope.Month >= c.now().UTC().Format("2006-01") ||
			kind == "" && time.Now().UnixNano()-ck.checked.Load() < int64(keyRecheck) {
			return ck.dek, nil
		}
		// A past month's key: another writer's retention may have marked or destroyed it.
		// Its metadata says (the cached data key stays: no unwrap).
		cur, err := c.readScope(ctx, id)
		switch {
		case errors.Is(err, store.ErrDestroyed):
			c.forget(id)
			return nil, fmt.Errorf("%w: key %s", ErrShredded, id)
		case err != nil:
			return nil, fmt.Errorf("ledger: data key %s: %w", id, err)
		case cur.Shredding != nil:
			return nil, fmt.Errorf("%w: key %s is being shredded", ErrShredded, id)
		case kind == "" || slices.Contains(cur.Kinds, kind):
			ck.checked.Store(time.Now().UnixNano())
			return ck.dek, nil
		}
		c.drop(id) // a kind to add: the slot's path records it
	}
	f, dek, err := c.acquire(ctx, id, true, kind)
	if f == nil {
		return dek, err
	}
	defer c.release(id, f)
	return c.fill(ctx, f, id, sc, create, kind)
}

// acquire waits until no one holds id's slot, and takes it. With lookup set, it returns instead
// (with a nil slot) the cached key, as soon as one is cached that serves kind.
func (c *keyCache) acquire(ctx context.Context, id string, lookup bool, kind string) (*keySlot, []byte, error) {
	for {
		c.mu.Lock()
		if ck, ok := c.keys[id]; lookup && ok && ck.serves(kind) {
			c.mu.Unlock()
			return nil, ck.dek, nil
		}
		f, busy := c.slots[id]
		if !busy {
			f = &keySlot{done: make(chan struct{})}
			c.slots[id] = f
			c.mu.Unlock()
			return f, nil, nil
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("ledger: waiting for data key %s: %w", id, ctx.Err())
		}
	}
}

// release gives up id's slot f.
func (c *keyCache) release(id string, f *keySlot) {
	c.mu.Lock()
	delete(c.slots, id)
	c.mu.Unlock()
	close(f.done)
}

// fill is get's work, done holding id's slot f: load or create the key, record kind.
func (c *keyCache) fill(ctx context.Context, f *keySlot, id string, sc keyScope, create bool, kind string) ([]byte, error) {
	c.mu.RLock()
	ck := c.keys[id]
	c.mu.RUnlock()
	if ck == nil {
		var err error
		if ck, err = c.load(ctx, id, sc, create, kind); err != nil {
			return nil, err
		}
		c.put(f, id, ck)
	}
	if kind == "" {
		return ck.dek, nil
	}
	if ck.scope.Shredding != nil {
		return nil, fmt.Errorf("%w: key %s is being shredded", ErrShredded, id)
	}
	if !slices.Contains(ck.scope.Kinds, kind) {
		sc, err := c.updateScope(ctx, id, func(sc *keyScope) (bool, error) {
			if sc.Shredding != nil { // marked by another writer of a shared vault
				return false, fmt.Errorf("%w: key %s is being shredded", ErrShredded, id)
			}
			if slices.Contains(sc.Kinds, kind) {
				return false, nil
			}
			sc.Kinds = append(sc.Kinds, kind)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		ck = &cachedKey{dek: ck.dek, scope: sc}
		c.put(f, id, ck)
	}
	return ck.dek, nil
}

// load reads key id from the vault, or creates it with scope sc (and kind) when it is absent and
// create is set. The caller holds id's slot.
func (c *keyCache) load(ctx context.Context, id string, sc keyScope, create bool, kind string) (*cachedKey, error) {
	wk, err := c.enc.Vault.Key(ctx, id)
	switch {
	case errors.Is(err, store.ErrDestroyed):
		return nil, fmt.Errorf("%w: key %s", ErrShredded, id)
	case errors.Is(err, store.ErrNotFound) && create:
		if kind != "" {
			sc.Kinds = []string{kind}
		}
		dek, err := seal.NewDataKey()
		if err != nil {
			return nil, err
		}
		err = c.storeKey(ctx, id, dek, sc)
		if err == nil {
			return &cachedKey{dek: dek, scope: sc}, nil
		}
		clear(dek)
		if !errors.Is(err, store.ErrDuplicate) {
			return nil, err
		}
		// Another writer of a shared vault made the scope's key meanwhile: use it (its kinds
		// are recorded by fill, as for any key read).
		if wk, err = c.enc.Vault.Key(ctx, id); err != nil {
			return nil, fmt.Errorf("ledger: data key %s, made by another writer: %w", id, err)
		}
	case err != nil:
		return nil, fmt.Errorf("ledger: data key %s: %w", id, err)
	}
	dek, err := c.unwrap(ctx, wk)
	if err != nil {
		return nil, err
	}
	ck := &cachedKey{dek: dek}
	if err := json.Unmarshal(wk.Meta, &ck.scope); err != nil {
		return nil, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, id, err)
	}
	return ck, nil
}

// put caches ck as key id, which the holder of slot f loaded or changed, unless forget ran
// meanwhile. A full cache first drops one key at random.
func (c *keyCache) put(f *keySlot, id string, ck *cachedKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.stale {
		return
	}
	ck.checked.Store(time.Now().UnixNano()) // just loaded from the vault, or changed in it
	if _, ok := c.keys[id]; !ok && len(c.keys) >= c.limit {
		for k := range c.keys {
			delete(c.keys, k) // not cleared: a caller may still be using it
			break
		}
	}
	c.keys[id] = ck
}

// drop removes key id from the cache, so that the next get reads it from the vault. The caller
// holds id's slot.
func (c *keyCache) drop(id string) {
	c.mu.Lock()
	delete(c.keys, id)
	c.mu.Unlock()
}

// storeKey wraps a new data key under the keyring's current KEK and stores it with scope sc as
// its metadata (store.ErrDuplicate if the id exists). The caller holds id's slot; kekMu is held
// for reading, so that no key is wrapped under a KEK while that KEK is being retired
// (retireKEKs).
func (c *keyCache) storeKey(ctx context.Context, id string, dek []byte, sc keyScope) error {
	c.kekMu.RLock()
	defer c.kekMu.RUnlock()
	kek, wrapped, err := c.enc.Keyring.Wrap(ctx, id, dek)
	if err != nil {
		return fmt.Errorf("ledger: wrapping data key %s: %w", id, err)
	}
	meta, _ := json.Marshal(sc)
	if err := c.enc.Vault.PutKey(ctx, store.WrappedKey{ID: id, KEK: kek, Wrapped: wrapped, Meta: meta}); err != nil {
		return fmt.Errorf("ledger: storing data key %s: %w", id, err)
	}
	return nil
}

// putKey is storeKey for a caller that does not hold id's slot (a blob's key).
func (c *keyCache) putKey(ctx context.Context, id string, dek []byte, sc keyScope) error {
	f, _, err := c.acquire(ctx, id, false, "")
	if err != nil {
		return err
	}
	defer c.release(id, f)
	return c.storeKey(ctx, id, dek, sc)
}

// unwrap returns a stored key's data key, from the KEK it names.
func (c *keyCache) unwrap(ctx context.Context, wk store.WrappedKey) ([]byte, error) {
	dek, err := c.enc.Keyring.Unwrap(ctx, wk.KEK, wk.ID, wk.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("ledger: data key %s: %w", wk.ID, err)
	}
	return dek, nil
}

// updateScope changes the metadata of key id with change, given it as the vault holds it now,
// and returns it as stored; change reports whether it changed anything. With a vault that
// several processes share (store.MetaUpdater) the read and the write are one atomic step of the
// vault; otherwise they are a read and a write, which the caller serializes in this process by
// holding id's slot (and tieMu where kinds or attachments race with a shredding mark).
func (c *keyCache) updateScope(ctx context.Context, id string, change func(sc *keyScope) (bool, error)) (keyScope, error) {
	var sc keyScope
	apply := func(meta []byte) ([]byte, error) {
		sc = keyScope{}
		if err := json.Unmarshal(meta, &sc); err != nil {
			return nil, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, id, err)
		}
		changed, err := change(&sc)
		if err != nil || !changed {
			return meta, err
		}
		return json.Marshal(sc)
	}
	if u, ok := c.enc.Vault.(store.MetaUpdater); ok {
		if err := u.UpdateMeta(ctx, id, apply); err != nil {
			return sc, fmt.Errorf("ledger: updating data key %s: %w", id, err)
		}
		return sc, nil
	}
	wk, err := c.enc.Vault.Key(ctx, id)
	if err != nil {
		return sc, err
	}
	meta, err := apply(wk.Meta)
	if err != nil || bytes.Equal(meta, wk.Meta) {
		return sc, err
	}
	if err := c.enc.Vault.SetMeta(ctx, id, meta); err != nil {
		return sc, fmt.Errorf("ledger: updating data key %s: %w", id, err)
	}
	return sc, nil
}

// readScope reads a live key's metadata from the vault.
func (c *keyCache) readScope(ctx context.Context, id string) (keyScope, error) {
	var sc keyScope
	wk, err := c.enc.Vault.Key(ctx, id)
	if err != nil {
		return sc, err
	}
	if err := json.Unmarshal(wk.Meta, &sc); err != nil {
		return sc, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, id, err)
	}
	return sc, nil
}

// mark marks key id for shredding, durably, if pick (given its metadata as it is now, holding
// its slot and tieMu, so that no kind or attachment is added meanwhile) says it is still due and
// which attachments go with it. It returns the mark, or nil if the key is no longer due or is
// gone.
func (c *keyCache) mark(ctx context.Context, id, run string, pick func(sc *keyScope) ([]string, bool, error)) (*shredMark, error) {
	f, _, err := c.acquire(ctx, id, false, "")
	if err != nil {
		return nil, err
	}
	defer c.release(id, f)
	c.tieMu.Lock()
	defer c.tieMu.Unlock()
	c.drop(id) // appends wait for the slot from here on, then see the mark
	// pick reads the vault (the attachments' keys), so it runs outside the atomic update; the
	// update marks the key only if its kinds and attachments are still what pick saw (another
	// writer of a shared vault may add to them meanwhile), and the decision is made again if not.
	for attempt := 0; ; attempt++ {
		sc, err := c.readScope(ctx, id)
		if errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("ledger: data key %s: %w", id, err)
		}
		seen := sc
		seen.Kinds, seen.Scopes = slices.Clone(sc.Kinds), slices.Clone(sc.Scopes)
		blobs, ok, err := pick(&sc)
		if err != nil || !ok {
			return nil, err
		}
		moved := false
		sc, err = c.updateScope(ctx, id, func(cur *keyScope) (bool, error) {
			if !slices.Equal(cur.Kinds, seen.Kinds) || !slices.Equal(cur.Scopes, seen.Scopes) {
				moved = true
				return false, nil
			}
			cur.Shredding = &shredMark{Blobs: blobs, At: time.Now().UTC(), Run: run}
			return true, nil
		})
		switch {
		case errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, err
		case !moved:
			return sc.Shredding, nil
		case attempt == 2:
			return nil, fmt.Errorf("ledger: data key %s: its entries keep changing while it is being marked for shredding", id)
		}
	}
}

// markBlobs marks the attachments' keys blobs to go with the shred of scope key scopeID
// (shredMark.With), each only if it still goes with it: none of its scopes is live but
// scopeID's (gone lists the destroyed ones), each mark named run. It returns those it marked,
// or found marked so already (adopted, under run): the attachments the shred entry may name. Each mark is one atomic update of the
// vault, and addBlobScope's tie another, so of a tie and a mark that race, across processes,
// the first wins: a blob tied first is not marked, one marked first is not tied.
func (c *keyCache) markBlobs(ctx context.Context, scopeID, run string, blobs []string, gone map[string]bool) ([]string, error) {
	var kept []string
	for _, id := range blobs {
		marked := false
		err := c.withTie(ctx, id, func() error {
			_, err := c.updateScope(ctx, id, func(sc *keyScope) (bool, error) {
				switch {
				case sc.Shredding != nil && sc.Shredding.With != scopeID:
					return false, nil // another shred's
				case sc.Shredding == nil && !takesBlob(sc.Scopes, scopeID, gone):
					return false, nil // tied to a live scope since it was chosen: it stays
				}
				// Marked now, or adopted from an earlier try of this shred: renamed and dated
				// anew, so that no run clears it for stale under the old name.
				sc.Shredding, marked = &shredMark{With: scopeID, At: time.Now().UTC(), Run: run}, true
				return true, nil
			})
			return err
		})
		switch {
		case errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		case marked:
			kept = append(kept, id)
		}
	}
	return kept, nil
}

// liveScope returns a live scope key, other than scopeID, that the attachment key id is tied
// to, or "" if it has none (or is gone itself): the check made before an attachment is
// destroyed with scopeID's shred.
func (c *keyCache) liveScope(ctx context.Context, id, scopeID string) (string, error) {
	sc, err := c.readScope(ctx, id)
	if errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, s := range sc.Scopes {
		if s == scopeID {
			continue
		}
		_, err := c.readScope(ctx, s)
		switch {
		case errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound):
		case err != nil:
			return "", err
		default:
			return s, nil
		}
	}
	return "", nil
}

// withTie runs f holding key id's slot and tieMu: the in-process order of ties and marks (a
// vault that several processes share orders them itself, store.MetaUpdater).
func (c *keyCache) withTie(ctx context.Context, id string, f func() error) error {
	slot, _, err := c.acquire(ctx, id, false, "")
	if err != nil {
		return err
	}
	defer c.release(id, slot)
	c.tieMu.Lock()
	defer c.tieMu.Unlock()
	c.drop(id)
	return f()
}

// unmark clears the shredding mark of a key that a hold (or a new run) kept, if run made it
// (a run clears its own marks, or those it found stale under that name), and, for a scope's key,
// first the marks of the attachments' keys that run made to go with it: a run that stops part
// way leaves the scope's mark, which the next run finds and clears again. A mark that another
// run has made or adopted since is left alone.
func (c *keyCache) unmark(ctx context.Context, id, run string) error {
	sc, err := c.readScope(ctx, id)
	if errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || sc.Shredding == nil || sc.Shredding.Run != run {
		return err
	}
	ours := func(m *shredMark, with string) bool { return m != nil && m.With == with && m.Run == run }
	for _, b := range sc.Shredding.Blobs {
		err := c.withTie(ctx, b, func() error {
			_, err := c.updateScope(ctx, b, func(bs *keyScope) (bool, error) {
				if !ours(bs.Shredding, id) {
					return false, nil
				}
				bs.Shredding = nil
				return true, nil
			})
			return err
		})
		if err != nil && !errors.Is(err, store.ErrDestroyed) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	f, _, err := c.acquire(ctx, id, false, "")
	if err != nil {
		return err
	}
	defer c.release(id, f)
	c.drop(id)
	_, err = c.updateScope(ctx, id, func(cur *keyScope) (bool, error) {
		if !ours(cur.Shredding, sc.Shredding.With) {
			return false, nil
		}
		cur.Shredding = nil
		return true, nil
	})
	if errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// forget drops a key from the cache (after it is destroyed), and keeps a get that is loading
// it from caching what it read before.
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ck, ok := c.keys[id]; ok {
		clear(ck.dek)
		delete(c.keys, id)
	}
	if f, ok := c.slots[id]; ok {
		f.stale = true
	}
}

// addBlobScope records that a record under scope key scopeID references blob sum.
func (c *keyCache) addBlobScope(ctx context.Context, sum [32]byte, scopeID string) error {
	id := blobKeyID(sum)
	f, _, err := c.acquire(ctx, id, false, "")
	if err != nil {
		return err
	}
	defer c.release(id, f)
	c.tieMu.Lock()
	defer c.tieMu.Unlock()
	_, err = c.updateScope(ctx, id, func(sc *keyScope) (bool, error) {
		if slices.Contains(sc.Scopes, scopeID) {
			return false, nil
		}
		if sc.Shredding != nil {
			return false, fmt.Errorf("%w: attachment key %s goes with the shred of %s", ErrShredded, id, sc.Shredding.With)
		}
		sc.Scopes = append(sc.Scopes, scopeID)
		return true, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a blob this ledger stored
	}
	return err
}

// encrypt seals r's envelope under the data key of its scope.
func (l *Ledger) encrypt(ctx context.Context, rnd io.Reader, r *request, env []byte, tenant, conversation string, t time.Time, kind string) ([]byte, error) {
	id, sc, create := r.keyID, keyScope{}, false // a key chosen by the caller already exists
	if id == "" {
		id, sc = l.dk.keyID(tenant, conversation, t)
		create = true
	}
	dek, err := l.dk.get(ctx, id, sc, create, kind)
	if err != nil {
		return nil, err
	}
	ct, err := seal.EncryptPayload(rnd, dek, id, env)
	if err != nil {
		return nil, err
	}
	r.keyID = id
	return ct, nil
}

// openPayload returns the envelope of a stored entry, decrypting it if needed.
func (l *Ledger) openPayload(ctx context.Context, leaf *seal.Leaf, payload []byte) ([]byte, error) {
	if leaf.KeyID == "" {
		return payload, nil
	}
	if l.dk == nil {
		return nil, fmt.Errorf("entry %d under key %q: %w", leaf.Index, leaf.KeyID, ErrEncrypted)
	}
	dek, err := l.dk.get(ctx, leaf.KeyID, keyScope{}, false, "")
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", leaf.Index, err)
	}
	env, err := seal.DecryptPayload(dek, leaf.KeyID, payload)
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: %w", store.ErrCorrupt, leaf.Index, err)
	}
	return env, nil
}

// RetireKEKs makes every copy of a destroyed data key useless, wherever it is (a backup, a
// snapshot, a block the file system or the disk kept): it rotates the keyring's KEK, rewraps
// every live data key under the new one, and retires every other KEK, so that nothing wrapped
// before unwraps again. ApplyRetention does this itself whenever it destroyed keys; call it
// after upgrading a ledger that was shredded by an earlier version (whose tombstones do not
// name their KEK), or to invalidate old backups of the vault. It needs a seal.KEKRetirer
// (ErrCannotRetireKEK otherwise). A failure part way leaves every key readable, and running
// it again (or the next ApplyRetention) finishes the job.
func (l *Ledger) RetireKEKs(ctx context.Context) error {
	if l.dk == nil {
		return errors.New("ledger: KEKs belong to an encrypted ledger (Options.Encryption)")
	}
	ring, ok := l.dk.enc.Keyring.(seal.KEKRetirer)
	if !ok {
		return fmt.Errorf("%w: %T cannot", ErrCannotRetireKEK, l.dk.enc.Keyring)
	}
	_, err := l.dk.retireKEKs(ctx, ring, true)
	return err
}

// retireKEKs retires the KEKs that wrapped destroyed keys (every KEK but the current one, after
// a rotation if the current one wrapped any), once every live key is rewrapped under the
// current KEK; with force it rotates and retires whatever the vault holds. What is left to do
// is read from the vault and the keyring, so a run interrupted at any step is finished by the
// next: destroyed keys still naming a live KEK mean the job is not done. It returns the KEKs
// it retired.
func (c *keyCache) retireKEKs(ctx context.Context, ring seal.KEKRetirer, force bool) ([]string, error) {
	c.retireMu.Lock()
	defer c.retireMu.Unlock()
	keks, err := ring.KEKs(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: listing KEKs: %w", err)
	}
	need, rotate := force, force
	for wk, err := range c.enc.Vault.Keys(ctx) {
		if err != nil {
			return nil, fmt.Errorf("ledger: listing data keys: %w", err)
		}
		if wk.Destroyed && slices.Contains(keks, wk.KEK) {
			need = true
			rotate = rotate || wk.KEK == ring.ID()
		}
	}
	if !need {
		return nil, nil
	}
	if rotate {
		if _, err := ring.Rotate(ctx); err != nil {
			return nil, fmt.Errorf("ledger: rotating the KEK: %w", err)
		}
	}
	// Rewrap while appends go on; then again, with new keys held back, what was wrapped under
	// an old KEK meanwhile; then retire, still holding them back.
	if _, err := RotateKEK(ctx, c.enc.Vault, ring, ring); err != nil {
		return nil, err
	}
	c.kekMu.Lock()
	defer c.kekMu.Unlock()
	current := ring.ID()
	if _, err := RotateKEK(ctx, c.enc.Vault, ring, ring); err != nil {
		return nil, err
	}
	if keks, err = ring.KEKs(ctx); err != nil {
		return nil, fmt.Errorf("ledger: listing KEKs: %w", err)
	}
	if ring.ID() != current {
		// Rotated from elsewhere meanwhile: the keys may be under a KEK that is no longer
		// current. Retire nothing; the next run starts again.
		return nil, fmt.Errorf("ledger: the keyring's KEK changed from %s to %s while its keys were rewrapped; retiring nothing", current, ring.ID())
	}
	var retired []string
	for _, k := range keks {
		if k == current {
			continue
		}
		if err := ring.Retire(ctx, k); err != nil {
			return retired, fmt.Errorf("ledger: retiring KEK %s: %w", k, err)
		}
		retired = append(retired, k)
	}
	return retired, nil
}

// RotateKEK rewraps every live data key in vault from the old keyring to the new one (a file
// KEK to a KMS, say). Entries are not touched. It returns how many keys it rewrapped. A key
// already under the new keyring's current KEK is left as it is, so a run that failed part way
// is finished by running it again. Afterwards the old keyring opens nothing the vault keeps;
// copies made before (backups, snapshots) still open with it until its KEKs are destroyed.
// RotateKEK(ctx, vault, ring, ring) rewraps under ring's current KEK every key wrapped under
// its older ones.
func RotateKEK(ctx context.Context, vault store.KeyVault, old, new seal.Keyring) (int, error) {
	n := 0
	for wk, err := range vault.Keys(ctx) {
		if err != nil {
			return n, err
		}
		if wk.Destroyed || wk.KEK == new.ID() {
			continue
		}
		if err := rewrap(ctx, vault, old, new, wk); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// rewrap unwraps wk with from and stores it wrapped by to.
func rewrap(ctx context.Context, vault store.KeyVault, from, to seal.Keyring, wk store.WrappedKey) error {
	dek, err := from.Unwrap(ctx, wk.KEK, wk.ID, wk.Wrapped)
	if err != nil {
		return fmt.Errorf("ledger: rewrapping %s: %w", wk.ID, err)
	}
	kek, wrapped, err := to.Wrap(ctx, wk.ID, dek)
	clear(dek)
	if err != nil {
		return fmt.Errorf("ledger: rewrapping %s: %w", wk.ID, err)
	}
	if err := vault.Rewrap(ctx, wk.ID, kek, wrapped); err != nil {
		return fmt.Errorf("ledger: rewrapping %s: %w", wk.ID, err)
	}
	return nil
}
