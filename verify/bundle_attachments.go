package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
)

// attachmentPaths checks the paths m gives its attachments: each is BundleAttachmentPath of
// the attachment's SHA-256 and names a file of the bundle. It records them in named and clears
// them in m, so that m can be compared with what BundleLine derives from the plaintext (which
// knows no paths).
func attachmentPaths(m *BundleMessage, files map[string][]byte, named map[string]uint64) error {
	for k := range m.Attachments {
		a := &m.Attachments[k]
		if a.Path == "" {
			continue
		}
		if a.Path != BundleAttachmentPath(a.SHA256) {
			return badEntry(BundleMessages, m.Index, "attachment path "+a.Path+" is not named by its SHA-256", nil)
		}
		if _, ok := files[a.Path]; !ok {
			return badEntry(BundleMessages, m.Index, "names attachment "+a.Path+", which the bundle lacks", nil)
		}
		if _, ok := named[a.Path]; !ok {
			named[a.Path] = m.Index
		}
		a.Path = ""
	}
	return nil
}

// checkAttachments checks every file under BundleAttachmentDir: a message names it, and its
// content has the SHA-256 that message gives it (which is the file's name).
func checkAttachments(files map[string][]byte, named map[string]uint64) error {
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !strings.HasPrefix(name, BundleAttachmentDir+"/") {
			continue
		}
		i, ok := named[name]
		if !ok {
			return bad(name, "no exported message names this attachment", nil)
		}
		h := sha256.Sum256(files[name])
		if BundleAttachmentPath(hex.EncodeToString(h[:])) != name {
			return badEntry(name, i, "its SHA-256 is not the one the message names", nil)
		}
	}
	return nil
}
