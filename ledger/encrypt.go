package ledger

import (
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

// shredMark is what a key marked for shredding records: the attachments' keys that go with it.
type shredMark struct {
	Blobs []string `json:"blobs"`
}

// scopeKeyID returns the key id of a scope: the month in clear (retention needs it) and a digest
// of tenant and conversation (which leaves must not reveal).
func scopeKeyID(tenant, conversation string, t time.Time) (string, keyScope) {
	month := t.UTC().Format("2006-01")
	d := sha256.Sum256([]byte("commseal/scope/v1\x00" + tenant + "\x00" + conversation))
	return "dk1." + month + "." + hex.EncodeToString(d[:12]), keyScope{Tenant: tenant, Conversation: conversation, Month: month}
}

func blobKeyID(sum [32]byte) string { return "blob1." + hex.EncodeToString(sum[:16]) }

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
	dek, err := l.dk.get(ctx, "state1."+name, keyScope{State: name}, true, "")
	if err != nil {
		return nil, err
	}
	return slices.Clone(dek), nil
}

// keyCache holds unwrapped data keys in memory and creates new ones single-flight.
//
// Locks: mu guards the cache and is held while a key is created, its metadata changed, or it
// is marked for shredding; kekMu is held for reading while a new key is wrapped and stored, and
// for writing while KEKs are retired, so that no key is wrapped under a KEK being retired;
// retireMu makes one retirement at a time. Order: retireMu, mu, kekMu. None is held while the
// ledger's pipeline is waited on.
type keyCache struct {
	enc      *Encryption
	mu       sync.RWMutex
	kekMu    sync.RWMutex
	retireMu sync.Mutex
	keys     map[string]*cachedKey
	limit    int

	idMu sync.RWMutex
	ids  map[scopeName]scopeID // memoized scopeKeyID
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
}

func newKeyCache(enc *Encryption) *keyCache {
	return &keyCache{enc: enc, keys: map[string]*cachedKey{}, limit: 4096, ids: map[scopeName]scopeID{}}
}

// get returns the data key for id, creating it with scope sc when absent and create is set.
// A kind not yet recorded in the key's metadata is added, durably, before the key is returned.
func (c *keyCache) get(ctx context.Context, id string, sc keyScope, create bool, kind string) ([]byte, error) {
	c.mu.RLock()
	if ck, ok := c.keys[id]; ok && (kind == "" || slices.Contains(ck.scope.Kinds, kind) && ck.scope.Shredding == nil) {
		dek := ck.dek
		c.mu.RUnlock()
		return dek, nil
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	ck, ok := c.keys[id]
	if !ok {
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
			if err := c.storeKey(ctx, id, dek, sc); err != nil {
				return nil, err
			}
			ck = &cachedKey{dek: dek, scope: sc}
		case err != nil:
			return nil, fmt.Errorf("ledger: data key %s: %w", id, err)
		default:
			dek, err := c.unwrap(ctx, wk)
			if err != nil {
				return nil, err
			}
			ck = &cachedKey{dek: dek}
			if err := json.Unmarshal(wk.Meta, &ck.scope); err != nil {
				return nil, fmt.Errorf("%w: data key %s metadata: %v", store.ErrCorrupt, id, err)
			}
		}
		if len(c.keys) >= c.limit {
			clear(c.keys)
		}
		c.keys[id] = ck
	}
	if kind != "" && ck.scope.Shredding != nil {
		return nil, fmt.Errorf("%w: key %s is being shredded", ErrShredded, id)
	}
	if kind != "" && !slices.Contains(ck.scope.Kinds, kind) {
		sc := ck.scope
		sc.Kinds = append(slices.Clone(sc.Kinds), kind)
		if err := c.setScope(ctx, id, sc); err != nil {
			return nil, err
		}
		ck.scope = sc
	}
	return ck.dek, nil
}

// storeKey wraps a new data key under the keyring's current KEK and stores it with scope sc as
// its metadata (store.ErrDuplicate if the id exists). The caller holds c.mu, so that no key is
// wrapped under a KEK while that KEK is being retired (retireKEKs).
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

// putKey is storeKey for a caller that does not hold c.mu (a blob's key).
func (c *keyCache) putKey(ctx context.Context, id string, dek []byte, sc keyScope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
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

// setScope durably replaces a key's metadata.
func (c *keyCache) setScope(ctx context.Context, id string, sc keyScope) error {
	meta, _ := json.Marshal(sc)
	if err := c.enc.Vault.SetMeta(ctx, id, meta); err != nil {
		return fmt.Errorf("ledger: updating data key %s: %w", id, err)
	}
	return nil
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

// mark marks key id for shredding, durably, if pick (given its metadata as it is now, under
// c.mu, so that no kind or attachment is added meanwhile) says it is still due and which
// attachments go with it. It returns the mark, or nil if the key is no longer due or is gone.
func (c *keyCache) mark(ctx context.Context, id string, pick func(sc *keyScope) ([]string, bool, error)) (*shredMark, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, err := c.readScope(ctx, id)
	if errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: data key %s: %w", id, err)
	}
	blobs, ok, err := pick(&sc)
	if err != nil || !ok {
		return nil, err
	}
	sc.Shredding = &shredMark{Blobs: blobs}
	if err := c.setScope(ctx, id, sc); err != nil {
		return nil, err
	}
	if ck, ok := c.keys[id]; ok {
		ck.scope = sc
	}
	return sc.Shredding, nil
}

// unmark clears the shredding mark of a key that a hold (or a new run) kept.
func (c *keyCache) unmark(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, err := c.readScope(ctx, id)
	if errors.Is(err, store.ErrDestroyed) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: data key %s: %w", id, err)
	}
	sc.Shredding = nil
	if err := c.setScope(ctx, id, sc); err != nil {
		return err
	}
	if ck, ok := c.keys[id]; ok {
		ck.scope = sc
	}
	return nil
}

// forget drops a key from the cache (after it is destroyed).
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ck, ok := c.keys[id]; ok {
		clear(ck.dek)
		delete(c.keys, id)
	}
}

// addBlobScope records that a record under scope key scopeID references blob sum.
func (c *keyCache) addBlobScope(ctx context.Context, sum [32]byte, scopeID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := blobKeyID(sum)
	wk, err := c.enc.Vault.Key(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a blob this ledger stored
	}
	if err != nil {
		return err
	}
	var sc keyScope
	if err := json.Unmarshal(wk.Meta, &sc); err != nil {
		return fmt.Errorf("%w: blob key %s metadata: %v", store.ErrCorrupt, id, err)
	}
	if slices.Contains(sc.Scopes, scopeID) {
		return nil
	}
	sc.Scopes = append(sc.Scopes, scopeID)
	return c.setScope(ctx, id, sc)
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
