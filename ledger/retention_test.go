package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/storetest"
	"github.com/commseal/commseal/verify"
	"github.com/stretchr/testify/require"
)

// TestRetentionShredsExactlyTheExpiredUnheldScopes builds 36 months of messages in three
// conversations, puts one on legal hold, and applies a 24-month policy.
func TestRetentionShredsExactlyTheExpiredUnheldScopes(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	start := time.Date(2023, 7, 1, 0, 0, 0, 0, time.UTC)
	convs := []string{"cid-desk", "cid-held", "cid-client"}
	type sent struct {
		index uint64
		conv  string
		month int
		text  string
	}
	var all []sent
	for m := 0; m < 36; m++ {
		for k, c := range convs {
			text := fmt.Sprintf("month %d order %d", m, k)
			if m == 0 && c == "cid-desk" {
				text = "ok" // a short message whose commitment someone might try to brute-force
			}
			msg := secretMsg(m*10+k, c, start.AddDate(0, m, 3), text)
			rc, err := e.Append(ctx, msg)
			require.NoError(t, err)
			all = append(all, sent{rc.Index, c, m, text})
		}
	}
	// An attachment referenced from a month that will be shredded, and one from the held chat.
	blobGone, err := e.PutBlob(ctx, []byte("scanned order ticket, month 0"))
	require.NoError(t, err)
	blobHeld, err := e.PutBlob(ctx, []byte("held chat attachment"))
	require.NoError(t, err)
	for k, ref := range []struct {
		sum  [32]byte
		conv string
	}{{blobGone, "cid-desk"}, {blobHeld, "cid-held"}} {
		// The media record is sealed long after its message (fetches can be retried for
		// months): it still lives and dies with the message's month-0 scope.
		body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": hex.EncodeToString(ref.sum[:])})
		about := secretMsg(0*10+[]int{0, 1}[k], ref.conv, start.AddDate(0, 0, 3), "").Identity()
		_, err := e.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1",
			ID: "media-" + ref.conv, Conversation: capture.Conversation{ID: ref.conv}, About: &about,
			At: start.AddDate(0, 30, 0), Body: body})
		require.NoError(t, err)
	}
	_, err = e.PlaceHold(ctx, ledger.Hold{ID: "hold-1", Tenant: "corp1", Conversation: "cid-held",
		Reason: "SFC investigation 2026/17", By: "general counsel"})
	require.NoError(t, err)
	// A hold placed and released does not protect anything.
	_, err = e.PlaceHold(ctx, ledger.Hold{ID: "hold-2", Tenant: "corp1", Conversation: "cid-client", Reason: "dispute", By: "legal"})
	require.NoError(t, err)
	_, err = e.ReleaseHold(ctx, "hold-2", "legal", "settled")
	require.NoError(t, err)
	holds, err := e.Holds(ctx)
	require.NoError(t, err)
	require.Len(t, holds, 1)

	// Capture the salt of the "ok" message while its key exists, as an insider could.
	first := all[0]
	en, err := store.ReadEntry(ctx, e.st, first.index)
	require.NoError(t, err)
	leaf, err := seal.ParseLeaf(en.Leaf)
	require.NoError(t, err)
	wk, err := e.vault.Key(ctx, leaf.KeyID)
	require.NoError(t, err)
	dek, err := e.ring.Unwrap(ctx, wk.KEK, leaf.KeyID, wk.Wrapped)
	require.NoError(t, err)
	env, err := seal.DecryptPayload(dek, leaf.KeyID, en.Payload)
	require.NoError(t, err)
	salt, body, err := seal.OpenEnvelope(env)
	require.NoError(t, err)
	guesses := []string{"yes", "no", "ok", "buy", "sell", "done"}
	bruteForce := func(salt [32]byte) string {
		for _, g := range guesses {
			var m capture.Message
			require.NoError(t, json.Unmarshal(body, &m))
			m.Text = g
			cand, _ := json.Marshal(&m)
			if seal.Commitment(&salt, cand) == leaf.Commitment {
				return g
			}
		}
		return ""
	}
	require.Equal(t, "ok", bruteForce(salt), "with the salt, a short message falls to a dictionary")

	policy := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "order records: 2 years", Keep: ledger.Period{Years: 2}}}}
	now := start.AddDate(0, 36, 0).Add(time.Hour) // just after the 36th month
	dry, err := e.ApplyRetention(ctx, policy, ledger.ApplyOptions{Now: now, DryRun: true})
	require.NoError(t, err)
	// Months 0..11 of the two unheld conversations: month m expires 24 months after its end.
	require.Len(t, dry, 24)
	sizeBefore := e.Size()
	_, err = e.ApplyRetention(ctx, policy, ledger.ApplyOptions{Now: now})
	require.Error(t, err, "a real run needs an authority")
	require.Equal(t, sizeBefore, e.Size(), "the dry run and the refused run wrote nothing")
	shreds, err := e.ApplyRetention(ctx, policy, ledger.ApplyOptions{Now: now, Authority: "retention job, approved by CCO"})
	require.NoError(t, err)
	require.Len(t, shreds, 24)
	blobKeysGone := 0
	for _, s := range shreds {
		require.NotEqual(t, "cid-held", s.Conversation)
		require.Equal(t, "order records: 2 years", s.Rule)
		m, err := time.Parse("2006-01", s.Month)
		require.NoError(t, err)
		require.True(t, m.Before(start.AddDate(0, 12, 0)), "month %s is not expired", s.Month)
		blobKeysGone += len(s.Blobs)
		// The shred entry says what went.
		se, err := e.Get(ctx, s.Index)
		require.NoError(t, err)
		require.Equal(t, seal.KindShred, se.Leaf.Kind)
		require.Contains(t, string(se.Body), s.KeyID)
		require.Contains(t, string(se.Body), "approved by CCO")
	}
	require.Equal(t, 1, blobKeysGone, "the attachment of the shredded month went with it")
	// A late backfill into a shredded month cannot bring its key back.
	sizeNow := e.Size()
	_, err = e.Append(ctx, secretMsg(999, "cid-desk", start.AddDate(0, 0, 9), "late backfill"))
	require.ErrorIs(t, err, ledger.ErrShredded)
	require.Equal(t, sizeNow, e.Size(), "nothing written")
	// Running again changes nothing.
	again, err := e.ApplyRetention(ctx, policy, ledger.ApplyOptions{Now: now, Authority: "retention job"})
	require.NoError(t, err)
	require.Empty(t, again)

	acc := e.Access("auditor", "retention check")
	for _, s := range all {
		got, err := acc.Get(ctx, s.index)
		expired := s.month < 12 && s.conv != "cid-held"
		if expired {
			require.ErrorIs(t, err, ledger.ErrShredded, "%+v", s)
			require.NotNil(t, got, "the leaf survives")
			require.NotEqual(t, seal.Hash{}, got.Leaf.Commitment)
		} else {
			require.NoError(t, err, "%+v", s)
			require.Equal(t, s.text, got.Message.Text)
		}
	}
	_, err = acc.Blob(ctx, blobGone)
	require.ErrorIs(t, err, ledger.ErrShredded)
	b, err := acc.Blob(ctx, blobHeld)
	require.NoError(t, err)
	require.Equal(t, "held chat attachment", string(b))

	// The salt went with the key: the stored ciphertext no longer opens, and guessing fails.
	_, err = e.vault.Key(ctx, leaf.KeyID)
	require.ErrorIs(t, err, store.ErrDestroyed)
	require.Empty(t, bruteForce([32]byte{}), "without the salt the dictionary finds nothing")
	require.Empty(t, bruteForce(sha256.Sum256(leaf.Commitment[:])))

	// Proofs and verification are untouched.
	require.NoError(t, e.Close())
	rep, err := verify.Ledger(ctx, e.st, e.keys.Verifier, verify.Options{})
	require.NoError(t, err)
	require.Equal(t, uint64(24), rep.Kinds["shred"])
	p, err := verify.Proof(ctx, e.st, first.index, e.keys.Verifier)
	require.NoError(t, err)
	_, _, err = seal.VerifyProof(p, e.keys.Verifier)
	require.NoError(t, err)
}

func TestKEKRotationRewrapsEveryKeyAndTouchesNoEntry(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	for i := 0; i < 30; i++ {
		_, err := e.Append(ctx, secretMsg(i, fmt.Sprintf("cid-%d", i%3), time.Date(2026, time.Month(1+(i/3)%6), 1, 0, 0, 0, 0, time.UTC), "text"))
		require.NoError(t, err)
	}
	_, err := e.PutBlob(ctx, []byte("blob"))
	require.NoError(t, err)
	require.NoError(t, e.Close())
	before, err := storetest.TakeSnapshot(ctx, e.st)
	require.NoError(t, err)
	newRing := newKEK(t, "kek-2-rotated")
	n, err := ledger.RotateKEK(ctx, e.vault, e.ring, newRing)
	require.NoError(t, err)
	require.Equal(t, 19, n, "18 scope keys (3 conversations x 6 months) and 1 blob key")
	after, err := storetest.TakeSnapshot(ctx, e.st)
	require.NoError(t, err)
	require.Equal(t, before.Log, after.Log, "no entry changed")
	for wk, err := range e.vault.Keys(ctx) {
		require.NoError(t, err)
		require.Equal(t, newRing.ID(), wk.KEK)
		_, err := e.ring.Unwrap(ctx, e.ring.ID(), wk.ID, wk.Wrapped)
		require.ErrorIs(t, err, seal.ErrDecrypt, "the old KEK opens nothing")
	}
	// Running it again is a no-op; the ledger reads with the new keyring only.
	n, err = ledger.RotateKEK(ctx, e.vault, e.ring, newRing)
	require.NoError(t, err)
	require.Zero(t, n)
	l := openEnc(t, e.st, e.vault, newRing, e.keys, e.now)
	got, err := l.Access("a", "b").Get(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, "text", got.Message.Text)
	require.NoError(t, l.Close())
	old := openEnc(t, e.st, e.vault, e.ring, e.keys, e.now)
	_, err = old.Access("a", "b").Get(ctx, 7)
	require.ErrorIs(t, err, seal.ErrUnknownKEK, "the old keyring does not hold the KEK the key names")
	require.NoError(t, old.Close())
}

func TestWrongOrCorruptKeysFailClearlyAndWriteNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	_, err := e.Append(ctx, secretMsg(1, "cid", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "x"))
	require.NoError(t, err)
	require.NoError(t, e.Close())
	size, _ := e.st.Size(ctx)

	// A wrong KEK cannot append to an existing scope: the error says so and nothing is written.
	// A keyring without the KEK a key names says so; one whose KEK has the right name but is
	// another key fails to decrypt.
	wrongName := openEnc(t, e.st, e.vault, newKEK(t, "kek-wrong"), e.keys, e.now)
	_, err = wrongName.Append(ctx, secretMsg(2, "cid", time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), "y"))
	require.ErrorIs(t, err, seal.ErrUnknownKEK)
	require.NoError(t, wrongName.Close())
	impostor, err := seal.NewKEKKeyring(e.ring.ID(), bytes.Repeat([]byte{0xee}, 32))
	require.NoError(t, err)
	wrong := openEnc(t, e.st, e.vault, impostor, e.keys, e.now)
	_, err = wrong.Append(ctx, secretMsg(2, "cid", time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), "y"))
	require.ErrorIs(t, err, seal.ErrDecrypt)
	require.NoError(t, wrong.Close())
	got, _ := e.st.Size(ctx)
	require.Equal(t, size, got, "nothing appended")

	// A corrupted wrapped key: clear error naming the key, nothing written.
	for wk, err := range e.vault.Keys(ctx) {
		require.NoError(t, err)
		wk.Wrapped[5] ^= 1
		require.NoError(t, e.vault.Rewrap(ctx, wk.ID, wk.KEK, wk.Wrapped))
	}
	l := openEnc(t, e.st, e.vault, e.ring, e.keys, e.now)
	defer l.Close()
	_, err = l.Append(ctx, secretMsg(3, "cid", time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), "z"))
	require.ErrorIs(t, err, seal.ErrDecrypt)
	require.ErrorContains(t, err, "dk1.2026-06.")
	got, _ = e.st.Size(ctx)
	require.Equal(t, size, got)

	// Misconfiguration is refused at Open.
	_, err = ledger.Open(ctx, memstore.New(), ledger.Options{Signing: e.keys, Encryption: &ledger.Encryption{}})
	require.Error(t, err)
	// Retention needs encryption and an authority.
	plain := openLedger(t, memstore.New(), e.keys, 10)
	defer plain.Close()
	_, err = plain.ApplyRetention(ctx, ledger.RetentionPolicy{}, ledger.ApplyOptions{DryRun: true})
	require.Error(t, err)
	_, err = plain.PlaceHold(ctx, ledger.Hold{ID: "x"})
	require.Error(t, err)
	_, err = plain.ReleaseHold(ctx, "nope", "a", "b")
	require.True(t, errors.Is(err, ledger.ErrNotFound))
}

// TestARuleForOneKindDestroysNoOtherKind: keys are shared by the kinds of a scope, so a rule
// for one kind may destroy a key only when every kind sealed under it has expired under some
// rule; a kind no rule matches keeps the key (issue #9 item 2: a policy with only an
// annotation rule shredded the messages of every annotated conversation).
func TestARuleForOneKindDestroysNoOtherKind(t *testing.T) {
	ctx := context.Background()
	e := newEnc(t)
	sent := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC) // month ends 2026-02-01
	annotate := func(conv string, about *capture.Identity, id string) {
		t.Helper()
		_, err := e.AppendRecord(ctx, &capture.Record{Kind: capture.RecordAnnotation, Platform: "dingtalk", Tenant: "corp1",
			ID: id, Conversation: capture.Conversation{ID: conv}, About: about, At: sent.Add(time.Hour), Body: []byte(`{"finding":"front-running"}`)})
		require.NoError(t, err)
	}
	// cid-annotated: messages and findings about them (one key, kinds message and annotation);
	// cid-plain: messages only; cid-notes: findings only, about no stored message.
	var annotated, plain []uint64
	for i := range 3 {
		m := secretMsg(i, "cid-annotated", sent, fmt.Sprintf("order %d", i))
		rc, err := e.Append(ctx, m)
		require.NoError(t, err)
		annotated = append(annotated, rc.Index)
		about := m.Identity()
		annotate("cid-annotated", &about, fmt.Sprintf("finding-%d", i))
		rc, err = e.Append(ctx, secretMsg(i, "cid-plain", sent, "plain"))
		require.NoError(t, err)
		plain = append(plain, rc.Index)
	}
	annotate("cid-notes", nil, "note-1")
	keyOf := func(i uint64) string {
		en, err := e.Get(ctx, i)
		require.ErrorIs(t, err, ledger.ErrEncrypted)
		return en.Leaf.KeyID
	}
	annotatedKey, plainKey := keyOf(annotated[0]), keyOf(plain[0])
	wk, err := e.vault.Key(ctx, annotatedKey)
	require.NoError(t, err)
	require.Contains(t, string(wk.Meta), `"kinds":["message","annotation"]`, "the key records every kind it protects")

	annotations := ledger.RetentionRule{Name: "findings: 30 days", Kinds: []string{"annotation"}, Keep: ledger.Period{Days: 30}}
	messages := ledger.RetentionRule{Name: "orders: 1 year", Kinds: []string{"message"}, Keep: ledger.Period{Years: 1}}
	due := func(p ledger.RetentionPolicy, now time.Time) map[string]string {
		t.Helper()
		shreds, err := e.ApplyRetention(ctx, p, ledger.ApplyOptions{Now: now, DryRun: true})
		require.NoError(t, err)
		out := map[string]string{}
		for _, s := range shreds {
			out[s.Conversation] = s.Rule
		}
		return out
	}
	monthEnd := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

	// Only the annotation rule: the messages have no rule, so their keys stay; the findings
	// about no message have a key of their own, which goes.
	require.Equal(t, map[string]string{"cid-notes": "findings: 30 days"},
		due(ledger.RetentionPolicy{Rules: []ledger.RetentionRule{annotations}}, monthEnd.AddDate(5, 0, 0)))
	// Only the message rule: the annotated conversation keeps its key (its findings have no
	// rule), the plain one goes; the notes stay.
	require.Equal(t, map[string]string{"cid-plain": "orders: 1 year"},
		due(ledger.RetentionPolicy{Rules: []ledger.RetentionRule{messages}}, monthEnd.AddDate(5, 0, 0)))
	// Both: the annotated key goes when the longer of the two ends, named by that rule.
	both := ledger.RetentionPolicy{Rules: []ledger.RetentionRule{annotations, messages}}
	require.Equal(t, map[string]string{"cid-notes": "findings: 30 days"}, due(both, monthEnd.AddDate(0, 2, 0)))
	require.Equal(t, map[string]string{"cid-notes": "findings: 30 days", "cid-plain": "orders: 1 year", "cid-annotated": "orders: 1 year"},
		due(both, monthEnd.AddDate(1, 0, 1)))

	// A real run with only the annotation rule destroys nothing but the findings' own key.
	shreds, err := e.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{annotations}},
		ledger.ApplyOptions{Now: monthEnd.AddDate(5, 0, 0), Authority: "test"})
	require.NoError(t, err)
	require.Len(t, shreds, 1)
	require.Equal(t, "cid-notes", shreds[0].Conversation)
	acc := e.Access("auditor", "kinds")
	for _, i := range append(annotated, plain...) {
		got, err := acc.Get(ctx, i)
		require.NoError(t, err, "entry %d of a kind no rule names must survive", i)
		require.NotEmpty(t, got.Message.Text)
	}
	for _, id := range []string{annotatedKey, plainKey} {
		_, err := e.vault.Key(ctx, id)
		require.NoError(t, err)
	}
}
