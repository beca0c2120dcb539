package search_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/search"
	"github.com/stretchr/testify/require"
)

var keepOneYear = ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}}

// logCapture records what the index logs.
type logCapture struct{ bytes.Buffer }

func (c *logCapture) logger() *slog.Logger { return slog.New(slog.NewTextHandler(&c.Buffer, nil)) }

func all(t *testing.T, ix *search.Index, acc search.Recorder, text string) []uint64 {
	t.Helper()
	res, err := ix.Search(context.Background(), acc, search.Query{Text: text, Limit: search.MaxLimit})
	require.NoError(t, err)
	return hitIndexes(res)
}

// TestShreddingAScopeRemovesItFromTheIndex: after retention shreds a month, the running index
// no longer finds its messages, an index opened again from its file does not either, the file
// never held a word of them in plain, and its sealed copies of them no longer open with the
// ledger's keys: shredding reached the index without rewriting it.
func TestShreddingAScopeRemovesItFromTheIndex(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer func() { e.Close() }()
	r := rand.New(rand.NewPCG(3, 4))
	old := fill(t, e.Ledger, r, 200, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	recent := fill(t, e.Ledger, r, 200, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC))
	secret := &known{"OLD-SECRET-機密-ORDER"}
	oldSecret := secret.append(t, e, time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC))
	newSecret := secret.append(t, e, time.Date(2026, 9, 9, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	var logs logCapture
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir, Logger: logs.logger()})
	require.NoError(t, err)
	acc := e.Access("officer", "retention check")
	require.Equal(t, []uint64{oldSecret, newSecret}, all(t, ix, acc, "OLD-SECRET-機密-ORDER"))
	require.Len(t, all(t, ix, acc, ""), len(old)+len(recent)+2)

	_, err = e.ApplyRetention(ctx, keepOneYear, ledger.ApplyOptions{Authority: "retention job"})
	require.NoError(t, err)
	require.Equal(t, []uint64{newSecret}, all(t, ix, acc, "OLD-SECRET-機密-ORDER"), "the running index forgot")
	require.Len(t, all(t, ix, acc, ""), len(recent)+1)
	st := ix.Stats()
	require.Equal(t, len(old)+1, st.Shredded)
	require.NoError(t, ix.Close())

	raw, err := os.ReadFile(filepath.Join(dir, "docs.log"))
	require.NoError(t, err)
	for _, s := range []string{"OLD-SECRET", "機密", "Wong Siu Ming", "黃小明", "WhatsApp", "報價單"} {
		require.NotContains(t, string(raw), s, "no plaintext in the index file")
	}

	ix, err = search.Open(ctx, e.Ledger, search.Options{Dir: dir, Logger: logs.logger()})
	require.NoError(t, err)
	defer ix.Close()
	require.Equal(t, []uint64{newSecret}, all(t, ix, acc, "OLD-SECRET-機密-ORDER"), "the reopened index does not find it")
	require.Len(t, all(t, ix, acc, ""), len(recent)+1)
	require.NotContains(t, logs.String(), "rebuilding", "it was read from its file")

	// Every sealed document of the old month is in the file and no longer opens.
	d := e.Derive("search")
	opened, gone := 0, 0
	for _, rec := range records(t, raw) {
		if rec.typ != 'D' {
			continue
		}
		_, err := d.Open(ctx, rec.keyID, rec.index, rec.ct)
		switch {
		case err == nil:
			opened++
		case strings.Contains(err.Error(), "shredded"):
			require.ErrorIs(t, err, ledger.ErrShredded)
			gone++
		default:
			t.Fatal(err)
		}
	}
	require.Equal(t, len(old)+1, gone)
	require.Equal(t, len(recent)+1, opened)
}

// known appends a message with a known text.
type known struct{ text string }

func (c *known) append(t *testing.T, e *env, at time.Time) uint64 {
	m := message(rand.New(rand.NewPCG(uint64(at.Unix()), 1)), int(at.Unix()), at)
	m.Text = c.text
	rc, err := e.Append(context.Background(), m)
	require.NoError(t, err)
	return rc.Index
}

type rawRecord struct {
	typ   byte
	index uint64
	keyID string
	ct    []byte
	off   int // of the record's header
}

// records parses an index file independently of the package (the format in file.go's comment).
func records(t *testing.T, raw []byte) []rawRecord {
	t.Helper()
	const header = "commseal search index v2\n"
	require.True(t, bytes.HasPrefix(raw, []byte(header)))
	var out []rawRecord
	for off := len(header); off+8 <= len(raw); {
		n := int(binary.LittleEndian.Uint32(raw[off:]))
		body := raw[off+8 : off+8+n]
		require.Equal(t, binary.LittleEndian.Uint32(raw[off+4:]), crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		rec := rawRecord{typ: body[0], off: off}
		if rec.typ == 'D' {
			b := body[1:]
			i, k := binary.Uvarint(b)
			kl, k2 := binary.Uvarint(b[k:])
			rec.index, rec.keyID, rec.ct = i, string(b[k+k2:k+k2+int(kl)]), b[k+k2+int(kl):]
		}
		out = append(out, rec)
		off += 8 + n
	}
	return out
}

// TestTheIndexFileSurvivesDamage: a torn tail (an update cut short) is dropped and redone from
// the ledger; a record whose sealed document was altered (its checksum fixed up), a file that
// is not an index, and an index of another ledger are rebuilt. Every time, the answers are
// those of a fresh index.
func TestTheIndexFileSurvivesDamage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer e.Close()
	fill(t, e.Ledger, rand.New(rand.NewPCG(5, 6)), 300, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	acc := e.Access("tester", "damage")
	fresh, err := search.Open(ctx, e.Ledger, search.Options{})
	require.NoError(t, err)
	defer fresh.Close()
	queries := []string{"微信", "whatsapp", "港 OR buy", "sender:u1", ""}
	want := map[string][]uint64{}
	for _, q := range queries {
		want[q] = all(t, fresh, acc, q)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "docs.log")
	build := func() []byte {
		require.NoError(t, os.RemoveAll(dir))
		ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir})
		require.NoError(t, err)
		require.NoError(t, ix.Close())
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		return raw
	}
	check := func(name string, rebuilt bool) {
		t.Helper()
		var logs logCapture
		ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir, Logger: logs.logger()})
		require.NoError(t, err, name)
		defer ix.Close()
		require.Equal(t, rebuilt, strings.Contains(logs.String(), "rebuilding"), "%s: %s", name, logs.String())
		for _, q := range queries {
			require.Equal(t, want[q], all(t, ix, acc, q), "%s: %q", name, q)
		}
	}

	raw := build()
	require.NoError(t, os.WriteFile(path, append(raw, 0x40, 0, 0, 0, 1, 2, 3), 0o600))
	check("torn tail", false)

	raw = build()
	recs := records(t, raw)
	var doc rawRecord
	for _, r := range recs {
		if r.typ == 'D' {
			doc = r
			break
		}
	}
	bad := bytes.Clone(raw)
	n := int(binary.LittleEndian.Uint32(bad[doc.off:]))
	bad[doc.off+8+n-1] ^= 1 // the last byte of the sealed document
	binary.LittleEndian.PutUint32(bad[doc.off+4:], crc32.Checksum(bad[doc.off+8:doc.off+8+n], crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(path, bad, 0o600))
	check("altered document", true)

	bad = bytes.Clone(build())
	bad[doc.off+9] ^= 1 // checksum no longer matches: everything from there is redone
	require.NoError(t, os.WriteFile(path, bad, 0o600))
	check("bad checksum", false)

	require.NoError(t, os.WriteFile(path, []byte("not an index at all\n"), 0o600))
	check("not an index", true)

	// An index written by an earlier version (v1 kept no media records) is rebuilt.
	raw = build()
	require.NoError(t, os.WriteFile(path, bytes.Replace(raw, []byte("index v2\n"), []byte("index v1\n"), 1), 0o600))
	check("an earlier version's index", true)

	other := newEnv(t)
	defer other.Close()
	fill(t, other.Ledger, rand.New(rand.NewPCG(8, 8)), 400, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, os.RemoveAll(dir))
	ix, err := search.Open(ctx, other.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, ix.Close())
	check("another ledger's index", true)
}

// TestAPlainLedgerIsIndexedInMemoryOnly: without encryption there is no key to seal the index
// under, so nothing is written, and the index still answers.
func TestAPlainLedgerIsIndexedInMemoryOnly(t *testing.T) {
	ctx := context.Background()
	e := newPlainEnv(t)
	defer e.Close()
	msgs := fill(t, e.Ledger, rand.New(rand.NewPCG(1, 1)), 50, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	defer ix.Close()
	require.False(t, ix.Stats().OnDisk)
	require.Len(t, all(t, ix, e.Access("t", "plain"), ""), len(msgs))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// TestQueriesAloneWriteNothing: searching appends access entries to the ledger, which the index
// follows without writing to its file; a new message is written, and found after a reopen.
func TestQueriesAloneWriteNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer e.Close()
	fill(t, e.Ledger, rand.New(rand.NewPCG(2, 2)), 30, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	path := filepath.Join(dir, "docs.log")
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	before := size()
	acc := e.Access("t", "quiet")
	for range 20 {
		all(t, ix, acc, "微信")
	}
	require.Equal(t, before, size())
	at := (&known{"NEW-MESSAGE-TEXT"}).append(t, e, time.Date(2026, 5, 9, 0, 0, 0, 0, time.UTC))
	require.Equal(t, []uint64{at}, all(t, ix, acc, "NEW-MESSAGE-TEXT"))
	require.Greater(t, size(), before)
	require.NoError(t, ix.Close())
	ix, err = search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	defer ix.Close()
	require.Equal(t, []uint64{at}, all(t, ix, acc, "NEW-MESSAGE-TEXT"))
}
