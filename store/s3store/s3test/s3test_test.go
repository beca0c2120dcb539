package s3test_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/commseal/commseal/store/s3store/s3test"
)

// TestServer: New gives a server whose bucket has Object Lock enabled; Stop takes the endpoint
// down (twice is harmless) and Start brings it back on the same address with the same data.
func TestServer(t *testing.T) {
	srv := s3test.New(t)
	ctx := context.Background()
	c := srv.Client()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q; want a loopback endpoint", srv.URL)
	}
	lc, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(srv.Bucket)})
	if err != nil || lc.ObjectLockConfiguration == nil || lc.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		t.Fatalf("the bucket's Object Lock configuration: %+v, %v; want enabled", lc, err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("k"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Stop()
	if _, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Fatal("the endpoint answered after Stop")
	}
	srv.Start()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject after Start: %v\n%s", err, srv.Logs())
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "kept" {
		t.Fatalf("after Stop and Start the object holds %q; want %q", b, "kept")
	}
	plain := srv.NewBucket(false)
	if _, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(plain)}); err == nil {
		t.Fatalf("NewBucket(false) made bucket %s with an Object Lock configuration", plain)
	}
}
