package seal_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/seal"
)

// A ledger's checkpoint cosigned by two of three witnesses, checked against the policy "the
// ledger's key plus 2 of these 3 witnesses", as an auditor holding only the public keys does.
// (Witnesses cosign over the network: see package anchor/witness.)
func ExampleWitnessPolicy() {
	logSKey, logVKey, _ := seal.GenerateSigningKey("ledger.example.com/broker1")
	logSigner, _ := seal.NewSigner(logSKey)
	c := seal.Checkpoint{Origin: "ledger.example.com/broker1", Size: 42, Root: sha256.Sum256([]byte("root"))}
	signed, _ := seal.SignCheckpoint(c, logSigner)

	var witnessKeys []string
	var cosignatures []seal.Cosignature
	for i, name := range []string{"auditor.example.com/w", "partner.example.net/w", "compliance.example.com/w"} {
		skey, vkey, _ := seal.GenerateCosignatureKey(name)
		witnessKeys = append(witnessKeys, vkey)
		if i == 1 {
			continue // this witness was not reached
		}
		w, _ := seal.NewCosignatureSigner(skey)
		cos, _ := w.Cosign(c.Text(), time.Date(2026, 11, 29, 17, 0, 0, 0, time.UTC))
		cosignatures = append(cosignatures, cos)
	}
	cosigned, _ := seal.AddCosignatures(signed, cosignatures...)

	policy, _ := seal.NewWitnessPolicy(logVKey, 2, witnessKeys...)
	cp, valid, err := policy.Check(cosigned)
	fmt.Println("size", cp.Size, "err", err)
	for _, cos := range valid {
		fmt.Println("cosigned by", cos.Name, "at", cos.Timestamp().Format(time.RFC3339))
	}

	strict, _ := seal.NewWitnessPolicy(logVKey, 3, witnessKeys...)
	_, _, err = strict.Check(cosigned)
	fmt.Println("3 of 3:", errors.Is(err, seal.ErrQuorum))
	// Output:
	// size 42 err <nil>
	// cosigned by auditor.example.com/w at 2026-11-29T17:00:00Z
	// cosigned by compliance.example.com/w at 2026-11-29T17:00:00Z
	// 3 of 3: true
}
