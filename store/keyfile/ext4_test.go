//go:build linux

package keyfile_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commseal/commseal/internal/testenv"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/keyfile"
)

// needRoot ends a test that needs root and a loop-mountable ext4 image, saying why: a failure
// when COMMSEAL_REQUIRE_ROOT_TESTS=1 (as CI sets) or testenv.Required, a skip otherwise.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("COMMSEAL_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatalf("COMMSEAL_REQUIRE_ROOT_TESTS=1, but %s", why)
	}
	testenv.Missing(t, why)
}

// ext4Dir makes a 32 MiB ext4 image, loop-mounts it, and returns the image and the mount
// point; unmount unmounts it (once; t.Cleanup does it otherwise). It is the approach of
// internal/ledgerdir's raw-disk test.
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
	img, mnt = filepath.Join(tmp, "vault.img"), filepath.Join(tmp, "mnt")
	must(t, os.Mkdir(mnt, 0o700))
	f, err := os.Create(img)
	must(t, err)
	must(t, f.Truncate(32<<20))
	must(t, f.Close())
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
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Fatalf("umount: %v: %s", err, out)
			}
		}
	}
	t.Cleanup(unmount)
	return img, mnt, unmount
}

// TestDestroyedKeysAreGoneFromTheRawDisk runs a vault on a loop-mounted ext4 image through
// every way a wrapping stops being needed: Rewrap, DestroyKey, DestroyKey of a rewrapped key,
// a DestroyKey interrupted after its tombstone (finished by Open), a torn batch (cut by Open),
// and a compaction (the old file scrubbed) followed by more of the same. Then it unmounts the
// image and searches the raw bytes: no wrapped bytes that were superseded, destroyed or torn
// are anywhere on the disk, and every live key's are (or the search would prove nothing).
func TestDestroyedKeysAreGoneFromTheRawDisk(t *testing.T) {
	ctx := context.Background()
	img, mnt, unmount := ext4Dir(t)
	path := filepath.Join(mnt, "keys", "keys.vault")
	wrapping := func() []byte {
		b := make([]byte, 73) // the size of a seal wrapping: version, nonce, key, tag
		rand.Read(b)
		return b
	}
	live := map[string][]byte{}
	var gone [][]byte
	v, err := keyfile.Open(path)
	must(t, err)
	put := func(v *keyfile.Vault, id string) {
		w := wrapping()
		must(t, v.PutKey(ctx, store.WrappedKey{ID: id, KEK: "kek-1", Wrapped: w, Meta: []byte(`{"scope":"` + id + `"}`)}))
		live[id] = w
	}
	rewrap := func(v *keyfile.Vault, id string) {
		w := wrapping()
		must(t, v.Rewrap(ctx, id, "kek-2", w))
		gone = append(gone, live[id])
		live[id] = w
	}
	destroy := func(v *keyfile.Vault, id string) {
		must(t, v.DestroyKey(ctx, id))
		gone = append(gone, live[id])
		delete(live, id)
	}
	for i := range 200 {
		put(v, fmt.Sprintf("dk1.2026-%02d.%03d", i%12+1, i))
	}
	for i := range 200 {
		id := fmt.Sprintf("dk1.2026-%02d.%03d", i%12+1, i)
		switch i % 5 {
		case 0:
			rewrap(v, id)
		case 1:
			destroy(v, id)
		case 2:
			rewrap(v, id)
			destroy(v, id)
		case 3:
			must(t, v.SetMeta(ctx, id, []byte(`{"kinds":["message","media"]}`)))
		}
	}
	// A DestroyKey interrupted after its tombstone: the next Open erases.
	v.SetWriteHook(func(b []byte) error {
		if len(bytes.Trim(b, "\x00")) == 0 {
			return errors.New("crash")
		}
		return nil
	})
	if err := v.DestroyKey(ctx, "dk1.2026-05.004"); err == nil {
		t.Fatal("the interrupted DestroyKey succeeded")
	}
	gone = append(gone, live["dk1.2026-05.004"])
	delete(live, "dk1.2026-05.004")
	must(t, v.Close())

	// A torn batch: a put whose commit never reached the disk. Its wrapping spans blocks that
	// the cut releases whole (a KMS or HSM may wrap to kilobytes).
	v, err = keyfile.Open(path)
	must(t, err)
	if v.Recovery().Erased != 1 {
		t.Fatalf("Recovery %+v; want the interrupted destroy finished", v.Recovery())
	}
	torn := make([]byte, 16<<10)
	rand.Read(torn)
	must(t, v.PutKey(ctx, store.WrappedKey{ID: "torn", KEK: "kek-1", Wrapped: torn}))
	must(t, v.Close())
	fi, err := os.Stat(path)
	must(t, err)
	must(t, os.Truncate(path, fi.Size()-10))
	for i := 0; i+256 <= len(torn); i += 256 {
		gone = append(gone, torn[i:i+256]) // every piece of it
	}

	v, err = keyfile.Open(path)
	must(t, err)
	if v.Recovery().TornBytes == 0 {
		t.Fatalf("Recovery %+v; want the torn batch cut", v.Recovery())
	}
	must(t, v.Compact(ctx))
	for i := range 200 {
		id := fmt.Sprintf("dk1.2026-%02d.%03d", i%12+1, i)
		if _, ok := live[id]; !ok {
			continue
		}
		switch i % 4 {
		case 0:
			rewrap(v, id)
		case 1:
			destroy(v, id)
		}
	}
	must(t, v.Close())
	unmount()

	raw, err := os.ReadFile(img)
	must(t, err)
	if len(live) == 0 || len(gone) < 200 {
		t.Fatalf("%d live, %d gone: the test exercises too little", len(live), len(gone))
	}
	for id, w := range live {
		if !bytes.Contains(raw, w) {
			t.Fatalf("live key %s is not on the disk: the search would prove nothing", id)
		}
	}
	for i, w := range gone {
		if at := bytes.Index(raw, w); at >= 0 {
			t.Fatalf("wrapping %d of %d that was superseded, destroyed or torn is on the raw disk at offset %d", i, len(gone), at)
		}
	}
	t.Logf("%d live wrappings found, %d gone ones absent, in %d MiB", len(live), len(gone), len(raw)>>20)
}
