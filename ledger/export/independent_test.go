package export_test

// This file checks a bundle the way README.txt tells an outsider to: with crypto/sha256,
// encoding/*, golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, and nothing of
// commseal.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func independentCheck(dir, vkey string) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	}); err != nil {
		return err
	}

	// 1. The manifest signature.
	n, err := note.Open(files["manifest.json.sig"], note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("manifest.json.sig: %w", err)
	}
	mh := sha256.Sum256(files["manifest.json"])
	if n.Text != hex.EncodeToString(mh[:])+"\n" {
		return fmt.Errorf("manifest.json: hash is not the signed one")
	}
	var man struct {
		Origin   string `json:"origin"`
		TreeSize int64  `json:"tree_size"`
		Files    []struct {
			Path   string `json:"path"`
			Size   int    `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil {
		return err
	}

	// 2. Exactly the listed files.
	listed := map[string]bool{"manifest.json": true, "manifest.json.sig": true}
	for _, f := range man.Files {
		listed[f.Path] = true
		b, ok := files[f.Path]
		h := sha256.Sum256(b)
		if !ok || len(b) != f.Size || hex.EncodeToString(h[:]) != f.SHA256 {
			return fmt.Errorf("%s: missing or altered", f.Path)
		}
	}
	for name := range files {
		if !listed[name] {
			return fmt.Errorf("%s: not listed", name)
		}
	}

	// 3. The checkpoint.
	cpb := files["evidence/checkpoint"]
	cn, err := note.Open(cpb, note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("evidence/checkpoint: %w", err)
	}
	origin, size, root, err := checkpointText(cn.Text)
	if err != nil || origin != man.Origin || size != man.TreeSize {
		return fmt.Errorf("evidence/checkpoint: origin or size")
	}

	// 3b. The newest checkpoint and the consistency proof to it.
	if err := independentConsistency(files, v, origin, size, root); err != nil {
		return err
	}

	// 4. The proofs.
	leaves := map[int64][]byte{}
	for name, b := range files {
		if !strings.HasPrefix(name, "evidence/proofs/") {
			continue
		}
		head, cp, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok || !bytes.Equal(cp, cpb) {
			return fmt.Errorf("%s: not against evidence/checkpoint", name)
		}
		lines := strings.Split(string(head), "\n")
		if lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "extra ") || !strings.HasPrefix(lines[2], "index ") {
			return fmt.Errorf("%s: malformed", name)
		}
		leaf, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		idx, err := strconv.ParseInt(strings.TrimPrefix(lines[2], "index "), 10, 64)
		if err != nil || name != fmt.Sprintf("evidence/proofs/%d.tlog-proof", idx) {
			return fmt.Errorf("%s: index", name)
		}
		var proof tlog.RecordProof
		for _, l := range lines[3:] {
			h, err := base64.StdEncoding.DecodeString(l)
			if err != nil || len(h) != 32 {
				return fmt.Errorf("%s: hash", name)
			}
			proof = append(proof, tlog.Hash(h))
		}
		if err := tlog.CheckRecord(proof, size, root, idx, tlog.RecordHash(leaf)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(leaf) < 154 || leaf[0] != 1 || int64(binary.BigEndian.Uint64(leaf[2:10])) != idx {
			return fmt.Errorf("%s: leaf", name)
		}
		leaves[idx] = leaf
	}

	// 5. The openings.
	plain := map[int64][]byte{}
	for _, l := range strings.Split(strings.TrimSuffix(string(files["evidence/openings.jsonl"]), "\n"), "\n") {
		var o struct {
			Index     int64  `json:"index"`
			Salt      string `json:"salt"`
			Plaintext string `json:"plaintext"`
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			return fmt.Errorf("openings: %w", err)
		}
		salt, err1 := base64.StdEncoding.DecodeString(o.Salt)
		pt, err2 := base64.StdEncoding.DecodeString(o.Plaintext)
		leaf, ok := leaves[o.Index]
		if err1 != nil || err2 != nil || len(salt) != 32 || !ok {
			return fmt.Errorf("openings: entry %d malformed", o.Index)
		}
		h := sha256.New()
		h.Write([]byte("commseal/commitment/v1\x00"))
		h.Write(salt)
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(pt))))
		h.Write(pt)
		if !bytes.Equal(h.Sum(nil), leaf[122:154]) {
			return fmt.Errorf("openings: entry %d does not open its commitment", o.Index)
		}
		plain[o.Index] = pt
	}

	// 6. The messages say what the plaintext says.
	for _, l := range strings.Split(strings.TrimSuffix(string(files["messages.jsonl"]), "\n"), "\n") {
		var m struct {
			Index       int64  `json:"index"`
			Shredded    bool   `json:"shredded"`
			SourceID    string `json:"source_id"`
			Text        string `json:"text"`
			Attachments []struct {
				SHA256 string `json:"sha256"`
				Path   string `json:"path"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		for _, a := range m.Attachments {
			if a.Path == "" {
				continue
			}
			h := sha256.Sum256(files[a.Path])
			if _, ok := files[a.Path]; !ok || hex.EncodeToString(h[:]) != a.SHA256 {
				return fmt.Errorf("%s: not the content entry %d names", a.Path, m.Index)
			}
		}
		pt, ok := plain[m.Index]
		if _, proved := leaves[m.Index]; !proved || ok == m.Shredded {
			return fmt.Errorf("messages: entry %d has no proof, or an opening and shredded disagree", m.Index)
		}
		if m.Shredded {
			continue
		}
		var p struct {
			ID   string `json:"id"`
			Text string `json:"text"`
			Body []byte `json:"body"` // a record's JSON document (a media record's names the content)
		}
		if err := json.Unmarshal(pt, &p); err != nil || p.ID != m.SourceID || p.Text != m.Text {
			return fmt.Errorf("messages: entry %d differs from its plaintext", m.Index)
		}
		for _, a := range m.Attachments {
			quoted := []byte(`"` + a.SHA256 + `"`)
			if a.Path != "" && !bytes.Contains(pt, quoted) && !bytes.Contains(p.Body, quoted) {
				return fmt.Errorf("messages: entry %d names content %s its plaintext does not", m.Index, a.SHA256)
			}
		}
	}
	return nil
}

// checkpointText parses a C2SP checkpoint's text: origin, size, base64 root.
func checkpointText(text string) (string, int64, tlog.Hash, error) {
	cl := strings.Split(text, "\n")
	if len(cl) < 4 {
		return "", 0, tlog.Hash{}, fmt.Errorf("short checkpoint")
	}
	size, err := strconv.ParseInt(cl[1], 10, 64)
	if err != nil {
		return "", 0, tlog.Hash{}, err
	}
	rootb, err := base64.StdEncoding.DecodeString(cl[2])
	if err != nil || len(rootb) != 32 {
		return "", 0, tlog.Hash{}, fmt.Errorf("root")
	}
	return cl[0], size, tlog.Hash(rootb), nil
}

// independentConsistency checks evidence/latest-checkpoint and evidence/consistency as
// README.txt says: sizes on the first line, base64 hashes after, tlog.CheckTree.
func independentConsistency(files map[string][]byte, v note.Verifier, origin string, size int64, root tlog.Hash) error {
	ln, err := note.Open(files["evidence/latest-checkpoint"], note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("evidence/latest-checkpoint: %w", err)
	}
	lorigin, lsize, lroot, err := checkpointText(ln.Text)
	if err != nil || lorigin != origin {
		return fmt.Errorf("evidence/latest-checkpoint: malformed or another origin")
	}
	lines := strings.Split(strings.TrimSuffix(string(files["evidence/consistency"]), "\n"), "\n")
	if lines[0] != fmt.Sprintf("%d %d", size, lsize) {
		return fmt.Errorf("evidence/consistency: sizes %q, checkpoints %d and %d", lines[0], size, lsize)
	}
	var proof tlog.TreeProof
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != 32 {
			return fmt.Errorf("evidence/consistency: hash")
		}
		proof = append(proof, tlog.Hash(h))
	}
	if lsize == size {
		if len(proof) != 0 || lroot != root {
			return fmt.Errorf("evidence/consistency: same size, another root or a proof")
		}
		return nil
	}
	if err := tlog.CheckTree(proof, lsize, lroot, size, root); err != nil {
		return fmt.Errorf("evidence/consistency: %w", err)
	}
	return nil
}

func TestBundleChecksWithoutCommseal(t *testing.T) {
	f := newFixture(t)
	dir := f.export(t)
	require.NoError(t, independentCheck(dir, f.keys.VerifierKey))

	// The checker is not a rubber stamp: a re-signed bundle with swapped openings, or an
	// edited message, fails it too.
	bad := copyDir(t, dir)
	swapOpenings(t, bad, f.msgs[0], f.msgs[1])
	resign(t, f, bad)
	require.ErrorContains(t, independentCheck(bad, f.keys.VerifierKey), "does not open its commitment")
	bad = copyDir(t, dir)
	rewrite(t, bad, "messages.jsonl", func(b []byte) []byte {
		return []byte(strings.Replace(string(b), "BUY 2 lots", "SELL 2 lots", 1))
	})
	resign(t, f, bad)
	require.ErrorContains(t, independentCheck(bad, f.keys.VerifierKey), "differs from its plaintext")
	bad = copyDir(t, dir)
	flip(t, bad, fmt.Sprintf("evidence/proofs/%d.tlog-proof", f.msgs[1]))
	require.ErrorContains(t, independentCheck(bad, f.keys.VerifierKey), "missing or altered")
	bad = copyDir(t, dir)
	flip(t, bad, "attachments/"+sha256hex(f.png))
	resign(t, f, bad)
	require.ErrorContains(t, independentCheck(bad, f.keys.VerifierKey), "not the content entry")
}
