package s3store_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/commseal/commseal/capture"
	"github.com/commseal/commseal/internal/leakcheck"
	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/seal/sealtest"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/memstore"
	"github.com/commseal/commseal/store/s3store"
	"github.com/commseal/commseal/store/s3store/s3test"
	"github.com/commseal/commseal/verify"
)

func signingKey(t testing.TB) *seal.SigningKey {
	t.Helper()
	skey, _, err := seal.GenerateSigningKey("commseal.test/s3store")
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// objects lists the keys of the objects (current versions) under prefix.
func objects(t testing.TB, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// TestCryptoShreddingWithLockedCiphertext: an encrypted ledger (log in memory, attachments in
// the bucket through Options.Blobs) seals a message with an attachment; retention destroys the
// scope's key and the attachment's. The attachment can no longer be read (ErrShredded), while its
// ciphertext is still in the bucket, locked: its version cannot be deleted, it holds no
// plaintext, and the ledger still verifies.
func TestCryptoShreddingWithLockedCiphertext(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	blobs := open(t, srv, s3store.Options{Prefix: "ledger/blobs/"})
	c := srv.Client()
	log := memstore.New()
	vault := &memstore.KeyVault{}
	keys := signingKey(t)
	l, err := ledger.Open(ctx, log, ledger.Options{Signing: keys, CheckpointInterval: time.Hour, Blobs: blobs,
		Encryption: &ledger.Encryption{Keyring: sealtest.NewKeyring(), Vault: vault}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	secret := "ORDER TICKET: sell 50,000 0700.HK for client 黃小明"
	sent := time.Date(2023, 2, 3, 9, 0, 0, 0, time.UTC)
	m := &capture.Message{Platform: "dingtalk", Tenant: "corp1", ID: "m-1",
		Conversation: capture.Conversation{ID: "cid-desk", Type: capture.ConversationGroup},
		Sender:       capture.Party{ID: "u1", Name: "Trader"}, SentAt: sent, Kind: capture.KindFile,
		Text: "see the ticket", Raw: []byte(`{"msgId":"m-1"}`)}
	if _, err := l.Append(ctx, m); err != nil {
		t.Fatal(err)
	}
	sum, err := l.PutBlob(ctx, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"status": "stored", "sha256": hex.EncodeToString(sum[:])})
	about := m.Identity()
	if _, err := l.AppendRecord(ctx, &capture.Record{Kind: capture.RecordMedia, Platform: "dingtalk", Tenant: "corp1", ID: "media-1",
		Conversation: capture.Conversation{ID: "cid-desk"}, About: &about, At: sent.Add(time.Minute), Body: body}); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Access("officer", "before retention").Blob(ctx, sum); err != nil || string(got) != secret {
		t.Fatalf("reading the attachment before retention = %q, %v", got, err)
	}
	stored := objects(t, c, srv.Bucket, "ledger/blobs/")
	if len(stored) != 1 {
		t.Fatalf("objects in the bucket: %q; want the attachment's ciphertext only", stored)
	}
	addr, err := hex.DecodeString(stored[0][len("ledger/blobs/"):])
	if err != nil || len(addr) != 32 {
		t.Fatalf("object %q is not named by a SHA-256", stored[0])
	}

	shreds, err := l.ApplyRetention(ctx, ledger.RetentionPolicy{Rules: []ledger.RetentionRule{{Name: "1 year", Keep: ledger.Period{Years: 1}}}},
		ledger.ApplyOptions{Authority: "retention job"})
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	if len(shreds) != 1 || len(shreds[0].Blobs) != 1 {
		t.Fatalf("shreds = %+v; want the scope's key with the attachment's", shreds)
	}

	if _, err := l.Access("officer", "after retention").Blob(ctx, sum); !errors.Is(err, ledger.ErrShredded) {
		t.Fatalf("reading a shredded attachment: err = %v; want ErrShredded", err)
	}
	// The ciphertext is still there, whole and locked, and tells nothing.
	ct, err := blobs.ReadBlob(ctx, store.Hash(addr))
	if err != nil {
		t.Fatalf("the locked ciphertext after shredding: %v", err)
	}
	if s, enc, found := leakcheck.Find(ct, []string{secret, "0700.HK", "黃小明"}); found {
		t.Fatalf("the stored object holds %q (as %q)", s, enc)
	}
	if lk, err := blobs.Lock(ctx, store.Hash(addr)); err != nil || lk.Mode != "COMPLIANCE" || !lk.RetainUntil.After(time.Now()) {
		t.Fatalf("Lock of the shredded attachment's object = %+v, %v; want COMPLIANCE, in force", lk, err)
	}
	if err := deleteVersion(c, srv.Bucket, stored[0], versionOf(t, c, srv.Bucket, stored[0])); err == nil {
		t.Fatal("the locked ciphertext could be deleted")
	}
	// Nothing else can decrypt it: the vault's key for it is destroyed.
	for wk, err := range vault.Keys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(wk.Meta, []byte(hex.EncodeToString(addr))) && !wk.Destroyed {
			t.Fatalf("key %s of the shredded attachment is not destroyed", wk.ID)
		}
	}
	if _, err := l.Access("officer", "after retention").Get(ctx, 0); !errors.Is(err, ledger.ErrShredded) {
		t.Fatalf("reading the shredded message: err = %v; want ErrShredded", err)
	}
	if _, _, err := l.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Ledger(ctx, log, keys.Verifier, verify.Options{}); err != nil {
		t.Fatalf("Verify after shredding: %v", err)
	}
}
