package ledgerdir_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/stretchr/testify/require"
)

func openRing(t *testing.T, dir string, create bool) seal.KEKRetirer {
	t.Helper()
	r, _, err := ledgerdir.Keyring(context.Background(), dir, create)
	require.NoError(t, err)
	kr, ok := r.(seal.KEKRetirer)
	require.True(t, ok, "the directory's keyring retires KEKs")
	return kr
}

func TestFileKeyringConformance(t *testing.T) {
	t.Setenv(layout.PassphraseEnv, "")
	sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring { return openRing(t, t.TempDir(), true) })
}

// The suite against a keyring reopened from its files after every change would be slow with
// Argon2id; the passphrase mode runs it once, in memory after opening.
func TestPassphraseKeyringConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("Argon2id for every generation")
	}
	t.Setenv(layout.PassphraseEnv, "correct horse battery staple")
	sealtest.RunKeyring(t, func(t *testing.T) seal.Keyring { return openRing(t, t.TempDir(), true) })
}

type keyringJSON struct {
	Version     int
	Mode        string
	Salt        []byte
	Current     string
	Generations []struct {
		Gen   int
		ID    string
		File  string
		Check []byte
	}
}

func readKeyringFile(t *testing.T, dir string) (keyringJSON, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, layout.KeyringFile))
	require.NoError(t, err)
	var kf keyringJSON
	require.NoError(t, json.Unmarshal(b, &kf))
	return kf, string(b)
}

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if os.IsNotExist(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// TestRotationUpgradesTheLayoutAndRetirementScrubs (file mode): a new ledger's single KEK in
// ledger.kek; the first rotation writes version 2 with a second generation in keks/; retiring
// the first scrubs ledger.kek; reopening reads each state, and what the retired KEK wrapped
// no longer unwraps.
func TestRotationUpgradesTheLayoutAndRetirementScrubs(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := t.TempDir()
	r := openRing(t, dir, true)
	k1 := r.ID()
	kf, _ := readKeyringFile(t, dir)
	require.Zero(t, kf.Version, "a new ledger's keyring is version 1, as earlier versions wrote it")
	_, w1, err := r.Wrap(ctx, "dk1.a", sealtest.DEKAt(1))
	require.NoError(t, err)

	k2, err := r.Rotate(ctx)
	require.NoError(t, err)
	kf, raw := readKeyringFile(t, dir)
	require.Equal(t, 2, kf.Version)
	require.Equal(t, k2, kf.Current)
	require.Len(t, kf.Generations, 2)
	require.Equal(t, layout.KEKFile, kf.Generations[0].File)
	require.Equal(t, "keks/2.kek", kf.Generations[1].File)
	kek1, err := os.ReadFile(filepath.Join(dir, layout.KEKFile))
	require.NoError(t, err)
	require.NotContains(t, raw, strings.TrimSpace(string(kek1)), "ledger.keyring holds no KEK")

	r = openRing(t, dir, false) // reopened: both generations
	require.Equal(t, k2, r.ID())
	dek, err := r.Unwrap(ctx, k1, "dk1.a", w1)
	require.NoError(t, err)
	require.Equal(t, sealtest.DEKAt(1), dek)
	_, w2, err := r.Wrap(ctx, "dk1.b", sealtest.DEKAt(2))
	require.NoError(t, err)

	require.NoError(t, r.Retire(ctx, k1))
	require.False(t, exists(t, filepath.Join(dir, layout.KEKFile)), "the retired KEK's file is scrubbed")
	_, raw = readKeyringFile(t, dir)
	require.NotContains(t, raw, k1)
	r = openRing(t, dir, false)
	keks, err := r.KEKs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{k2}, keks)
	_, err = r.Unwrap(ctx, k1, "dk1.a", w1)
	require.ErrorIs(t, err, seal.ErrUnknownKEK)
	dek, err = r.Unwrap(ctx, k2, "dk1.b", w2)
	require.NoError(t, err)
	require.Equal(t, sealtest.DEKAt(2), dek)

	// A third generation, and the second retired: keks/2.kek goes.
	k3, err := r.Rotate(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Retire(ctx, k2))
	require.False(t, exists(t, filepath.Join(dir, "keks", "2.kek")))
	require.True(t, exists(t, filepath.Join(dir, "keks", "3.kek")))
	require.Equal(t, k3, openRing(t, dir, false).ID())
}

// TestPassphraseGenerations: the first generation's salt leaves ledger.keyring for a file of
// its own at the first rotation; retiring it scrubs that file, after which the passphrase no
// longer derives the retired KEK (its salt is gone).
func TestPassphraseGenerations(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "correct horse battery staple")
	dir := t.TempDir()
	r := openRing(t, dir, true)
	k1 := r.ID()
	kf, _ := readKeyringFile(t, dir)
	require.Len(t, kf.Salt, 16)
	salt1 := kf.Salt
	_, w1, err := r.Wrap(ctx, "dk1.a", sealtest.DEKAt(1))
	require.NoError(t, err)
	k2, err := r.Rotate(ctx)
	require.NoError(t, err)
	kf, raw := readKeyringFile(t, dir)
	require.Equal(t, 2, kf.Version)
	require.Empty(t, kf.Salt, "no salt left in ledger.keyring")
	require.Equal(t, []string{"keks/1.salt", "keks/2.salt"}, []string{kf.Generations[0].File, kf.Generations[1].File})
	require.NotContains(t, raw, `"salt":`)
	require.False(t, exists(t, filepath.Join(dir, layout.KEKFile)))

	before := snapshot(t, dir)
	t.Setenv(layout.PassphraseEnv, "wrong")
	_, _, err = ledgerdir.Keyring(ctx, dir, false)
	require.ErrorIs(t, err, ledgerdir.ErrWrongKEK)
	require.Equal(t, before, snapshot(t, dir), "a refused open writes nothing")
	t.Setenv(layout.PassphraseEnv, "correct horse battery staple")
	r = openRing(t, dir, false)
	dek, err := r.Unwrap(ctx, k1, "dk1.a", w1)
	require.NoError(t, err)
	require.Equal(t, sealtest.DEKAt(1), dek)

	require.NoError(t, r.Retire(ctx, k1))
	require.False(t, exists(t, filepath.Join(dir, "keks", "1.salt")))
	r = openRing(t, dir, false)
	require.Equal(t, k2, r.ID())
	_, err = r.Unwrap(ctx, k1, "dk1.a", w1)
	require.ErrorIs(t, err, seal.ErrUnknownKEK)
	// Someone who kept the old salt and knows the passphrase could still derive it: that is
	// what a file (or passphrase) KEK cannot promise against copies made before retirement.
	old, err := seal.PassphraseKEK([]byte("correct horse battery staple"), salt1)
	require.NoError(t, err)
	ring, err := seal.NewKEKKeyring(k1, old)
	require.NoError(t, err)
	_, err = ring.Unwrap(ctx, k1, "dk1.a", w1)
	require.NoError(t, err)
}

// TestKeyringProblemsAreClearAndWriteNothing (version 2): a missing, corrupt or wrong
// generation file, a keyring naming a file outside the layout or a current KEK it does not
// list: each a clear error, and nothing written.
func TestKeyringProblemsAreClearAndWriteNothing(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := t.TempDir()
	r := openRing(t, dir, true)
	_, err := r.Rotate(ctx)
	require.NoError(t, err)
	gen2 := filepath.Join(dir, "keks", "2.kek")
	keyring := filepath.Join(dir, layout.KeyringFile)
	saved := map[string][]byte{}
	for _, p := range []string{gen2, keyring} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		saved[p] = b
	}
	editKeyring := func(f func(kf map[string]any)) func() {
		return func() {
			var kf map[string]any
			require.NoError(t, json.Unmarshal(saved[keyring], &kf))
			f(kf)
			b, _ := json.Marshal(kf)
			require.NoError(t, os.WriteFile(keyring, b, 0o600))
		}
	}
	for _, c := range []struct {
		name  string
		setup func()
		want  error
	}{
		{"generation file missing", func() { require.NoError(t, os.Remove(gen2)) }, ledgerdir.ErrMissingKEK},
		{"generation file corrupt", func() { require.NoError(t, os.WriteFile(gen2, []byte("zz\n"), 0o600)) }, ledgerdir.ErrCorruptKEK},
		{"generation file of another KEK", func() {
			require.NoError(t, os.WriteFile(gen2, []byte(strings.Repeat("ab", 32)+"\n"), 0o600))
		}, ledgerdir.ErrWrongKEK},
		{"a file outside the layout", editKeyring(func(kf map[string]any) {
			kf["generations"].([]any)[1].(map[string]any)["file"] = "../../etc/passwd"
		}), ledgerdir.ErrCorruptKEK},
		{"current not listed", editKeyring(func(kf map[string]any) { kf["current"] = "kek-000000000000" }), ledgerdir.ErrCorruptKEK},
		{"unknown version", editKeyring(func(kf map[string]any) { kf["version"] = 9 }), ledgerdir.ErrCorruptKEK},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			before := snapshot(t, dir)
			_, _, err := ledgerdir.Keyring(ctx, dir, false)
			require.ErrorIs(t, err, c.want)
			require.Equal(t, before, snapshot(t, dir), "nothing written")
			for p, b := range saved {
				require.NoError(t, os.WriteFile(p, b, 0o600))
			}
		})
	}
	openRing(t, dir, false)
}

// TestOpenScrubsWhatACrashLeft: a rotation that wrote its generation file but not ledger.keyring,
// and a retirement that dropped a generation but did not scrub its file, leave KEK files that
// ledger.keyring does not list; the next open scrubs them.
func TestOpenScrubsWhatACrashLeft(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "")
	dir := t.TempDir()
	r := openRing(t, dir, true)
	k1 := r.ID()
	_, err := r.Rotate(ctx)
	require.NoError(t, err)
	kek1, err := os.ReadFile(filepath.Join(dir, layout.KEKFile))
	require.NoError(t, err)
	require.NoError(t, r.Retire(ctx, k1))
	// The crash: ledger.kek back (retirement not finished), and a generation 3 file written by
	// a rotation that did not reach ledger.keyring.
	require.NoError(t, os.WriteFile(filepath.Join(dir, layout.KEKFile), kek1, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "keks", "3.kek"), []byte(strings.Repeat("cd", 32)+"\n"), 0o600))
	r = openRing(t, dir, false)
	require.False(t, exists(t, filepath.Join(dir, layout.KEKFile)))
	require.False(t, exists(t, filepath.Join(dir, "keks", "3.kek")))
	k3, err := r.Rotate(ctx)
	require.NoError(t, err)
	require.True(t, exists(t, filepath.Join(dir, "keks", "3.kek")), "the next rotation takes the number")
	require.Equal(t, k3, openRing(t, dir, false).ID())
}

// TestAFailedRotationCanBeRetried: a rotation of a version 1 passphrase keyring that fails when
// it replaces ledger.keyring (after moving the salt to keks/1.salt) leaves the keyring in memory
// as the file still has it, so the next rotation succeeds. Before, the generation already named
// keks/1.salt in memory, which kept the leftover file from being scrubbed, and every later
// rotation failed on it until the ledger was reopened.
func TestAFailedRotationCanBeRetried(t *testing.T) {
	ctx := context.Background()
	t.Setenv(layout.PassphraseEnv, "correct horse battery staple")
	dir := t.TempDir()
	r := openRing(t, dir, true)
	kp := filepath.Join(dir, layout.KeyringFile)
	saved, err := os.ReadFile(kp)
	require.NoError(t, err)
	// ledger.keyring cannot be opened for writing: the rotation fails at its last step.
	require.NoError(t, os.Remove(kp))
	require.NoError(t, os.Mkdir(kp, 0o700))
	_, err = r.Rotate(ctx)
	require.Error(t, err)
	require.NoError(t, os.Remove(kp))
	require.NoError(t, os.WriteFile(kp, saved, 0o600))

	k2, err := r.Rotate(ctx)
	require.NoError(t, err)
	kf, _ := readKeyringFile(t, dir)
	require.Equal(t, 2, kf.Version)
	require.Equal(t, k2, kf.Current)
	again, _, err := ledgerdir.Keyring(ctx, dir, false)
	require.NoError(t, err)
	require.Equal(t, k2, again.(*ledgerdir.FileKeyring).ID())
}
