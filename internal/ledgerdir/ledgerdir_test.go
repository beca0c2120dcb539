package ledgerdir_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
)

func msg(id string) *capture.Message {
	return &capture.Message{Platform: "dingtalk", Tenant: "t", ID: id, Kind: capture.KindText, Text: "hello",
		Conversation: capture.Conversation{ID: "c"}}
}

// snapshot lists every file under dir with its size, to show that a refused open wrote nothing.
func snapshot(t *testing.T, dir string) map[string]int64 {
	out := map[string]int64{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out[p] = fi.Size()
		}
		return err
	}))
	return out
}

func TestPassphraseProtectedLedger(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv(layout.PassphraseEnv, "correct horse battery staple")
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	require.False(t, l.DemoKEK)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	_, err = os.Stat(filepath.Join(dir, layout.KEKFile))
	require.True(t, os.IsNotExist(err), "no KEK file when a passphrase is used")

	before := snapshot(t, dir)
	t.Setenv(layout.PassphraseEnv, "wrong")
	_, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.ErrorIs(t, err, ledgerdir.ErrWrongKEK)
	t.Setenv(layout.PassphraseEnv, "")
	_, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.ErrorIs(t, err, ledgerdir.ErrMissingKEK)
	require.ErrorContains(t, err, layout.PassphraseEnv)
	require.Equal(t, before, snapshot(t, dir), "refused opens wrote nothing")

	t.Setenv(layout.PassphraseEnv, "correct horse battery staple")
	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	e, err := l.Access("t", "t").Get(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", e.Message.Text)
	require.NoError(t, l.Close())
}

func TestKeyFileProblemsAreClearAndWriteNothing(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := t.TempDir()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	require.True(t, l.DemoKEK)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	fi, err := os.Stat(filepath.Join(dir, layout.KEKFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	kek, err := os.ReadFile(filepath.Join(dir, layout.KEKFile))
	require.NoError(t, err)

	cases := []struct {
		name  string
		setup func()
		want  error
	}{
		{"missing key file", func() { os.Remove(filepath.Join(dir, layout.KEKFile)) }, ledgerdir.ErrMissingKEK},
		{"corrupt key file", func() { os.WriteFile(filepath.Join(dir, layout.KEKFile), []byte("zz\n"), 0o600) }, ledgerdir.ErrCorruptKEK},
		{"another key", func() {
			os.WriteFile(filepath.Join(dir, layout.KEKFile), []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"), 0o600)
		}, ledgerdir.ErrWrongKEK},
		{"corrupt keyring file", func() { os.WriteFile(filepath.Join(dir, layout.KeyringFile), []byte("{"), 0o644) }, ledgerdir.ErrCorruptKEK},
	}
	keyring, err := os.ReadFile(filepath.Join(dir, layout.KeyringFile))
	require.NoError(t, err)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			before := snapshot(t, dir)
			_, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
			require.ErrorIs(t, err, c.want)
			require.Equal(t, before, snapshot(t, dir), "nothing written")
			require.NoError(t, os.WriteFile(filepath.Join(dir, layout.KEKFile), kek, 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(dir, layout.KeyringFile), keyring, 0o644))
		})
	}
	// Restored, it opens and reads.
	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	_, err = l.Access("t", "t").Get(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	// A corrupted wrapped data key: the read names the key, nothing is lost elsewhere.
	keys, err := filepath.Glob(filepath.Join(dir, layout.VaultDir, "*.rec"))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	b, err := os.ReadFile(keys[0])
	require.NoError(t, err)
	var kf map[string]any
	require.NoError(t, json.Unmarshal(b, &kf))
	w, err := base64.StdEncoding.DecodeString(kf["wrapped"].(string))
	require.NoError(t, err)
	w[len(w)/2] ^= 1
	kf["wrapped"] = w
	b, err = json.Marshal(kf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keys[0], b, 0o600))
	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	defer l.Close()
	_, err = l.Access("t", "t").Get(ctx, 0)
	require.ErrorIs(t, err, seal.ErrDecrypt)
	require.ErrorContains(t, err, "dk1.")
}

func TestMissingKeyFilesAreRefusedAndNothingIsWritten(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := t.TempDir()
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	for _, c := range []struct {
		file string
		want error
	}{
		{layout.KeyFile, ledgerdir.ErrMissingKey},
		{layout.KeyringFile, ledgerdir.ErrMissingKEK},
	} {
		t.Run(c.file, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			saved, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.Remove(p))
			before := snapshot(t, dir)
			_, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
			require.ErrorIs(t, err, c.want)
			require.ErrorContains(t, err, c.file, "the error names the missing file")
			require.Equal(t, before, snapshot(t, dir), "nothing written: no new key beside the old ledger")
			require.NoError(t, os.WriteFile(p, saved, 0o600))
		})
	}
	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err, "restored, the ledger opens")
	require.NoError(t, l.Close())
	// A directory that is not a ledger is not made one unless asked.
	_, err = ledgerdir.SigningKey(t.TempDir(), "", false)
	require.ErrorIs(t, err, ledgerdir.ErrMissingKey)
}

// TestInterruptedLayoutIsTakenUp: a program killed while it laid out a new ledger (after the
// signing key, before the store) leaves a directory that the next Open completes, with the key
// it already made, rather than refuses.
func TestInterruptedLayoutIsTakenUp(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := filepath.Join(t.TempDir(), "ledger")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	keys, err := ledgerdir.SigningKey(dir, "commseal.test/interrupted", true)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, layout.VKeyFile))) // killed between the two keys
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	require.Equal(t, keys.VerifierKey, l.VerifierKey(), "the key made before the interruption")
	vkey, err := layout.VerifierKey(dir)
	require.NoError(t, err)
	require.Equal(t, keys.VerifierKey, vkey)
	require.NoError(t, l.Close())
}

// A layout killed between writing the KEK file and ledger.keyring (the window CI's loadgen crash
// test hit: the next Open failed with "ledger.kek: file exists") is taken up with that KEK; a
// KEK file left there that holds no key is refused, not replaced.
func TestLayoutInterruptedAfterTheKEKIsTakenUp(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := filepath.Join(t.TempDir(), "ledger")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	_, err := ledgerdir.SigningKey(dir, "commseal.test/interrupted", true)
	require.NoError(t, err)
	kek := strings.Repeat("ab", 32) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, layout.KEKFile), []byte(kek), 0o600))
	l, err := ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err)
	_, err = l.Append(ctx, msg("m1"))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	b, err := os.ReadFile(filepath.Join(dir, layout.KEKFile))
	require.NoError(t, err)
	require.Equal(t, kek, string(b), "the KEK made before the interruption is the ledger's")
	l, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.NoError(t, err, "and it opens the data keys")
	_, err = l.Access("auditor", "test").Get(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	bad := filepath.Join(t.TempDir(), "ledger")
	require.NoError(t, os.MkdirAll(bad, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(bad, layout.KEKFile), []byte("not a key\n"), 0o600))
	_, err = ledgerdir.Open(ctx, bad, "", ledger.Options{})
	require.ErrorIs(t, err, ledgerdir.ErrCorruptKEK)
}

// TestASecondOpenTouchesNothing: while one process has the directory open, another Open fails
// with ErrInUse before it reads or writes anything; before, it loaded the keyring first, which
// scrubbed the KEK file of a rotation the first process had under way (written, not yet named in
// ledger.keyring), and only then found the store locked.
func TestASecondOpenTouchesNothing(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := filepath.Join(t.TempDir(), "ledger")
	l, err := ledgerdir.Open(ctx, dir, "commseal.test/second", ledger.Options{})
	require.NoError(t, err)
	defer l.Close()
	// The state in the middle of a rotation: the new generation's file, not yet listed.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, layout.KEKDir), 0o700))
	next := filepath.Join(dir, layout.KEKDir, "2.kek")
	require.NoError(t, os.WriteFile(next, []byte("rotation under way"), 0o600))

	_, err = ledgerdir.Open(ctx, dir, "", ledger.Options{})
	require.ErrorIs(t, err, ledgerdir.ErrInUse)
	b, err := os.ReadFile(next)
	require.NoError(t, err, "the second open removed the rotation's KEK file")
	require.Equal(t, "rotation under way", string(b))

	require.NoError(t, l.Close())
	require.NoError(t, os.Remove(next))
	l2, err := ledgerdir.Open(ctx, dir, "", ledger.Options{}) // the lock goes with Close
	require.NoError(t, err)
	require.NoError(t, l2.Close())
}
