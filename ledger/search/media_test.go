package search_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/search"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/stretchr/testify/require"
)

// TestHitsCarryTheirMediaRecords: a message that names its attachments by download codes is
// found with the media records of their fetches after capture (the stored one and the failed
// one, which says why that content is missing) and the annotation of its findings, live, from the index file after reopening,
// and after a rebuild; Result.Indexes gives the message and its records, which an export
// takes together.
func TestHitsCarryTheirMediaRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	defer func() { e.Close() }()
	dir := t.TempDir()
	ix, err := search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)

	m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: "m-media", SentAt: e.now,
		Conversation: capture.Conversation{ID: "cid-m", Type: capture.ConversationGroup, Title: "Desk"},
		Sender:       capture.Party{ID: "u1", Name: "Wong"}, Kind: capture.KindFile, Text: "委託單 attached",
		Attachments: []capture.Attachment{{Name: "委託單.pdf", Ref: "dl-1"}, {Name: "photo.jpg", Ref: "dl-2"}},
		Raw:         []byte(`{}`)}
	rc, err := e.Append(ctx, m)
	require.NoError(t, err)
	other, err := e.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: "m-plain", SentAt: e.now,
		Conversation: m.Conversation, Sender: m.Sender, Kind: capture.KindText, Text: "委託單 later", Raw: []byte(`{}`)})
	require.NoError(t, err)
	about := m.Identity()
	record := func(id string, r capture.MediaResult) uint64 {
		body, err := json.Marshal(r)
		require.NoError(t, err)
		rc, err := e.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1", ID: id,
			Conversation: m.Conversation, About: &about, At: e.now.Add(time.Second), Body: body})
		require.NoError(t, err)
		return rc.Index
	}
	stored := record("j1/stored", capture.MediaResult{Status: capture.MediaStored, Attachment: 0, Name: "委託單.pdf",
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 4})
	failed := record("j2/failed/1", capture.MediaResult{Status: capture.MediaFailed, Attachment: 1, Reason: "HTTP 500"})
	rec, err := surveil.NewRecord(m, rc.Index, surveil.Lexicon{Name: "hk", Version: "sha256:abc"},
		[]surveil.Finding{{Rule: "r", Category: "c", Severity: scan.High, Term: "委託", Field: "text", Start: 0, End: 6}}, e.now)
	require.NoError(t, err)
	ann, err := e.AppendRecord(ctx, rec)
	require.NoError(t, err)

	acc := e.Access("tester", "media")
	check := func(ix *search.Index, how string) {
		t.Helper()
		res, err := ix.Search(ctx, acc, search.Query{Text: "委託單", Limit: search.MaxLimit})
		require.NoError(t, err, how)
		require.Len(t, res.Hits, 2, how)
		byIndex := map[uint64][]uint64{}
		for _, h := range res.Hits {
			byIndex[h.Index] = h.Records
		}
		require.Equal(t, []uint64{stored, failed, ann.Index}, byIndex[rc.Index], how)
		require.Empty(t, byIndex[other.Index], how)
		require.ElementsMatch(t, []uint64{rc.Index, stored, failed, ann.Index, other.Index}, res.Indexes(), how)
	}
	check(ix, "live")
	require.NoError(t, ix.Close())
	ix, err = search.Open(ctx, e.Ledger, search.Options{Dir: dir})
	require.NoError(t, err)
	defer ix.Close()
	check(ix, "from the index file")
	_, err = ix.Rebuild(ctx)
	require.NoError(t, err)
	check(ix, "rebuilt")

	// TakesAlong picks the same records for a program that selects by scanning.
	along := map[uint64]uint64{}
	require.NoError(t, e.Access("tester", "scan").Scan(ctx, 0, e.Size(), func(en *ledger.Entry, err error) error {
		if err != nil {
			return err
		}
		if at, ok := search.TakesAlong(ctx, e.Ledger, en); ok {
			along[en.Index] = at
		}
		return nil
	}))
	require.Equal(t, map[uint64]uint64{stored: rc.Index, failed: rc.Index, ann.Index: rc.Index}, along)
}
