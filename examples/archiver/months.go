package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/commseal/commseal/ledger"
)

// prepareAhead is how long before a month ends (UTC) the archiver makes the next month's data
// keys: time enough for thousands of keys, and few conversations start after it.
const prepareAhead = time.Hour

// prepareMonths makes, in the last ahead of each month, the next month's data keys for the
// conversations of this one (ledger.PrepareMonth), so that their first messages after midnight
// do not all wait for a key to be made and stored durably at once. It runs until ctx ends; a
// failure is logged and tried again a minute later.
func prepareMonths(ctx context.Context, l *ledger.Ledger, log *slog.Logger, now func() time.Time, ahead time.Duration) {
	var done time.Time // the month last prepared
	for {
		t := now().UTC()
		next := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
		var wait time.Duration
		switch start := next.Add(-ahead); {
		case t.Before(start):
			wait = start.Sub(t)
		case next.Equal(done):
			wait = next.Sub(t) // prepared: wake in the new month, and wait for its last hour
		default:
			made, err := l.PrepareMonth(ctx, next)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				log.Error("archiver: making next month's data keys", "month", next.Format("2006-01"), "err", err)
				wait = time.Minute
			default:
				log.Info("archiver: next month's data keys made ahead", "month", next.Format("2006-01"), "keys", made)
				done, wait = next, next.Sub(t)
			}
		}
		timer := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
