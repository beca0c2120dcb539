package s3store_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/commseal/commseal/store/filestore"
	"github.com/commseal/commseal/store/s3store"
	"github.com/commseal/commseal/store/s3store/s3test"
)

// BenchmarkBlobs measures blob put and get throughput (one goroutine, one blob per operation)
// against versitygw on loopback beside the file store's blobs, in the same run, for attachment
// sizes of 4 KiB (a chat image thumbnail) and 256 KiB (a document or photo):
//
//	go test ./store/s3store -run XXX -bench Blobs -benchtime 2s -count 3
//
// put writes a new blob each time (a fresh lock in S3; a temporary file, fsync, rename and
// directory fsync in the file store); get reads one of the blobs put, checking its hash.
func BenchmarkBlobs(b *testing.B) {
	srv := s3test.New(b)
	ctx := context.Background()
	fs, err := filestore.Open(ctx, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	s3b, err := s3store.Open(ctx, srv.Client(), s3store.Options{Bucket: srv.Bucket, Prefix: "bench/", Retention: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s3b.Close()
	stores := []struct {
		name string
		s    store.Blobs
	}{{"filestore", fs}, {"s3store", s3b}}
	for _, size := range []int{4 << 10, 256 << 10} {
		for _, st := range stores {
			var written []store.Hash
			b.Run(fmt.Sprintf("put/%s/%dKiB", st.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(size))
				data := make([]byte, size)
				for k := range data {
					data[k] = byte(k * 7)
				}
				seed := time.Now().UnixNano()
				for i := 0; b.Loop(); i++ {
					binary.LittleEndian.PutUint64(data, uint64(seed)+uint64(i)) // new content each time
					sum := sha256.Sum256(data)
					if err := st.s.WriteBlob(ctx, sum, data); err != nil {
						b.Fatal(err)
					}
					if len(written) < 1000 {
						written = append(written, sum)
					}
				}
			})
			b.Run(fmt.Sprintf("get/%s/%dKiB", st.name, size>>10), func(b *testing.B) {
				if len(written) == 0 {
					b.Skip("nothing was put")
				}
				b.SetBytes(int64(size))
				for i := 0; b.Loop(); i++ {
					if _, err := st.s.ReadBlob(ctx, written[i%len(written)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
