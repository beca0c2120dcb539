package witness_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/commseal/commseal/anchor/witness"
	"github.com/commseal/commseal/seal"
)

// A witness run by an auditor, and a log that gets its checkpoints cosigned: the log keeps the
// size the witness last cosigned and proves consistency from it; Cosign handles a witness that
// knows another size (here, the log forgot and starts from 0).
func Example() {
	ctx := context.Background()

	// The log: a ledger's key and its tree (stored hashes, as seal.Frontier makes them).
	logSKey, logVKey, _ := seal.GenerateSigningKey("ledger.example.com/broker1")
	logSigner, _ := seal.NewSigner(logSKey)
	var frontier seal.Frontier
	var stored []seal.Hash
	hashes := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	checkpoint := func() []byte {
		c := seal.Checkpoint{Origin: "ledger.example.com/broker1", Size: frontier.Size(), Root: frontier.Root()}
		signed, _ := seal.SignCheckpoint(c, logSigner)
		return signed
	}
	prove := func(size uint64) func(context.Context, uint64) ([]seal.Hash, error) {
		return func(_ context.Context, old uint64) ([]seal.Hash, error) {
			return seal.ConsistencyProof(size, old, hashes)
		}
	}

	// The witness: its key, its state directory, the logs it knows.
	dir, _ := os.MkdirTemp("", "witness-example")
	defer os.RemoveAll(dir)
	wSKey, wVKey, _ := seal.GenerateCosignatureKey("auditor.example.com/witness")
	signer, _ := seal.NewCosignatureSigner(wSKey)
	store, err := witness.OpenFileStore(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ledgerLog, _ := witness.ParseLog(logVKey)
	w, _ := witness.New(witness.Options{Signer: signer, Logs: []witness.Log{ledgerLog}, Store: store})
	srv := httptest.NewServer(w)
	defer srv.Close()

	client, _ := witness.NewClient(srv.URL, wVKey, nil)
	policy, _ := seal.NewWitnessPolicy(logVKey, 1, wVKey)
	known := uint64(0) // what the log knows of the witness's size
	var first []byte
	for _, n := range []int{3, 5} {
		for range n {
			stored = frontier.Append(seal.LeafHash(fmt.Appendf(nil, "entry %d", frontier.Size())), stored)
		}
		signed := checkpoint()
		if first == nil {
			first = signed
		}
		cos, err := client.Cosign(ctx, signed, known, prove(frontier.Size()))
		if err != nil {
			log.Fatal(err)
		}
		known = frontier.Size()
		cosigned, _ := seal.AddCosignatures(signed, cos...)
		c, cs, err := policy.Check(cosigned)
		fmt.Printf("size %d cosigned by %s; log + 1 of 1: %v\n", c.Size, cs[0].Name, err)
	}

	// The old checkpoint of size 3 again: a rollback, refused.
	_, err = client.AddCheckpoint(ctx, known, nil, first)
	fmt.Println("rollback refused:", errors.Is(err, witness.ErrMalformedRequest))
	_, err = client.AddCheckpoint(ctx, 3, nil, first)
	var conflict *witness.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("witness is at:", conflict.Size)
	}
	// Output:
	// size 3 cosigned by auditor.example.com/witness; log + 1 of 1: <nil>
	// size 8 cosigned by auditor.example.com/witness; log + 1 of 1: <nil>
	// rollback refused: true
	// witness is at: 8
}
