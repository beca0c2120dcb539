package ledger_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// metaFailVault fails the next SetMeta of the key ids in failNext.
type metaFailVault struct {
	*memstore.KeyVault
	mu       sync.Mutex
	failNext map[string]bool
}

// UpdateMeta fails as SetMeta does: the ledger changes metadata through it when the vault has it.
func (v *metaFailVault) UpdateMeta(ctx context.Context, id string, update func([]byte) ([]byte, error)) error {
	v.mu.Lock()
	fail := v.failNext[id]
	delete(v.failNext, id)
	v.mu.Unlock()
	if fail {
		return errors.New("metaFailVault: the disk said no")
	}
	return v.KeyVault.UpdateMeta(ctx, id, update)
}

func (v *metaFailVault) SetMeta(ctx context.Context, id string, meta []byte) error {
	v.mu.Lock()
	fail := v.failNext[id]
	delete(v.failNext, id)
	v.mu.Unlock()
	if fail {
		return errors.New("metaFailVault: the disk said no")
	}
	return v.KeyVault.SetMeta(ctx, id, meta)
}

// TestAMediaRecordIsNotSealedUntilItsBlobIsTiedToItsScope: when the blob's key cannot be tied to
// the record's scope, the media record fails (the source retries) instead of being sealed with
// the blob untied, which left the attachment readable after its scope was shredded. The retry
// ties it, and shredding the scope then takes the blob along.
func TestAMediaRecordIsNotSealedUntilItsBlobIsTiedToItsScope(t *testing.T) {
	ctx := context.Background()
	vault := &metaFailVault{KeyVault: &memstore.KeyVault{}, failNext: map[string]bool{}}
	e := newEncWith(t, vault)
	defer e.Close()
	sent := time.Date(2023, 2, 3, 0, 0, 0, 0, time.UTC)
	m := secretMsg(1, "cid-tie", sent, "see the attached order ticket")
	_, err := e.Append(ctx, m)
	require.NoError(t, err)
	sum, err := e.PutBlob(ctx, []byte("order ticket 0700.HK"))
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	about := m.Identity()
	rec := &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1", ID: "media-tie",
		Conversation: capture.Conversation{ID: "cid-tie"}, About: &about, At: sent.Add(time.Minute), Body: body}

	vault.mu.Lock()
	vault.failNext[blobKey(sum)] = true
	vault.mu.Unlock()
	size := e.Size()
	_, err = e.AppendRecord(ctx, rec)
	require.ErrorContains(t, err, "linking blob")
	require.Equal(t, size, e.Size(), "the record is not sealed")

	rc, err := e.AppendRecord(ctx, rec) // the source's retry
	require.NoError(t, err)
	require.False(t, rc.Duplicate)
	wk, err := vault.Key(ctx, blobKey(sum))
	require.NoError(t, err)
	var sc struct{ Scopes []string }
	require.NoError(t, json.Unmarshal(wk.Meta, &sc))
	require.Len(t, sc.Scopes, 1, "the blob is tied to its record's scope")
}
