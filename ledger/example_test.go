package ledger_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/verify"
)

// order returns a captured DingTalk message of tenant "corp" in conversation conv.
func order(id, conv string, sent time.Time, text string) *capture.Message {
	return &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: id, Kind: capture.KindText,
		Conversation: capture.Conversation{ID: conv, Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "u1", Name: "Trader"},
		SentAt:       sent, Text: text, Raw: []byte(`{"msgId":"` + id + `"}`)}
}

// The writer appends and signs; an auditor who holds the verifier key, a copy of the store
// and a checkpoint received earlier (a receipt) checks the whole ledger and that it still
// contains what the receipt signed.
func Example() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	st := memstore.New()
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	day := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	l.Append(ctx, order("m1", "cid-desk", day, "buy 100 0700.HK"))
	receipt, _, _ := l.SignCheckpoint(ctx) // handed to the client, the regulator, a witness
	l.Append(ctx, order("m2", "cid-desk", day.Add(time.Minute), "sell 50 0005.HK"))
	l.Close() // signs a checkpoint of both

	// The auditor's side: nothing but the verifier key, the store and the receipt.
	v, _ := seal.NewVerifier(vkey)
	rep, err := verify.Ledger(ctx, st, v, verify.Options{Trusted: receipt})
	fmt.Println(rep.Entries, rep.Checkpoints, rep.Kinds["message"], rep.Conversations, err)
	// Output: 2 2 2 1 <nil>
}

// SignCheckpoint signs the ledger's tree now instead of waiting for the policy (every
// Options.CheckpointEvery entries or Options.CheckpointInterval), for example before handing a
// checkpoint to a regulator. It signs nothing new when the latest checkpoint covers every entry.
func ExampleLedger_SignCheckpoint() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key, CheckpointInterval: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	day := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	for i, text := range []string{"buy 100 0700.HK", "filled", "sell 50 0005.HK"} {
		l.Append(ctx, order(fmt.Sprint("m", i), "cid-desk", day.Add(time.Duration(i)*time.Minute), text))
	}
	_, err = l.Prove(ctx, 2)
	fmt.Println(errors.Is(err, ledger.ErrNotCovered)) // nobody has signed for it yet

	signed, cp, _ := l.SignCheckpoint(ctx)
	fmt.Println(cp.Origin, cp.Size)
	again, _, _ := l.SignCheckpoint(ctx)
	fmt.Println(bytes.Equal(again, signed)) // nothing new to sign: the same checkpoint

	// The signed note opens with the published verifier key, and only with it.
	v, _ := seal.NewVerifier(vkey)
	opened, err := seal.OpenCheckpoint(signed, v)
	fmt.Println(opened.Root == cp.Root, err)
	// Output:
	// true
	// example.com/hk-equities 3
	// true
	// true <nil>
}

// Prove gives one entry's offline proof (C2SP tlog-proof@v1): whoever holds it and the
// verifier key checks that the entry is in the signed ledger, without access to the ledger.
func ExampleLedger_Prove() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	st := memstore.New()
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	day := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	l.Append(ctx, order("m1", "cid-desk", day, "buy 100 0700.HK"))
	rc, _ := l.Append(ctx, order("m2", "cid-desk", day.Add(time.Minute), "sell 50 0005.HK"))
	l.SignCheckpoint(ctx) // make the entry provable now
	p, err := l.Prove(ctx, rc.Index)
	if err != nil {
		fmt.Println(err)
		return
	}
	text := p.Marshal() // to hand over with the message

	// The receiver: the proof's text and the verifier key.
	v, _ := seal.NewVerifier(vkey)
	parsed, _ := seal.ParseProof(text)
	cp, leaf, err := seal.VerifyProof(&parsed, v)
	fmt.Println(cp.Size, leaf.Index, leaf.Kind, leaf.ConvSeq, err)

	// An auditor with a copy of the store makes the same proof without the writer.
	q, _ := verify.Proof(ctx, st, rc.Index, v)
	fmt.Println(bytes.Equal(q.Marshal(), text))
	// Output:
	// 2 1 message 2 <nil>
	// true
}

// In an encrypted ledger nothing is readable without an Accessor, and every read through one
// is itself sealed in the ledger (who, why, what, when) before any content is returned.
func ExampleLedger_Access() {
	ctx := context.Background()
	skey, _, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	kek := make([]byte, 32) // in production the KEK lives in a KMS or HSM behind seal.Keyring
	rand.Read(kek)
	ring, _ := seal.NewKEKKeyring("kek-1", kek)
	now := time.Date(2026, 7, 2, 10, 0, 0, 0, time.UTC)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key,
		Now:        func() time.Time { return now },
		Encryption: &ledger.Encryption{Keyring: ring, Vault: &memstore.KeyVault{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	l.Append(ctx, order("m1", "cid-desk", now.Add(-time.Hour), "buy 100 0700.HK"))

	_, err = l.Get(ctx, 0)
	fmt.Println(errors.Is(err, ledger.ErrEncrypted)) // a plain read does not decrypt

	e, err := l.Access("alice@compliance", "SFC request 2026-117").Get(ctx, 0)
	fmt.Println(e.Message.Text, err)

	audit, _ := l.Get(ctx, 1) // the access entry, sealed before the content was returned
	fmt.Println(audit.Leaf.Kind, string(audit.Body))
	// Output:
	// true
	// buy 100 0700.HK <nil>
	// access {"who":"alice@compliance","why":"SFC request 2026-117","op":"get","from":0,"to":1,"at":"2026-07-02T10:00:00Z"}
}

// Retention destroys the data key of every scope (tenant, conversation, month) that its policy
// says has expired, unless a legal hold covers it. Entries are never rewritten: the shredded
// content is gone, its proofs stay valid, and the ledger still verifies.
func ExampleLedger_ApplyRetention() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	st := memstore.New()
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: key,
		Now: func() time.Time { return now },
		// Shredding needs a keyring that can retire KEKs (seal.KEKRetirer), so that copies of
		// destroyed keys in backups stop unwrapping; sealtest's keeps its KEKs in memory.
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	old := time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC)
	l.Append(ctx, order("m1", "cid-desk", old, "buy 100 0700.HK"))                         // entry 0
	l.Append(ctx, order("m2", "cid-client", old, "call me"))                               // entry 1
	l.Append(ctx, order("m3", "cid-desk", now.AddDate(0, -1, 0), "sell 50 0005.HK"))       // entry 2
	l.PlaceHold(ctx, ledger.Hold{ID: "hold-1", Tenant: "corp", Conversation: "cid-client", // entry 3
		Reason: "SFC investigation 2026/17", By: "general counsel"})

	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{
		{Name: "orders: 1 year", Tenant: "corp", Keep: ledger.Period{Years: 1}}}}
	dry, _ := l.ApplyRetention(ctx, policy, ledger.ApplyOptions{DryRun: true})
	fmt.Println(len(dry), l.Size()) // what would go; nothing destroyed, nothing appended
	shreds, err := l.ApplyRetention(ctx, policy, ledger.ApplyOptions{Authority: "retention job, approved by CCO"})
	for _, s := range shreds {
		fmt.Println(s.Conversation, s.Month, s.Rule, s.Index)
	}
	fmt.Println(err)

	acc := l.Access("auditor", "retention check")
	_, err = acc.Get(ctx, 0)
	fmt.Println(errors.Is(err, ledger.ErrShredded)) // January 2024 of cid-desk: gone
	e, _ := acc.Get(ctx, 1)
	fmt.Println(e.Message.Text) // just as old, but on hold
	e, _ = acc.Get(ctx, 2)
	fmt.Println(e.Message.Text) // not expired

	// The auditor's view: every entry, the shred entry too, still verifies.
	l.SignCheckpoint(ctx)
	v, _ := seal.NewVerifier(vkey)
	rep, err := verify.Ledger(ctx, st, v, verify.Options{})
	fmt.Println(rep.Entries, rep.Kinds["shred"], err)
	// Output:
	// 1 4
	// cid-desk 2024-01 orders: 1 year 4
	// <nil>
	// true
	// call me
	// sell 50 0005.HK
	// 8 1 <nil>
}

// In the last hour of a month, an archiver makes the next month's data keys for the
// conversations of this one, so that their first messages after midnight find their keys made.
func ExampleLedger_PrepareMonth() {
	ctx := context.Background()
	skey, _, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	l, err := ledger.Open(ctx, memstore.New(), ledger.Options{Signing: key,
		Now:        func() time.Time { return now },
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: &memstore.KeyVault{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	l.Append(ctx, order("m1", "cid-desk", now, "buy 100 0700.HK"))
	l.Append(ctx, order("m2", "cid-client", now, "filled"))

	december := now.Add(time.Hour)
	made, err := l.PrepareMonth(ctx, december)
	fmt.Println(made, err)
	made, err = l.PrepareMonth(ctx, december) // again, or from another writer: nothing to make
	fmt.Println(made, err)
	// Output:
	// 2 <nil>
	// 0 <nil>
}

// Two capture processes on one store (Options.Shared), here two ledgers on one memstore as two
// archivers on one PostgreSQL: a message DingTalk pushes to both is sealed once, the
// conversation's chain runs across them, and the log verifies as one ledger.
func ExampleOptions_shared() {
	ctx := context.Background()
	skey, vkey, _ := seal.GenerateSigningKey("example.com/hk-equities")
	key, _ := seal.ParseSigningKey(skey)
	st := memstore.New() // store/pgstore in production: several processes, one PostgreSQL
	a, _ := ledger.Open(ctx, st, ledger.Options{Signing: key, Shared: true})
	b, _ := ledger.Open(ctx, st, ledger.Options{Signing: key, Shared: true})
	day := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)

	r1, _ := a.Append(ctx, order("m1", "desk", day, "buy 10,000 0700.HK"))
	r2, _ := b.Append(ctx, order("m2", "desk", day.Add(time.Second), "done at 388.2"))
	again, _ := b.Append(ctx, order("m1", "desk", day, "buy 10,000 0700.HK")) // redelivered to b
	fmt.Println(r1.Index, r2.Index, again.Index, again.Duplicate)
	e, _ := b.Get(ctx, r2.Index)
	fmt.Println("conversation sequence", e.Leaf.ConvSeq)

	if err := errors.Join(a.Close(), b.Close()); err != nil {
		fmt.Println(err)
		return
	}
	v, _ := seal.NewVerifier(vkey)
	rep, err := verify.Ledger(ctx, st, v, verify.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Entries, "entries verified")
	// Output:
	// 0 1 0 true
	// conversation sequence 2
	// 2 entries verified
}
