package main

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// makeBundle exports two of three messages and returns the bundle and the verifier key.
func makeBundle(t *testing.T) (string, string) {
	ctx := context.Background()
	skey, vkey, err := seal.GenerateSigningKey("commseal.test/bundle")
	require.NoError(t, err)
	key, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key})
	require.NoError(t, err)
	defer l.Close()
	pic := []byte("\x89PNG\r\n\x1a\n order ticket")
	sum, err := l.PutBlob(ctx, pic)
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: id, Kind: capture.KindText,
			Conversation: capture.Conversation{ID: "cid", Type: capture.ConversationGroup},
			SentAt:       time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Text: "order " + id, Raw: []byte(`{}`)}
		if id == "c" {
			m.Kind, m.Attachments = capture.KindPicture, []capture.Attachment{{Name: "ticket.png", MediaType: "image/png", SHA256: hex.EncodeToString(sum[:])}}
		}
		_, err := l.Append(ctx, m)
		require.NoError(t, err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	_, err = export.Write(ctx, l, dir, export.Request{Who: "carol", Why: "case 9", Indexes: []uint64{0, 2}, Signer: key.Signer})
	require.NoError(t, err)
	return dir, vkey
}

func TestVerifyBundle(t *testing.T) {
	dir, vkey := makeBundle(t)
	code, out, errs := runV("-bundle", dir, "-key", vkey)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, "OK: bundle")
	require.Contains(t, out, "2 entries (2 opened, 0 shredded) and 1 attachments")
	require.Contains(t, out, `"carol"`)

	kf := filepath.Join(t.TempDir(), "vkey")
	require.NoError(t, os.WriteFile(kf, []byte(vkey+"\n"), 0o600))
	code, out, _ = runV("-bundle", dir, "-key-file", kf, "-q")
	require.Equal(t, exitOK, code)
	require.Empty(t, out)

	// Usage errors: exit 2, nothing said about the bundle.
	for _, args := range [][]string{
		{"-bundle", dir},
		{"-bundle", dir, "-key", vkey, "-key-file", kf},
		{"-bundle", dir, "-key", vkey, "-dir", dir},
		{"-bundle", dir, "-key", vkey, "-list"},
		{"-bundle", dir, "-key", vkey, "extra"},
		{"-bundle", filepath.Join(dir, "absent"), "-key", vkey},
	} {
		code, out, errs := runV(args...)
		require.Equal(t, exitUsageErr, code, "%v: %s", args, errs)
		require.NotContains(t, out, "ALTERED")
	}

	// Damage: exit 1, naming the file.
	p := filepath.Join(dir, "evidence", "openings.jsonl")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)/2] ^= 1
	require.NoError(t, os.WriteFile(p, b, 0o600))
	code, out, _ = runV("-bundle", dir, "-key", vkey)
	require.Equal(t, exitAltered, code)
	require.Contains(t, out, "ALTERED:")
	require.Contains(t, out, "evidence/openings.jsonl")
}

// A flipped byte in an exported attachment: exit 1, naming the file.
func TestVerifyBundleAttachmentAltered(t *testing.T) {
	dir, vkey := makeBundle(t)
	ents, err := os.ReadDir(filepath.Join(dir, "attachments"))
	require.NoError(t, err)
	require.Len(t, ents, 1)
	name := "attachments/" + ents[0].Name()
	p := filepath.Join(dir, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)/2] ^= 1
	require.NoError(t, os.WriteFile(p, b, 0o600))
	code, out, _ := runV("-bundle", dir, "-key", vkey)
	require.Equal(t, exitAltered, code)
	require.Contains(t, out, "ALTERED:")
	require.Contains(t, out, name)
}
