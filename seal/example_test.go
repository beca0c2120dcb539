package seal_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/commseal/commseal/seal"
	"golang.org/x/mod/sumdb/tlog"
)

// A ledger in miniature: three messages become leaves of a Merkle tree, the tree head is
// signed as a checkpoint, and one entry gets an offline proof that someone holding only the
// verifier key checks. (package ledger does all of this for you; this is what it does.)
func Example() {
	skey, vkey, err := seal.GenerateSigningKey("example.com/hk-equities")
	if err != nil {
		fmt.Println(err)
		return
	}
	key, _ := seal.ParseSigningKey(skey)

	var tree seal.Frontier
	var stored []seal.Hash // the tree's stored hashes: what a store.Log keeps beside the entries
	var leaves [][]byte
	for i, text := range []string{"buy 100 0700.HK", "sell 50 0005.HK", "ok"} {
		var salt [seal.SaltSize]byte
		rand.Read(salt[:])
		env := seal.AppendEnvelope(nil, &salt, []byte(text)) // the payload stored beside the leaf
		commitment, _ := seal.CommitEnvelope(env)
		leaf := seal.Leaf{Kind: seal.KindMessage, Index: uint64(i),
			Time:       time.Date(2026, 7, 1, 9, 30, i, 0, time.UTC),
			Commitment: commitment, PayloadHash: sha256.Sum256(env)}
		b, _ := leaf.MarshalBinary()
		leaves = append(leaves, b)
		stored = tree.Append(seal.LeafHash(b), stored)
	}
	signed, _ := seal.SignCheckpoint(seal.Checkpoint{Origin: "example.com/hk-equities",
		Size: tree.Size(), Root: tree.Root()}, key.Signer)

	// The proof of entry 1: its inclusion path under the signed checkpoint, the leaf as extra.
	hashes := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for k, i := range indexes {
			out[k] = stored[i]
		}
		return out, nil
	})
	path, _ := seal.InclusionProof(tree.Size(), 1, hashes)
	proof := seal.Proof{Extra: leaves[1], Index: 1, Hashes: path, Checkpoint: signed}
	text := proof.Marshal() // C2SP tlog-proof@v1, to hand over

	// The receiver holds the verifier key and the proof's text, nothing else.
	v, _ := seal.NewVerifier(vkey)
	p, _ := seal.ParseProof(text)
	cp, leaf, err := seal.VerifyProof(&p, v)
	fmt.Println(cp.Size, leaf.Index, leaf.Kind, err)

	// A leaf altered after the fact (here its payload hash) no longer proves.
	p.Extra[160] ^= 1
	_, _, err = seal.VerifyProof(&p, v)
	fmt.Println(errors.Is(err, seal.ErrProof))
	// Output:
	// 3 1 message <nil>
	// true
}

// A ledger's signing key is made once and kept secret; its verifier key is published to
// whoever will check the ledger's checkpoints and proofs.
func ExampleGenerateSigningKey() {
	skey, vkey, err := seal.GenerateSigningKey("example.com/hk-equities")
	if err != nil {
		fmt.Println(err)
		return
	}
	key, _ := seal.ParseSigningKey(skey) // what ledger.Options.Signing takes
	fmt.Println(strings.HasPrefix(skey, "PRIVATE+KEY+example.com/hk-equities+"))
	fmt.Println(strings.HasPrefix(vkey, "example.com/hk-equities+"), key.VerifierKey == vkey)

	// The origin names the ledger in every checkpoint: no spaces, no '+'.
	_, _, err = seal.GenerateSigningKey("hk equities")
	fmt.Println(errors.Is(err, seal.ErrBadSigningKey))
	// Output:
	// true
	// true true
	// true
}

// A checkpoint's note text names the ledger, its size and its root; the signature line under
// it is what OpenCheckpoint checks.
func ExampleSignCheckpoint() {
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	var tree seal.Frontier
	for _, leaf := range []string{"a", "b", "c"} {
		tree.Append(seal.LeafHash([]byte(leaf)), nil)
	}
	c := seal.Checkpoint{Origin: "example.com/hk-equities", Size: tree.Size(), Root: tree.Root()}
	fmt.Print(c.Text()) // origin, size, RFC 6962 root in base64: any implementation gets this root

	signed, _ := seal.SignCheckpoint(c, key.Signer)
	v, _ := seal.NewVerifier(vkey)
	opened, err := seal.OpenCheckpoint(signed, v)
	fmt.Println(opened.Size, opened.Root == c.Root, err)

	// Another ledger's key (even one with the same name) does not open it.
	_, otherVkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	other, _ := seal.NewVerifier(otherVkey)
	_, err = seal.OpenCheckpoint(signed, other)
	fmt.Println(errors.Is(err, seal.ErrCheckpointSignature))
	// Output:
	// example.com/hk-equities
	// 3
	// NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
	// 3 true <nil>
	// true
}

// A checkpoint signed later must extend every earlier one: a consistency proof shows that the
// tree of an old checkpoint is a prefix of the new tree.
func ExampleConsistencyProof() {
	var tree seal.Frontier
	var stored []seal.Hash
	var roots []seal.Hash // roots[n] is the root of the first n leaves
	roots = append(roots, tree.Root())
	for _, leaf := range []string{"a", "b", "c", "d", "e"} {
		stored = tree.Append(seal.LeafHash([]byte(leaf)), stored)
		roots = append(roots, tree.Root())
	}
	hashes := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for k, i := range indexes {
			out[k] = stored[i]
		}
		return out, nil
	})
	proof, _ := seal.ConsistencyProof(5, 3, hashes)
	fmt.Println(seal.CheckConsistency(proof, 5, roots[5], 3, roots[3]))
	// A tree of 3 whose root is not the one signed earlier: a fork.
	err := seal.CheckConsistency(proof, 5, roots[5], 3, roots[2])
	fmt.Println(errors.Is(err, seal.ErrProof))
	// Output:
	// <nil>
	// true
}

// A leaf commits to its content with a salted hash, so that a short message cannot be guessed
// from the commitment, and anyone given the salt and the plaintext (an opening) can check it.
func ExampleCommitment() {
	var salt [seal.SaltSize]byte
	rand.Read(salt[:])
	env := seal.AppendEnvelope(nil, &salt, []byte("ok")) // what is stored (or encrypted)
	c, _ := seal.CommitEnvelope(env)                     // what the leaf carries

	s, plaintext, _ := seal.OpenEnvelope(env)
	fmt.Println(string(plaintext), seal.Commitment(&s, plaintext) == c)
	fmt.Println(seal.Commitment(&s, []byte("no")) == c) // another text does not open it

	var other [seal.SaltSize]byte
	rand.Read(other[:])
	fmt.Println(seal.Commitment(&other, []byte("ok")) == c) // nor does the text without its salt
	// Output:
	// ok true
	// false
	// false
}

// An encrypted entry stores its envelope encrypted under a data key; the key id is bound to
// the ciphertext, so it cannot be passed off under another key's name.
func ExampleEncryptPayload() {
	dek, _ := seal.NewDataKey()
	var salt [seal.SaltSize]byte
	rand.Read(salt[:])
	env := seal.AppendEnvelope(nil, &salt, []byte("buy 100 0700.HK"))

	ct, _ := seal.EncryptPayload(rand.Reader, dek, "dk1.2026-07.a", env)
	fmt.Println(len(ct)-len(env), bytes.Contains(ct, []byte("0700.HK"))) // version, nonce, tag

	back, err := seal.DecryptPayload(dek, "dk1.2026-07.a", ct)
	fmt.Println(bytes.Equal(back, env), err)
	_, err = seal.DecryptPayload(dek, "dk1.2026-07.b", ct)
	fmt.Println(errors.Is(err, seal.ErrDecrypt))
	// Output:
	// 41 false
	// true <nil>
	// true
}
