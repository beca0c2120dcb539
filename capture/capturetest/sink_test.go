package capturetest_test

import (
	"context"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/capture/capturetest"
	"github.com/stretchr/testify/require"
)

func TestSinkDeduplicatesValidatesAndCopies(t *testing.T) {
	ctx := context.Background()
	s := capturetest.NewSink()
	m := &capture.Message{Platform: "p", Tenant: "t", ID: "m1", Raw: []byte("raw"), Mentions: []capture.Party{{ID: "u"}}}
	rc, err := s.Append(ctx, m)
	require.NoError(t, err)
	require.Equal(t, capture.Receipt{Index: 0}, rc)
	m.Raw[0], m.Mentions[0].ID = 'X', "changed"
	got := s.Messages()[0]
	require.Equal(t, "raw", string(got.Raw), "the sink keeps a copy")
	require.Equal(t, "u", got.Mentions[0].ID)
	_, ok := s.Committed(m.Identity())
	require.True(t, ok)

	rc, err = s.Append(ctx, &capture.Message{Platform: "p", Tenant: "t", ID: "m1"})
	require.NoError(t, err)
	require.Equal(t, capture.Receipt{Index: 0, Duplicate: true}, rc)

	rec := &capture.Record{Kind: capture.RecordContext, Platform: "p", Tenant: "t", ID: "e1"}
	rc, err = s.AppendRecord(ctx, rec)
	require.NoError(t, err)
	require.Equal(t, capture.Receipt{Index: 1}, rc)
	rc, err = s.AppendRecord(ctx, rec)
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	noID := &capture.Record{Kind: capture.RecordAnnotation, Platform: "p"}
	for range 2 {
		_, err = s.AppendRecord(ctx, noID)
		require.NoError(t, err)
	}
	require.Len(t, s.Records(capture.RecordAnnotation), 2, "records without an ID are never deduplicated")

	_, err = s.Append(ctx, &capture.Message{Platform: "p", ID: strings.Repeat("x", capture.MaxIDLen+1)})
	require.ErrorIs(t, err, capture.ErrInvalidMessage)
	_, err = s.AppendRecord(ctx, &capture.Record{Kind: "nope", Platform: "p"})
	require.ErrorIs(t, err, capture.ErrInvalidMessage)

	sum, err := s.PutBlob(ctx, []byte("blob"))
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256([]byte("blob")), sum)
	b, err := s.Blob(ctx, sum)
	require.NoError(t, err)
	require.Equal(t, "blob", string(b))
	_, err = s.Blob(ctx, [32]byte{})
	require.ErrorIs(t, err, capture.ErrBlobNotFound)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Append(canceled, &capture.Message{Platform: "p", ID: "m2"})
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, s.Messages(), 1)
}

func TestSinkConcurrentAppendsStoreEachKeyOnce(t *testing.T) {
	s := capturetest.NewSink()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				_, err := s.Append(context.Background(), &capture.Message{Platform: "p", ID: string(rune('a' + (i+j)%26))})
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.Len(t, s.Messages(), 26)
	require.Equal(t, 800, s.Calls())
}
