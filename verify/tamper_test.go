package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// buildTamperLedger returns a closed ledger of n entries with a checkpoint every 1000.
func buildTamperLedger(t *testing.T, n int) (*storetest.Snapshot, *seal.SigningKey) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, 1<<40) // checkpoints only where the test signs them
	for round := 0; round < n; round += 1000 {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := round + w; i < min(n, round+1000); i += 8 {
					if _, err := l.Append(ctx, msg(i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		_, _, err := l.SignCheckpoint(ctx) // one checkpoint every 1000 entries, exactly
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	return mustSnapshot(t, st), keys
}

func entryOfHash(x int64) uint64 {
	// The entry whose append created stored hash x.
	lo, hi := uint64(0), uint64(1)<<40
	for lo < hi {
		mid := (lo + hi) / 2
		if store.StoredHashCount(mid+1) > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func TestTamperMatrix(t *testing.T) {
	const N = 10_000
	base, keys := buildTamperLedger(t, N)
	ctx := context.Background()
	rep, err := verify.Ledger(ctx, base, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(N), rep.Entries)
	require.Equal(t, 10, rep.Checkpoints)
	rng := rand.New(rand.NewPCG(7, 8))

	otherKeys := testKeys(t)
	trustedLatest := base.Heads[len(base.Heads)-1].Note

	type tc struct {
		name    string
		tamper  func(s *storetest.Snapshot) uint64 // returns the index Verify must report
		opts    verify.Options
		trusted bool
	}
	var cases []tc
	for k := 0; k < 12; k++ {
		i := rng.Uint64N(N)
		inLeaf := k%2 == 0
		cases = append(cases, tc{name: fmt.Sprintf("flip byte %d of entry %d", k, i), tamper: func(s *storetest.Snapshot) uint64 {
			e := &s.Log[i]
			if inLeaf {
				e.Leaf[rng.IntN(len(e.Leaf))] ^= 1 << rng.IntN(8)
			} else {
				e.Payload[rng.IntN(len(e.Payload))] ^= 1 << rng.IntN(8)
			}
			return i
		}})
	}
	cases = append(cases,
		tc{name: "flip byte of the first leaf's index", tamper: func(s *storetest.Snapshot) uint64 { s.Log[0].Leaf[9] ^= 1; return 0 }},
		tc{name: "flip byte in the last payload", tamper: func(s *storetest.Snapshot) uint64 {
			p := s.Log[N-1].Payload
			p[len(p)-1] ^= 0x80
			return N - 1
		}},
		tc{name: "delete an entry", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log = append(s.Log[:4321], s.Log[4322:]...)
			return 4321
		}},
		tc{name: "delete an entry and renumber the rest", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log = append(s.Log[:4321], s.Log[4322:]...)
			for k := 4321; k < len(s.Log); k++ {
				s.Log[k].Index = uint64(k)
			}
			return 4321
		}},
		tc{name: "duplicate an entry", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log = append(s.Log[:5001], s.Log[5000:]...)
			return 5001
		}},
		tc{name: "reorder two entries", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log[777], s.Log[778] = s.Log[778], s.Log[777]
			return 777
		}},
		tc{name: "reorder two entries with their store indices", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log[777], s.Log[778] = s.Log[778], s.Log[777]
			s.Log[777].Index, s.Log[778].Index = 777, 778
			return 777
		}},
		tc{name: "truncate entries", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log = s.Log[:9500]
			s.Hashes = s.Hashes[:store.StoredHashCount(9500)]
			return 9500
		}},
		tc{name: "truncate the last entry only", tamper: func(s *storetest.Snapshot) uint64 {
			s.Log = s.Log[:N-1]
			return N - 1
		}},
		tc{name: "replace a stored hash", tamper: func(s *storetest.Snapshot) uint64 {
			x := rng.Int64N(int64(len(s.Hashes)))
			s.Hashes[x][0] ^= 1
			return entryOfHash(x)
		}},
		tc{name: "replace a stored interior hash", tamper: func(s *storetest.Snapshot) uint64 {
			x := seal.StoredHashIndex(3, 100) // the root of entries 800..807, made by entry 807
			s.Hashes[x][31] ^= 1
			return 807
		}},
		tc{name: "replace a stored hash above a verifier's block", tamper: func(s *storetest.Snapshot) uint64 {
			x := seal.StoredHashIndex(10, 3) // the root of entries 3072..4095, made by entry 4095
			s.Hashes[x][5] ^= 1
			return 4095
		}},
		tc{name: "drop stored hashes", tamper: func(s *storetest.Snapshot) uint64 {
			s.Hashes = s.Hashes[:store.StoredHashCount(6000)]
			return 6000
		}},
		tc{name: "checkpoint signed by another key", tamper: func(s *storetest.Snapshot) uint64 {
			c, err := seal.OpenCheckpoint(s.Heads[4].Note, keys.Verifier)
			require.NoError(t, err)
			s.Heads[4].Note, err = seal.SignCheckpoint(c, otherKeys.Signer)
			require.NoError(t, err)
			return c.Size
		}},
		tc{name: "checkpoint body altered", tamper: func(s *storetest.Snapshot) uint64 {
			n := s.Heads[2].Size
			s.Heads[2].Note = bytes.Replace(s.Heads[2].Note, fmt.Appendf(nil, "\n%d\n", n), fmt.Appendf(nil, "\n%d\n", n+1), 1)
			return n
		}},
		tc{name: "checkpoint with a forged root signed by another key", tamper: func(s *storetest.Snapshot) uint64 {
			c := seal.Checkpoint{Origin: origin, Size: s.Heads[1].Size, Root: seal.Hash{1}}
			var err error
			s.Heads[1].Note, err = seal.SignCheckpoint(c, otherKeys.Signer)
			require.NoError(t, err)
			return c.Size
		}},
		tc{name: "rewritten tree re-signed by another key", tamper: func(s *storetest.Snapshot) uint64 {
			for k := range s.Heads {
				c, err := seal.OpenCheckpoint(s.Heads[k].Note, keys.Verifier)
				require.NoError(t, err)
				s.Heads[k].Note, err = seal.SignCheckpoint(c, otherKeys.Signer)
				require.NoError(t, err)
			}
			return s.Heads[0].Size
		}},
		tc{name: "roll back entries and checkpoints, trusted checkpoint held", trusted: true, tamper: func(s *storetest.Snapshot) uint64 {
			n := s.Heads[7].Size
			s.Log = s.Log[:n]
			s.Hashes = s.Hashes[:store.StoredHashCount(n)]
			s.Heads = s.Heads[:8]
			return n
		}},
		tc{name: "roll back the checkpoints only, trusted checkpoint held", trusted: true, tamper: func(s *storetest.Snapshot) uint64 {
			s.Heads = s.Heads[:7]
			return s.Heads[6].Size
		}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base.Clone()
			want := c.tamper(s)
			opts := c.opts
			if c.trusted {
				opts.Trusted = trustedLatest
			}
			// Read through Entries, and into the verifier's own buffers (store.EntryReader).
			for _, r := range []verify.Reader{s, &bufReader{Snapshot: s}} {
				_, err := verify.Ledger(ctx, r, keys.Verifier, opts)
				require.ErrorIs(t, err, verify.ErrAltered)
				var ve *verify.AlteredError
				require.True(t, errors.As(err, &ve))
				require.Equal(t, want, ve.Index, "reason: %s", ve.Reason)
				t.Logf("%T: index %d: %s", r, ve.Index, ve.Reason)
			}
		})
	}
	// Without a trusted checkpoint, a ledger rolled back to an earlier consistent state is
	// indistinguishable from that state; with one, it is caught (above).
	s := base.Clone()
	n := s.Heads[7].Size
	s.Log, s.Hashes, s.Heads = s.Log[:n], s.Hashes[:store.StoredHashCount(n)], s.Heads[:8]
	rep, err = verify.Ledger(ctx, s, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, n, rep.Entries)
	// The untouched ledger verifies against its own latest checkpoint as trusted.
	_, err = verify.Ledger(ctx, base, keys.Verifier, verify.Options{Trusted: trustedLatest})
	require.NoError(t, err)
}

func TestVerifyRejectsAForkAgainstTrustedCheckpoint(t *testing.T) {
	// Two ledgers with the same key diverge after a common prefix: a trusted checkpoint from one
	// rejects the other.
	ctx := context.Background()
	keys := testKeys(t)
	a, b := memstore.New(), memstore.New()
	la, lb := openLedger(t, a, keys, 1000), openLedger(t, b, keys, 1000)
	for i := 0; i < 50; i++ {
		_, err := la.Append(ctx, msg(i))
		require.NoError(t, err)
		_, err = lb.Append(ctx, msg(i+1000))
		require.NoError(t, err)
	}
	require.NoError(t, la.Close())
	require.NoError(t, lb.Close())
	cpA, err := a.LatestCheckpoint(ctx)
	require.NoError(t, err)
	_, err = verify.Ledger(ctx, b, keys.Verifier, verify.Options{Trusted: cpA.Note})
	var ve *verify.AlteredError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, uint64(50), ve.Index, "a trusted checkpoint problem names its tree size")
}
