package export_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

const origin = "export.test/ledger"

type fixture struct {
	l    *ledger.Ledger
	keys *seal.SigningKey
	now  time.Time
	// indexes of what was appended
	shredded, record, attach, picture uint64
	shredEntry                        uint64 // the shred entry that destroyed the shredded one's key
	msgs                              []uint64
	pdf, png                          []byte // the attachments' content
}

func msg(i int, conv string, sent time.Time, text string) *capture.Message {
	return &capture.Message{
		Platform: "dingtalk", Tenant: "corp1", ID: fmt.Sprintf("m-%s-%d", conv, i),
		Conversation: capture.Conversation{ID: conv, Type: capture.ConversationGroup, Title: "Desk 交易組"},
		Sender:       capture.Party{ID: fmt.Sprintf("u%d", i), StaffID: fmt.Sprintf("staff-%d", i), Name: "Wong 黃"},
		SentAt:       sent, Kind: capture.KindText, Text: text,
		Raw: []byte(`{"text":"` + text + `"}`),
	}
}

// newFixture opens an encrypted ledger in memory with messages, an attachment, a record and
// one entry shredded under retention.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey(origin)
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	f := &fixture{keys: keys, now: time.Date(2026, 7, 2, 9, 0, 0, 0, time.UTC)}
	f.l, err = ledger.Open(ctx, memstore.New(), ledger.Options{
		Signing: keys, CheckpointEvery: 100, CheckpointInterval: time.Hour,
		Now:        func() time.Time { return f.now },
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { f.l.Close() })

	rc, err := f.l.Append(ctx, msg(0, "cid-old", time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC), "expired long ago"))
	require.NoError(t, err)
	f.shredded = rc.Index
	for i := 1; i <= 4; i++ {
		rc, err := f.l.Append(ctx, msg(i, "cid-a", time.Date(2026, 6, i, 10, 0, 0, 0, time.FixedZone("HKT", 8*3600)), fmt.Sprintf("BUY %d lots", i)))
		require.NoError(t, err)
		f.msgs = append(f.msgs, rc.Index)
	}
	f.pdf = []byte("%PDF-1.7 term sheet: 0700.HK at 380")
	pdfSum, err := f.l.PutBlob(ctx, f.pdf)
	require.NoError(t, err)
	m := msg(5, "cid-a", time.Date(2026, 6, 9, 0, 0, 0, 0, time.UTC), "see the term sheet")
	m.Attachments = []capture.Attachment{{Name: "terms.pdf", MediaType: "application/pdf", Size: int64(len(f.pdf)),
		SHA256: hex.EncodeToString(pdfSum[:])}, {Name: "never-fetched.doc", Ref: "dl-code-1"}}
	rc, err = f.l.Append(ctx, m)
	require.NoError(t, err)
	f.attach = rc.Index
	rc, err = f.l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordContext, Platform: "dingtalk", Tenant: "corp1",
		ID: "ev-1", Conversation: capture.Conversation{ID: "cid-a", Type: capture.ConversationGroup, Title: "Desk 交易組"},
		At: time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC), Body: []byte(`{"members":["u1","u2"]}`)})
	require.NoError(t, err)
	f.record = rc.Index
	f.png = []byte("\x89PNG\r\n\x1a\n a chart")
	pngSum, err := f.l.PutBlob(ctx, f.png)
	require.NoError(t, err)
	m = msg(7, "cid-a", time.Date(2026, 6, 11, 0, 0, 0, 0, time.UTC), "")
	m.Kind = capture.KindPicture
	m.Attachments = []capture.Attachment{{Name: "chart 圖.png", MediaType: "image/png", Size: int64(len(f.png)), SHA256: hex.EncodeToString(pngSum[:])}}
	rc, err = f.l.Append(ctx, m)
	require.NoError(t, err)
	f.picture = rc.Index
	shreds, err := f.l.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}},
		ledger.ApplyOptions{Authority: "retention job"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	f.shredEntry = shreds[0].Index
	return f
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (f *fixture) request() export.Request {
	return export.Request{Who: "alice@compliance", Why: "SFC request 2026-17", Query: `text:"BUY"`,
		Indexes: []uint64{f.msgs[2], f.shredded, f.msgs[0], f.msgs[1], f.attach, f.record, f.msgs[0], f.picture},
		Formats: []string{export.FormatRSMF, export.FormatEML},
		Signer:  f.keys.Signer, Now: func() time.Time { return f.now }}
}

func (f *fixture) export(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	sum, err := export.Write(context.Background(), f.l, dir, f.request())
	require.NoError(t, err)
	require.Equal(t, 8, sum.Entries, "the 7 selected and the shred entry the shredded one cites")
	require.Equal(t, 1, sum.Shredded)
	require.Equal(t, 7, sum.Opened)
	require.Equal(t, 2, sum.Attachments)
	require.Equal(t, 1, sum.Unavailable, "never-fetched.doc")
	return dir
}

func TestExportBundleVerifies(t *testing.T) {
	f := newFixture(t)
	dir := f.export(t)
	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	require.Equal(t, []uint64{f.shredded, f.msgs[0], f.msgs[1], f.msgs[2], f.attach, f.record, f.picture, f.shredEntry}, rep.Entries,
		"the selection and the shred entry the shredded entry cites")
	require.Equal(t, 7, rep.Opened)
	require.Equal(t, 2, rep.Attachments)
	require.Equal(t, 1, rep.Shredded)
	require.Equal(t, origin, rep.Origin)
	require.Equal(t, "alice@compliance", rep.Request.Who)
	require.Equal(t, `text:"BUY"`, rep.Request.Query)
	require.Equal(t, f.l.Size(), rep.LatestSize, "the latest checkpoint covers the export's own access entries")

	// Files and directories are for the owner alone.
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		if fi.IsDir() {
			require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), p)
		} else {
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
		}
		return nil
	}))

	// messages.jsonl says what the ledger holds.
	b, err := os.ReadFile(filepath.Join(dir, "messages.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 8)
	var first, att, rec, shred verify.BundleMessage
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Equal(t, verify.BundleMessage{Index: f.shredded, Kind: "message", Shredded: true, ShredEntry: &f.shredEntry}, first)
	require.NoError(t, json.Unmarshal([]byte(lines[7]), &shred))
	require.Equal(t, f.shredEntry, shred.Index)
	require.Equal(t, "shred", shred.Kind)
	require.NoError(t, json.Unmarshal([]byte(lines[4]), &att))
	require.Equal(t, "see the term sheet", att.Text)
	require.Equal(t, "m-cid-a-5", att.SourceID)
	require.Equal(t, "u5", att.SenderID)
	require.Equal(t, "Desk 交易組", att.ConversationTitle)
	pdfHex := sha256hex(f.pdf)
	require.Equal(t, []verify.BundleAttachment{{Name: "terms.pdf", SHA256: pdfHex, Path: "attachments/" + pdfHex},
		{Name: "never-fetched.doc"}}, att.Attachments)
	var m1 verify.BundleMessage
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &m1))
	require.Equal(t, "2026-06-01T02:00:00Z", m1.SentAt, "sent times are in UTC")
	require.NoError(t, json.Unmarshal([]byte(lines[5]), &rec))
	var pic verify.BundleMessage
	require.NoError(t, json.Unmarshal([]byte(lines[6]), &pic))
	pngHex := sha256hex(f.png)
	require.Equal(t, []verify.BundleAttachment{{Name: "chart 圖.png", SHA256: pngHex, Path: "attachments/" + pngHex}}, pic.Attachments)
	require.Equal(t, verify.BundleMessage{Index: f.record, Kind: "context", SourceID: "ev-1", ConversationID: "cid-a",
		ConversationTitle: "Desk 交易組", SentAt: "2026-06-10T00:00:00Z"}, rec)
}

func TestExportRecordsAccessBeforeWriting(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before := f.l.Size()
	dir := f.export(t)
	after := f.l.Size()
	// The selection {0,1,2,3,5,6,7}: one access entry naming them; one for the two attachments.
	require.Equal(t, before+2, after, "one access entry for the entries, one for the attachments")
	var runs [][2]uint64
	var blobs []string
	err := f.l.Access("auditor", "check the export's trail").Scan(ctx, before, after, func(e *ledger.Entry, err error) error {
		require.NoError(t, err)
		require.Equal(t, seal.KindAccess, e.Leaf.Kind)
		var a struct {
			Who, Why, Op, For string
			From, To          uint64
			Blobs             []string
		}
		require.NoError(t, json.Unmarshal(e.Body, &a))
		if a.Op == "blobs" {
			blobs = append(blobs, a.Blobs...)
			return nil
		}
		require.Equal(t, "alice@compliance", a.Who)
		require.Equal(t, "SFC request 2026-17", a.Why)
		require.Equal(t, "export", a.For, "the trail tells an export from a reading")
		runs = append(runs, [2]uint64{a.From, a.To})
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, [][2]uint64{{0, 8}}, runs)
	require.ElementsMatch(t, []string{sha256hex(f.pdf), sha256hex(f.png)}, blobs, "each attachment read is sealed")
	// The access entries are covered by the bundle's latest checkpoint: sealed before the
	// bundle; the entry reads by the proofs' checkpoint already.
	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rep.LatestSize, after)
	require.GreaterOrEqual(t, rep.TreeSize, before+1, "the read entry is covered by the proofs' checkpoint")
}

func TestExportRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	size := f.l.Size()

	t.Run("unknown index", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "bundle")
		req := f.request()
		req.Indexes = append(req.Indexes, size+3)
		_, err := export.Write(ctx, f.l, dir, req)
		require.ErrorIs(t, err, ledger.ErrNotFound)
		require.ErrorContains(t, err, fmt.Sprint(size+3))
		_, statErr := os.Stat(dir)
		require.ErrorIs(t, statErr, os.ErrNotExist, "nothing written")
		require.Equal(t, size, f.l.Size(), "nothing recorded")
	})
	t.Run("non-empty dir", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o600))
		_, err := export.Write(ctx, f.l, dir, f.request())
		require.ErrorIs(t, err, export.ErrNotEmpty)
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, ents, 1, "nothing written")
		b, err := os.ReadFile(filepath.Join(dir, "keep.txt"))
		require.NoError(t, err)
		require.Equal(t, "mine", string(b))
		require.Equal(t, size, f.l.Size(), "nothing recorded")
	})
	for name, mod := range map[string]func(*export.Request){
		"no who":         func(r *export.Request) { r.Who = "" },
		"no why":         func(r *export.Request) { r.Why = "" },
		"no indexes":     func(r *export.Request) { r.Indexes = nil },
		"no signer":      func(r *export.Request) { r.Signer = nil },
		"other signer":   func(r *export.Request) { r.Signer = otherSigner(t).Signer },
		"unknown format": func(r *export.Request) { r.Formats = []string{export.FormatRSMF, "pdf"} },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			req := f.request()
			mod(&req)
			_, err := export.Write(ctx, f.l, dir, req)
			require.ErrorIs(t, err, export.ErrBadRequest)
			_, statErr := os.Stat(dir)
			require.ErrorIs(t, statErr, os.ErrNotExist, "nothing written")
			require.Equal(t, size, f.l.Size(), "nothing recorded")
		})
	}
}

func otherSigner(t testing.TB) *seal.SigningKey {
	skey, _, err := seal.GenerateSigningKey(origin)
	require.NoError(t, err)
	k, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	return k
}

func TestExportPlainLedgerAndItsOwnEntries(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := seal.GenerateSigningKey(origin)
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	defer l.Close()
	for i := range 3 {
		_, err := l.Append(ctx, msg(i, "cid-p", time.Date(2026, 6, 1, 0, 0, i, 0, time.UTC), fmt.Sprint("plain ", i)))
		require.NoError(t, err)
	}
	req := export.Request{Who: "bob", Why: "first", Indexes: []uint64{1}, Signer: keys.Signer}
	_, err = export.Write(ctx, l, filepath.Join(t.TempDir(), "a"), req)
	require.NoError(t, err)
	access := l.Size() - 1 // the first export's access entry

	// Exporting the ledger's own access entry: kind and opening, no message fields.
	dir := filepath.Join(t.TempDir(), "b")
	req.Why, req.Indexes = "second", []uint64{access, 0}
	sum, err := export.Write(ctx, l, dir, req)
	require.NoError(t, err)
	require.Equal(t, 2, sum.Opened)
	rep, err := verify.Bundle(dir, vkey)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, access}, rep.Entries)
	// Nothing was appended after the proofs' checkpoint: the consistency proof says so, empty.
	require.Equal(t, rep.TreeSize, rep.LatestSize)
	cons, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(verify.BundleConsistency)))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d %d\n", rep.TreeSize, rep.TreeSize), string(cons))
	require.NoError(t, independentCheck(dir, vkey))
	b, err := os.ReadFile(filepath.Join(dir, verify.BundleMessages))
	require.NoError(t, err)
	require.Contains(t, string(b), fmt.Sprintf(`{"index":%d,"kind":"access"}`, access))
	require.Contains(t, string(b), `"text":"plain 0"`)
}

// Appends and checkpoints while exporting do not break the bundle: every proof is against the
// one checkpoint in it.
func TestExportWhileAppending(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := seal.GenerateSigningKey(origin)
	require.NoError(t, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys, CheckpointEvery: 2, CheckpointInterval: time.Millisecond})
	require.NoError(t, err)
	defer l.Close()
	for i := range 20 {
		_, err := l.Append(ctx, msg(i, "cid-c", time.Date(2026, 6, 1, 0, 0, i, 0, time.UTC), "x"))
		require.NoError(t, err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := l.Append(ctx, msg(i, "cid-c", time.Date(2026, 6, 2, 0, 0, 0, i, time.UTC), "y")); err != nil {
				done <- err
				return
			}
		}
	}()
	for k := range 5 {
		dir := filepath.Join(t.TempDir(), fmt.Sprint(k))
		_, err := export.Write(ctx, l, dir, export.Request{Who: "w", Why: "concurrent", Indexes: []uint64{0, 5, uint64(10 + k)}, Signer: keys.Signer})
		require.NoError(t, err)
		_, err = verify.Bundle(dir, vkey)
		require.NoError(t, err)
	}
	close(stop)
	require.NoError(t, <-done)
}

// The bundle proves its checkpoint a prefix of the newest one the ledger signed by the end of
// the export, and says so in the form README.txt describes.
func TestExportProvesConsistencyToTheLatestCheckpoint(t *testing.T) {
	f := newFixture(t)
	dir := f.export(t)
	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(verify.BundleConsistency)))
	require.NoError(t, err)
	first, _, _ := strings.Cut(string(b), "\n")
	require.Equal(t, fmt.Sprintf("%d %d", rep.TreeSize, rep.LatestSize), first)
	_, cp, err := f.l.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, cp.Size, rep.LatestSize, "the newest checkpoint at export time")
	latest, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(verify.BundleLatestCheckpoint)))
	require.NoError(t, err)
	parsed, err := seal.OpenCheckpoint(latest, f.keys.Verifier)
	require.NoError(t, err)
	require.Equal(t, cp, parsed)
	require.NoError(t, independentCheck(dir, f.keys.VerifierKey))
}

// An exported picture and file round-trip: the bundle holds their content byte for byte under
// the path messages.jsonl gives, and the exporter's blob reads are covered by the consistency
// proof to the newest checkpoint.
func TestExportAttachmentsRoundTrip(t *testing.T) {
	f := newFixture(t)
	dir := f.export(t)
	for _, content := range [][]byte{f.pdf, f.png} {
		b, err := os.ReadFile(filepath.Join(dir, "attachments", sha256hex(content)))
		require.NoError(t, err)
		require.Equal(t, content, b)
	}
	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	require.Greater(t, rep.LatestSize, rep.TreeSize, "the attachment reads are sealed after the proofs' checkpoint")
	require.NoError(t, independentCheck(dir, f.keys.VerifierKey))
}
