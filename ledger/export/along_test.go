package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// mediaFixture adds to the fixture a message that names its two attachments only by
// DingTalk download codes, as a captured message does, and the media records sealed after
// the fetches: the file stored, the picture's fetch failed.
type mediaFixture struct {
	*fixture
	message, stored, failed uint64
	content                 []byte
}

func newMediaFixture(t *testing.T) *mediaFixture {
	ctx := context.Background()
	f := &mediaFixture{fixture: newFixture(t), content: []byte("PK\x03\x04 order book.xlsx")}
	m := msg(9, "cid-a", time.Date(2026, 6, 12, 1, 0, 0, 0, time.UTC), "")
	m.Kind = capture.KindFile
	m.Attachments = []capture.Attachment{{Name: "order book.xlsx", Ref: "dl-xlsx"}, {Name: "photo.jpg", MediaType: "image/jpeg", Ref: "dl-jpg"}}
	rc, err := f.l.Append(ctx, m)
	require.NoError(t, err)
	f.message = rc.Index
	_, err = f.l.PutBlob(ctx, f.content)
	require.NoError(t, err)
	about := m.Identity()
	record := func(id string, r capture.MediaResult) uint64 {
		body, err := json.Marshal(r)
		require.NoError(t, err)
		rc, err := f.l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: m.Platform, Tenant: m.Tenant, ID: id,
			Conversation: m.Conversation, About: &about, At: time.Date(2026, 6, 12, 1, 0, 5, 0, time.UTC), Body: body})
		require.NoError(t, err)
		return rc.Index
	}
	f.stored = record("job-0/stored", capture.MediaResult{Status: capture.MediaStored, Attachment: 0, DownloadCode: "dl-xlsx",
		Name: "order book.xlsx", ContentType: "application/vnd.ms-excel", SHA256: sha256hex(f.content), Size: int64(len(f.content))})
	f.failed = record("job-1/failed/1", capture.MediaResult{Status: capture.MediaFailed, Attachment: 1, DownloadCode: "dl-jpg",
		Name: "photo.jpg", Attempts: 3, Round: 1, Reason: "HTTP 500", Final: false})
	return f
}

func (f *mediaFixture) write(t *testing.T, idx ...uint64) (string, *export.Summary) {
	dir := filepath.Join(t.TempDir(), "bundle")
	req := f.request()
	req.Indexes = idx
	sum, err := export.Write(context.Background(), f.l, dir, req)
	require.NoError(t, err)
	return dir, sum
}

func bundleLines(t *testing.T, dir string) map[uint64]verify.BundleMessage {
	b, err := os.ReadFile(filepath.Join(dir, verify.BundleMessages))
	require.NoError(t, err)
	out := map[uint64]verify.BundleMessage{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m verify.BundleMessage
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		out[m.Index] = m
	}
	return out
}

// TestExportAttachmentFetchedAfterCapture: a captured message names its attachments by
// download codes; the content is named by the media record sealed after the fetch. Exported
// with its media records, the file is in the bundle, named by the record's line, shown in the
// message's RSMF and EML renderings, and checked by verify.Bundle and by the independent
// checker. The failed fetch is the one attachment the bundle lacks.
func TestExportAttachmentFetchedAfterCapture(t *testing.T) {
	f := newMediaFixture(t)
	dir, sum := f.write(t, f.message, f.stored, f.failed)
	require.Equal(t, 1, sum.Attachments, "the stored file")
	require.Equal(t, 1, sum.Unavailable, "the picture whose fetch failed")

	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Attachments)
	require.NoError(t, independentCheck(dir, f.keys.VerifierKey))

	lines := bundleLines(t, dir)
	h := sha256hex(f.content)
	require.Equal(t, []verify.BundleAttachment{{Name: "order book.xlsx"}, {Name: "photo.jpg"}}, lines[f.message].Attachments,
		"the message names its attachments as it was captured: without content")
	st := lines[f.stored]
	require.Equal(t, "media", st.Kind)
	require.Equal(t, "m-cid-a-9", st.About, "the record names the message it completes")
	require.Equal(t, []verify.BundleAttachment{{Name: "order book.xlsx", SHA256: h, Path: verify.BundleAttachmentPath(h)}}, st.Attachments)
	require.Empty(t, lines[f.failed].Attachments, "a failed fetch names no content")
	got, err := os.ReadFile(filepath.Join(dir, verify.BundleAttachmentPath(h)))
	require.NoError(t, err)
	require.Equal(t, f.content, got)

	// The renderings show the file at its message.
	found := false
	for _, b := range readDir(t, filepath.Join(dir, "rsmf")) {
		for name, data := range export.CheckRSMF(t, b).Files {
			if strings.HasPrefix(name, h) {
				require.Equal(t, f.content, data)
				found = true
			}
		}
	}
	require.True(t, found, "the fetched file is in the message's RSMF file")
	found = false
	for _, b := range readDir(t, filepath.Join(dir, "eml")) {
		p := parseEML(t, b)
		if data, ok := p.attachments["order book.xlsx"]; ok {
			require.Equal(t, f.content, data)
			require.Contains(t, p.text, h, "the transcript names the file by its SHA-256")
			require.Contains(t, p.text, "photo.jpg, not in the bundle")
			found = true
		}
	}
	require.True(t, found, "the fetched file is a part of the message's EML")

	// The record's line is derived from its opened plaintext: naming other content is altered.
	bad := copyDir(t, dir)
	rewrite(t, bad, verify.BundleMessages, func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte(`"sha256":"`+h), []byte(`"sha256":"`+sha256hex([]byte("other"))))
	})
	resign(t, f.fixture, bad)
	_, err = verify.Bundle(bad, f.keys.VerifierKey)
	require.True(t, verify.Altered(err), "%v", err)

	// Other content under its own name, the line naming it, the manifest re-signed: the
	// independent checker too finds that no opened plaintext names that content.
	other := []byte("a forged order book")
	h2 := sha256hex(other)
	bad = copyDir(t, dir)
	require.NoError(t, os.Remove(filepath.Join(bad, verify.BundleAttachmentPath(h))))
	require.NoError(t, os.WriteFile(filepath.Join(bad, verify.BundleAttachmentPath(h2)), other, 0o600))
	for _, name := range []string{verify.BundleMessages, verify.BundleManifest} {
		rewrite(t, bad, name, func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(h), []byte(h2)) })
	}
	resign(t, f.fixture, bad)
	require.ErrorContains(t, independentCheck(bad, f.keys.VerifierKey), "its plaintext does not")
	_, err = verify.Bundle(bad, f.keys.VerifierKey)
	require.True(t, verify.Altered(err), "%v", err)
}

// TestExportMessageWithoutItsMediaRecords: the message alone names no content; both of its
// attachments count as unavailable and the bundle holds no file.
func TestExportMessageWithoutItsMediaRecords(t *testing.T) {
	f := newMediaFixture(t)
	dir, sum := f.write(t, f.message)
	require.Equal(t, 0, sum.Attachments)
	require.Equal(t, 2, sum.Unavailable)
	rep, err := verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	require.Equal(t, 0, rep.Attachments)
}

// TestExportFindingsLines: an annotation that seals a message's findings is exported as a
// line about the message that lists them (rule, category, severity, term, field, offsets),
// derived from its opened plaintext, so an altered finding is caught.
func TestExportFindingsLines(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m := msg(11, "cid-a", time.Date(2026, 6, 13, 2, 0, 0, 0, time.UTC), "add me on 微信 please")
	rc, err := f.l.Append(ctx, m)
	require.NoError(t, err)
	found := []surveil.Finding{{Rule: "off-channel.move", Category: "off_channel", Severity: scan.Medium,
		Term: "微信", Field: "text", Start: 10, End: 16}}
	rec, err := surveil.NewRecord(m, rc.Index, surveil.Lexicon{Name: "hk", Version: "sha256:abc"}, found, f.now)
	require.NoError(t, err)
	ann, err := f.l.AppendRecord(ctx, rec)
	require.NoError(t, err)

	dir, _ := (&mediaFixture{fixture: f}).write(t, rc.Index, ann.Index)
	_, err = verify.Bundle(dir, f.keys.VerifierKey)
	require.NoError(t, err)
	require.NoError(t, independentCheck(dir, f.keys.VerifierKey))
	line := bundleLines(t, dir)[ann.Index]
	require.Equal(t, m.ID, line.About)
	start, end := 10, 16
	require.Equal(t, []verify.BundleFinding{{Rule: "off-channel.move", Category: "off_channel", Severity: "medium",
		Term: "微信", Field: "text", Start: &start, End: &end}}, line.Findings)

	bad := copyDir(t, dir)
	rewrite(t, bad, verify.BundleMessages, func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"severity":"medium"`), []byte(`"severity":"low"`), 1)
	})
	resign(t, f, bad)
	_, err = verify.Bundle(bad, f.keys.VerifierKey)
	require.True(t, verify.Altered(err), "%v", err)
	require.ErrorContains(t, err, "differs from the opened plaintext")
}
