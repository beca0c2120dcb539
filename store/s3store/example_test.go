package s3store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/commseal/commseal/ledger"
	"github.com/commseal/commseal/seal"
	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/s3store"
)

// A ledger whose log is in a file store and whose attachments are in an S3 bucket with Object
// Lock. (Compiled, not run: it needs an S3 endpoint; the package's tests run the same wiring
// against versitygw.)
func Example() {
	ctx := context.Background()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String("http://127.0.0.1:7070"), // omit for AWS
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "ACCESS", SecretAccessKey: "SECRET"}, nil
		}),
	})
	blobs, err := s3store.Open(ctx, client, s3store.Options{
		Bucket:    "commseal-archive", // created with Object Lock enabled
		Prefix:    "ledger-1/blobs/",
		Retention: 7 * 365 * 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err) // s3store.ErrNoObjectLock for a bucket without Object Lock
	}
	defer blobs.Close()
	st, err := filestore.Open(ctx, "./commseal-data/store", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	skey, _, err := seal.GenerateSigningKey("example.com/ledger-1")
	if err != nil {
		log.Fatal(err)
	}
	keys, err := seal.ParseSigningKey(skey)
	if err != nil {
		log.Fatal(err)
	}
	l, err := ledger.Open(ctx, st, ledger.Options{Signing: keys, Blobs: blobs})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	sum, err := l.PutBlob(ctx, []byte("order ticket.pdf"))
	if err != nil {
		log.Fatal(err) // errors.Is(err, s3store.ErrUnavailable): try again later
	}
	fmt.Printf("stored %x, locked in COMPLIANCE mode\n", sum[:8])
}

// Extending a blob's lock and holding it through the Locker capability.
func ExampleLocker() {
	ctx := context.Background()
	var blobs *s3store.Blobs // from s3store.Open
	var lk s3store.Locker = blobs
	sum := store.Hash(sha256.Sum256([]byte("order ticket.pdf")))
	// The scope's retention ends later than the default: extend (never shorten).
	if err := lk.Retain(ctx, sum, time.Date(2033, 12, 31, 0, 0, 0, 0, time.UTC)); err != nil {
		log.Print(err) // s3store.ErrLocked for an earlier date than the current one
	}
	// A legal hold on the scope: keep the blob whatever its date says, until released.
	if err := lk.SetLegalHold(ctx, sum, true); err != nil {
		log.Print(err)
	}
	l, err := lk.Lock(ctx, sum)
	if err != nil {
		log.Print(err)
	}
	fmt.Println(l.Mode, l.RetainUntil.Format(time.DateOnly), l.LegalHold)
}
