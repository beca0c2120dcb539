package verify

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/commseal/commseal/seal"
	"golang.org/x/mod/sumdb/note"
)

// The names inside an export bundle (package ledger/export writes them). Paths use '/'.
const (
	BundleManifest    = "manifest.json"
	BundleManifestSig = "manifest.json.sig"
	BundleMessages    = "messages.jsonl"
	BundleCheckpoint  = "evidence/checkpoint"
	// BundleLatestCheckpoint is the newest checkpoint the ledger had signed when the bundle was
	// written, and BundleConsistency the proof that BundleCheckpoint's tree is a prefix of its
	// tree (see BundleConsistencyProof).
	BundleLatestCheckpoint = "evidence/latest-checkpoint"
	BundleConsistency      = "evidence/consistency"
	// BundleAnchorDir holds the ledger's latest anchored checkpoint at export time and its
	// anchors: BundleAnchors lists them (BundleAnchor), each RFC 3161 token and each
	// witness-cosigned note is a file of its own (BundleAnchorFilePath), the checkpoint the
	// tokens stamp is BundleAnchorCheckpointPath, and, when the bundle is not proved against
	// that checkpoint, BundleAnchorConsistencyPath proves its tree a prefix of
	// BundleLatestCheckpoint's.
	BundleAnchorDir = "evidence/anchors"
	BundleAnchors   = BundleAnchorDir + "/anchors.jsonl"
	BundleOpenings  = "evidence/openings.jsonl"
	BundleProofDir  = "evidence/proofs"
	BundleReadme    = "README.txt"
	// BundleAttachmentDir holds the exported attachments, each named by the lowercase hex
	// SHA-256 of its content (BundleAttachmentPath).
	BundleAttachmentDir = "attachments"
	// BundleFormat is the manifest's format name.
	BundleFormat = "commseal-export/v1"
)

// BundleProofPath returns the path of entry i's tlog-proof inside a bundle.
func BundleProofPath(i uint64) string {
	return BundleProofDir + "/" + strconv.FormatUint(i, 10) + ".tlog-proof"
}

// BundleAnchorConsistencyPath returns the path inside a bundle of the consistency proof from
// the anchored checkpoint of tree size size to the latest checkpoint.
func BundleAnchorConsistencyPath(size uint64) string {
	return fmt.Sprintf("%s/%d.consistency", BundleAnchorDir, size)
}

// BundleAnchorCheckpointPath returns the path inside a bundle of the anchored checkpoint of
// tree size size: the signed note byte for byte, which its time-stamps' imprint is the
// SHA-256 of (`openssl ts -verify -data` it).
func BundleAnchorCheckpointPath(size uint64) string {
	return fmt.Sprintf("%s/%d.checkpoint", BundleAnchorDir, size)
}

// BundleAnchorFilePath returns the path inside a bundle of the token (".tsr", DER) or the
// cosigned note (".cosigned") of anchor entry entry.
func BundleAnchorFilePath(entry uint64, typ string) string {
	ext := ".cosigned"
	if typ == seal.AnchorTimestamp {
		ext = ".tsr"
	}
	return fmt.Sprintf("%s/%d%s", BundleAnchorDir, entry, ext)
}

// BundleAnchor is a line of BundleAnchors: an anchor entry of the ledger (seal.Anchor) and
// the file that holds its token or cosigned note.
type BundleAnchor struct {
	Entry     uint64    `json:"entry"` // the anchor entry's ledger index
	Type      string    `json:"type"`  // seal.AnchorTimestamp or seal.AnchorCosignature
	Size      uint64    `json:"size"`  // the anchored checkpoint's tree size
	Authority string    `json:"authority"`
	Time      time.Time `json:"time"`
	File      string    `json:"file"` // BundleAnchorFilePath
}

// BundleAttachmentPath returns the path inside a bundle of the attachment whose content has
// the given SHA-256 (lowercase hex).
func BundleAttachmentPath(sha256hex string) string { return BundleAttachmentDir + "/" + sha256hex }

// BundleManifestData is manifest.json: what the bundle holds and why it was made.
type BundleManifestData struct {
	Format      string             `json:"format"`
	Origin      string             `json:"origin"`
	TreeSize    uint64             `json:"tree_size"`
	VerifierKey string             `json:"verifier_key"`
	Request     BundleRequest      `json:"request"`
	Files       []BundleFileDigest `json:"files"`
}

// BundleRequest is the export request as the manifest records it.
type BundleRequest struct {
	Who     string    `json:"who"`
	Why     string    `json:"why"`
	When    time.Time `json:"when"`
	Indexes int       `json:"indexes"`
	Query   string    `json:"query,omitempty"`
	Formats []string  `json:"formats,omitempty"` // the renderings asked for besides messages.jsonl
}

// BundleFileDigest lists one file of a bundle with its size and SHA-256 (lowercase hex).
type BundleFileDigest struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BundleOpening is one line of evidence/openings.jsonl: the opening of entry Index's
// commitment, SHA-256("commseal/commitment/v1\x00" || Salt || uint64be(len(Plaintext)) ||
// Plaintext).
type BundleOpening struct {
	Index     uint64 `json:"index"`
	Salt      []byte `json:"salt"`      // base64 (std), seal.SaltSize bytes
	Plaintext []byte `json:"plaintext"` // base64 (std)
}

// BundleMessage is one line of messages.jsonl: what an exported entry says, in readable form.
// A shredded entry has only Index, Kind, Shredded and, when retention shredded it, ShredEntry.
type BundleMessage struct {
	Index    uint64 `json:"index"`
	Kind     string `json:"kind"`
	Shredded bool   `json:"shredded,omitempty"`
	// ShredEntry cites, for a shredded entry, the shred entry retention sealed when it destroyed
	// the key (exported in the same bundle), when there is one.
	ShredEntry        *uint64 `json:"shred_entry,omitempty"`
	SourceID          string  `json:"source_id,omitempty"`
	ConversationID    string  `json:"conversation_id,omitempty"`
	ConversationTitle string  `json:"conversation_title,omitempty"`
	SenderID          string  `json:"sender_id,omitempty"`
	SenderName        string  `json:"sender_name,omitempty"`
	SentAt            string  `json:"sent_at,omitempty"` // RFC 3339, UTC
	// About is, for a record about a message (a fetched attachment, a finding), the message's
	// source id.
	About       string             `json:"about,omitempty"`
	Text        string             `json:"text,omitempty"`
	Attachments []BundleAttachment `json:"attachments,omitempty"`
	// Findings are, for an annotation entry that seals surveillance findings about a message
	// (package ledger/surveil), what it found.
	Findings []BundleFinding `json:"findings,omitempty"`
}

// BundleFinding is a finding as messages.jsonl lists it: the rule, its category and severity,
// and for a lexicon finding the term and where it matched (field[start:end], byte offsets
// into the message's field: "text", "title" or "file.N").
type BundleFinding struct {
	Rule     string `json:"rule"`
	Category string `json:"category,omitempty"`
	Severity string `json:"severity,omitempty"`
	Term     string `json:"term,omitempty"`
	Field    string `json:"field,omitempty"`
	Start    *int   `json:"start,omitempty"`
	End      *int   `json:"end,omitempty"`
}

// BundleAttachment is an attachment as messages.jsonl lists it: its original name and the
// SHA-256 the sealed entry gives it, and Path (BundleAttachmentPath) when its content is in
// the bundle. Content that was never fetched, or whose key was destroyed, has no Path. A
// message that names its attachments only by a platform's download code lists them without
// a SHA-256; the media record sealed when each was fetched (a line of its own, About the
// message) lists it with its SHA-256 and Path.
type BundleAttachment struct {
	Name   string `json:"name,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Path   string `json:"path,omitempty"`
}

// plainContent is the part of an entry's plaintext (a message's or a record's canonical JSON)
// that messages.jsonl repeats. It mirrors capture's JSON names without importing capture.
type plainContent struct {
	ID           string `json:"id"`
	Conversation struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"conversation"`
	Sender struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"sender"`
	SentAt      time.Time `json:"sent_at"`
	At          time.Time `json:"at"`
	Text        string    `json:"text"`
	Attachments []struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	} `json:"attachments"`
	About *struct {
		ID string `json:"id"`
	} `json:"about"`
	Body []byte `json:"body"` // a record's
}

// findingsBody is the part of an annotation's body (package ledger/surveil's schemas
// commseal.findings/v1 and commseal.behaviour/v1) that messages.jsonl repeats.
type findingsBody struct {
	Schema   string `json:"schema"`
	Findings []struct {
		Rule     string `json:"rule"`
		Category string `json:"category"`
		Severity string `json:"severity"`
		Term     string `json:"term"`
		Field    string `json:"field"`
		Start    int    `json:"start"`
		End      int    `json:"end"`
	} `json:"findings"`
	Finding struct {
		Rule     string `json:"rule"`
		Kind     string `json:"kind"`
		Severity string `json:"severity"`
	} `json:"finding"`
}

// findings returns the findings an annotation's body seals, or none for another kind of
// annotation (a disposition) or a body of another shape.
func findings(body []byte) []BundleFinding {
	var b findingsBody
	if json.Unmarshal(body, &b) != nil {
		return nil
	}
	var out []BundleFinding
	switch b.Schema {
	case "commseal.findings/v1":
		for _, f := range b.Findings {
			out = append(out, BundleFinding{Rule: f.Rule, Category: f.Category, Severity: f.Severity,
				Term: f.Term, Field: f.Field, Start: &f.Start, End: &f.End})
		}
	case "commseal.behaviour/v1":
		out = []BundleFinding{{Rule: b.Finding.Rule, Category: b.Finding.Kind, Severity: b.Finding.Severity}}
	}
	return out
}

// mediaResult is the part of a media record's body (capture.MediaResult) that names a
// fetched attachment.
type mediaResult struct {
	Status string `json:"status"`
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// isSHA256Hex reports whether s is a SHA-256 in lowercase hex.
func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// BundleLine derives the messages.jsonl line of an entry from its kind and its opened
// plaintext. The exporter (package ledger/export) and the checker both use it, each from its
// own reading.
func BundleLine(index uint64, kind seal.Kind, plaintext []byte) (BundleMessage, error) {
	m := BundleMessage{Index: index, Kind: kind.String()}
	switch kind {
	case seal.KindMessage, seal.KindContext, seal.KindMedia, seal.KindCaptureError, seal.KindAnnotation:
	default:
		return m, nil // the ledger's own entries (access, hold, shred): the opening says it all
	}
	var c plainContent
	if err := json.Unmarshal(plaintext, &c); err != nil {
		return m, fmt.Errorf("plaintext is not the JSON of a %s: %w", kind, err)
	}
	m.SourceID, m.ConversationID, m.ConversationTitle = c.ID, c.Conversation.ID, c.Conversation.Title
	if c.About != nil {
		m.About = c.About.ID
	}
	t := c.At
	switch kind {
	case seal.KindMessage:
		t = c.SentAt
		m.SenderID, m.SenderName, m.Text = c.Sender.ID, c.Sender.Name, c.Text
		for _, a := range c.Attachments {
			m.Attachments = append(m.Attachments, BundleAttachment{Name: a.Name, SHA256: a.SHA256})
		}
	case seal.KindMedia:
		// A stored attachment: its content is named by the SHA-256 the record gives it. A
		// failed fetch, or a body of another shape, names no content.
		var r mediaResult
		if json.Unmarshal(c.Body, &r) == nil && r.Status == "stored" && isSHA256Hex(r.SHA256) {
			m.Attachments = []BundleAttachment{{Name: r.Name, SHA256: r.SHA256}}
		}
	case seal.KindAnnotation:
		m.Findings = findings(c.Body)
	}
	if !t.IsZero() {
		m.SentAt = t.UTC().Format(time.RFC3339Nano)
	}
	return m, nil
}

// BundleError says which file of an export bundle (and which entry, if Entry is set) does
// not check, and why. It matches ErrAltered.
type BundleError struct {
	File   string  // the path inside the bundle, '/'-separated
	Entry  *uint64 // the entry concerned, if any
	Reason string
	Err    error // a more specific cause, or nil
}

// Error names the file, the entry if any, and the reason.
func (e *BundleError) Error() string {
	s := "verify: bundle file " + e.File
	if e.Entry != nil {
		s += " (entry " + strconv.FormatUint(*e.Entry, 10) + ")"
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports ErrAltered.
func (e *BundleError) Is(target error) bool { return target == ErrAltered }

// Unwrap returns the specific cause, if any.
func (e *BundleError) Unwrap() error { return e.Err }

func bad(file, reason string, err error) *BundleError {
	return &BundleError{File: file, Reason: reason, Err: err}
}

func badEntry(file string, i uint64, reason string, err error) *BundleError {
	return &BundleError{File: file, Entry: &i, Reason: reason, Err: err}
}

// BundleReport says what a bundle that checks holds.
type BundleReport struct {
	Origin   string
	TreeSize uint64 // the size of the signed checkpoint the proofs are against
	// LatestSize is the size of the newest checkpoint at export time, which TreeSize's tree is
	// proved a prefix of.
	LatestSize uint64
	Request    BundleRequest
	Entries    []uint64 // the exported entries, ascending
	Opened     int      // entries whose content is opened against the commitment
	Shredded   int      // entries exported without content (their data key was destroyed)
	// Attachments is the number of attachment files, each checked against the SHA-256 the
	// messages naming it give.
	Attachments int
	// Anchored lists what the bundle's anchor entries say of the checkpoints they anchor.
	Anchored []AnchoredCheckpoint
}

// shredEntries maps the data key ids that the bundle's opened shred entries destroyed to the
// index of their shred entry.
func shredEntries(leaves map[uint64]seal.Leaf, opened map[uint64][]byte) map[string]uint64 {
	out := map[string]uint64{}
	for i, leaf := range leaves {
		var s struct {
			KeyID string `json:"key_id"`
		}
		if leaf.Kind == seal.KindShred && json.Unmarshal(opened[i], &s) == nil && s.KeyID != "" {
			out[s.KeyID] = i
		}
	}
	return out
}

// citesShred reports whether entry i of the bundle is an opened shred entry of data key keyID.
func citesShred(leaves map[uint64]seal.Leaf, opened map[uint64][]byte, i uint64, keyID string) bool {
	leaf, ok := leaves[i]
	if !ok || leaf.Kind != seal.KindShred {
		return false
	}
	var s struct {
		KeyID string `json:"key_id"`
	}
	return json.Unmarshal(opened[i], &s) == nil && s.KeyID == keyID
}

// Bundle checks an export bundle in dir with nothing but the ledger's verifier key vkey: the
// manifest's signature; that the bundle holds exactly the files the manifest lists, each with
// its size and SHA-256; the checkpoint's signature; the latest checkpoint's signature and the
// consistency proof from the checkpoint to it; each entry's proof against the checkpoint
// and its leaf bytes; each opening against its leaf's commitment; and that messages.jsonl says
// what the opened plaintext says. Damage returns a *BundleError naming the file (and entry),
// which matches ErrAltered; a vkey that does not parse or a directory that cannot be read is
// an error about the request. The bundle's anchor entries are checked as BundleWith does with
// no TSA roots and no witness policy.
func Bundle(dir string, vkey string) (*BundleReport, error) {
	return BundleWith(dir, vkey, BundleOptions{})
}

// BundleOptions configures BundleWith.
type BundleOptions struct {
	// Anchors checks the time-stamps and cosignatures of the bundle's anchor entries.
	Anchors Anchors
}

// BundleWith checks an export bundle as Bundle does, and its anchor entries (the time-stamps
// and witness cosignatures of the ledger's latest anchored checkpoint at export time) as
// opts.Anchors says: each anchored checkpoint must verify with vkey and be proved a prefix of
// the latest checkpoint (BundleAnchorConsistencyPath), each token check against the TSA
// roots, and the cosignatures meet the witness policy.
func BundleWith(dir string, vkey string, opts BundleOptions) (*BundleReport, error) {
	v, err := seal.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("verify: bundle verifier key: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("verify: bundle: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("verify: bundle: %s is not a directory", dir)
	}
	files, err := bundleFiles(dir)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		b, ok := files[name]
		if !ok {
			return nil, bad(name, "missing", nil)
		}
		return b, nil
	}

	// The manifest and its signature.
	mb, err := read(BundleManifest)
	if err != nil {
		return nil, err
	}
	sig, err := read(BundleManifestSig)
	if err != nil {
		return nil, err
	}
	n, err := note.Open(sig, note.VerifierList(v))
	if err != nil {
		return nil, bad(BundleManifestSig, "not signed by the verifier key", err)
	}
	sum := sha256.Sum256(mb)
	if n.Text != hex.EncodeToString(sum[:])+"\n" {
		return nil, bad(BundleManifest, "its SHA-256 is not the one signed in "+BundleManifestSig, nil)
	}
	man, err := ParseBundleManifest(mb)
	if err != nil {
		return nil, bad(BundleManifest, "malformed", err)
	}
	if man.VerifierKey != vkey {
		return nil, bad(BundleManifest, "names another verifier key", nil)
	}

	// Exactly the listed files, each with its size and hash.
	listed := map[string]bool{BundleManifest: true, BundleManifestSig: true}
	for _, f := range man.Files {
		listed[f.Path] = true
		b, ok := files[f.Path]
		if !ok {
			return nil, bad(f.Path, "listed in the manifest but missing", nil)
		}
		h := sha256.Sum256(b)
		if int64(len(b)) != f.Size || hex.EncodeToString(h[:]) != f.SHA256 {
			return nil, bad(f.Path, "size or SHA-256 differs from the manifest", nil)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !listed[name] {
			return nil, bad(name, "not listed in the manifest", nil)
		}
	}

	// The checkpoint.
	cpb, err := read(BundleCheckpoint)
	if err != nil {
		return nil, err
	}
	cp, err := seal.OpenCheckpoint(cpb, v)
	if err != nil {
		return nil, bad(BundleCheckpoint, "does not verify", err)
	}
	if cp.Size != man.TreeSize || cp.Origin != man.Origin {
		return nil, bad(BundleManifest, "origin or tree size differs from the checkpoint", nil)
	}
	latest, err := checkBundleConsistency(files, cp, v)
	if err != nil {
		return nil, err
	}

	// The proofs, one per exported entry.
	leaves := map[uint64]seal.Leaf{}
	for name, b := range files {
		if !strings.HasPrefix(name, BundleProofDir+"/") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimPrefix(name, BundleProofDir+"/"), ".tlog-proof")
		i, err := strconv.ParseUint(base, 10, 64)
		if err != nil || BundleProofPath(i) != name {
			return nil, bad(name, "not named <index>.tlog-proof", nil)
		}
		p, err := seal.ParseProof(b)
		if err != nil {
			return nil, badEntry(name, i, "malformed proof", err)
		}
		if p.Index != i {
			return nil, badEntry(name, i, fmt.Sprintf("proves entry %d", p.Index), nil)
		}
		if !bytes.Equal(p.Checkpoint, cpb) {
			return nil, badEntry(name, i, "is against another checkpoint than "+BundleCheckpoint, nil)
		}
		// Its checkpoint is the bundle's, whose signature is checked above.
		leaf, err := seal.ProofLeaf(&p, cp)
		if err != nil {
			return nil, badEntry(name, i, "does not verify", err)
		}
		leaves[i] = leaf
	}
	if len(leaves) != man.Request.Indexes {
		return nil, bad(BundleManifest, fmt.Sprintf("says %d entries, the bundle proves %d", man.Request.Indexes, len(leaves)), nil)
	}

	// The openings.
	ob, err := read(BundleOpenings)
	if err != nil {
		return nil, err
	}
	opened := map[uint64][]byte{}
	if err := eachLine(BundleOpenings, ob, func(line []byte) error {
		o, err := ParseBundleOpening(line)
		if err != nil {
			return bad(BundleOpenings, "malformed line", err)
		}
		leaf, ok := leaves[o.Index]
		if !ok {
			return badEntry(BundleOpenings, o.Index, "opens an entry the bundle does not prove", nil)
		}
		if _, dup := opened[o.Index]; dup {
			return badEntry(BundleOpenings, o.Index, "opened twice", nil)
		}
		salt := [seal.SaltSize]byte(o.Salt)
		if seal.Commitment(&salt, o.Plaintext) != leaf.Commitment {
			return badEntry(BundleOpenings, o.Index, "does not open the leaf's commitment", nil)
		}
		opened[o.Index] = o.Plaintext
		return nil
	}); err != nil {
		return nil, err
	}

	// messages.jsonl against the opened plaintext.
	msgb, err := read(BundleMessages)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	named := map[string]uint64{} // attachment path -> an entry naming it
	shredOf := shredEntries(leaves, opened)
	shredded := 0
	if err := eachLine(BundleMessages, msgb, func(line []byte) error {
		var m BundleMessage
		if err := strictJSON(line, &m); err != nil {
			return bad(BundleMessages, "malformed line", err)
		}
		leaf, ok := leaves[m.Index]
		if !ok {
			return badEntry(BundleMessages, m.Index, "lists an entry the bundle does not prove", nil)
		}
		if seen[m.Index] {
			return badEntry(BundleMessages, m.Index, "listed twice", nil)
		}
		seen[m.Index] = true
		plain, ok := opened[m.Index]
		if !ok {
			want := BundleMessage{Index: m.Index, Kind: leaf.Kind.String(), Shredded: true, ShredEntry: m.ShredEntry}
			if leaf.KeyID == "" || !reflect.DeepEqual(m, want) {
				return badEntry(BundleMessages, m.Index, "has no opening and is not a shredded entry", nil)
			}
			if m.ShredEntry != nil && !citesShred(leaves, opened, *m.ShredEntry, leaf.KeyID) {
				return badEntry(BundleMessages, m.Index, "cites a shred entry the bundle does not hold for its key", nil)
			}
			if at, ok := shredOf[leaf.KeyID]; ok && (m.ShredEntry == nil || *m.ShredEntry != at) {
				return badEntry(BundleMessages, m.Index, fmt.Sprintf("does not cite shred entry %d of its key, which the bundle holds", at), nil)
			}
			shredded++
			return nil
		}
		want, err := BundleLine(m.Index, leaf.Kind, plain)
		if err != nil {
			return badEntry(BundleOpenings, m.Index, "opened plaintext", err)
		}
		if err := attachmentPaths(&m, files, named); err != nil {
			return err
		}
		if !reflect.DeepEqual(m, want) {
			return badEntry(BundleMessages, m.Index, "differs from the opened plaintext", nil)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for i := range leaves {
		if !seen[i] {
			return nil, badEntry(BundleMessages, i, "entry missing", nil)
		}
	}
	if err := checkAttachments(files, named); err != nil {
		return nil, err
	}
	anchored, err := bundleAnchors(files, cp, latest, v, opts.Anchors)
	if err != nil {
		return nil, err
	}
	return &BundleReport{Origin: cp.Origin, TreeSize: cp.Size, LatestSize: latest.Size, Request: man.Request,
		Entries: slices.Sorted(maps.Keys(leaves)), Opened: len(opened), Shredded: shredded, Attachments: len(named),
		Anchored: anchored}, nil
}

// bundleFiles reads every file under dir, keyed by its '/'-separated path. Anything but
// regular files and directories (a symlink, a device) is damage.
func bundleFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("verify: bundle: %w", err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("verify: bundle: %w", err)
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return bad(name, "not a regular file", nil)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("verify: bundle: %w", err)
		}
		files[name] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// eachLine calls fn with every line of b; b must be empty or end in a newline, with no empty
// line.
func eachLine(file string, b []byte, fn func([]byte) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return bad(file, "last line does not end in a newline", nil)
	}
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			return bad(file, "empty line", nil)
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return bad(file, "unreadable lines", err)
	}
	return nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// ParseBundleOpening parses one line of evidence/openings.jsonl strictly: known fields only,
// a salt of seal.SaltSize bytes.
func ParseBundleOpening(line []byte) (BundleOpening, error) {
	var o BundleOpening
	if err := strictJSON(line, &o); err != nil {
		return o, err
	}
	if len(o.Salt) != seal.SaltSize {
		return o, fmt.Errorf("salt is %d bytes, not %d", len(o.Salt), seal.SaltSize)
	}
	return o, nil
}

// ParseBundleManifest parses manifest.json strictly: known fields only, the format
// BundleFormat, file paths that are clean, relative, unique and not the manifest's own, and
// hashes of 64 lowercase hex digits.
func ParseBundleManifest(b []byte) (*BundleManifestData, error) {
	var m BundleManifestData
	if err := strictJSON(b, &m); err != nil {
		return nil, err
	}
	if m.Format != BundleFormat {
		return nil, fmt.Errorf("format %q, not %q", m.Format, BundleFormat)
	}
	if m.Request.Indexes < 0 {
		return nil, errors.New("negative entry count")
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if f.Path == "" || !fs.ValidPath(f.Path) || path.Clean(f.Path) != f.Path ||
			f.Path == BundleManifest || f.Path == BundleManifestSig || seen[f.Path] {
			return nil, fmt.Errorf("bad file path %q", f.Path)
		}
		seen[f.Path] = true
		if h, err := hex.DecodeString(f.SHA256); err != nil || len(h) != sha256.Size || hex.EncodeToString(h) != f.SHA256 {
			return nil, fmt.Errorf("bad SHA-256 for %q", f.Path)
		}
		if f.Size < 0 {
			return nil, fmt.Errorf("negative size for %q", f.Path)
		}
	}
	return &m, nil
}
