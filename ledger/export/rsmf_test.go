package export_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// readDir returns the files of a bundle folder, by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = b
	}
	return out
}

func TestExportRSMF(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	req := f.request()
	req.Formats, req.Custodian = []string{export.FormatRSMF}, "alice@compliance"
	_, err := export.Write(context.Background(), f.l, dir, req)
	require.NoError(t, err)
	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err, "the RSMF files are listed in the manifest")
	require.Equal(t, []string{export.FormatRSMF}, rep.Request.Formats, "the manifest records the formats asked for")

	files := readDir(t, filepath.Join(dir, "rsmf"))
	// One file per conversation and UTC day: cid-a's days, and the shredded entry's
	// conversation, known only by its digest.
	var events, shreds int
	texts := map[string]bool{}
	for name, b := range files {
		require.True(t, strings.HasSuffix(name, ".rsmf"), name)
		p := export.CheckRSMF(t, b)
		h := p.Header
		for _, k := range []string{"X-RSMF-Generator", "X-RSMF-BeginDate", "X-RSMF-EndDate", "X-RSMF-Participants", "From", "To", "Date", "Subject"} {
			require.NotEmpty(t, h.Get(k), "%s in %s", k, name)
		}
		require.Equal(t, "DingTalk", h.Get("X-RSMF-Application"))
		require.Equal(t, "alice@compliance", h.Get("X-RSMF-Custodian"))
		require.Equal(t, fmt.Sprintf("origin=%s; tree_size=%d", origin, rep.TreeSize), h.Get("X-Commseal-Ledger"))
		for _, e := range p.Manifest["events"].([]any) {
			ev := e.(map[string]any)
			events++
			if ev["type"] == "disclaimer" {
				shreds++
				require.Contains(t, ev["body"], "content destroyed")
				require.NotContains(t, p.Text, "expired long ago", "no content of a shredded entry")
				continue
			}
			body, _ := ev["body"].(string)
			texts[body] = true
			require.Contains(t, p.Text, body, "the body is the readable transcript")
		}
		for _, pp := range p.Manifest["participants"].([]any) {
			pm := pp.(map[string]any)
			if pm["id"] == "commseal" {
				continue
			}
			require.Equal(t, "staff-"+strings.TrimPrefix(pm["id"].(string), "u"), pm["account_id"], "account_id is the DingTalk staff id")
		}
	}
	require.Equal(t, 6, events, "5 messages (the record is in messages.jsonl only) and the shredded entry")
	require.Equal(t, 1, shreds)
	for _, want := range []string{"BUY 1 lots", "BUY 2 lots", "BUY 3 lots", "see the term sheet"} {
		require.True(t, texts[want], want)
	}

	// The picture travels in its RSMF file's zip, byte for byte.
	found := false
	for _, b := range files {
		p := export.CheckRSMF(t, b)
		for name, data := range p.Files {
			if strings.HasPrefix(name, sha256hex(f.png)) {
				require.Equal(t, f.png, data)
				require.True(t, strings.HasSuffix(name, ".png"))
				found = true
			}
		}
	}
	require.True(t, found)

	// An RSMF file is covered by the manifest like every other file.
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	flip(t, dir, "rsmf/"+names[0])
	_, err = verify.Bundle(dir, f.keys.VerifierKey)
	require.True(t, verify.Altered(err))
	require.ErrorContains(t, err, "rsmf/"+names[0])
}
