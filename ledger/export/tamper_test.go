package export_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

// copyDir copies a bundle so that each case tampers with its own.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	require.NoError(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(src, p)
		require.NoError(t, err)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	}))
	return dst
}

func flip(t *testing.T, dir, name string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x01
	require.NoError(t, os.WriteFile(p, b, 0o600))
}

func rewrite(t *testing.T, dir, name string, fn func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, fn(b), 0o600))
}

// resign plays an exporter who holds the signing key and lies: it lists the bundle's files as
// they are now and signs the manifest again, so that only the evidence itself can tell.
func resign(t *testing.T, f *fixture, dir string) {
	t.Helper()
	mp := filepath.Join(dir, verify.BundleManifest)
	b, err := os.ReadFile(mp)
	require.NoError(t, err)
	var man verify.BundleManifestData
	require.NoError(t, json.Unmarshal(b, &man))
	for i, fd := range man.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(fd.Path)))
		require.NoError(t, err)
		h := sha256.Sum256(data)
		man.Files[i].Size, man.Files[i].SHA256 = int64(len(data)), hex.EncodeToString(h[:])
	}
	b, err = json.Marshal(&man)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mp, b, 0o600))
	h := sha256.Sum256(b)
	sig, err := note.Sign(&note.Note{Text: hex.EncodeToString(h[:]) + "\n"}, f.keys.Signer)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mp+".sig", sig, 0o600))
}

// swapOpenings gives entry a's opening line the salt and plaintext of entry b.
func swapOpenings(t *testing.T, dir string, a, b uint64) {
	rewrite(t, dir, verify.BundleOpenings, func(data []byte) []byte {
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		ops := make([]verify.BundleOpening, len(lines))
		var ia, ib = -1, -1
		for i, l := range lines {
			require.NoError(t, json.Unmarshal([]byte(l), &ops[i]))
			switch ops[i].Index {
			case a:
				ia = i
			case b:
				ib = i
			}
		}
		require.True(t, ia >= 0 && ib >= 0)
		ops[ia].Salt, ops[ia].Plaintext = ops[ib].Salt, ops[ib].Plaintext
		var out []byte
		for _, o := range ops {
			l, err := json.Marshal(&o)
			require.NoError(t, err)
			out = append(append(out, l...), '\n')
		}
		return out
	})
}

func swapFiles(t *testing.T, dir, a, b string) {
	pa, pb := filepath.Join(dir, filepath.FromSlash(a)), filepath.Join(dir, filepath.FromSlash(b))
	da, err := os.ReadFile(pa)
	require.NoError(t, err)
	db, err := os.ReadFile(pb)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(pa, db, 0o600))
	require.NoError(t, os.WriteFile(pb, da, 0o600))
}

func TestBundleTamperMatrix(t *testing.T) {
	f := newFixture(t)
	good := f.export(t)
	p0, p1 := verify.BundleProofPath(f.msgs[0]), verify.BundleProofPath(f.msgs[1])
	pdf, png := verify.BundleAttachmentPath(sha256hex(f.pdf)), verify.BundleAttachmentPath(sha256hex(f.png))
	rsmfs, err := filepath.Glob(filepath.Join(good, "rsmf", "*.rsmf"))
	require.NoError(t, err)
	emls, err := filepath.Glob(filepath.Join(good, "eml", "*.eml"))
	require.NoError(t, err)
	require.NotEmpty(t, rsmfs)
	require.NotEmpty(t, emls)
	rsmf, eml := "rsmf/"+filepath.Base(rsmfs[0]), "eml/"+filepath.Base(emls[0])
	cases := []struct {
		name   string
		tamper func(dir string)
		files  []string // the file the error may name
		resign bool     // the tamperer re-signs the manifest
	}{
		{"flip messages", func(d string) { flip(t, d, verify.BundleMessages) }, []string{verify.BundleMessages}, false},
		{"flip checkpoint", func(d string) { flip(t, d, verify.BundleCheckpoint) }, []string{verify.BundleCheckpoint}, false},
		{"flip proof", func(d string) { flip(t, d, p0) }, []string{p0}, false},
		{"flip openings", func(d string) { flip(t, d, verify.BundleOpenings) }, []string{verify.BundleOpenings}, false},
		{"flip latest checkpoint", func(d string) { flip(t, d, verify.BundleLatestCheckpoint) }, []string{verify.BundleLatestCheckpoint}, false},
		{"flip consistency", func(d string) { flip(t, d, verify.BundleConsistency) }, []string{verify.BundleConsistency}, false},
		{"flip readme", func(d string) { flip(t, d, verify.BundleReadme) }, []string{verify.BundleReadme}, false},
		{"flip manifest", func(d string) { flip(t, d, verify.BundleManifest) }, []string{verify.BundleManifest}, false},
		{"flip manifest signature", func(d string) { flip(t, d, verify.BundleManifestSig) }, []string{verify.BundleManifestSig}, false},
		{"flip attachment", func(d string) { flip(t, d, pdf) }, []string{pdf}, false},
		{"flip rsmf", func(d string) { flip(t, d, rsmf) }, []string{rsmf}, false},
		{"flip eml", func(d string) { flip(t, d, eml) }, []string{eml}, false},
		{"delete rsmf", func(d string) { require.NoError(t, os.Remove(filepath.Join(d, rsmf))) }, []string{rsmf}, false},
		{"add eml", func(d string) {
			require.NoError(t, os.WriteFile(filepath.Join(d, "eml", "forged.eml"), []byte("From: x\r\n\r\nhi\r\n"), 0o600))
		}, []string{"eml/forged.eml"}, false},
		{"delete attachment", func(d string) { require.NoError(t, os.Remove(filepath.Join(d, png))) }, []string{png}, false},
		{"delete proof", func(d string) { require.NoError(t, os.Remove(filepath.Join(d, p1))) }, []string{p1}, false},
		{"delete messages", func(d string) { require.NoError(t, os.Remove(filepath.Join(d, verify.BundleMessages))) }, []string{verify.BundleMessages}, false},
		{"delete manifest signature", func(d string) { require.NoError(t, os.Remove(filepath.Join(d, verify.BundleManifestSig))) }, []string{verify.BundleManifestSig}, false},
		{"add file", func(d string) {
			require.NoError(t, os.WriteFile(filepath.Join(d, "evidence", "note.txt"), []byte("trust me"), 0o600))
		}, []string{"evidence/note.txt"}, false},
		{"swap proofs", func(d string) { swapFiles(t, d, p0, p1) }, []string{p0, p1}, false},
		{"swap openings", func(d string) { swapOpenings(t, d, f.msgs[0], f.msgs[1]) }, []string{verify.BundleOpenings}, false},

		// A tamperer who holds the key and re-signs the manifest: the evidence itself tells.
		{"re-signed flip checkpoint", func(d string) { flip(t, d, verify.BundleCheckpoint) }, []string{verify.BundleCheckpoint}, true},
		{"re-signed flip proof", func(d string) { flip(t, d, p0) }, []string{p0}, true},
		{"re-signed flip latest checkpoint", func(d string) { flip(t, d, verify.BundleLatestCheckpoint) }, []string{verify.BundleLatestCheckpoint}, true},
		{"re-signed flip consistency", func(d string) { flip(t, d, verify.BundleConsistency) }, []string{verify.BundleConsistency}, true},
		{"re-signed consistency of other sizes", func(d string) {
			rewrite(t, d, verify.BundleConsistency, func(b []byte) []byte {
				first, rest, _ := strings.Cut(string(b), "\n")
				old, _, _ := strings.Cut(first, " ")
				return []byte(old + " 999999\n" + rest)
			})
		}, []string{verify.BundleConsistency}, true},
		{"re-signed latest checkpoint by another key", func(d string) {
			rewrite(t, d, verify.BundleLatestCheckpoint, func(b []byte) []byte {
				cp, err := seal.OpenCheckpoint(b, f.keys.Verifier)
				require.NoError(t, err)
				signed, err := seal.SignCheckpoint(cp, otherSigner(t).Signer)
				require.NoError(t, err)
				return signed
			})
		}, []string{verify.BundleLatestCheckpoint}, true},
		{"re-signed flip attachment", func(d string) { flip(t, d, pdf) }, []string{pdf}, true},
		{"re-signed swap attachments", func(d string) { swapFiles(t, d, pdf, png) }, []string{pdf, png}, true},
		{"re-signed message names another attachment", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"path":"`+pdf, `"path":"`+png, 1))
			})
		}, []string{verify.BundleMessages}, true},
		{"re-signed message drops an attachment path", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `,"path":"`+png+`"`, "", 1))
			})
		}, []string{png}, true},
		{"re-signed shredded entry cites another entry", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), fmt.Sprintf(`"shred_entry":%d`, f.shredEntry), fmt.Sprintf(`"shred_entry":%d`, f.msgs[0]), 1))
			})
		}, []string{verify.BundleMessages}, true},
		{"re-signed shredded entry cites no shred entry", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), fmt.Sprintf(`,"shred_entry":%d`, f.shredEntry), "", 1))
			})
		}, []string{verify.BundleMessages}, true},
		{"re-signed swap proofs", func(d string) { swapFiles(t, d, p0, p1) }, []string{p0, p1}, true},
		{"re-signed swap openings", func(d string) { swapOpenings(t, d, f.msgs[0], f.msgs[1]) }, []string{verify.BundleOpenings}, true},
		{"re-signed edit message text", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), "BUY 2 lots", "SELL 2 lots", 1))
			})
		}, []string{verify.BundleMessages}, true},
		{"re-signed drop a message line", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				lines := strings.SplitAfter(string(b), "\n")
				return []byte(strings.Join(append(lines[:1], lines[2:]...), ""))
			})
		}, []string{verify.BundleMessages}, true},
		{"re-signed openings without final newline", func(d string) {
			rewrite(t, d, verify.BundleOpenings, func(b []byte) []byte { return b[:len(b)-1] })
		}, []string{verify.BundleOpenings}, true},
		{"re-signed empty line in messages", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte { return append([]byte("\n"), b...) })
		}, []string{verify.BundleMessages}, true},
		{"re-signed opening of an entry not proved", func(d string) {
			rewrite(t, d, verify.BundleOpenings, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), fmt.Sprintf(`{"index":%d,`, f.msgs[0]), `{"index":999,`, 1))
			})
		}, []string{verify.BundleOpenings}, true},
		{"re-signed unshred claim", func(d string) {
			rewrite(t, d, verify.BundleMessages, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `,"shredded":true`, "", 1))
			})
		}, []string{verify.BundleMessages}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, good)
			_, err := verify.Bundle(dir, f.keys.VerifierKey)
			require.NoError(t, err, "the copy checks before tampering")
			c.tamper(dir)
			if c.resign {
				resign(t, f, dir)
			}
			_, err = verify.Bundle(dir, f.keys.VerifierKey)
			require.Error(t, err)
			require.True(t, verify.Altered(err), "altered: %v", err)
			var be *verify.BundleError
			require.True(t, errors.As(err, &be), "a *BundleError: %v", err)
			require.Contains(t, c.files, be.File, "names the file: %v", err)
			require.Contains(t, err.Error(), be.File)
			t.Log(err)
		})
	}
}

func TestBundleWrongKeyIsNotAltered(t *testing.T) {
	f := newFixture(t)
	dir := f.export(t)
	_, err := verify.Bundle(dir, "not a key")
	require.Error(t, err)
	require.False(t, verify.Altered(err))
	_, err = verify.Bundle(filepath.Join(dir, "nope"), f.keys.VerifierKey)
	require.Error(t, err)
	require.False(t, verify.Altered(err))
	// Another ledger's key: the manifest signature does not verify.
	_, err = verify.Bundle(dir, otherSigner(t).VerifierKey)
	require.True(t, verify.Altered(err))
}
