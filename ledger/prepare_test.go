package ledger_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// monthKeys returns the scope keys of month (YYYY-MM) in e's vault, by id, with their metadata.
func monthKeys(t *testing.T, e *encLedger, month string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for wk, err := range e.vault.Keys(context.Background()) {
		require.NoError(t, err)
		if strings.HasPrefix(wk.ID, "dk1."+month+".") && !wk.Destroyed {
			var meta map[string]any
			require.NoError(t, json.Unmarshal(wk.Meta, &meta))
			out[wk.ID] = meta
		}
	}
	return out
}

func TestPrepareMonthMakesTheNextMonthsKeysAhead(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t) // the clock: 2026-07-02
	july := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	for i, conv := range []string{"cid-a", "cid-b", "cid-c"} {
		_, err := e.Append(ctx, secretMsg(i, conv, july, "hello"))
		require.NoError(t, err)
	}
	_, err := e.Append(ctx, secretMsg(9, "cid-june", july.AddDate(0, -1, 0), "an older month"))
	require.NoError(t, err)
	julyKeys := monthKeys(t, e, "2026-07")
	require.Len(t, julyKeys, 3)
	// cid-b's July key is destroyed (shredded): its conversation gets no August key ahead.
	for id, meta := range julyKeys {
		if meta["conversation"] == "cid-b" {
			require.NoError(t, e.vault.DestroyKey(ctx, id))
		}
	}

	made, err := e.PrepareMonth(ctx, time.Date(2026, 8, 15, 0, 0, 0, 0, time.FixedZone("HKT", 8*3600)))
	require.NoError(t, err)
	require.Equal(t, 2, made)
	aug := monthKeys(t, e, "2026-08")
	require.Len(t, aug, 2)
	var convs []string
	for _, meta := range aug {
		require.Equal(t, "corp1", meta["tenant"])
		require.Equal(t, "2026-08", meta["month"])
		require.Equal(t, []any{"message"}, meta["kinds"])
		convs = append(convs, meta["conversation"].(string))
	}
	require.ElementsMatch(t, []string{"cid-a", "cid-c"}, convs)
	require.Empty(t, monthKeys(t, e, "2026-05"), "only the month after the one with keys")

	made, err = e.PrepareMonth(ctx, time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Zero(t, made, "a second call makes nothing")

	// The first message of August in cid-a uses the prepared key: no key is made, and it reads
	// back.
	*e.now = time.Date(2026, 8, 1, 0, 0, 1, 0, time.UTC)
	rc, err := e.Append(ctx, secretMsg(20, "cid-a", *e.now, "first of the month"))
	require.NoError(t, err)
	require.Equal(t, aug, monthKeys(t, e, "2026-08"))
	ent, err := e.Access("officer", "test").Get(ctx, rc.Index)
	require.NoError(t, err)
	require.Contains(t, aug, ent.Leaf.KeyID)
	require.Equal(t, "first of the month", ent.Message.Text)
}

func TestPrepareMonthNeedsEncryption(t *testing.T) {
	l := openLedger(t, memstore.New(), testKeys(t), 10)
	_, err := l.PrepareMonth(context.Background(), time.Now())
	require.ErrorContains(t, err, "encrypted ledger")
}
