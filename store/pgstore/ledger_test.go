package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/pgstore/pgtest"
	"github.com/commseal/commseal/verify"
)

// TestLedgerOnPostgres runs an encrypted ledger whose entries and keys are both in PostgreSQL,
// verifies it, and then changes rows behind the ledger's back with SQL, as someone with write
// access to the database could: each change is caught by the verifier at the entry changed.
func TestLedgerOnPostgres(t *testing.T) {
	ctx := context.Background()
	st := open(t, pgtest.Start(t), "ledger")
	skey, vkey, err := seal.GenerateSigningKey("test.example/pgstore")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := seal.ParseSigningKey(skey)
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: signer,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: st}})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC)
	for i := range 60 {
		m := &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: fmt.Sprint("m", i), Kind: capture.KindText,
			Conversation: capture.Conversation{ID: fmt.Sprint("cid", i%4), Type: capture.ConversationGroup},
			Sender:       capture.Party{ID: "u1", Name: "Trader"}, SentAt: day.Add(time.Duration(i) * time.Second),
			Text: fmt.Sprintf("order %d", i), Raw: fmt.Appendf(nil, `{"msgId":"m%d"}`, i)}
		if _, err := l.Append(ctx, m); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	// A replay changes nothing: the identity index in PostgreSQL finds the message.
	size, _ := st.Size(ctx)
	if _, err := l.Append(ctx, &capture.Message{Platform: "dingtalk", Tenant: "corp", ID: "m7", Kind: capture.KindText,
		Conversation: capture.Conversation{ID: "cid3", Type: capture.ConversationGroup}, Text: "order 7"}); err != nil {
		t.Fatalf("replayed Append: %v", err)
	}
	if again, _ := st.Size(ctx); again != size {
		t.Fatalf("a replayed message grew the log from %d to %d entries", size, again)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := seal.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Ledger(ctx, st, v, verify.Options{})
	if err != nil {
		t.Fatalf("verify the untouched ledger: %v", err)
	}
	if rep.Entries != size || rep.Entries < 60 {
		t.Fatalf("verified %d entries; the store holds %d (want at least 60)", rep.Entries, size)
	}

	flip := func(column string, idx int) {
		t.Helper()
		n, err := st.Exec(ctx, fmt.Sprintf(`UPDATE {s}.entries SET %[1]s = set_byte(%[1]s, 3, get_byte(%[1]s, 3) # 1) WHERE idx = $1`, column), idx)
		if err != nil || n != 1 {
			t.Fatalf("UPDATE the %s of entry %d: %d rows, %v", column, idx, n, err)
		}
	}
	for _, tc := range []struct {
		column string
		idx    int
	}{{"leaf", 17}, {"payload", 41}} {
		flip(tc.column, tc.idx)
		_, err := verify.Ledger(ctx, st, v, verify.Options{})
		var ae *verify.AlteredError
		if !errors.As(err, &ae) || ae.Index != uint64(tc.idx) {
			t.Fatalf("verify after one bit of the %s of entry %d was flipped in the database: %v; want an AlteredError at %d", tc.column, tc.idx, err, tc.idx)
		}
		t.Logf("%s of entry %d flipped: %v", tc.column, tc.idx, err)
		flip(tc.column, tc.idx) // back as it was
	}
	if _, err := verify.Ledger(ctx, st, v, verify.Options{}); err != nil {
		t.Fatalf("verify after the rows were put back: %v", err)
	}
	// A row deleted leaves a gap, which the store itself reports as corruption.
	if n, err := st.Exec(ctx, `DELETE FROM {s}.entries WHERE idx = 30`); err != nil || n != 1 {
		t.Fatalf("DELETE entry 30: %d rows, %v", n, err)
	}
	_, err = verify.Ledger(ctx, st, v, verify.Options{})
	if !verify.Altered(err) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("verify with entry 30 deleted: %v; want altered (store.ErrCorrupt)", err)
	}
	t.Logf("entry 30 deleted: %v", err)
}
