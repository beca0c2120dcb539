package seal_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/commseal/commseal/seal"
	"github.com/stretchr/testify/require"
	tdformats "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/compact"
	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// memTree is a tree of leaf hashes built with seal.Frontier, keeping every stored hash.
type memTree struct {
	f      seal.Frontier
	stored []seal.Hash
	leaves [][]byte // leaf hashes as byte slices, for the independent verifier
}

func (m *memTree) add(data []byte) {
	h := seal.LeafHash(data)
	m.stored = m.f.Append(h, m.stored)
	m.leaves = append(m.leaves, h[:])
}

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for k, i := range idx {
		out[k] = m.stored[i]
	}
	return out, nil
}

func leafData(i int) []byte { return binary.BigEndian.AppendUint64([]byte("leaf"), uint64(i)) }

// independentRoot computes the root of the first n leaves with transparency-dev/merkle's
// compact ranges, an implementation that shares no code with ours.
func independentRoot(t testing.TB, leaves [][]byte) []byte {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		require.NoError(t, r.Append(l, nil))
	}
	root, err := r.GetRootHash(nil)
	require.NoError(t, err)
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	return root
}

func toBytes(p []seal.Hash) [][]byte {
	out := make([][]byte, len(p))
	for k := range p {
		out[k] = p[k][:]
	}
	return out
}

func TestFrontierMatchesTlogAndIndependentRoot(t *testing.T) {
	var m memTree
	for n := 0; n <= 300; n++ {
		if n > 0 {
			m.add(leafData(n - 1))
		}
		// Stored hashes agree with x/mod's own computation.
		require.Equal(t, tlog.StoredHashCount(int64(n)), int64(len(m.stored)))
		root := m.f.Root()
		th, err := tlog.TreeHash(int64(n), &m)
		require.NoError(t, err)
		require.Equal(t, th, root, "n=%d", n)
		require.Equal(t, independentRoot(t, m.leaves), root[:], "n=%d", n)
		// A frontier reloaded from storage continues identically.
		idx := seal.FrontierIndexes(uint64(n))
		hs, _ := m.ReadHashes(idx)
		g, err := seal.LoadFrontier(uint64(n), hs)
		require.NoError(t, err)
		require.Equal(t, root, g.Root())
	}
	_, err := seal.LoadFrontier(3, nil)
	require.Error(t, err)
}

func TestProofsVerifyIndependentlyForEverySizeUpTo300(t *testing.T) {
	var m memTree
	for i := 0; i < 300; i++ {
		m.add(leafData(i))
	}
	roots := make([]seal.Hash, 301)
	for n := 1; n <= 300; n++ {
		r, err := seal.TreeHash(uint64(n), &m)
		require.NoError(t, err)
		roots[n] = r
	}
	for n := uint64(1); n <= 300; n++ {
		for i := uint64(0); i < n; i++ {
			p, err := seal.InclusionProof(n, i, &m)
			require.NoError(t, err)
			require.NoError(t, tdproof.VerifyInclusion(rfc6962.DefaultHasher, i, n, m.leaves[i], toBytes(p), roots[n][:]), "n=%d i=%d", n, i)
			require.NoError(t, seal.CheckInclusion(p, n, roots[n], i, seal.Hash(m.leaves[i])))
		}
		for old := uint64(1); old <= n; old++ {
			p, err := seal.ConsistencyProof(n, old, &m)
			require.NoError(t, err)
			require.NoError(t, tdproof.VerifyConsistency(rfc6962.DefaultHasher, old, n, toBytes(p), roots[old][:], roots[n][:]), "old=%d n=%d", old, n)
			require.NoError(t, seal.CheckConsistency(p, n, roots[n], old, roots[old]))
		}
	}
}

func TestProofsVerifyIndependentlyAtRandomIndicesTo100000(t *testing.T) {
	const N = 100_000
	var m memTree
	for i := 0; i < N; i++ {
		m.add(leafData(i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type sample struct{ n, i, old uint64 }
	samples := make([]sample, 500)
	need := map[uint64][]byte{}
	for k := range samples {
		n := 1 + rng.Uint64N(N)
		samples[k] = sample{n: n, i: rng.Uint64N(n), old: 1 + rng.Uint64N(n)}
		need[samples[k].n], need[samples[k].old] = nil, nil
	}
	// One pass of transparency-dev's compact range gives the independent roots at every size
	// the samples need.
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for i, l := range m.leaves {
		require.NoError(t, cr.Append(l, nil))
		if _, ok := need[uint64(i+1)]; ok {
			root, err := cr.GetRootHash(nil)
			require.NoError(t, err)
			need[uint64(i+1)] = root
		}
	}
	for _, sm := range samples {
		n, i, old := sm.n, sm.i, sm.old
		root, err := seal.TreeHash(n, &m)
		require.NoError(t, err)
		require.Equal(t, need[n], root[:])
		p, err := seal.InclusionProof(n, i, &m)
		require.NoError(t, err)
		require.NoError(t, tdproof.VerifyInclusion(rfc6962.DefaultHasher, i, n, m.leaves[i], toBytes(p), root[:]))
		cp, err := seal.ConsistencyProof(n, old, &m)
		require.NoError(t, err)
		require.NoError(t, tdproof.VerifyConsistency(rfc6962.DefaultHasher, old, n, toBytes(cp), need[old], root[:]))
		// A wrong leaf, a wrong index or a flipped proof hash fails.
		require.ErrorIs(t, seal.CheckInclusion(p, n, root, i, seal.LeafHash([]byte("forged"))), seal.ErrProof)
		if len(p) > 0 {
			p[0][3] ^= 1
			require.ErrorIs(t, seal.CheckInclusion(p, n, root, i, seal.Hash(m.leaves[i])), seal.ErrProof)
		}
	}
	_, err := seal.InclusionProof(10, 10, &m)
	require.Error(t, err)
	_, err = seal.ConsistencyProof(10, 11, &m)
	require.Error(t, err)
}

func sampleLeaf() seal.Leaf {
	return seal.Leaf{
		Kind: seal.KindMessage, Index: 42, Time: time.Date(2026, 7, 1, 9, 30, 0, 123456789, time.UTC),
		Identity:     seal.IdentityDigest("message", "dingtalk", "corp", "msg1"),
		Conversation: seal.ConversationDigest("dingtalk", "corp", "cid1"),
		ConvSeq:      2, ConvPrev: seal.LeafHash([]byte("prev")),
		Commitment: seal.Hash{1}, PayloadHash: seal.Hash{2}, KeyID: "tenant/2026-07",
	}
}

func TestLeafRoundTripAndStrictness(t *testing.T) {
	l := sampleLeaf()
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, 187+len(l.KeyID))
	got, err := seal.ParseLeaf(b)
	require.NoError(t, err)
	require.Equal(t, l, got)

	bad := map[string]func(b []byte) []byte{
		"short":            func(b []byte) []byte { return b[:100] },
		"version":          func(b []byte) []byte { b[0] = 2; return b },
		"kind zero":        func(b []byte) []byte { b[1] = 0; return b },
		"kind unknown":     func(b []byte) []byte { b[1] = 200; return b },
		"trailing byte":    func(b []byte) []byte { return append(b, 'x') },
		"key id length":    func(b []byte) []byte { b[186]++; return b },
		"key id control":   func(b []byte) []byte { b[len(b)-1] = '\n'; return b },
		"seq without conv": func(b []byte) []byte { clear(b[50:82]); return b },
		"first with prev":  func(b []byte) []byte { binary.BigEndian.PutUint64(b[82:], 1); return b },
		"later no prev":    func(b []byte) []byte { clear(b[90:122]); return b },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := seal.ParseLeaf(mutate(bytes.Clone(b)))
			require.ErrorIs(t, err, seal.ErrMalformedLeaf)
		})
	}
	l.Kind = 0
	_, err = l.MarshalBinary()
	require.Error(t, err)
	l = sampleLeaf()
	l.KeyID = strings.Repeat("k", 256)
	_, err = l.MarshalBinary()
	require.Error(t, err)
	l = sampleLeaf()
	l.ConvSeq = 0
	_, err = l.MarshalBinary()
	require.Error(t, err)
}

func TestCommitmentIsSaltedAndLengthBound(t *testing.T) {
	var s1, s2 [seal.SaltSize]byte
	s2[0] = 1
	require.NotEqual(t, seal.Commitment(&s1, []byte("ok")), seal.Commitment(&s2, []byte("ok")))
	env := seal.AppendEnvelope(nil, &s2, []byte("ok"))
	c, err := seal.CommitEnvelope(env)
	require.NoError(t, err)
	require.Equal(t, seal.Commitment(&s2, []byte("ok")), c)
	_, err = seal.CommitEnvelope(env[:10])
	require.ErrorIs(t, err, seal.ErrMalformedEnvelope)
	env[0] = 9
	_, err = seal.CommitEnvelope(env)
	require.ErrorIs(t, err, seal.ErrMalformedEnvelope)
	// Digests separate their parts: ("ab","c") and ("a","bc") differ.
	require.NotEqual(t, seal.IdentityDigest("m", "ab", "c", ""), seal.IdentityDigest("m", "a", "bc", ""))
	require.NotEqual(t, seal.IdentityDigest("message", "p", "t", "x"), seal.IdentityDigest("event", "p", "t", "x"))
}

func TestCheckpointSignOpen(t *testing.T) {
	skey, vkey, err := seal.GenerateSigningKey("example.com/ledger/test")
	require.NoError(t, err)
	s, err := seal.NewSigner(skey)
	require.NoError(t, err)
	v, err := seal.NewVerifier(vkey)
	require.NoError(t, err)
	c := seal.Checkpoint{Origin: "example.com/ledger/test", Size: 12345, Root: sha256.Sum256([]byte("r"))}
	signed, err := seal.SignCheckpoint(c, s)
	require.NoError(t, err)
	got, err := seal.OpenCheckpoint(signed, v)
	require.NoError(t, err)
	require.Equal(t, c.Size, got.Size)
	require.Equal(t, c.Root, got.Root)

	// Another key with the same name: signature error.
	skey2, vkey2, _ := seal.GenerateSigningKey("example.com/ledger/test")
	s2, _ := seal.NewSigner(skey2)
	v2, _ := seal.NewVerifier(vkey2)
	forged, err := seal.SignCheckpoint(c, s2)
	require.NoError(t, err)
	_, err = seal.OpenCheckpoint(forged, v)
	require.ErrorIs(t, err, seal.ErrCheckpointSignature)
	_, err = seal.OpenCheckpoint(signed, v2)
	require.ErrorIs(t, err, seal.ErrCheckpointSignature)
	// A modified body fails.
	tampered := bytes.Replace(signed, []byte("12345"), []byte("12346"), 1)
	_, err = seal.OpenCheckpoint(tampered, v)
	require.ErrorIs(t, err, seal.ErrCheckpointSignature)
	// Wrong origin for the signer.
	c.Origin = "other"
	_, err = seal.SignCheckpoint(c, s)
	require.Error(t, err)
	_, _, err = seal.GenerateSigningKey("has space")
	require.ErrorIs(t, err, seal.ErrBadSigningKey)
	_, err = seal.NewSigner("garbage")
	require.ErrorIs(t, err, seal.ErrBadSigningKey)
	_, err = seal.NewVerifier("garbage")
	require.ErrorIs(t, err, seal.ErrBadSigningKey)
}

func TestParseCheckpointStrict(t *testing.T) {
	root := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	_, err := seal.ParseCheckpoint("o\n5\n" + root + "\n")
	require.NoError(t, err)
	for name, text := range map[string]string{
		"no newline":   "o\n5\n" + root,
		"two lines":    "o\n5\n",
		"empty origin": "\n5\n" + root + "\n",
		"leading zero": "o\n05\n" + root + "\n",
		"plus":         "o\n+5\n" + root + "\n",
		"negative":     "o\n-5\n" + root + "\n",
		"short root":   "o\n5\nAAAA\n",
		"bad base64":   "o\n5\n!!!\n",
		"empty ext":    "o\n5\n" + root + "\n\n",
		"bad utf8":     "o\xff\n5\n" + root + "\n",
	} {
		_, err := seal.ParseCheckpoint(text)
		require.ErrorIs(t, err, seal.ErrMalformedCheckpoint, name)
	}
}

func TestProofRoundTripAndIndependentParser(t *testing.T) {
	var m memTree
	skey, vkey, _ := seal.GenerateSigningKey("example.com/ledger/p")
	s, _ := seal.NewSigner(skey)
	v, _ := seal.NewVerifier(vkey)
	leaves := make([][]byte, 20)
	for i := range leaves {
		l := sampleLeaf()
		l.Index = uint64(i)
		leaves[i], _ = l.MarshalBinary()
		m.add(leaves[i])
	}
	root := m.f.Root()
	signed, err := seal.SignCheckpoint(seal.Checkpoint{Origin: "example.com/ledger/p", Size: 20, Root: root}, s)
	require.NoError(t, err)
	hs, err := seal.InclusionProof(20, 7, &m)
	require.NoError(t, err)
	p := seal.Proof{Extra: leaves[7], Index: 7, Hashes: hs, Checkpoint: signed}
	text := p.Marshal()

	// The independent parser from transparency-dev/formats reads the same fields.
	var tp tdformats.TLogProof
	require.NoError(t, tp.Unmarshal(text))
	require.Equal(t, uint64(7), tp.Index)
	require.Equal(t, leaves[7], tp.ExtraData)
	require.Equal(t, signed, tp.Checkpoint)
	require.Len(t, tp.Hashes, len(hs))

	got, err := seal.ParseProof(text)
	require.NoError(t, err)
	c, leaf, err := seal.VerifyProof(&got, v)
	require.NoError(t, err)
	require.Equal(t, uint64(20), c.Size)
	require.Equal(t, uint64(7), leaf.Index)

	// A proof for a different leaf's bytes does not verify.
	got.Extra = leaves[8]
	got.Index = 8
	_, _, err = seal.VerifyProof(&got, v)
	require.ErrorIs(t, err, seal.ErrProof)
	got.Index = 7
	_, _, err = seal.VerifyProof(&got, v)
	require.ErrorIs(t, err, seal.ErrProof)

	for name, bad := range map[string]string{
		"header":    strings.Replace(string(text), "tlog-proof@v1", "tlog-proof@v2", 1),
		"no blank":  strings.Replace(string(text), "\n\n", "\n", 1),
		"index":     strings.Replace(string(text), "index 7", "index 07", 1),
		"no index":  strings.Replace(string(text), "index 7\n", "", 1),
		"bad hash":  strings.Replace(string(text), "index 7\n", "index 7\nAAAA\n", 1),
		"bad extra": strings.Replace(string(text), "extra ", "extra !", 1),
		"empty cp":  ProofHeaderOnly(),
		"too large": strings.Repeat("x", seal.MaxProofSize+1),
	} {
		_, err := seal.ParseProof([]byte(bad))
		require.ErrorIs(t, err, seal.ErrMalformedProof, name)
	}
}

func ProofHeaderOnly() string { return seal.ProofHeader + "\nindex 1\n\n" }

func FuzzParseLeaf(f *testing.F) {
	l := sampleLeaf()
	b, _ := l.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := seal.ParseLeaf(b)
		if err != nil {
			return
		}
		out, err := l.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed leaf does not re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("leaf encoding is not canonical")
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("o\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
	f.Add("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := seal.ParseCheckpoint(s)
		if err != nil {
			return
		}
		if c.Text() != s {
			t.Fatalf("checkpoint text is not canonical: %q vs %q", c.Text(), s)
		}
	})
}

func FuzzParseProof(f *testing.F) {
	f.Add([]byte(seal.ProofHeader + "\nextra AAEC\nindex 3\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\no\n5\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := seal.ParseProof(b)
		if err != nil {
			return
		}
		if _, err := seal.ParseProof(p.Marshal()); err != nil {
			t.Fatalf("re-marshalled proof does not parse: %v", err)
		}
	})
}

func TestParseSigningKeyDerivesVerifier(t *testing.T) {
	// Keys whose base64 holds '+' must parse too: try until one does.
	for k := 0; k < 200; k++ {
		skey, vkey, err := seal.GenerateSigningKey("example.com/k")
		require.NoError(t, err)
		keys, err := seal.ParseSigningKey(skey)
		require.NoError(t, err, skey)
		require.Equal(t, vkey, keys.VerifierKey)
	}
	skey, vkey, err := seal.GenerateSigningKey("example.com/k")
	require.NoError(t, err)
	k, err := seal.ParseSigningKey(skey + "\n")
	require.NoError(t, err)
	require.Equal(t, vkey, k.VerifierKey)
	c := seal.Checkpoint{Origin: "example.com/k", Size: 1}
	signed, err := seal.SignCheckpoint(c, k.Signer)
	require.NoError(t, err)
	_, err = seal.OpenCheckpoint(signed, k.Verifier)
	require.NoError(t, err)
	for _, bad := range []string{"", "PRIVATE+KEY+x", vkey, strings.Replace(skey, "+", "-", 1)} {
		_, err := seal.ParseSigningKey(bad)
		require.ErrorIs(t, err, seal.ErrBadSigningKey, bad)
	}
}

func TestLeafKind(t *testing.T) {
	l := sampleLeaf()
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	k, err := seal.LeafKind(b)
	require.NoError(t, err)
	require.Equal(t, seal.KindMessage, k)
	for _, bad := range [][]byte{nil, {1}, {2, 1}, {1, 0}, {1, 99}} {
		_, err := seal.LeafKind(bad)
		require.ErrorIs(t, err, seal.ErrMalformedLeaf, "%v", bad)
	}
}

func TestFrontierAppendSubtreeIsAppendingItsLeaves(t *testing.T) {
	leaf := func(i uint64) seal.Hash { return seal.LeafHash([]byte(fmt.Sprint("leaf-", i))) }
	for _, level := range []int{0, 1, 3, 8} {
		size := uint64(1) << level
		var byLeaf, bySubtree seal.Frontier
		for block := uint64(0); block < 37; block++ {
			// The subtree of this block, and the stored hashes appending its leaves makes.
			var sub seal.Frontier
			var want []seal.Hash
			for i := block * size; i < (block+1)*size; i++ {
				sub.Append(leaf(i), nil)
				want = byLeaf.Append(leaf(i), want[:0])
			}
			got, err := bySubtree.AppendSubtree(level, sub.Root(), nil)
			require.NoError(t, err)
			// The last leaf's stored hashes: the leaf and the levels inside the subtree, then
			// those above it, which AppendSubtree returns.
			require.Equal(t, len(want)-level-1, len(got), "level %d block %d", level, block)
			for k := range got {
				require.Equal(t, want[level+1+k], got[k], "level %d block %d", level, block)
			}
			require.Equal(t, byLeaf.Root(), bySubtree.Root())
			require.Equal(t, byLeaf.Size(), bySubtree.Size())
		}
	}
	var f seal.Frontier
	f.Append(leaf(0), nil)
	_, err := f.AppendSubtree(2, leaf(1), nil)
	require.Error(t, err, "a subtree of 4 leaves cannot follow 1 leaf")
}

func TestLeafHashIsTlogRecordHash(t *testing.T) {
	for _, n := range []int{0, 1, 187, 250, 510, 511, 512, 1000} {
		leaf := bytes.Repeat([]byte{byte(n)}, n)
		require.Equal(t, tlog.RecordHash(leaf), seal.LeafHash(leaf), "%d bytes", n)
	}
}

func TestDigestsAreTheStreamingDigest(t *testing.T) {
	stream := func(tag string, parts ...string) seal.Hash {
		h := sha256.New()
		h.Write([]byte(tag))
		for _, p := range parts {
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(p))))
			h.Write([]byte(p))
		}
		return seal.Hash(h.Sum(nil))
	}
	for _, id := range []string{"", "m1", strings.Repeat("x", 150), strings.Repeat("y", 300)} {
		require.Equal(t, stream("commseal/identity/v1\x00", "message", "dingtalk", "corp", id), seal.IdentityDigest("message", "dingtalk", "corp", id))
		require.Equal(t, stream("commseal/conversation/v1\x00", "dingtalk", "corp", id), seal.ConversationDigest("dingtalk", "corp", id))
	}
}
