package verify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
)

// A regulator checks an export bundle with the verifier key the ledger's operator published;
// an edited message is caught and the error names the file.
func ExampleBundle() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	l, _ := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key})
	defer l.Close()
	l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m1", Kind: capture.KindText,
		Conversation: capture.Conversation{ID: "cid", Type: capture.ConversationGroup},
		SentAt:       time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC), Text: "buy 100 0700.HK", Raw: []byte(`{}`)})
	tmp, _ := os.MkdirTemp("", "bundle-example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "case")
	export.Write(ctx, l, dir, export.Request{Who: "alice", Why: "case 1", Indexes: []uint64{0}, Signer: key.Signer})

	rep, err := verify.Bundle(dir, vkey)
	fmt.Println(rep.Entries, rep.Opened, err)

	os.WriteFile(filepath.Join(dir, "messages.jsonl"), []byte(`{"index":0,"kind":"message","text":"sell"}`+"\n"), 0o600)
	_, err = verify.Bundle(dir, vkey)
	var be *verify.BundleError
	fmt.Println(verify.Altered(err), errors.As(err, &be) && be.File == "messages.jsonl")
	// Output:
	// [0] 1 <nil>
	// true true
}

// evidence/consistency is plain text: the two tree sizes, then the proof's hashes.
func ExampleParseBundleConsistency() {
	p, err := verify.ParseBundleConsistency([]byte("5 13\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	fmt.Println(p.OldSize, p.NewSize, len(p.Hashes), err)
	_, err = verify.ParseBundleConsistency([]byte("13 5\n"))
	fmt.Println(err)
	// Output:
	// 5 13 1 <nil>
	// sizes 13 and 5: want 0 < old <= new
}
