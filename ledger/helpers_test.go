package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/stretchr/testify/require"
)

const origin = "commseal.test/ledger"

func testKeys(t testing.TB) *seal.SigningKey {
	t.Helper()
	skey, _, err := seal.GenerateSigningKey(origin)
	require.NoError(t, err)
	k, err := seal.ParseSigningKey(skey)
	require.NoError(t, err)
	return k
}

func msg(i int) *capture.Message {
	return &capture.Message{
		Platform: capture.PlatformDingTalk, Tenant: "corp1", ID: fmt.Sprintf("msg-%06d", i),
		Conversation: capture.Conversation{ID: fmt.Sprintf("cid-%02d", i%37), Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "u1", Name: "Trader"},
		SentAt:       time.Unix(1700000000+int64(i), 0).UTC(),
		CapturedAt:   time.Unix(1700000000+int64(i), 5).UTC(),
		Kind:         capture.KindText, Text: fmt.Sprintf("buy %d lots of 0700.HK", i),
		Raw: []byte(fmt.Sprintf(`{"msgId":"msg-%06d"}`, i)),
	}
}

func openLedger(t testing.TB, st store.Store, keys *seal.SigningKey, every uint64) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), st, ledger.Options{Signing: keys, CheckpointEvery: every, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	return l
}
