package capturetest

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/commseal/commseal/capture"
)

// Sink is an in-memory capture.Sink, capture.RecordSink and capture.BlobStore for tests. It
// behaves like a ledger as far as a source can tell: it validates, deduplicates messages on
// their key and records on (kind, platform, tenant, id), answers a duplicate with the original
// index, and remembers when each entry was committed so that a test can compare commit times
// with the gateway's ack times. It is safe for concurrent use.
type Sink struct {
	// Before, if set, runs at the start of every Append and AppendRecord call (with m or r nil
	// accordingly); an error it returns is returned without storing anything. Tests use it to
	// slow the sink down or make it fail.
	Before func(ctx context.Context, m *capture.Message, r *capture.Record) error

	mu        sync.Mutex
	messages  []capture.Message
	byID      map[capture.Identity]int
	committed map[capture.Identity]time.Time
	records   []capture.Record
	recByID   map[recKey]int
	blobs     map[[32]byte][]byte
	calls     int
}

type recKey struct{ kind, platform, tenant, id string }

// NewSink returns an empty sink.
func NewSink() *Sink {
	return &Sink{
		byID: map[capture.Identity]int{}, committed: map[capture.Identity]time.Time{},
		recByID: map[recKey]int{}, blobs: map[[32]byte][]byte{},
	}
}

// admit runs what every append does before it stores: the Before hook, validation, the
// context.
func (s *Sink) admit(ctx context.Context, m *capture.Message, r *capture.Record, validate func() error) error {
	if s.Before != nil {
		if err := s.Before(ctx, m, r); err != nil {
			return err
		}
	}
	if err := validate(); err != nil {
		return err
	}
	return ctx.Err()
}

// Append stores a copy of m unless a message with its identity is already stored.
func (s *Sink) Append(ctx context.Context, m *capture.Message) (capture.Receipt, error) {
	if err := s.admit(ctx, m, nil, m.Validate); err != nil {
		return capture.Receipt{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	k := m.Identity()
	if i, ok := s.byID[k]; ok {
		return capture.Receipt{Index: uint64(i), Duplicate: true}, nil
	}
	c := *m
	c.Raw = slices.Clone(m.Raw)
	c.Mentions = slices.Clone(m.Mentions)
	c.Attachments = slices.Clone(m.Attachments)
	i := len(s.messages) + len(s.records)
	s.messages = append(s.messages, c)
	s.byID[k] = i
	s.committed[k] = time.Now()
	return capture.Receipt{Index: uint64(i)}, nil
}

// AppendRecord stores a copy of r unless a record with its kind, platform, tenant and non-empty
// ID is already stored.
func (s *Sink) AppendRecord(ctx context.Context, r *capture.Record) (capture.Receipt, error) {
	if err := s.admit(ctx, nil, r, r.Validate); err != nil {
		return capture.Receipt{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	rk := recKey{r.Kind, r.Platform, r.Tenant, r.ID}
	if r.ID != "" {
		if i, ok := s.recByID[rk]; ok {
			return capture.Receipt{Index: uint64(i), Duplicate: true}, nil
		}
	}
	c := *r
	c.Body, c.Raw = slices.Clone(r.Body), slices.Clone(r.Raw)
	if r.About != nil {
		k := *r.About
		c.About = &k
	}
	i := len(s.messages) + len(s.records)
	s.records = append(s.records, c)
	if r.ID != "" {
		s.recByID[rk] = i
	}
	return capture.Receipt{Index: uint64(i)}, nil
}

// PutBlob stores data under its SHA-256.
func (s *Sink) PutBlob(ctx context.Context, data []byte) ([32]byte, error) {
	if err := ctx.Err(); err != nil {
		return [32]byte{}, err
	}
	h := sha256.Sum256(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[h]; !ok {
		s.blobs[h] = slices.Clone(data)
	}
	return h, nil
}

// Blob returns the content stored under sum, or capture.ErrBlobNotFound.
func (s *Sink) Blob(ctx context.Context, sum [32]byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[sum]
	if !ok {
		return nil, capture.ErrBlobNotFound
	}
	return slices.Clone(b), nil
}

// Messages returns copies of the stored messages in order of storing.
func (s *Sink) Messages() []capture.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Records returns copies of the stored records of the given kind (all kinds when kind is "")
// in order of storing.
func (s *Sink) Records(kind string) []capture.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []capture.Record
	for _, r := range s.records {
		if kind == "" || r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// Committed returns when the message with key k was stored, and whether it was.
func (s *Sink) Committed(k capture.Identity) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.committed[k]
	return t, ok
}

// Calls reports how many Append and AppendRecord calls reached the store (duplicates included,
// failures from Before excluded).
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}
