package export_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/stretchr/testify/require"
)

// BenchmarkWrite exports 2,000 messages of 20 conversations over 10 days, with the evidence
// alone (the baseline) and with the RSMF and EML renderings too.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	skey, _, err := seal.GenerateSigningKey(origin)
	require.NoError(b, err)
	keys, err := seal.ParseSigningKey(skey)
	require.NoError(b, err)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: keys, CheckpointInterval: time.Hour})
	require.NoError(b, err)
	defer l.Close()
	const n = 2000
	idx := make([]uint64, n)
	for i := range n {
		rc, err := l.Append(ctx, msg(i, fmt.Sprint("cid-", i%20), time.Date(2026, 6, 1+i%10, 9, 0, i%60, 0, time.UTC),
			fmt.Sprintf("BUY %d lots of 0700.HK 騰訊 at market", i)))
		require.NoError(b, err)
		idx[i] = rc.Index
	}
	for _, formats := range [][]string{nil, {export.FormatRSMF}, {export.FormatEML}, {export.FormatRSMF, export.FormatEML}} {
		b.Run(fmt.Sprint("formats=", formats), func(b *testing.B) {
			for k := 0; b.Loop(); k++ {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(k))
				_, err := export.Write(ctx, l, dir, export.Request{Who: "bench", Why: "bench", Indexes: idx, Formats: formats, Signer: keys.Signer})
				require.NoError(b, err)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
