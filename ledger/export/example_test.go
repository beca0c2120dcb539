package export_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/ledger/export"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
)

// A compliance officer exports two messages for a regulator; the regulator checks the bundle
// with the ledger's published verifier key alone.
func Example() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	sent := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	for i, text := range []string{"buy 100 0700.HK", "lunch?", "sell 50 0005.HK"} {
		l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i),
			Kind: capture.KindText, Conversation: capture.Conversation{ID: "cid-desk", Type: capture.ConversationGroup},
			Sender: capture.Party{ID: "u1", Name: "Trader"}, SentAt: sent.Add(time.Duration(i) * time.Minute),
			Text: text, Raw: []byte(`{}`)})
	}

	tmp, _ := os.MkdirTemp("", "export-example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "case-17")
	sum, err := export.Write(ctx, l, dir, export.Request{
		Who: "alice@compliance", Why: "SFC request 17", Query: "0700.HK OR 0005.HK",
		Indexes: []uint64{0, 2}, Signer: key.Signer,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("exported", sum.Entries, "entries, opened", sum.Opened)

	// The regulator's side: the directory and the verifier key.
	rep, err := verify.Bundle(dir, vkey)
	fmt.Println(rep.Entries, rep.Request.Who, err)
	// Output:
	// exported 2 entries, opened 2
	// [0 2] alice@compliance <nil>
}

// A compliance officer exports a conversation for a review platform (RSMF) and for mail
// archives (EML) as well; the renderings are listed in the signed manifest like the evidence.
func Example_formats() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	chart := []byte("\x89PNG chart")
	sum, _ := l.PutBlob(ctx, chart)
	sent := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m0", Kind: capture.KindPicture,
		Conversation: capture.Conversation{ID: "cid-desk", Type: capture.ConversationGroup, Title: "Desk"},
		Sender:       capture.Party{ID: "u1", StaffID: "S1001", Name: "Trader"}, SentAt: sent, Raw: []byte(`{}`),
		Attachments: []capture.Attachment{{Name: "chart.png", MediaType: "image/png", SHA256: hex.EncodeToString(sum[:])}}})

	tmp, _ := os.MkdirTemp("", "export-formats")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "case-18")
	s, err := export.Write(ctx, l, dir, export.Request{Who: "alice@compliance", Why: "SFC request 18",
		Indexes: []uint64{0}, Formats: []string{export.FormatRSMF, export.FormatEML}, Signer: key.Signer})
	if err != nil {
		fmt.Println(err)
		return
	}
	rsmf, _ := filepath.Glob(filepath.Join(dir, export.RSMFDir, "*.rsmf"))
	eml, _ := filepath.Glob(filepath.Join(dir, export.EMLDir, "*.eml"))
	rep, err := verify.Bundle(dir, vkey)
	fmt.Println(s.Attachments, "attachment,", len(rsmf), "RSMF file,", len(eml), "EML file; verified:", err == nil, rep.Attachments)
	// Output:
	// 1 attachment, 1 RSMF file, 1 EML file; verified: true 1
}
