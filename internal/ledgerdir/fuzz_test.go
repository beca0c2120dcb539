package ledgerdir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
)

// FuzzKeyringFile opens a ledger directory whose ledger.keyring holds arbitrary bytes: the open
// never panics, fails with one of the keyring's errors (or opens), and writes nothing when it
// fails.
func FuzzKeyringFile(f *testing.F) {
	f.Add([]byte(`{"mode":"file","id":"kek-1","check":"AAEC"}`))
	f.Add([]byte(`{"version":2,"mode":"file","current":"kek-1","generations":[{"gen":1,"id":"kek-1","file":"ledger.kek","check":"AAEC"}]}`))
	f.Add([]byte(`{"version":2,"mode":"file","current":"x","generations":[{"gen":1,"id":"x","file":"../ledger.kek","check":"AA=="}]}`))
	f.Add([]byte(`{"version":7}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, content []byte) {
		t.Setenv(layout.PassphraseEnv, "")
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, layout.KeyringFile), content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, layout.KEKFile), []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, dir)
		_, _, err := ledgerdir.Keyring(context.Background(), dir, false)
		if err == nil {
			return
		}
		if !errors.Is(err, ledgerdir.ErrCorruptKEK) && !errors.Is(err, ledgerdir.ErrWrongKEK) && !errors.Is(err, ledgerdir.ErrMissingKEK) {
			t.Fatalf("an unexpected error: %v", err)
		}
		after := snapshot(t, dir)
		if len(before) != len(after) {
			t.Fatalf("a refused open wrote: %v -> %v", before, after)
		}
	})
}
