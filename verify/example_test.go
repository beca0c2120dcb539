package verify_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
	"github.com/commseal/commseal/verify"
)

// exampleLedger writes three messages to a ledger and returns its store and verifier key.
func exampleLedger() (*memstore.Store, string) {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	keys, _ := seal.ParseSigningKey(skey)
	st := memstore.New()
	l, _ := ledger.Open(ctx, st, ledger.Options{Signing: keys})
	for _, id := range []string{"m1", "m2", "m3"} {
		l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: id, Kind: capture.KindText,
			Conversation: capture.Conversation{ID: "cid1", Type: capture.ConversationDirect}, Text: "order " + id})
	}
	l.Close() // signs a checkpoint of all three
	return st, vkey
}

// An auditor holds the ledger's verifier key and a copy of its store: nothing else.
func ExampleLedger() {
	st, vkey := exampleLedger()
	v, _ := seal.NewVerifier(vkey)
	rep, err := verify.Ledger(context.Background(), st, v, verify.Options{})
	fmt.Println(rep.Entries, rep.Checkpoints, rep.Latest.Size, err)
	// Output: 3 1 3 <nil>
}

// Someone with write access to the storage changes one byte; the verifier names the entry.
func ExampleLedger_altered() {
	st, vkey := exampleLedger()
	v, _ := seal.NewVerifier(vkey)
	copy, _ := storetest.TakeSnapshot(context.Background(), st)
	copy.Log[1].Payload[50] ^= 1
	_, err := verify.Ledger(context.Background(), copy, v, verify.Options{})
	var ae *verify.AlteredError
	fmt.Println(verify.Altered(err), errors.As(err, &ae) && ae.Index == 1)
	fmt.Println(ae.Reason)
	// Output:
	// true true
	// payload does not match the hash in its leaf (altered payload)
}

// A proof of one entry, checked by someone who holds only the verifier key.
func ExampleProof() {
	st, vkey := exampleLedger()
	v, _ := seal.NewVerifier(vkey)
	p, _ := verify.Proof(context.Background(), st, 2, v)
	text := p.Marshal() // C2SP tlog-proof@v1, to hand over
	parsed, _ := seal.ParseProof(text)
	cp, leaf, err := seal.VerifyProof(&parsed, v)
	fmt.Println(cp.Size, leaf.Index, err)
	// Output: 3 2 <nil>
}
