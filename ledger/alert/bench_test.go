package alert

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/commseal/commseal/internal/durable"
)

// BenchmarkOutboxAlert measures queuing one alert (encode, durable write, bookkeeping);
// compare it with BenchmarkDurableWriteFileBaseline, the durable write alone of a record of the
// same size, measured in the same run.
func BenchmarkOutboxAlert(b *testing.B) {
	o, err := OpenOutbox(b.TempDir(), newWebhook(b, "http://127.0.0.1:1/never"), OutboxOptions{MaxRecords: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := o.Alert(ctx, sampleAlert(uint64(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDurableWriteFileBaseline(b *testing.B) {
	dir := b.TempDir()
	data, err := EncodeRecord(sampleRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := durable.WriteFile(filepath.Join(dir, fmt.Sprint(i)), data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRecord measures reading one record file's bytes (Open does it per file).
func BenchmarkDecodeRecord(b *testing.B) {
	data, err := EncodeRecord(sampleRecord())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := DecodeRecord(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutboxAlertParallel queues from 8 goroutines per CPU at once, as a scanner with
// several workers would; compare with BenchmarkOutboxAlert.
func BenchmarkOutboxAlertParallel(b *testing.B) {
	o, err := OpenOutbox(b.TempDir(), newWebhook(b, "http://127.0.0.1:1/never"), OutboxOptions{MaxRecords: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	var n atomic.Uint64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := o.Alert(context.Background(), sampleAlert(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
