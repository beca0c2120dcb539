// Package export writes the evidence part of an export bundle: the selected
// entries in readable form, with what anyone needs to check them against the ledger's signed
// tree without trusting the exporter or running commseal.
//
// # The bundle
//
// A bundle is a directory:
//
//	messages.jsonl              one line per exported entry (verify.BundleMessage)
//	evidence/checkpoint         the signed C2SP checkpoint the proofs are against
//	evidence/latest-checkpoint  the newest signed checkpoint when the bundle was written
//	evidence/consistency        RFC 6962 proof that the first tree is a prefix of the newest:
//	                            "<old size> <new size>\n", then one base64 hash per line
//	                            (none when both sizes are equal)
//	evidence/proofs/<i>.tlog-proof  C2SP tlog-proof@v1 of entry i; its extra data is the leaf
//	evidence/openings.jsonl     {"index","salt","plaintext"} per entry whose content is readable
//	attachments/<sha256 hex>    the content of each attachment an exported message names, read
//	                            through the accessor; messages.jsonl gives its name and path
//	rsmf/*.rsmf                 with FormatRSMF: RSMF 2.0, one file per conversation and UTC day
//	                            (split at MaxRSMFEvents), X-Commseal-Ledger naming origin and size
//	eml/*.eml                   with FormatEML: one RFC 5322 message per conversation and UTC day
//	README.txt                  how to check everything by hand
//	manifest.json               every other file with size and SHA-256, the request, the key
//	manifest.json.sig           a signed note over hex(SHA-256(manifest.json)) + "\n"
//
// A shredded entry (its data key destroyed) is exported with its leaf and proof, no opening,
// and a messages.jsonl line saying so that cites the shred entry retention sealed (exported
// too, with its proof and opening: the rule, the authority, the time). verify.Bundle checks a
// bundle with the verifier key.
//
// Exporting reads through ledger.Access, so the export is itself sealed in the ledger as
// access entries (one for the entries, one for their attachments) before anything is written.
package export

import (
	"archive/zip"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"golang.org/x/mod/sumdb/note"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotEmpty is returned when the bundle directory exists and holds anything.
	ErrNotEmpty = errors.New("export: directory is not empty")
	// ErrBadRequest is returned for a request that lacks who, why, indexes or a signer, or
	// whose signer is not the ledger's checkpoint key.
	ErrBadRequest = errors.New("export: bad request")
)

// The formats a Request can name.
const (
	FormatJSONL = "jsonl" // messages.jsonl with the evidence: always written
	FormatRSMF  = "rsmf"  // RSMF 2.0 files under RSMFDir, for review platforms
	FormatEML   = "eml"   // one RFC 5322 message per conversation and UTC day under EMLDir
)

// Request says what to export, for whom and why.
type Request struct {
	Who     string   // the person or system exporting (recorded in the ledger's access entries)
	Why     string   // the case or request (recorded likewise)
	Indexes []uint64 // the selected entries; order and repeats do not matter
	Query   string   // the query that selected them, if any, recorded in the manifest
	// Formats lists the renderings to write besides messages.jsonl and the evidence, which
	// every bundle holds: FormatRSMF, FormatEML; FormatJSONL may be named and adds nothing.
	// Anything else is ErrBadRequest.
	Formats []string
	// Custodian is whose data this is, for RSMF's X-RSMF-Custodian; default the ledger's origin.
	Custodian string
	// Signer signs the manifest: the ledger's checkpoint key (ledger.Options.Signing.Signer).
	Signer note.Signer
	// Now is the clock for the manifest's time; default time.Now.
	Now func() time.Time
	// Progress, if set, is told how far each phase is: "read" (entries), "prove" (entries)
	// and "write" (files), done of total. It is called from the goroutines doing the work,
	// one call at a time, and must return quickly.
	Progress func(phase string, done, total int)
}

// progress calls req.Progress, if any, one call at a time.
type progress struct {
	mu sync.Mutex
	fn func(phase string, done, total int)
	n  int
}

func (p *progress) step(phase string, total int) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.fn(phase, p.n, total)
}

func (p *progress) start(phase string, total int) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = 0
	p.fn(phase, 0, total)
}

// Summary says what Write wrote.
type Summary struct {
	Dir      string
	Entries  int // exported entries
	Opened   int // entries with an opening
	Shredded int // entries without content
	// Attachments is the number of attachment files written; Unavailable the attachments named
	// by exported messages whose content the bundle does not hold: never fetched, shredded, or
	// fetched but the media record that names its content not among the exported entries.
	Attachments, Unavailable int
	TreeSize                 uint64    // the size of the checkpoint the proofs are against
	Checkpoint               []byte    // that signed checkpoint
	When                     time.Time // the time the manifest gives
}

// exported is one entry read for the bundle.
type exported struct {
	e           *ledger.Entry
	line        verify.BundleMessage // what verify.BundleLine derives from an opened entry
	shredded    bool
	shredEntry  *uint64 // for a shredded entry: the shred entry that destroyed its key, if any
	proof       *seal.Proof
	unavailable int // attachments whose content the ledger does not hold
}

// Write exports the entries req selects from l into dir, which must not exist or be empty; it
// is created with durable.DirMode and files with durable.FileMode. It checks the request and
// the directory before anything is read or recorded; then it reads the entries and their
// attachments through l.Access(req.Who, req.Why).For("export"), proves them against a
// checkpoint that covers them and that checkpoint consistent with the newest, renders the
// formats asked for, and writes the bundle into a staging directory beside dir, renamed to dir
// once whole. A failed export leaves no bundle and no staging directory: its files are
// overwritten with zeros and removed. (A crash of the process part way can leave the staging
// directory, named "."+base(dir)+".staging-*", for the operator to remove.)
func Write(ctx context.Context, l *ledger.Ledger, dir string, req Request) (*Summary, error) {
	idx, err := check(l, req)
	if err != nil {
		return nil, err
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	pr := &progress{fn: req.Progress}
	files, sum, err := build(ctx, l, idx, req, pr)
	if err != nil {
		return nil, err
	}
	if err := publish(ctx, dir, files, pr); err != nil {
		return nil, err
	}
	sum.Dir = dir
	return sum, nil
}

// Bundle is an export built in memory: what Write writes to a directory, for a server that
// streams it (WriteZip) with no file of it on its own disk.
type Bundle struct {
	Summary
	files map[string][]byte
}

// Build reads, proves and renders the entries req selects from l, as Write does (recording
// the reads first), and keeps the bundle in memory.
func Build(ctx context.Context, l *ledger.Ledger, req Request) (*Bundle, error) {
	idx, err := check(l, req)
	if err != nil {
		return nil, err
	}
	files, sum, err := build(ctx, l, idx, req, &progress{fn: req.Progress})
	if err != nil {
		return nil, err
	}
	return &Bundle{Summary: *sum, files: files}, nil
}

// WriteZip writes the bundle to w as a zip. An error part way leaves the zip without its
// central directory, which zip readers refuse.
func (b *Bundle) WriteZip(w io.Writer) error {
	zw := zip.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(b.files)) {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: b.When})
		if err == nil {
			_, err = fw.Write(b.files[name])
		}
		if err != nil {
			return fmt.Errorf("export: zip: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("export: zip: %w", err)
	}
	return nil
}

// build reads, proves and renders the entries idx, and returns every file of the bundle,
// the signed manifest included.
func build(ctx context.Context, l *ledger.Ledger, idx []uint64, req Request, pr *progress) (map[string][]byte, *Summary, error) {
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	when := now().UTC()

	acc := l.Access(req.Who, req.Why).For("export")
	entries, err := read(ctx, acc, idx, pr)
	if err != nil {
		return nil, nil, err
	}
	if entries, err = citeShreds(ctx, l, entries); err != nil {
		return nil, nil, err
	}
	for _, x := range entries {
		if !x.shredded {
			if x.line, err = verify.BundleLine(x.e.Index, x.e.Leaf.Kind, x.e.Body); err != nil {
				return nil, nil, fmt.Errorf("export: entry %d: %w", x.e.Index, err)
			}
		}
	}
	anch, err := latestAnchors(ctx, l)
	if err != nil {
		return nil, nil, err
	}
	cp, parsed, err := prove(ctx, l, entries, anch, pr)
	if err != nil {
		return nil, nil, err
	}
	got := fetched(entries)
	blobs, err := attachments(ctx, acc, entries, got)
	if err != nil {
		return nil, nil, err
	}
	latest, latestSize, consistency, err := extend(ctx, l, parsed)
	if err != nil {
		return nil, nil, err
	}
	files, sum, err := render(entries, cp, blobs)
	if err != nil {
		return nil, nil, err
	}
	files[verify.BundleLatestCheckpoint], files[verify.BundleConsistency] = latest, consistency
	if err := anch.evidence(ctx, l, parsed.Size, latestSize, files); err != nil {
		return nil, nil, err
	}
	if err := renderings(files, entries, blobs, got, req, l.Origin(), parsed.Size); err != nil {
		return nil, nil, err
	}
	man := verify.BundleManifestData{
		Format: verify.BundleFormat, Origin: l.Origin(), TreeSize: parsed.Size, VerifierKey: l.VerifierKey(),
		Request: verify.BundleRequest{Who: req.Who, Why: req.Why, When: when, Indexes: len(entries), Query: req.Query, Formats: req.Formats},
	}
	if err := signManifest(files, &man, req.Signer); err != nil {
		return nil, nil, err
	}
	sum.TreeSize, sum.Checkpoint, sum.When = parsed.Size, cp, when
	return files, sum, nil
}

// signManifest lists files in man, and adds manifest.json and its signature to files.
func signManifest(files map[string][]byte, man *verify.BundleManifestData, signer note.Signer) error {
	for _, name := range slices.Sorted(maps.Keys(files)) {
		h := sha256.Sum256(files[name])
		man.Files = append(man.Files, verify.BundleFileDigest{Path: name, Size: int64(len(files[name])), SHA256: hex.EncodeToString(h[:])})
	}
	mb, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("export: manifest: %w", err)
	}
	mb = append(mb, '\n')
	mh := sha256.Sum256(mb)
	sig, err := note.Sign(&note.Note{Text: hex.EncodeToString(mh[:]) + "\n"}, signer)
	if err != nil {
		return fmt.Errorf("export: signing the manifest: %w", err)
	}
	files[verify.BundleManifest], files[verify.BundleManifestSig] = mb, sig
	return nil
}

// check validates the request and the directory, and returns the sorted, unique indexes.
func check(l *ledger.Ledger, req Request) ([]uint64, error) {
	if req.Who == "" || req.Why == "" {
		return nil, fmt.Errorf("%w: who and why are required", ErrBadRequest)
	}
	if len(req.Indexes) == 0 {
		return nil, fmt.Errorf("%w: no entries selected", ErrBadRequest)
	}
	if req.Signer == nil {
		return nil, fmt.Errorf("%w: no signer for the manifest", ErrBadRequest)
	}
	for _, f := range req.Formats {
		if f != FormatJSONL && f != FormatRSMF && f != FormatEML {
			return nil, fmt.Errorf("%w: unknown format %q (want %s, %s or %s)", ErrBadRequest, f, FormatRSMF, FormatEML, FormatJSONL)
		}
	}
	if err := checkSigner(l, req.Signer); err != nil {
		return nil, err
	}
	idx := slices.Clone(req.Indexes)
	slices.Sort(idx)
	idx = slices.Compact(idx)
	if size := l.Size(); idx[len(idx)-1] >= size {
		return nil, fmt.Errorf("export: %w: %d (size %d)", ledger.ErrNotFound, idx[len(idx)-1], size)
	}
	return idx, nil
}

// CheckDir reports whether dir can take a bundle, before anything is built: nil for a new or
// empty directory, ErrNotEmpty (wrapped) for one that holds anything, and the error of reading
// it otherwise (a file, a directory that cannot be read).
func CheckDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("export: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
	}
	return nil
}

// checkSigner makes sure s is the ledger's checkpoint key, so that the manifest verifies with
// the key the checkpoints do.
func checkSigner(l *ledger.Ledger, s note.Signer) error {
	v, err := seal.NewVerifier(l.VerifierKey())
	if err != nil {
		return fmt.Errorf("export: ledger verifier key: %w", err)
	}
	probe, err := note.Sign(&note.Note{Text: "commseal export signer check\n"}, s)
	if err != nil {
		return fmt.Errorf("%w: signer: %v", ErrBadRequest, err)
	}
	if _, err := note.Open(probe, note.VerifierList(v)); err != nil {
		return fmt.Errorf("%w: the signer is not the ledger's checkpoint key", ErrBadRequest)
	}
	return nil
}

// read reads the entries through an accessor, one Read: one access entry for the whole
// selection, naming every entry.
func read(ctx context.Context, acc *ledger.Accessor, idx []uint64, pr *progress) ([]*exported, error) {
	var out []*exported
	pr.start("read", len(idx))
	err := acc.Read(ctx, idx, func(e *ledger.Entry, err error) error {
		pr.step("read", len(idx))
		switch {
		case err == nil:
			if e.Body == nil { // a read checks Salt and Body against the commitment
				return fmt.Errorf("export: entry %d: no opening of its commitment", e.Index)
			}
			out = append(out, &exported{e: e})
		case errors.Is(err, ledger.ErrShredded):
			out = append(out, &exported{e: e, shredded: true})
		default:
			return fmt.Errorf("export: reading entry %d: %w", e.Index, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if len(out) != len(idx) {
		return nil, fmt.Errorf("export: read %d entries of %d", len(out), len(idx))
	}
	return out, nil
}

// citeShreds adds to the entries the shred entry of each shredded entry's key (sealed when
// retention destroyed it; plain, like every audit entry, so reading it is no access) and has
// the shredded entry cite it.
func citeShreds(ctx context.Context, l *ledger.Ledger, entries []*exported) ([]*exported, error) {
	have := map[uint64]bool{}
	for _, x := range entries {
		have[x.e.Index] = true
	}
	byKey := map[string]*uint64{}
	for _, x := range entries {
		if !x.shredded {
			continue
		}
		at, done := byKey[x.e.Leaf.KeyID]
		if !done {
			s, err := l.ShredEntry(ctx, x.e.Leaf.KeyID)
			if err != nil {
				return nil, fmt.Errorf("export: the shred entry of entry %d: %w", x.e.Index, err)
			}
			if s != nil {
				at = &s.Index
			}
			byKey[x.e.Leaf.KeyID] = at
		}
		x.shredEntry = at
		if at == nil || have[*at] {
			continue
		}
		e, err := l.Get(ctx, *at)
		if err != nil {
			return nil, fmt.Errorf("export: reading shred entry %d: %w", *at, err)
		}
		have[*at] = true
		entries = append(entries, &exported{e: e})
	}
	slices.SortFunc(entries, func(a, b *exported) int { return cmp.Compare(a.e.Index, b.e.Index) })
	return entries, nil
}

// prove proves each entry, with the leaf bytes read, against the latest anchored checkpoint
// if it covers them all (its time-stamps and cosignatures then speak for the bundle's own
// checkpoint), else against a checkpoint it signs now; checkpoints signed meanwhile do not
// matter.
func prove(ctx context.Context, l *ledger.Ledger, entries []*exported, anch *anchorSet, pr *progress) ([]byte, seal.Checkpoint, error) {
	var cp []byte
	var parsed seal.Checkpoint
	if anch != nil && anch.covers(entries) {
		cp, parsed = anch.note, anch.cp
	} else {
		var err error
		if cp, parsed, err = l.SignCheckpoint(ctx); err != nil {
			return nil, parsed, fmt.Errorf("export: signing a checkpoint: %w", err)
		}
	}
	pr.start("prove", len(entries))
	for _, x := range entries {
		pr.step("prove", len(entries))
		hs, err := l.InclusionProof(ctx, x.e.Index, parsed.Size)
		if err != nil {
			return nil, parsed, fmt.Errorf("export: proving entry %d: %w", x.e.Index, err)
		}
		x.proof = &seal.Proof{Index: x.e.Index, Hashes: hs, Checkpoint: cp, Extra: x.e.LeafData}
	}
	return cp, parsed, nil
}

// attachmentRef names attachment i of a message.
type attachmentRef struct {
	msg capture.Identity
	i   int
}

// fetched returns, for the attachments of messages that name them only by a download code,
// the media records among the exported entries that name their content.
func fetched(entries []*exported) map[attachmentRef]capture.MediaResult {
	out := map[attachmentRef]capture.MediaResult{}
	for _, x := range entries {
		r := x.e.Record
		if x.shredded || r == nil || r.Kind != capture.RecordMedia || r.About == nil || len(x.line.Attachments) == 0 {
			continue // x.line names content only for a stored attachment with a well-formed SHA-256
		}
		var m capture.MediaResult
		if json.Unmarshal(r.Body, &m) == nil {
			out[attachmentRef{*r.About, m.Attachment}] = m
		}
	}
	return out
}

// attachments reads, through acc (each read sealed as an access entry first), the content of
// every attachment the opened entries name (messages, and the media records of attachments
// fetched after capture), keyed by its SHA-256 in lowercase hex. Content the ledger does not
// hold (never fetched, or its key destroyed) is left out and counted on the entry; content
// that does not hash to its name is an error. got is what fetched returns for entries.
func attachments(ctx context.Context, acc *ledger.Accessor, entries []*exported, got map[attachmentRef]capture.MediaResult) (map[string][]byte, error) {
	want := map[[32]byte][]*exported{} // attachment -> the entries naming it
	var sums [][32]byte
	for _, x := range entries {
		if x.shredded {
			continue
		}
		for k, a := range x.line.Attachments {
			sum, err := hex.DecodeString(a.SHA256)
			if err != nil || len(sum) != sha256.Size || hex.EncodeToString(sum) != a.SHA256 {
				if m := x.e.Message; m != nil {
					if _, ok := got[attachmentRef{m.Identity(), k}]; ok {
						continue // its media record, exported too, names the content
					}
				}
				x.unavailable++
				continue
			}
			if want[[32]byte(sum)] == nil {
				sums = append(sums, [32]byte(sum))
			}
			want[[32]byte(sum)] = append(want[[32]byte(sum)], x)
		}
	}
	blobs := map[string][]byte{}
	err := acc.Blobs(ctx, sums, func(sum [32]byte, b []byte, err error) error {
		switch {
		case errors.Is(err, capture.ErrBlobNotFound) || errors.Is(err, ledger.ErrShredded):
			for _, x := range want[sum] {
				x.unavailable++
			}
			return nil
		case err != nil:
			return fmt.Errorf("export: entry %d: attachment %x: %w", want[sum][0].e.Index, sum, err)
		}
		if got := sha256.Sum256(b); got != sum {
			return fmt.Errorf("export: entry %d: attachment %x: the ledger returned content of another SHA-256", want[sum][0].e.Index, sum)
		}
		blobs[hex.EncodeToString(sum[:])] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return blobs, nil
}

// renderings adds the files of the formats req names to files; got is what fetched returns
// for entries.
func renderings(files map[string][]byte, entries []*exported, blobs map[string][]byte, got map[attachmentRef]capture.MediaResult, req Request, origin string, size uint64) error {
	if !slices.Contains(req.Formats, FormatRSMF) && !slices.Contains(req.Formats, FormatEML) {
		return nil
	}
	ts := transcripts(entries, blobs, got)
	if slices.Contains(req.Formats, FormatRSMF) {
		rs, err := renderRSMF(ts, rsmfContext{origin: origin, treeSize: size, custodian: req.Custodian, maxEvents: MaxRSMFEvents})
		if err != nil {
			return err
		}
		maps.Copy(files, rs)
	}
	if slices.Contains(req.Formats, FormatEML) {
		es, err := renderEML(ts, emlContext{origin: origin, treeSize: size})
		if err != nil {
			return err
		}
		maps.Copy(files, es)
	}
	return nil
}

// extend returns the newest signed checkpoint, signing one if entries were appended since cp
// (the export's own access entries, or a writer's), and the evidence/consistency proof from cp
// to it.
func extend(ctx context.Context, l *ledger.Ledger, cp seal.Checkpoint) ([]byte, uint64, []byte, error) {
	signed, latest, err := l.SignCheckpoint(ctx)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("export: signing the latest checkpoint: %w", err)
	}
	p, err := consistency(ctx, l, cp.Size, latest.Size)
	return signed, latest.Size, p, err
}

// consistency returns the BundleConsistencyProof from tree size old to size.
func consistency(ctx context.Context, l *ledger.Ledger, old, size uint64) ([]byte, error) {
	p := verify.BundleConsistencyProof{OldSize: old, NewSize: size}
	if old != size {
		var err error
		if p.Hashes, err = l.ConsistencyProof(ctx, old, size); err != nil {
			return nil, fmt.Errorf("export: proving %d consistent with %d: %w", old, size, err)
		}
	}
	return p.Marshal(), nil
}

// render returns every file but the manifest and its signature.
func render(entries []*exported, cp []byte, blobs map[string][]byte) (map[string][]byte, *Summary, error) {
	files := map[string][]byte{verify.BundleCheckpoint: cp, verify.BundleReadme: []byte(readme)}
	for h, b := range blobs {
		files[verify.BundleAttachmentPath(h)] = b
	}
	var msgs, opens []byte
	sum := &Summary{Entries: len(entries), Attachments: len(blobs)}
	for _, x := range entries {
		files[verify.BundleProofPath(x.e.Index)] = x.proof.Marshal()
		line := messageLine(x, blobs)
		b, err := json.Marshal(&line)
		if err != nil {
			return nil, nil, fmt.Errorf("export: entry %d: %w", x.e.Index, err)
		}
		msgs = append(append(msgs, b...), '\n')
		sum.Unavailable += x.unavailable
		if x.shredded {
			sum.Shredded++
			continue
		}
		sum.Opened++
		b, err = json.Marshal(&verify.BundleOpening{Index: x.e.Index, Salt: x.e.Salt[:], Plaintext: x.e.Body})
		if err != nil {
			return nil, nil, fmt.Errorf("export: entry %d: %w", x.e.Index, err)
		}
		opens = append(append(opens, b...), '\n')
	}
	files[verify.BundleMessages] = msgs
	files[verify.BundleOpenings] = opens
	return files, sum, nil
}

// messageLine is the entry's messages.jsonl line: what verify.BundleLine derives from the
// opened plaintext, the one mapping the checker applies too; a shredded entry's says so.
// Attachments whose content is in the bundle get their path.
func messageLine(x *exported, blobs map[string][]byte) verify.BundleMessage {
	if x.shredded {
		return verify.BundleMessage{Index: x.e.Index, Kind: x.e.Leaf.Kind.String(), Shredded: true, ShredEntry: x.shredEntry}
	}
	m := x.line
	m.Attachments = slices.Clone(m.Attachments)
	for k, a := range m.Attachments {
		if _, ok := blobs[a.SHA256]; ok {
			m.Attachments[k].Path = verify.BundleAttachmentPath(a.SHA256)
		}
	}
	return m
}
