package alert

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleRecord() *Record {
	return &Record{Seq: 12, Queued: time.Date(2026, 11, 2, 9, 31, 0, 0, time.UTC), Alert: sampleAlert(12)}
}

// frame builds a record file around an arbitrary body, with a correct checksum.
func frame(body []byte) []byte {
	out := append([]byte(recordMagic), binary.BigEndian.AppendUint32(nil, uint32(len(body)))...)
	out = append(out, body...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []*Record{sampleRecord(), func() *Record {
		r := sampleRecord()
		r.Failed = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		r.Reason = "alert: delivery refused: HTTP 400"
		r.Alert.Excerpt = ""
		return r
	}()} {
		data, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRecord(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
		}
	}
}

func TestEncodeRecordRefusesInvalidAlert(t *testing.T) {
	r := sampleRecord()
	r.Alert.MessageID = ""
	if _, err := EncodeRecord(r); !errors.Is(err, ErrInvalidAlert) {
		t.Fatalf("EncodeRecord = %v, want ErrInvalidAlert", err)
	}
}

func TestDecodeRecordRefusesDamage(t *testing.T) {
	good, err := EncodeRecord(sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, data []byte) {
		t.Helper()
		r, err := DecodeRecord(data)
		if !errors.Is(err, ErrCorruptRecord) || r != nil {
			t.Errorf("%s: DecodeRecord = %v, %v; want ErrCorruptRecord", name, r, err)
		}
	}
	// Every truncation (a torn write).
	for n := 0; n < len(good); n++ {
		check("truncated", good[:n])
	}
	// Every single flipped bit.
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		check("flipped", bad)
	}
	check("trailing byte", append(bytes.Clone(good), 0))
	check("empty body", frame(nil))
	check("not json", frame([]byte("hello")))
	check("unknown field", frame([]byte(`{"seq":1,"queued":"2026-01-01T00:00:00Z","alert":{},"extra":1}`)))
	check("two values", frame([]byte(`{"seq":1} {}`)))
	check("invalid alert", frame([]byte(`{"seq":1,"queued":"2026-01-01T00:00:00Z","alert":{"id":"a","platform":"p","msg_id":"m","rule":"r","severity":"high","time":"2026-01-01T00:00:00Z","sender":"`+string(bytes.Repeat([]byte("s"), MaxRefLen+1))+`"}}`)))
	check("unknown severity", frame([]byte(`{"seq":1,"queued":"2026-01-01T00:00:00Z","alert":{"id":"a","platform":"p","msg_id":"m","rule":"r","severity":"urgent","time":"2026-01-01T00:00:00Z"}}`)))
	big := frame(bytes.Repeat([]byte(" "), MaxRecordBody+1))
	check("oversize", big)
	// A valid minimal record decodes, so the cases above fail for their own reason.
	if _, err := DecodeRecord(frame([]byte(`{"seq":1,"queued":"2026-01-01T00:00:00Z","alert":{"id":"a","platform":"p","msg_id":"m","rule":"r","severity":"high","time":"2026-01-01T00:00:00Z"}}`))); err != nil {
		t.Fatalf("minimal record: %v", err)
	}
}

// FuzzDecodeRecord: any input either fails with ErrCorruptRecord or decodes to a record that
// encodes back to the same bytes' meaning (decode(encode(r)) == r).
func FuzzDecodeRecord(f *testing.F) {
	good, err := EncodeRecord(sampleRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:40])
	f.Add(frame([]byte(`{"seq":1,"queued":"2026-01-01T00:00:00Z","alert":{"id":"a","platform":"p","msg_id":"m","rule":"r","severity":"high","time":"2026-01-01T00:00:00Z"}}`)))
	f.Add(frame([]byte(`{"seq":1,"alert":{"id":"a","platform":"\xff","msg_id":"m","rule":"r","severity":"info","time":"0001-01-01T00:00:00Z"},"reason":"x","failed":"2026-01-01T00:00:00Z"}`)))
	f.Add([]byte(recordMagic + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptRecord) || r != nil {
				t.Fatalf("error %v does not wrap ErrCorruptRecord (record %v)", err, r)
			}
			return
		}
		enc, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		back, err := DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, back)
		}
	})
}

// FuzzDecodeRecordBody fuzzes the JSON body inside an intact frame, which random bytes almost
// never reach past the checksum: the same contract as FuzzDecodeRecord.
func FuzzDecodeRecordBody(f *testing.F) {
	good, err := EncodeRecord(sampleRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[recordHeader : len(good)-recordTrailer])
	f.Add([]byte(`{"seq":1,"queued":"2026-01-01T00:00:00Z","alert":{"id":"a","platform":"p","msg_id":"m","rule":"r","severity":"high","time":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"seq":18446744073709551615,"alert":{"id":"a:b.c_d-e","platform":"p","msg_id":"m","rule":"r","severity":"info","time":"2026-01-01T00:00:00+08:00","excerpt":"\u0000"},"failed":"2026-01-01T00:00:00Z","reason":"r"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRecord(frame(body))
		if err != nil {
			if !errors.Is(err, ErrCorruptRecord) || r != nil {
				t.Fatalf("error %v does not wrap ErrCorruptRecord", err)
			}
			return
		}
		enc, err := EncodeRecord(r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		back, err := DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, back)
		}
	})
}
