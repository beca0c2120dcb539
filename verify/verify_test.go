package verify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// smallLedger writes n messages with a checkpoint every `every` entries and closes the ledger.
func smallLedger(t *testing.T, n int, every uint64) (*memstore.Store, *seal.SigningKey) {
	ctx := context.Background()
	st := memstore.New()
	keys := testKeys(t)
	l := openLedger(t, st, keys, every)
	for i := range n {
		_, err := l.Append(ctx, msg(i))
		require.NoError(t, err)
		if uint64(i+1)%every == 0 {
			_, _, err := l.SignCheckpoint(ctx)
			require.NoError(t, err)
		}
	}
	require.NoError(t, l.Close())
	return st, keys
}

func TestUnsignedLedgerFailsUnlessAllowed(t *testing.T) {
	ctx := context.Background()
	st, keys := smallLedger(t, 30, 1000)
	s := mustSnapshot(t, st)
	s.Heads = nil
	_, err := verify.Ledger(ctx, s, keys.Verifier, verify.Options{})
	require.ErrorIs(t, err, verify.ErrUnsigned)
	require.ErrorIs(t, err, verify.ErrAltered)
	require.True(t, verify.Altered(err))
	rep, err := verify.Ledger(ctx, s, keys.Verifier, verify.Options{AllowUnsigned: true})
	require.NoError(t, err)
	require.Equal(t, uint64(30), rep.Entries)
	require.Equal(t, uint64(30), rep.Uncovered)
	// An empty ledger is not unsigned: there is nothing to sign.
	_, err = verify.Ledger(ctx, memstore.New(), keys.Verifier, verify.Options{})
	require.NoError(t, err)
}

func TestEntriesAfterTheLatestCheckpointAreVerifiedAndReported(t *testing.T) {
	ctx := context.Background()
	st, keys := smallLedger(t, 25, 10)
	s := mustSnapshot(t, st)
	s.Heads = s.Heads[:2] // a writer that crashed after entry 24, before signing for 20..24
	rep, err := verify.Ledger(ctx, s, keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(20), rep.Latest.Size)
	require.Equal(t, uint64(5), rep.Uncovered)
	s.Log[22].Payload[3] ^= 1
	_, err = verify.Ledger(ctx, s, keys.Verifier, verify.Options{})
	var ae *verify.AlteredError
	require.ErrorAs(t, err, &ae, "uncovered entries are verified all the same")
	require.Equal(t, uint64(22), ae.Index)
}

func TestTrustedCheckpointThatIsNotOneIsAUsageError(t *testing.T) {
	ctx := context.Background()
	st, keys := smallLedger(t, 5, 10)
	for _, trusted := range [][]byte{[]byte("not a checkpoint"), []byte(keys.VerifierKey)} {
		_, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{Trusted: trusted})
		require.ErrorIs(t, err, verify.ErrTrusted)
		require.False(t, verify.Altered(err), "a bad request says nothing about the ledger")
	}
	other := testKeys(t)
	signed, err := seal.SignCheckpoint(seal.Checkpoint{Origin: origin, Size: 1, Root: seal.Hash{1}}, other.Signer)
	require.NoError(t, err)
	_, err = verify.Ledger(ctx, st, keys.Verifier, verify.Options{Trusted: signed})
	require.ErrorIs(t, err, verify.ErrTrusted, "a checkpoint of another key is not this ledger's")
}

// lyingConversations is a store whose conversation index points one conversation at an
// earlier entry.
type lyingConversations struct {
	*memstore.Store
	conv store.Hash
}

func (s lyingConversations) LastInConversation(ctx context.Context, c store.Hash) (uint64, bool, error) {
	i, ok, err := s.Store.LastInConversation(ctx, c)
	if c == s.conv && ok && i > 0 {
		i--
	}
	return i, ok, err
}

func TestConversationIndexIsCrossChecked(t *testing.T) {
	ctx := context.Background()
	st, keys := smallLedger(t, 40, 10)
	e, err := store.ReadEntry(ctx, st, 39)
	require.NoError(t, err)
	_, err = verify.Ledger(ctx, lyingConversations{st, e.Conversation}, keys.Verifier, verify.Options{})
	var ae *verify.AlteredError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, uint64(39), ae.Index)
	require.Contains(t, ae.Reason, "conversation index")
}

func TestStoredHashesBeyondTheEntries(t *testing.T) {
	ctx := context.Background()
	st, keys := smallLedger(t, 12, 4)
	s := mustSnapshot(t, st)
	s.Hashes = append(s.Hashes, seal.Hash{7})
	_, err := verify.Ledger(ctx, s, keys.Verifier, verify.Options{})
	require.ErrorIs(t, err, verify.ErrAltered)
}

func TestAlteredClassifiesErrors(t *testing.T) {
	require.True(t, verify.Altered(&verify.AlteredError{Index: 3, Reason: "x"}))
	require.True(t, verify.Altered(fmt.Errorf("opening: %w", store.ErrCorrupt)))
	require.False(t, verify.Altered(errors.New("permission denied")))
	require.False(t, verify.Altered(fmt.Errorf("%w: x", store.ErrNotFound)))
	require.False(t, verify.Altered(nil))
}

func TestEntryChecksOneEntryOnItsOwn(t *testing.T) {
	ctx := context.Background()
	st, _ := smallLedger(t, 3, 10)
	e, err := store.ReadEntry(ctx, st, 1)
	require.NoError(t, err)
	leaf, lh, err := verify.Entry(e)
	require.NoError(t, err)
	require.Equal(t, uint64(1), leaf.Index)
	require.Equal(t, seal.LeafHash(e.Leaf), lh)
	for name, alter := range map[string]func(e *store.Entry){
		"payload":            func(e *store.Entry) { e.Payload[len(e.Payload)-1] ^= 1 },
		"leaf":               func(e *store.Entry) { e.Leaf[40] ^= 1 },
		"index":              func(e *store.Entry) { e.Index = 2 },
		"store's identity":   func(e *store.Entry) { e.Identity[0] ^= 1 },
		"truncated leaf":     func(e *store.Entry) { e.Leaf = e.Leaf[:10] },
		"commitment opening": func(e *store.Entry) { e.Payload[40] ^= 1 },
	} {
		c := e
		c.Leaf, c.Payload = append([]byte(nil), e.Leaf...), append([]byte(nil), e.Payload...)
		alter(&c)
		_, _, err := verify.Entry(c)
		require.ErrorIs(t, err, verify.ErrAltered, name)
	}
}

func TestProofs(t *testing.T) {
	ctx := context.Background()
	st, keys := smallLedger(t, 25, 10)
	p, err := verify.Proof(ctx, st, 24, keys.Verifier)
	require.NoError(t, err)
	cp, leaf, err := seal.VerifyProof(p, keys.Verifier)
	require.NoError(t, err)
	require.Equal(t, uint64(25), cp.Size)
	require.Equal(t, uint64(24), leaf.Index)
	_, err = verify.Proof(ctx, st, 25, keys.Verifier)
	require.ErrorIs(t, err, store.ErrNotFound)
	// An entry the latest checkpoint does not cover yet.
	s := mustSnapshot(t, st)
	s.Heads = s.Heads[:2]
	_, err = verify.Proof(ctx, s, 22, keys.Verifier)
	require.ErrorIs(t, err, verify.ErrNotCovered)
	_, err = verify.Proof(ctx, s, 19, keys.Verifier)
	require.NoError(t, err)
	// A latest checkpoint that does not verify.
	_, err = verify.Proof(ctx, st, 3, testKeys(t).Verifier)
	require.True(t, verify.Altered(err), "%v", err)
	// Consistency between two checkpoints, checked independently.
	c, err := verify.ConsistencyProof(ctx, st, 10, 20)
	require.NoError(t, err)
	c10, err := seal.OpenCheckpoint(s.Heads[0].Note, keys.Verifier)
	require.NoError(t, err)
	c20, err := seal.OpenCheckpoint(s.Heads[1].Note, keys.Verifier)
	require.NoError(t, err)
	require.NoError(t, seal.CheckConsistency(c, 20, c20.Root, 10, c10.Root))
	_, err = verify.ConsistencyProof(ctx, st, 20, 10)
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = verify.InclusionProof(ctx, st, 10, 10)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestCheckpointsAtEverySizeVerify: ledgers of sizes around the verifier's blocks of 256
// entries, with a checkpoint at many sizes, verify, and a wrong root at any of them is caught.
func TestCheckpointsAtEverySizeVerify(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 2, 255, 256, 257, 511, 512, 513, 1100} {
		st, keys := smallLedger(t, n, 37)
		rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
		require.NoError(t, err, "%d entries", n)
		require.Equal(t, uint64(n), rep.Entries)
		require.Equal(t, n/37+min(1, n%37), rep.Checkpoints)
		s := mustSnapshot(t, st)
		last := len(s.Heads) - 1
		c, err := seal.OpenCheckpoint(s.Heads[last].Note, keys.Verifier)
		require.NoError(t, err)
		c.Root[0] ^= 1
		s.Heads[last].Note, err = seal.SignCheckpoint(c, keys.Signer)
		require.NoError(t, err)
		_, err = verify.Ledger(ctx, s, keys.Verifier, verify.Options{})
		var ae *verify.AlteredError
		require.ErrorAs(t, err, &ae, "%d entries", n)
		require.Equal(t, c.Size, ae.Index)
	}
}
