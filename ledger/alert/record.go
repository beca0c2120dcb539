package alert

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Record is one file of an Outbox: an alert waiting for delivery, or a dead letter.
type Record struct {
	Seq    uint64    `json:"seq"`              // order of queuing; delivery follows it
	Queued time.Time `json:"queued"`           // when Alert queued it
	Alert  Alert     `json:"alert"`            // the alert, as the sender will get it
	Failed time.Time `json:"failed,omitzero"`  // dead letters: when delivery failed for good
	Reason string    `json:"reason,omitempty"` // dead letters: why
}

// The record file format:
//
//	magic  8 bytes  "CSALRT01"
//	length 4 bytes  big-endian length of body, 1 to MaxRecordBody
//	body   length bytes: the Record as JSON
//	sum    32 bytes SHA-256 of magic, length and body
const (
	recordMagic = "CSALRT01"
	// MaxRecordBody bounds the JSON body of one record file.
	MaxRecordBody = 64 << 10
	recordHeader  = len(recordMagic) + 4
	recordTrailer = sha256.Size
)

// EncodeRecord returns r in the record file format. It fails with ErrInvalidAlert when the
// alert does not validate, or when the record would exceed MaxRecordBody.
func EncodeRecord(r *Record) ([]byte, error) {
	if err := r.Alert.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAlert, err)
	}
	if len(body) > MaxRecordBody {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalidAlert, len(body), MaxRecordBody)
	}
	out := make([]byte, 0, recordHeader+len(body)+recordTrailer)
	out = append(out, recordMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, body...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// DecodeRecord parses a record file. Anything but one whole, intact record whose alert
// validates (a torn write, a flipped bit, trailing bytes, unknown fields) fails with an error
// wrapping ErrCorruptRecord that says what is wrong.
func DecodeRecord(data []byte) (*Record, error) {
	fail := func(format string, args ...any) (*Record, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrCorruptRecord}, args...)...)
	}
	if len(data) < recordHeader+recordTrailer {
		return fail("%d bytes is shorter than a record", len(data))
	}
	if string(data[:len(recordMagic)]) != recordMagic {
		return fail("bad magic %q", data[:len(recordMagic)])
	}
	n := binary.BigEndian.Uint32(data[len(recordMagic):recordHeader])
	if n == 0 || n > MaxRecordBody {
		return fail("body length %d out of range", n)
	}
	if want := recordHeader + int(n) + recordTrailer; len(data) != want {
		return fail("%d bytes, the header says %d", len(data), want)
	}
	end := recordHeader + int(n)
	sum := sha256.Sum256(data[:end])
	if !bytes.Equal(sum[:], data[end:]) {
		return fail("checksum mismatch")
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data[recordHeader:end]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return fail("body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("body: data after the record")
	}
	if err := r.Alert.Validate(); err != nil {
		return fail("%v", err)
	}
	return &r, nil
}
