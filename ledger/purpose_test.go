package ledger_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
)

// TestAccessPurposeIsSealed: an accessor's purpose is in its access entries; a plain accessor
// records none; an over-long purpose fails the read before anything is recorded or returned.
func TestAccessPurposeIsSealed(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	defer e.Close()
	for i := range 3 {
		_, err := e.Append(ctx, secretMsg(i, "cid-f", time.Date(2026, 6, 1, i, 0, 0, 0, time.UTC), "sell 500 0700.HK"))
		require.NoError(t, err)
	}
	purposeOf := func(i uint64) (string, bool) {
		got, err := e.Get(ctx, i)
		require.NoError(t, err)
		require.Equal(t, seal.KindAccess, got.Leaf.Kind)
		var b map[string]any
		require.NoError(t, json.Unmarshal(got.Body, &b))
		p, ok := b["for"].(string)
		return p, ok
	}

	a := e.Access("alice@compliance", "SFC request 2026-117")
	_, err := a.For("export").Get(ctx, 1)
	require.NoError(t, err)
	p, ok := purposeOf(e.Size() - 1)
	require.True(t, ok)
	require.Equal(t, "export", p)

	_, err = a.Get(ctx, 1) // For returned a copy: a itself has no purpose
	require.NoError(t, err)
	_, ok = purposeOf(e.Size() - 1)
	require.False(t, ok)

	size := e.Size()
	got, err := a.For(strings.Repeat("x", 65)).Get(ctx, 1)
	require.ErrorContains(t, err, "purpose")
	require.Nil(t, got)
	require.Equal(t, size, e.Size(), "nothing recorded")
}
