package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/layout"
	"github.com/commseal/commseal/internal/ledgerdir"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/stretchr/testify/require"
)

func runV(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// makeLedger writes n messages to a ledger directory and closes it.
func makeLedger(t *testing.T, n int) string {
	dir := filepath.Join(t.TempDir(), "ledger")
	ctx := context.Background()
	l, err := ledgerdir.Open(ctx, dir, "commseal.test/verify", ledger.Options{CheckpointEvery: 40})
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		_, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "msg-" + string(rune('A'+i%26)) + strings.Repeat("x", i/26),
			Kind: capture.KindText, Conversation: capture.Conversation{ID: "cid", Type: capture.ConversationGroup},
			Text: "SECRET-ORDER-TEXT buy 0700.HK", Raw: []byte(`{"msgId":"x"}`)})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	return dir
}

func TestVerifyIntactLedger(t *testing.T) {
	dir := makeLedger(t, 100)
	code, out, errs := runV("-dir", dir)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "OK:")
	require.Contains(t, out, "100 entries")

	code, vkey, _ := runV("-dir", dir, "-vkey")
	require.Equal(t, 0, code)
	v, err := seal.NewVerifier(vkey)
	require.NoError(t, err)

	code, cp, _ := runV("-dir", dir, "-checkpoint")
	require.Equal(t, 0, code)
	c, err := seal.OpenCheckpoint([]byte(cp), v)
	require.NoError(t, err)
	require.Equal(t, uint64(100), c.Size)

	code, proof, errs := runV("-dir", dir, "-proof", "42")
	require.Equal(t, 0, code, errs)
	p, err := seal.ParseProof([]byte(proof))
	require.NoError(t, err)
	_, leaf, err := seal.VerifyProof(&p, v)
	require.NoError(t, err)
	require.Equal(t, uint64(42), leaf.Index)
	st, err := layout.OpenStore(context.Background(), dir, true, nil)
	require.NoError(t, err)
	e, err := store.ReadEntry(context.Background(), st, 42)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.Equal(t, e.Leaf, p.Extra, "the proof's extra line is the exact leaf bytes")

	code, list, errs := runV("-dir", dir, "-list")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(list), "\n")
	require.Len(t, lines, 100)
	require.Regexp(t, `^0 encrypted:dk1\.`, lines[0], "offline, an encrypted entry shows only its key id")
	require.Contains(t, errs, "100 entries are encrypted")

	// With the key given explicitly, and with a trusted checkpoint from earlier.
	cpFile := filepath.Join(t.TempDir(), "cp")
	require.NoError(t, os.WriteFile(cpFile, []byte(cp), 0o644))
	code, _, errs = runV("-dir", dir, "-key", vkey, "-trusted", cpFile, "-q")
	require.Equal(t, 0, code, errs)
	// Another key: the checkpoints do not verify.
	_, other, _ := seal.GenerateSigningKey("commseal.test/verify")
	code, out, _ = runV("-dir", dir, "-key", other)
	require.Equal(t, 1, code)
	require.Contains(t, out, "ALTERED")
	code, _, _ = runV("-dir", dir, "-key", other, "-checkpoint")
	require.Equal(t, 1, code)
}

func TestVerifyUsageAndIOErrors(t *testing.T) {
	dir := makeLedger(t, 3)
	for _, args := range [][]string{
		{},
		{"-dir", dir, "stray"},
		{"-dir", dir, "-vkey", "-list"},
		{"-dir", dir, "-proof", "-5"},
		{"-dir", dir, "-key", "x", "-key-file", "y"},
		{"-dir", dir, "-key", "not a key"},
		{"-dir", filepath.Join(dir, "nope")},
		{"-dir", dir, "-proof", "3"}, // beyond the checkpoint
		{"-dir", dir, "-trusted", filepath.Join(dir, "missing")},
		{"-dir", dir, "-list", "-who", "x"},
		{"-dir", dir, "-trusted", filepath.Join(dir, layout.VKeyFile)}, // a file that is no checkpoint
		{"-nosuchflag"},
	} {
		code, _, errs := runV(args...)
		require.Equal(t, 2, code, "%v: %s", args, errs)
		require.NotEmpty(t, errs)
	}
}

// segments returns the ledger's segment files.
func segments(t *testing.T, dir string) []string {
	segs, err := filepath.Glob(filepath.Join(dir, layout.StoreDir, "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	return segs
}

// entryFrames returns the offsets and lengths of the entry frames ('E') of a segment.
func entryFrames(b []byte) (offs, lens []int) {
	off := 32 // segment header
	for off+12 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 || off+12+n > len(b) {
			break
		}
		if b[off+12] == 'E' {
			offs, lens = append(offs, off), append(lens, n)
		}
		off += 12 + n
	}
	return offs, lens
}

func TestVerifyDetectsAlteredFiles(t *testing.T) {
	alter := func(t *testing.T, which int, fixCRC bool) (string, string, int) {
		dir := makeLedger(t, 100)
		seg := segments(t, dir)[0]
		require.NoError(t, os.Chmod(seg, 0o644))
		b, err := os.ReadFile(seg)
		require.NoError(t, err)
		offs, lens := entryFrames(b)
		require.Len(t, offs, 100)
		off, n := offs[which], lens[which]
		b[off+12+n-20] ^= 0x20 // a byte of the payload's ciphertext
		if fixCRC {
			// Someone who knows the file format fixes the frame's checksums: the store accepts
			// the frame, the ledger does not.
			tab := crc32.MakeTable(crc32.Castagnoli)
			binary.LittleEndian.PutUint32(b[off+4:], crc32.Checksum(b[off+12:off+12+n], tab))
			binary.LittleEndian.PutUint32(b[off+8:], crc32.Checksum(b[off:off+8], tab)^0x5345414c)
		}
		require.NoError(t, os.WriteFile(seg, b, 0o644))
		code, out, errs := runV("-dir", dir)
		return out, errs, code
	}
	t.Run("flipped byte", func(t *testing.T) {
		out, errs, code := alter(t, 99, false)
		require.Equal(t, 1, code, out+errs)
		require.Contains(t, out, "the first bad entry is 99")
	})
	t.Run("altered ciphertext with a recomputed frame checksum", func(t *testing.T) {
		out, errs, code := alter(t, 0, true)
		require.Equal(t, 1, code, out+errs)
		require.Contains(t, out, "the first bad entry is 0: payload does not match the hash in its leaf")
	})
}

// TestEveryKindOfDamageIsExitOne: whatever part of the ledger directory is damaged, verify says
// ALTERED with exit status 1; usage mistakes are 2; a writer that stopped before its next
// checkpoint is reported, not failed (issue #9 item 12).
func TestEveryKindOfDamageIsExitOne(t *testing.T) {
	sd := func(dir string) string { return filepath.Join(dir, layout.StoreDir) }
	flip := func(path string, at func(size int) int) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(sd(dir), path)
			require.NoError(t, os.Chmod(p, 0o600))
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[at(len(b))] ^= 0x10
			require.NoError(t, os.WriteFile(p, b, 0o600))
		}
	}
	truncate := func(path string, to func(size int) int) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(sd(dir), path)
			fi, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Chmod(p, 0o600))
			require.NoError(t, os.Truncate(p, int64(to(int(fi.Size())))))
		}
	}
	remove := func(path string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(sd(dir), path))) }
	}
	seg := "00000000000000000001.seg"
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"segment truncated in the middle", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(sd(dir), seg))
			require.NoError(t, err)
			offs, _ := entryFrames(b)
			truncate(seg, func(int) int { return offs[50] + 5 })(t, dir)
		}},
		{"segment removed", remove(seg)},
		{"extra segment", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(sd(dir), seg))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(sd(dir), "00000000000000000002.seg"), b, 0o600))
		}},
		{"stray segment number", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(sd(dir), "00000000000000000009.seg"), []byte("x"), 0o600))
		}},
		{"byte flipped in the index", flip("index", func(n int) int { return n / 2 })},
		{"byte flipped in the state file", flip("state", func(n int) int { return 20 })},
		{"state file removed", remove("state")},
		{"byte flipped in the last checkpoint's body", flip("checkpoints", func(n int) int { return n - 30 })},
		{"byte flipped in the first checkpoint's header", flip("checkpoints", func(n int) int { return 2 })},
		{"byte flipped in the last checkpoint's header", func(t *testing.T, dir string) {
			flip("checkpoints", func(n int) int { return lastFrame(t, filepath.Join(sd(dir), "checkpoints")) + 1 })(t, dir)
		}},
		{"hashes file truncated", truncate("hashes", func(n int) int { return n - 32 })},
		{"hashes file emptied", truncate("hashes", func(int) int { return 0 })},
		{"checkpoints removed", remove("checkpoints")},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := makeLedger(t, 100)
			c.damage(t, dir)
			code, out, errs := runV("-dir", dir)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", out, errs)
			require.Contains(t, out, "ALTERED")
		})
	}

	t.Run("entries after the latest checkpoint", func(t *testing.T) {
		// Checkpoints every 40 entries or so (signed on a goroutine of their own, at whatever size
		// the ledger has reached when it runs) and at 100 on close; the last one goes.
		dir := makeLedger(t, 100)
		p := filepath.Join(sd(dir), "checkpoints")
		require.NoError(t, os.Truncate(p, int64(lastFrame(t, p))))
		code, out, errs := runV("-dir", dir)
		require.Equal(t, 0, code, out+errs)
		m := regexp.MustCompile(`tree size (\d+),`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		size, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		require.Less(t, size, 100)
		require.Contains(t, out, fmt.Sprintf("%d entries after the latest checkpoint are verified but nobody has signed for them yet", 100-size))
	})
	t.Run("no checkpoint at all", func(t *testing.T) {
		dir := makeLedger(t, 100)
		require.NoError(t, os.Truncate(filepath.Join(sd(dir), "checkpoints"), 0))
		code, out, _ := runV("-dir", dir)
		require.Equal(t, 1, code)
		require.Contains(t, out, "no signed checkpoint")
		code, out, errs := runV("-dir", dir, "-allow-unsigned")
		require.Equal(t, 0, code, out+errs)
		require.Contains(t, out, "100 entries after the latest checkpoint")
	})
}

// lastFrame returns the offset of the last frame of a checkpoints file.
func lastFrame(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	off, last := 0, -1
	for off+12 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		last = off
		off += 12 + n
	}
	require.GreaterOrEqual(t, last, 0)
	return last
}

// TestVerifyExitStatus (README, "Exit status"): 2 for an invocation refused before anything is
// checked (flags, no ledger, a store that is not the directory's), 1 for a ledger found
// altered, 0 for an intact one.
func TestVerifyExitStatus(t *testing.T) {
	dir := makeLedger(t, 3)
	damaged := makeLedger(t, 3)
	index := filepath.Join(damaged, layout.StoreDir, "index")
	require.NoError(t, os.Chmod(index, 0o600))
	b, err := os.ReadFile(index)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(index, b, 0o600))
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"-h: the usage, asked for", []string{"-h"}, 0},
		{"no flags", nil, 2},
		{"no -dir", []string{"-q"}, 2},
		{"no ledger (layout.ErrNoLedger)", []string{"-dir", t.TempDir()}, 2},
		{"a store of another kind (backend.ErrMismatch)", []string{"-dir", dir, "-store", "postgres://u@127.0.0.1:1/db"}, 2},
		{"intact", []string{"-dir", dir, "-q"}, 0},
		{"altered: a byte flipped in the store's index", []string{"-dir", damaged, "-q"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runV(c.args...)
			require.Equal(t, c.want, code, "%s%s", out, errs)
		})
	}
}
