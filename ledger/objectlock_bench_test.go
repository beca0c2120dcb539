package ledger_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/commseal/commseal/ledger"
)

// BenchmarkLockPass measures a pass over the object locks of COMMSEAL_BENCH_N attachments
// (default 2,000, in 100 conversations, vault in memory) that has nothing to change
// (locks-unchanged: what ApplyRetention adds to a run once the locks are set), beside the dry
// run of retention over the same vault (retention-dry-run: the baseline, which lists the vault
// too). Compare them in the same run:
//
//	go test ./ledger -run XXX -bench 'LockPass' -count 6
func BenchmarkLockPass(b *testing.B) {
	n := 2000
	if s := os.Getenv("COMMSEAL_BENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	ctx := context.Background()
	e := newLockLedger(b, newLockingBlobs(time.Hour))
	for i := range n {
		attach(b, e.Ledger, fmt.Sprintf("cid-%03d", i%100), i, thisMonth(), fmt.Sprintf("attachment %d", i))
	}
	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1y", Keep: ledger.Period{Years: 1}}}}
	if _, err := e.PlaceHold(ctx, ledger.Hold{ID: "h", Tenant: "corp1", Conversation: "cid-007", Reason: "r", By: "b"}); err != nil {
		b.Fatal(err)
	}
	if rep, err := e.ApplyLocks(ctx, &policy); err != nil || rep.Retained != n {
		b.Fatalf("first pass: %+v, %v", rep, err)
	}
	b.Run("retention-dry-run", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.ApplyRetention(ctx, policy, ledger.ApplyOptions{DryRun: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("locks-unchanged", func(b *testing.B) {
		calls := e.blobs.lockCalls()
		for b.Loop() {
			if _, err := e.ApplyLocks(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		if c := e.blobs.lockCalls() - calls; c != 0 {
			b.Fatalf("%d calls to the store; want none", c)
		}
	})
}
