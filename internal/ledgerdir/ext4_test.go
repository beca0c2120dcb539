//go:build linux

package ledgerdir_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
)

// needRoot skips a test that needs root and a loop-mountable ext4 image, saying why, unless
// COMMSEAL_REQUIRE_ROOT_TESTS=1 (as CI sets), which makes the reason a failure.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("COMMSEAL_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatalf("COMMSEAL_REQUIRE_ROOT_TESTS=1, but %s", why)
	}
	t.Skip(why)
}

// ext4Dir makes a 64 MiB ext4 image, loop-mounts it, and returns the image and the mount point;
// unmount unmounts it (once; t.Cleanup does it otherwise).
func ext4Dir(t *testing.T) (img, mnt string, unmount func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		needRoot(t, "mounting an ext4 image needs root")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		needRoot(t, "mkfs.ext4 (e2fsprogs) is not installed")
	}
	tmp := t.TempDir()
	img, mnt = filepath.Join(tmp, "ledger.img"), filepath.Join(tmp, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o700))
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(64<<20))
	require.NoError(t, f.Close())
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		needRoot(t, "mkfs.ext4 failed: "+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		needRoot(t, "mounting the image failed (no loop devices?): "+strings.TrimSpace(string(out)))
	}
	mounted := true
	unmount = func() {
		if mounted {
			mounted = false
			out, err := exec.Command("umount", mnt).CombinedOutput()
			require.NoError(t, err, "umount: %s", out)
		}
	}
	t.Cleanup(unmount)
	return img, mnt, unmount
}

// encodings are the forms in which a wrapped key or a KEK could sit on the disk: raw, in the
// base64 of a JSON file, in hex.
func encodings(b []byte) [][]byte {
	return [][]byte{b, []byte(base64.StdEncoding.EncodeToString(b)), []byte(hex.EncodeToString(b))}
}

// TestShreddedKeysAreGoneFromTheRawDisk is issue #9 item 1 on a real file system: a ledger
// directory (file KEK) on a loop-mounted ext4 image seals messages with a distinctive text,
// an annotation and an attachment (which rewrite key metadata), applies retention that shreds
// one conversation, and is unmounted. Then the raw image is searched: neither any wrapped form
// the shredded keys ever had, nor the superseded wrapped forms of the surviving keys, nor the
// retired KEK is anywhere on it, and no window of the image unwraps as the shredded key under
// the live KEK or under the retired one. Before the fix, the wrapped key was found in blocks
// freed by a replace-by-rename, the file KEK was never retired, and the message decrypted.
func TestShreddedKeysAreGoneFromTheRawDisk(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	img, mnt, unmount := ext4Dir(t)
	dir := filepath.Join(mnt, "ledger")
	const secret = "SHRED-ME-4f1c9a: sell 20,000 0700.HK before the announcement"
	old := time.Date(2023, 3, 7, 9, 0, 0, 0, time.UTC)
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	doomed := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m-doomed", Kind: capture.KindText, Text: secret,
		Conversation: capture.Conversation{ID: "cid-doomed"}, SentAt: old}
	rc, err := l.Append(ctx, doomed)
	require.NoError(t, err)
	about := doomed.Identity()
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordAnnotation, Platform: "dingtalk", Tenant: "corp", ID: "finding-1",
		Conversation: capture.Conversation{ID: "cid-doomed"}, About: &about, At: old, Body: []byte(`{"rule":"insider"}`)})
	require.NoError(t, err)
	sum, err := l.PutBlob(ctx, []byte("ATTACHMENT "+secret))
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]string{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp", ID: "media-1",
		Conversation: capture.Conversation{ID: "cid-doomed"}, About: &about, At: old, Body: body})
	require.NoError(t, err)
	var kept []uint64
	for i := range 5 {
		rc, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m-keep-" + string(rune('a'+i)), Kind: capture.KindText,
			Text: "recent", Conversation: capture.Conversation{ID: "cid-keep"}, SentAt: now.AddDate(0, -i, 0)})
		require.NoError(t, err)
		kept = append(kept, rc.Index)
	}
	en, err := l.Get(ctx, rc.Index)
	require.ErrorIs(t, err, ledger.ErrEncrypted)
	doomedKey, blobKey := en.Leaf.KeyID, "blob1."+hex.EncodeToString(sum[:16])

	// What must not survive: every wrapped form of the shredded keys, the surviving keys'
	// wrapped forms under the KEK that will be retired, and that KEK.
	var gone [][]byte
	for wk, err := range l.Vault.Keys(ctx) {
		require.NoError(t, err)
		gone = append(gone, wk.Wrapped)
	}
	retiredHex, err := os.ReadFile(filepath.Join(dir, layout.KEKFile))
	require.NoError(t, err)
	retiredKEK, err := hex.DecodeString(strings.TrimSpace(string(retiredHex)))
	require.NoError(t, err)
	retired, err := seal.NewKEKKeyring(l.Keyring.ID(), retiredKEK)
	require.NoError(t, err)

	shreds, err := l.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}},
		ledger.ApplyOptions{Authority: "ext4 test"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.Equal(t, []string{blobKey}, shreds[0].Blobs)
	live := l.Keyring
	require.NotEqual(t, retired.ID(), live.ID(), "the KEK was rotated")
	for k, i := range kept {
		got, err := l.Access("auditor", "ext4 test").Get(ctx, i)
		require.NoError(t, err, "kept message %d", k)
		require.Equal(t, "recent", got.Message.Text)
	}
	// What must be there (or the search below would prove nothing): the live keys as they are
	// now, and the live KEK.
	var present [][]byte
	for wk, err := range l.Vault.Keys(ctx) {
		require.NoError(t, err)
		if !wk.Destroyed {
			present = append(present, wk.Wrapped)
		}
	}
	require.NotEmpty(t, present)
	require.NoError(t, l.Close())
	_, err = os.Stat(filepath.Join(dir, layout.KEKFile))
	require.True(t, os.IsNotExist(err), "the retired KEK's file is gone")
	gens, err := filepath.Glob(filepath.Join(dir, layout.KEKDir, "*.kek"))
	require.NoError(t, err)
	require.Len(t, gens, 1)
	liveHex, err := os.ReadFile(gens[0])
	require.NoError(t, err)
	require.NotEqual(t, retiredHex, liveHex, "the live KEK file differs from the retired one")
	unmount()

	raw, err := os.ReadFile(img)
	require.NoError(t, err)
	for _, w := range present {
		require.True(t, bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(w))), "a live key is not on the disk: the search would prove nothing")
	}
	require.True(t, bytes.Contains(raw, bytes.TrimSpace(liveHex)), "the live KEK is not on the disk: the search would prove nothing")
	require.False(t, bytes.Contains(raw, []byte("SHRED-ME-4f1c9a")), "plaintext on the disk")
	for k, w := range gone {
		for _, enc := range encodings(w) {
			require.Falsef(t, bytes.Contains(raw, enc), "wrapped key %d of %d (a form under the retired KEK) is still on the disk at offset %d", k, len(gone), bytes.Index(raw, enc))
		}
	}
	for _, enc := range encodings(retiredKEK) {
		require.False(t, bytes.Contains(raw, enc), "the retired KEK is still on the disk")
	}
	require.False(t, bytes.Contains(raw, bytes.TrimSpace(retiredHex)))

	// The attacker's search: every window that could be a wrapped key (raw: version byte 1,
	// then 72 bytes; or any base64 string of a JSON field), unwrapped as either shredded key,
	// under the live KEK and under the retired one.
	const wrappedLen = 1 + 24 + seal.DataKeySize + 16
	var candidates [][]byte
	for i := 0; i+wrappedLen <= len(raw); i++ {
		if raw[i] == 1 {
			candidates = append(candidates, raw[i:i+wrappedLen])
		}
	}
	for _, m := range regexp.MustCompile(`"[A-Za-z0-9+/]{40,}={0,2}"`).FindAll(raw, -1) {
		if b, err := base64.StdEncoding.DecodeString(string(m[1 : len(m)-1])); err == nil {
			candidates = append(candidates, b)
		}
	}
	t.Logf("%d candidate windows in %d MiB", len(candidates), len(raw)>>20)
	for _, c := range candidates {
		for _, id := range []string{doomedKey, blobKey} {
			if _, err := live.Unwrap(ctx, live.ID(), id, c); err == nil {
				t.Fatalf("a window of the image unwraps as %s under the live KEK", id)
			}
			if _, err := retired.Unwrap(ctx, retired.ID(), id, c); err == nil {
				t.Fatalf("a window of the image unwraps as %s under the retired KEK", id)
			}
		}
	}
}
