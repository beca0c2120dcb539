package surveil_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/surveil"
	"github.com/commseal/commseal/scan"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// TestAFedMonitorFindsWhatAReadingOneFinds: with the ledger handing what it seals to a Feed, the
// monitor scans from memory and seals the same annotations as one that reads everything back;
// a feed too small to hold everything drops messages, which the monitor reads from the ledger,
// so nothing escapes.
func TestAFedMonitorFindsWhatAReadingOneFinds(t *testing.T) {
	for _, size := range []int{0, 5} {
		t.Run(fmt.Sprint("feed size ", size), func(t *testing.T) {
			ctx := context.Background()
			skey, _, err := seal.GenerateSigningKey("commseal.test/feed")
			require.NoError(t, err)
			keys, err := seal.ParseSigningKey(skey)
			require.NoError(t, err)
			feed := surveil.NewFeed(size)
			l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys, CheckpointEvery: 1000, CheckpointInterval: time.Hour,
				Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}, Appended: feed.Appended})
			require.NoError(t, err)
			defer l.Close()
			msgs := appendMessages(t, l, 60, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
			_, err = l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordContext, Platform: "dingtalk", Tenant: "corp1", At: time.Now()})
			require.NoError(t, err)
			lv := live(t, scan.DefaultLexiconJSON())
			m, err := surveil.New(l, surveil.Options{Lexicon: lv, Feed: feed, Batch: 25})
			require.NoError(t, err)
			var fed, sealed, scanned int
			for {
				st, err := m.Step(ctx)
				require.NoError(t, err)
				if st.To <= st.From {
					break
				}
				fed, sealed, scanned = fed+st.Fed, sealed+st.Sealed, scanned+st.Messages
			}
			require.Equal(t, 60, scanned)
			require.Equal(t, 40, sealed)
			if size == 0 {
				require.Equal(t, 60, fed, "every message came from the feed")
				require.Zero(t, feed.Dropped())
			} else {
				// Five slots, taken by every entry the ledger seals (the record, and the
				// monitor's own annotations as it goes): most messages were dropped before
				// the monitor came to them, and it read them back.
				require.Less(t, fed, 60)
				require.GreaterOrEqual(t, feed.Dropped(), uint64(55))
			}
			got := annotations(t, l)
			require.Len(t, got, 40)
			for _, a := range got {
				require.Equal(t, msgs[a.Message.Index].ID, a.Message.ID)
			}
			// A monitor reading everything back finds the same: nothing new to seal.
			again, err := surveil.New(l, surveil.Options{Lexicon: lv})
			require.NoError(t, err)
			require.Zero(t, catchUp(t, again).Sealed)
		})
	}
}
