package ledgerdir

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/commseal/commseal/internal/durable"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/keydir"
)

// Errors of keyring setup.
var (
	ErrWrongKEK     = errors.New("ledgerdir: wrong passphrase or key file: it does not open this ledger's keys")
	ErrMissingKEK   = errors.New("ledgerdir: the key-encryption key is missing")
	ErrCorruptKEK   = errors.New("ledgerdir: the key-encryption key file is corrupt")
	errCheckKeyID   = "commseal/kek-check"
	checkKeyContent = make([]byte, seal.DataKeySize)
)

// The keyring of a ledger directory keeps generations of KEKs. ledger.keyring says how to
// rebuild each live one and which is current; it holds no secret, so the old versions that
// replacing it leaves behind hold none either. Each generation's secret is in a file of its
// own, written once:
//
//	file mode        the KEK in hex: ledger.kek for the first generation, keks/<n>.kek after
//	passphrase mode  the Argon2id salt in hex (the KEK is Argon2id(passphrase, salt)):
//	                 keks/<n>.salt
//
// Version 1 of ledger.keyring (what a new ledger gets, and what earlier versions wrote) has a
// single generation: {"mode","salt","id","check"}, the salt of passphrase mode inside it, the
// file-mode KEK in ledger.kek. The first rotation writes version 2:
// {"version":2,"mode","current","generations":[{"gen","id","file","check"}]}; in passphrase
// mode the first generation's salt moves to keks/1.salt and the version 1 file, which held it,
// is overwritten in place with zeros once replaced.
//
// Retiring a generation drops it from ledger.keyring, then overwrites its file in place with
// zeros, syncs it and removes it. Without the file, a file-mode KEK is gone, and a
// passphrase-mode KEK cannot be derived again even with the passphrase. On a file system that
// writes in place (ext4, XFS) the bytes are gone from the disk; on copy-on-write file systems,
// SSDs that remap blocks, snapshots and backups, copies may survive: only a KMS or HSM that
// destroys key versions makes those useless.

const (
	keyringV1 = 0 // no "version" field
	keyringV2 = 2
)

type keyringFile struct {
	Version int    `json:"version,omitempty"`
	Mode    string `json:"mode"` // "passphrase" or "file"
	// Version 1.
	Salt  []byte `json:"salt,omitempty"`
	ID    string `json:"id,omitempty"`
	Check []byte `json:"check,omitempty"` // a zero key wrapped under the KEK: opens only with the right one
	// Version 2.
	Current     string       `json:"current,omitempty"`
	Generations []generation `json:"generations,omitempty"`
}

// generation is one KEK of the keyring.
type generation struct {
	Gen   int    `json:"gen"`
	ID    string `json:"id"`
	File  string `json:"file"`  // its secret, relative to the ledger directory
	Check []byte `json:"check"` // a zero key wrapped under it

	ring *seal.KEKKeyring
	salt []byte // passphrase mode, a version 1 keyring: the salt, kept in ledger.keyring
}

// FileKeyring is the keyring of a ledger directory: a seal.KEKRetirer whose KEKs are kept in
// files (see above). It is safe for concurrent use within one process.
type FileKeyring struct {
	dir  string
	mode string
	pass []byte // passphrase mode: the passphrase, to derive new generations

	mu      sync.RWMutex
	version int
	current *generation
	gens    []*generation // live, oldest first
}

var _ seal.KEKRetirer = (*FileKeyring)(nil)

// Keyring returns the directory's keyring (a *FileKeyring). A new ledger (create set, no
// keyring file yet) gets a passphrase-derived KEK when COMMSEAL_PASSPHRASE is set, else a
// random KEK in ledger.kek (mode 0600): a demonstration key, since it sits beside the data it
// protects. demo reports the latter. A wrong passphrase or key file fails with ErrWrongKEK, a
// missing one with ErrMissingKEK, a damaged one with ErrCorruptKEK, before anything is
// written. An open that succeeds scrubs the files of generations a crash left behind (made by
// a rotation that did not finish, or dropped by a retirement that did not).
func Keyring(ctx context.Context, dir string, create bool) (ring seal.Keyring, demo bool, err error) {
	kp := filepath.Join(dir, layout.KeyringFile)
	b, err := os.ReadFile(kp)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("%w: %s holds a ledger but no %s; restore it (a new KEK would not open the ledger's data keys)", ErrMissingKEK, dir, layout.KeyringFile)
		}
		return newKeyring(ctx, dir)
	}
	if err != nil {
		return nil, false, fmt.Errorf("ledgerdir: %w", err)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, false, fmt.Errorf("%w: %s is not valid JSON", ErrCorruptKEK, layout.KeyringFile)
	}
	k := &FileKeyring{dir: dir, mode: kf.Mode, version: kf.Version}
	switch kf.Mode {
	case "passphrase":
		pass := os.Getenv(layout.PassphraseEnv)
		if pass == "" {
			return nil, false, fmt.Errorf("%w: this ledger's keys are protected by a passphrase: set %s", ErrMissingKEK, layout.PassphraseEnv)
		}
		k.pass = []byte(pass)
	case "file":
		demo = true
	default:
		return nil, false, fmt.Errorf("%w: unknown mode %q in %s", ErrCorruptKEK, kf.Mode, layout.KeyringFile)
	}
	switch kf.Version {
	case keyringV1:
		g := &generation{Gen: 1, ID: kf.ID, Check: kf.Check, salt: kf.Salt}
		if kf.Mode == "file" {
			g.File = layout.KEKFile
		}
		k.gens = []*generation{g}
	case keyringV2:
		for k2 := range kf.Generations {
			g := kf.Generations[k2]
			k.gens = append(k.gens, &g)
		}
	default:
		return nil, false, fmt.Errorf("%w: %s has version %d, which this program does not know", ErrCorruptKEK, layout.KeyringFile, kf.Version)
	}
	for _, g := range k.gens {
		if err := k.load(ctx, g); err != nil {
			return nil, false, err
		}
		if kf.Version == keyringV1 || g.ID == kf.Current {
			k.current = g
		}
	}
	if k.current == nil {
		return nil, false, fmt.Errorf("%w: %s names current KEK %q, which it does not list", ErrCorruptKEK, layout.KeyringFile, kf.Current)
	}
	if err := k.scrubLeftovers(); err != nil {
		return nil, false, err
	}
	return k, demo, nil
}

// load rebuilds a generation's KEK from its file (or, version 1 passphrase mode, its salt) and
// checks it against the generation's check value.
func (k *FileKeyring) load(ctx context.Context, g *generation) error {
	if g.ID == "" || len(g.Check) == 0 {
		return fmt.Errorf("%w: %s lists a KEK without a name or a check value", ErrCorruptKEK, layout.KeyringFile)
	}
	var kek []byte
	switch {
	case k.mode == "passphrase" && g.salt != nil:
		var err error
		if kek, err = seal.PassphraseKEK(k.pass, g.salt); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptKEK, err)
		}
	default:
		p, err := k.genPath(g.File)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s (KEK %s) is gone from %s", ErrMissingKEK, g.File, g.ID, k.dir)
		}
		if err != nil {
			return fmt.Errorf("ledgerdir: %w", err)
		}
		secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
		switch {
		case err != nil || k.mode == "file" && len(secret) != 32:
			return fmt.Errorf("%w: %s must hold 64 hex digits", ErrCorruptKEK, g.File)
		case k.mode == "passphrase":
			if kek, err = seal.PassphraseKEK(k.pass, secret); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrCorruptKEK, g.File, err)
			}
		default:
			kek = secret
		}
	}
	r, err := seal.NewKEKKeyring(g.ID, kek)
	clear(kek)
	if err != nil {
		return err
	}
	if _, err := r.Unwrap(ctx, g.ID, errCheckKeyID, g.Check); err != nil {
		return fmt.Errorf("%w (KEK %s)", ErrWrongKEK, g.ID)
	}
	g.ring = r
	return nil
}

// genPath resolves a generation's file, which must be ledger.kek or a file of keks/.
func (k *FileKeyring) genPath(name string) (string, error) {
	dir, base := filepath.Split(filepath.FromSlash(name))
	if name == layout.KEKFile || filepath.Clean(dir) == layout.KEKDir && base != "" && !strings.HasPrefix(base, ".") {
		return filepath.Join(k.dir, filepath.FromSlash(name)), nil
	}
	return "", fmt.Errorf("%w: %s names %q as a KEK file", ErrCorruptKEK, layout.KeyringFile, name)
}

func kekID(kek []byte) string {
	id := sha256.Sum256(append([]byte("commseal/kek-id\x00"), kek...))
	return "kek-" + hex.EncodeToString(id[:6])
}

func newKeyring(ctx context.Context, dir string) (seal.Keyring, bool, error) {
	if err := durable.MkdirAll(dir); err != nil {
		return nil, false, err
	}
	kf := keyringFile{Mode: "file"}
	k := &FileKeyring{dir: dir, mode: "file"}
	kek := make([]byte, 32)
	if pass := os.Getenv(layout.PassphraseEnv); pass != "" {
		kf.Mode, k.mode, k.pass = "passphrase", "passphrase", []byte(pass)
		kf.Salt = make([]byte, 16)
		rand.Read(kf.Salt)
		var err error
		if kek, err = seal.PassphraseKEK(k.pass, kf.Salt); err != nil {
			return nil, false, err
		}
	} else if old, err := os.ReadFile(filepath.Join(dir, layout.KEKFile)); err == nil {
		// A layout interrupted between this file and ledger.keyring (nothing is encrypted
		// before the keyring is written): take it up where it stopped, with this KEK.
		k, err := hex.DecodeString(strings.TrimSpace(string(old)))
		clear(old)
		if err != nil || len(k) != 32 {
			return nil, false, fmt.Errorf("%w: %s is left from an interrupted layout and holds no 256-bit key", ErrCorruptKEK, layout.KEKFile)
		}
		copy(kek, k)
		clear(k)
	} else {
		rand.Read(kek)
		if err := durable.CreateExclusive(filepath.Join(dir, layout.KEKFile), []byte(hex.EncodeToString(kek)+"\n")); err != nil {
			return nil, false, fmt.Errorf("ledgerdir: writing %s: %w", layout.KEKFile, err)
		}
	}
	kf.ID = kekID(kek)
	r, err := seal.NewKEKKeyring(kf.ID, kek)
	clear(kek)
	if err != nil {
		return nil, false, err
	}
	if _, kf.Check, err = r.Wrap(ctx, errCheckKeyID, checkKeyContent); err != nil {
		return nil, false, err
	}
	b, _ := json.MarshalIndent(kf, "", "  ")
	if err := durable.CreateExclusive(filepath.Join(dir, layout.KeyringFile), append(b, '\n')); err != nil {
		return nil, false, fmt.Errorf("ledgerdir: writing %s: %w", layout.KeyringFile, err)
	}
	g := &generation{Gen: 1, ID: kf.ID, Check: kf.Check, ring: r, salt: kf.Salt}
	if k.mode == "file" {
		g.File = layout.KEKFile
	}
	k.gens, k.current = []*generation{g}, g
	return k, k.mode == "file", nil
}

// ID implements seal.Keyring.
func (k *FileKeyring) ID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current.ID
}

// Wrap implements seal.Keyring.
func (k *FileKeyring) Wrap(ctx context.Context, keyID string, dek []byte) (string, []byte, error) {
	k.mu.RLock()
	r := k.current.ring
	k.mu.RUnlock()
	return r.Wrap(ctx, keyID, dek)
}

// Unwrap implements seal.Keyring.
func (k *FileKeyring) Unwrap(ctx context.Context, kek, keyID string, wrapped []byte) ([]byte, error) {
	k.mu.RLock()
	i := slices.IndexFunc(k.gens, func(g *generation) bool { return g.ID == kek })
	var r *seal.KEKKeyring
	if i >= 0 {
		r = k.gens[i].ring
	}
	k.mu.RUnlock()
	if r == nil {
		return nil, fmt.Errorf("unwrapping data key %q: %w: %q", keyID, seal.ErrUnknownKEK, kek)
	}
	return r.Unwrap(ctx, kek, keyID, wrapped)
}

// KEKs implements seal.KEKRetirer.
func (k *FileKeyring) KEKs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, len(k.gens))
	for i, g := range k.gens {
		out[i] = g.ID
	}
	return out, nil
}

// Rotate implements seal.KEKRetirer: a new generation, in keks/, becomes current. The first
// rotation of a version 1 keyring writes version 2 (see above).
func (k *FileKeyring) Rotate(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := durable.MkdirAll(filepath.Join(k.dir, layout.KEKDir)); err != nil {
		return "", fmt.Errorf("ledgerdir: %w", err)
	}
	if err := k.scrubLeftovers(); err != nil {
		return "", err
	}
	n := k.gens[len(k.gens)-1].Gen + 1
	// The generations as they will be: copies, so that a rotation that fails part way leaves
	// the keyring in memory as ledger.keyring still has it.
	gens := make([]*generation, len(k.gens), len(k.gens)+1)
	for i, g := range k.gens {
		c := *g
		if c.salt != nil { // a version 1 passphrase generation: its salt moves to a file of its own
			c.File, c.salt = k.genFile(c.Gen), nil
			if err := durable.CreateExclusive(filepath.Join(k.dir, c.File), []byte(hex.EncodeToString(g.salt)+"\n")); err != nil {
				return "", fmt.Errorf("ledgerdir: %w", err)
			}
		}
		gens[i] = &c
	}
	secret := make([]byte, 32)
	if k.mode == "passphrase" {
		secret = secret[:16]
	}
	var kek []byte
	for {
		rand.Read(secret)
		kek = slices.Clone(secret)
		if k.mode == "passphrase" {
			var err error
			if kek, err = seal.PassphraseKEK(k.pass, secret); err != nil {
				return "", err
			}
		}
		if !slices.ContainsFunc(k.gens, func(g *generation) bool { return g.ID == kekID(kek) }) {
			break
		}
	}
	g := &generation{Gen: n, ID: kekID(kek), File: k.genFile(n)}
	r, err := seal.NewKEKKeyring(g.ID, kek)
	clear(kek)
	if err != nil {
		return "", err
	}
	if _, g.Check, err = r.Wrap(ctx, errCheckKeyID, checkKeyContent); err != nil {
		return "", err
	}
	g.ring = r
	if err := durable.CreateExclusive(filepath.Join(k.dir, g.File), []byte(hex.EncodeToString(secret)+"\n")); err != nil {
		return "", fmt.Errorf("ledgerdir: %w", err)
	}
	clear(secret)
	gens = append(gens, g)
	if err := k.writeKeyring(g, gens); err != nil {
		return "", err
	}
	k.version, k.current, k.gens = keyringV2, g, gens
	return g.ID, nil
}

func (k *FileKeyring) genFile(n int) string {
	ext := ".kek"
	if k.mode == "passphrase" {
		ext = ".salt"
	}
	return layout.KEKDir + "/" + strconv.Itoa(n) + ext
}

// writeKeyring replaces ledger.keyring with version 2 listing gens, current being current. The
// version 1 file of passphrase mode holds a salt: it is overwritten in place with zeros once
// replaced (through a descriptor opened before), so that its blocks do not keep it.
func (k *FileKeyring) writeKeyring(current *generation, gens []*generation) error {
	kf := keyringFile{Version: keyringV2, Mode: k.mode, Current: current.ID}
	for _, g := range gens {
		kf.Generations = append(kf.Generations, generation{Gen: g.Gen, ID: g.ID, File: g.File, Check: g.Check})
	}
	b, _ := json.MarshalIndent(kf, "", "  ")
	p := filepath.Join(k.dir, layout.KeyringFile)
	var old *os.File
	if k.version == keyringV1 && k.mode == "passphrase" {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("ledgerdir: %w", err)
		}
		defer f.Close()
		old = f
	}
	if err := durable.WriteFile(p, append(b, '\n')); err != nil {
		return fmt.Errorf("ledgerdir: %w", err)
	}
	if old != nil {
		if err := durable.Zero(old); err != nil {
			return fmt.Errorf("ledgerdir: scrubbing the replaced %s: %w", layout.KeyringFile, err)
		}
	}
	return nil
}

// Retire implements seal.KEKRetirer: the generation is dropped from ledger.keyring, then its
// file is overwritten in place with zeros, synced and removed. Retiring the current KEK fails
// with seal.ErrRetireCurrent; a KEK the keyring does not hold (retired before) is no error.
func (k *FileKeyring) Retire(ctx context.Context, kek string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if kek == k.current.ID {
		return fmt.Errorf("ledgerdir: %w: %s", seal.ErrRetireCurrent, kek)
	}
	i := slices.IndexFunc(k.gens, func(g *generation) bool { return g.ID == kek })
	if i < 0 {
		return nil
	}
	g := k.gens[i]
	gens := slices.Delete(slices.Clone(k.gens), i, i+1)
	if err := k.writeKeyring(k.current, gens); err != nil {
		return err
	}
	k.gens = gens
	p, err := k.genPath(g.File)
	if err != nil {
		return err
	}
	if err := durable.Scrub(p, nil); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(p))
}

// scrubLeftovers scrubs the KEK files that ledger.keyring does not list: a generation whose
// rotation did not finish, or whose retirement did not.
func (k *FileKeyring) scrubLeftovers() error {
	listed := map[string]bool{}
	for _, g := range k.gens {
		listed[filepath.Clean(filepath.FromSlash(g.File))] = true
	}
	var stray []string
	if k.version == keyringV2 && !listed[layout.KEKFile] {
		stray = append(stray, layout.KEKFile)
	}
	ents, err := os.ReadDir(filepath.Join(k.dir, layout.KEKDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ledgerdir: %w", err)
	}
	for _, e := range ents {
		name := filepath.Join(layout.KEKDir, e.Name())
		if e.Type().IsRegular() && !listed[name] {
			stray = append(stray, name)
		}
	}
	for _, name := range stray {
		if err := durable.Scrub(filepath.Join(k.dir, name), nil); err != nil {
			return err
		}
	}
	if len(stray) > 0 {
		if err := durable.SyncDir(filepath.Join(k.dir, layout.KEKDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return durable.SyncDir(k.dir)
	}
	return nil
}

// Vault opens the directory's key vault (creating it, mode 0700, if needed).
func Vault(dir string) (*keydir.Vault, error) {
	return keydir.Open(filepath.Join(dir, layout.VaultDir))
}
