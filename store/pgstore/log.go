package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/commseal/commseal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// readChunk is how many entries Entries reads per query, at most.
	readChunk = 256
	// readBytes is how many bytes of leaves and payloads Entries reads per query, at most
	// (unless one entry is larger).
	readBytes = 16 << 20
	// commitTimeout bounds the write and commit of a batch, which run whatever the caller's
	// context does once the batch is sent: a write interrupted by the client would leave its
	// outcome unknown.
	commitTimeout = time.Minute
	// resolveTimeout bounds the read-back after a write whose answer was lost.
	resolveTimeout = 30 * time.Second
)

// pending is a batch submitted and not yet answered.
type pending struct {
	ctx  context.Context
	b    *store.Batch
	seq  uint64
	done chan error
}

// Append implements store.Log: it is Submit, waiting for the result. The batch's transaction
// takes the head row's lock, so appends from other processes are serialized with it.
func (s *Store) Append(ctx context.Context, b *store.Batch) error {
	return <-s.Submit(ctx, b)
}

// Submit implements store.Pipeline. Batches are written one after the other, in submission
// order, by one goroutine, each in its own transaction checked against the log as it is then;
// Submit returns at once (unless 256 batches are already waiting).
func (s *Store) Submit(ctx context.Context, b *store.Batch) <-chan error {
	done := make(chan error, 1)
	if err := s.beginWrite(ctx); err != nil {
		done <- err
		return done
	}
	if err := checkShape(b); err != nil {
		done <- err
		return done
	}
	s.submitMu.Lock()
	defer s.submitMu.Unlock()
	if s.closed.Load() {
		done <- store.ErrClosed
		return done
	}
	p := &pending{ctx: ctx, b: b, seq: s.seq.Add(1), done: done}
	s.queue <- p
	return done
}

// checkShape checks what can be checked of b without the log: store.CheckBatch against its own
// first index, and the size of each entry.
func checkShape(b *store.Batch) error {
	if b == nil || len(b.Entries) == 0 {
		return store.CheckBatch(b, 0)
	}
	if err := store.CheckBatch(b, b.Entries[0].Index); err != nil {
		return err
	}
	for k := range b.Entries {
		e := &b.Entries[k]
		if len(e.Leaf)+len(e.Payload) > MaxValueSize {
			return fmt.Errorf("%w: entry %d holds %d bytes, more than the %d pgstore takes", store.ErrInvalid, e.Index, len(e.Leaf)+len(e.Payload), MaxValueSize)
		}
	}
	if b.Entries[len(b.Entries)-1].Index >= 1<<62 {
		return fmt.Errorf("%w: entry index beyond 2^62", store.ErrInvalid)
	}
	return nil
}

// worker writes the submitted batches in order. A batch that fails for a reason other than the
// checks (the connection, the server, the context) also fails every batch submitted after it
// and before its failure was seen: they were built on top of it. Batches submitted later are
// checked against the log as it is.
func (s *Store) worker() {
	defer s.workerWG.Done()
	var failedUpTo uint64
	var failure error
	for p := range s.queue {
		if p.seq <= failedUpTo {
			p.done <- fmt.Errorf("pgstore: batch at %d not appended: a batch submitted before it failed: %w", p.b.Entries[0].Index, failure)
			continue
		}
		err := s.apply(p.ctx, p.b)
		if err != nil && !errors.Is(err, store.ErrOutOfOrder) && !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrDuplicate) {
			failedUpTo, failure = s.seq.Load(), err
		}
		p.done <- err
	}
}

// apply writes b. A batch of up to Store.copyAbove bytes is one statement (one round trip, its
// own transaction): a data-modifying WITH moves the head row from b's first index to its end,
// taking the row's lock, and the INSERT adds the entries only if it did. A larger batch is a
// transaction that locks the head row and streams the entries with COPY. Once the batch is
// sent, the caller's context no longer interrupts it: a write interrupted by the client would
// leave its outcome unknown.
func (s *Store) apply(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if batchBytes(b) > s.copyAbove {
		return s.applyCopy(ctx, b)
	}
	n := len(b.Entries)
	args := batchArgs(b)
	first := b.Entries[0].Index
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	tag, err := retry(wctx, func() (pgconn.CommandTag, error) {
		return s.pool.Exec(wctx, s.q.appendBatch, args...)
	})
	if err != nil {
		return s.appendFailed(b, err)
	}
	if tag.RowsAffected() == int64(n) {
		return nil
	}
	now, err := s.Size(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: %w: batch starts at %d, not at the log's size (reading it: %v)", store.ErrOutOfOrder, first, err)
	}
	return fmt.Errorf("pgstore: %w: batch starts at %d, the log holds %d entries", store.ErrOutOfOrder, first, now)
}

// batchBytes is the size of b's leaves and payloads.
func batchBytes(b *store.Batch) int {
	size := 0
	for k := range b.Entries {
		size += len(b.Entries[k].Leaf) + len(b.Entries[k].Payload)
	}
	return size
}

// batchArgs are the arguments of the appendBatch statement for b: its length and first index,
// then its columns as arrays.
func batchArgs(b *store.Batch) []any {
	n := len(b.Entries)
	idx := make([]int64, n)
	ids := make([][]byte, n)
	convs := make([][]byte, n)
	leaves := make([][]byte, n)
	payloads := make([][]byte, n)
	for k := range b.Entries {
		e := &b.Entries[k]
		idx[k] = int64(e.Index)
		ids[k], convs[k] = digestValue(e.Identity), digestValue(e.Conversation)
		leaves[k], payloads[k] = nonNil(e.Leaf), nonNil(e.Payload)
	}
	return []any{int64(n), int64(b.Entries[0].Index), idx, ids, convs, leaves, payloads, entryHashes(b)}
}

// entryHashes splits b's stored hashes by entry (store.StoredHashesFor each), each entry's
// joined back to back as its row keeps them.
func entryHashes(b *store.Batch) [][]byte {
	out := make([][]byte, len(b.Entries))
	h := b.Hashes
	for k := range b.Entries {
		c := int(store.StoredHashesFor(b.Entries[k].Index))
		joined := make([]byte, 0, 32*c)
		for _, x := range h[:c] {
			joined = append(joined, x[:]...)
		}
		out[k], h = joined, h[c:]
	}
	return out
}

// appendFailed turns the error of a write of b into the store's: ErrDuplicate for a stored
// identity, ErrCorrupt for an entry row beyond the head row, and for a connection lost during
// the write, what resolve finds out.
func (s *Store) appendFailed(b *store.Batch, err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "entries_identity":
		return fmt.Errorf("pgstore: %w: %s", store.ErrDuplicate, pe.Detail)
	case errors.As(err, &pe) && pe.Code == "23505":
		return fmt.Errorf("pgstore: %w: an entry row at or beyond the head row's size exists: %s", store.ErrCorrupt, pe.Detail)
	case statementFailed(err):
		return s.fail(context.Background(), "append", err)
	}
	return s.resolve(b, err)
}

// statementFailed reports whether err is the server's answer that a statement failed (severity
// ERROR: its transaction is rolled back). A FATAL error ends the session, and may come after the
// transaction committed (a session terminated between its commit and its reply), so it says no
// more about the outcome than a broken connection does.
func statementFailed(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	sev := pe.SeverityUnlocalized
	if sev == "" {
		sev = pe.Severity
	}
	return sev == "ERROR"
}

// applyCopy writes b in a transaction: lock the head row and move it, COPY the entries in,
// commit.
func (s *Store) applyCopy(ctx context.Context, b *store.Batch) error {
	n := len(b.Entries)
	first := b.Entries[0].Index
	tx, err := s.beginTx(ctx)
	if err != nil {
		return s.fail(ctx, "append: begin", err)
	}
	open := true
	defer func() {
		if open {
			rollback(tx)
		}
	}()
	var size int64
	if err := tx.QueryRow(ctx, s.q.lockHead, int64(n)).Scan(&size); err != nil {
		return s.fail(ctx, "append: lock the head row", err)
	}
	if uint64(size) != first {
		return fmt.Errorf("pgstore: %w: batch starts at %d, the log holds %d entries", store.ErrOutOfOrder, first, size)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := s.copyEntries(wctx, tx, b); err != nil {
		return err
	}
	open = false
	if err := tx.Commit(wctx); err != nil {
		return s.resolve(b, err)
	}
	return nil
}

// copier is a transaction, or a connection in one, that can COPY.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// copyEntries streams b's entries into the entries table with COPY, in tx.
func (s *Store) copyEntries(ctx context.Context, tx copier, b *store.Batch) error {
	n := len(b.Entries)
	hashes := entryHashes(b)
	k := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if k == n {
			return nil, nil
		}
		e, hs := &b.Entries[k], hashes[k]
		k++
		return []any{int64(e.Index), digestValue(e.Identity), digestValue(e.Conversation), nonNil(e.Leaf), nonNil(e.Payload), hs}, nil
	})
	if _, err := tx.CopyFrom(ctx, s.q.entriesTable, []string{"idx", "identity", "conversation", "leaf", "payload", "hashes"}, rows); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return s.appendFailed(b, err)
		}
		return s.fail(ctx, "append: copy entries", err)
	}
	return nil
}

// resolve finds out whether b committed after its write or COMMIT failed: if the server
// answered that the statement failed, it did not; if the session ended (a broken connection, a
// FATAL error), the batch's last entry is read back on another connection.
func (s *Store) resolve(b *store.Batch, cerr error) error {
	if statementFailed(cerr) {
		return fmt.Errorf("pgstore: append: commit: %w", cerr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	last := &b.Entries[len(b.Entries)-1]
	var leaf, payload []byte
	err := retryErr(ctx, func() error { return s.pool.QueryRow(ctx, s.q.readBack, int64(last.Index)).Scan(&leaf, &payload) })
	switch {
	case err == nil && bytes.Equal(leaf, last.Leaf) && bytes.Equal(payload, last.Payload):
		s.log.Warn("pgstore: the answer to COMMIT was lost, but the batch is in the log", "first", b.Entries[0].Index, "entries", len(b.Entries), "err", cerr)
		return nil
	case err == nil, errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("pgstore: append: the connection broke, and the batch is not in the log: %w", cerr)
	}
	return fmt.Errorf("%w: append of %d entries at %d: %v; reading the batch back: %v", ErrCommitUnknown, len(b.Entries), b.Entries[0].Index, cerr, err)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// digestValue is how a digest is stored: NULL for the zero digest.
func digestValue(h store.Hash) []byte {
	if h == (store.Hash{}) {
		return nil
	}
	return h[:]
}

// parseDigest reads a stored digest back.
func parseDigest(b []byte, what string, i int64) (store.Hash, error) {
	var h store.Hash
	switch len(b) {
	case 0:
		if b != nil {
			return h, fmt.Errorf("%w: entry %d: empty %s", store.ErrCorrupt, i, what)
		}
	case 32:
		copy(h[:], b)
	default:
		return h, fmt.Errorf("%w: entry %d: %s of %d bytes", store.ErrCorrupt, i, what, len(b))
	}
	return h, nil
}

// Size implements store.Log.
func (s *Store) Size(ctx context.Context) (uint64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	var n int64
	if err := retryErr(ctx, func() error { return s.pool.QueryRow(ctx, s.q.size).Scan(&n) }); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("pgstore: %w: the head row is missing", store.ErrCorrupt)
		}
		return 0, s.fail(ctx, "size", err)
	}
	return uint64(n), nil
}

// Entries implements store.Log. It reads up to 256 entries or 16 MiB per query, and holds no
// connection while the caller runs.
func (s *Store) Entries(ctx context.Context, start, end uint64) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		size, err := s.Size(ctx)
		if err != nil {
			yield(store.Entry{}, err)
			return
		}
		end = min(end, size)
		for i := start; i < end; {
			chunk, err := retry(ctx, func() ([]store.Entry, error) { return s.readEntries(ctx, i, min(end, i+readChunk)) })
			if err != nil {
				yield(store.Entry{}, err)
				return
			}
			for _, e := range chunk {
				if err := s.begin(ctx); err != nil {
					yield(store.Entry{}, err)
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			i += uint64(len(chunk))
		}
	}
}

// readEntries reads entries from from on, up to to (all of which the head row says exist):
// at least one, and no more than Store.readBytes of them unless the first alone is larger.
func (s *Store) readEntries(ctx context.Context, from, to uint64) ([]store.Entry, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.q.entries, int64(from), int64(to), s.readBytes)
	if err != nil {
		return nil, s.fail(ctx, "read entries", err)
	}
	out, err := scanEntries(rows, from, make([]store.Entry, 0, to-from))
	if err != nil && !errors.Is(err, store.ErrCorrupt) {
		return nil, s.fail(ctx, "read entries", err)
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pgstore: %w: entry %d is missing (the head row says the log holds at least %d)", store.ErrCorrupt, from, to)
	}
	return out, nil
}

// scanEntries appends to out the entries that rows of (idx, identity, conversation, leaf,
// payload) hold, which must follow from on without a gap (store.ErrCorrupt otherwise). It
// closes rows.
func scanEntries(rows pgx.Rows, from uint64, out []store.Entry) ([]store.Entry, error) {
	defer rows.Close()
	start := len(out)
	for rows.Next() {
		var idx int64
		var id, conv, leaf, payload []byte
		if err := rows.Scan(&idx, &id, &conv, &leaf, &payload); err != nil {
			return nil, err
		}
		want := from + uint64(len(out)-start)
		if uint64(idx) != want {
			return nil, fmt.Errorf("pgstore: %w: entry %d is missing (the next row is entry %d)", store.ErrCorrupt, want, idx)
		}
		e := store.Entry{Index: uint64(idx), Leaf: leaf, Payload: payload}
		var err error
		if e.Identity, err = parseDigest(id, "identity", idx); err != nil {
			return nil, fmt.Errorf("pgstore: %w", err)
		}
		if e.Conversation, err = parseDigest(conv, "conversation", idx); err != nil {
			return nil, fmt.Errorf("pgstore: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// entryOf returns the entry whose row holds stored hash k: the i with StoredHashCount(i) <= k <
// StoredHashCount(i+1).
func entryOf(k int64) uint64 {
	lo, hi := uint64(0), uint64(k) // StoredHashCount(k+1) > k, so i <= k
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if store.StoredHashCount(mid) <= k {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// ReadHashes implements store.Log.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]store.Hash, error) {
	size, err := s.Size(ctx)
	if err != nil {
		return nil, err
	}
	count := store.StoredHashCount(size)
	need := make([]int64, 0, len(indexes))
	seen := make(map[int64]bool, len(indexes))
	of := make([]uint64, len(indexes)) // the entry that holds each stored hash asked for
	for k, x := range indexes {
		if x < 0 || x >= count {
			return nil, fmt.Errorf("pgstore: %w: stored hash %d (the log of %d entries has %d)", store.ErrNotFound, x, size, count)
		}
		of[k] = entryOf(x)
		if i := int64(of[k]); !seen[i] {
			seen[i] = true
			need = append(need, i)
		}
	}
	got, err := retry(ctx, func() (map[int64][]byte, error) { return s.readHashRows(ctx, need) })
	if err != nil {
		return nil, err
	}
	out := make([]store.Hash, len(indexes))
	for k, x := range indexes {
		i := of[k]
		hs, ok := got[int64(i)]
		if !ok {
			return nil, fmt.Errorf("pgstore: %w: entry %d, which holds stored hash %d, is missing", store.ErrCorrupt, i, x)
		}
		off := 32 * (x - store.StoredHashCount(i))
		copy(out[k][:], hs[off:off+32])
	}
	return out, nil
}

// readHashRows reads the stored hashes of the entries need, by entry.
func (s *Store) readHashRows(ctx context.Context, need []int64) (map[int64][]byte, error) {
	rows, err := s.pool.Query(ctx, s.q.hashes, need)
	if err != nil {
		return nil, s.fail(ctx, "read stored hashes", err)
	}
	defer rows.Close()
	got := make(map[int64][]byte, len(need))
	for rows.Next() {
		var idx int64
		var hs []byte
		if err := rows.Scan(&idx, &hs); err != nil {
			return nil, s.fail(ctx, "read stored hashes", err)
		}
		if want := 32 * store.StoredHashesFor(uint64(idx)); int64(len(hs)) != want {
			return nil, fmt.Errorf("pgstore: %w: entry %d holds %d bytes of stored hashes, want %d", store.ErrCorrupt, idx, len(hs), want)
		}
		got[idx] = hs
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "read stored hashes", err)
	}
	return got, nil
}

// Lookup implements store.IdentityIndex, through the unique index on identities.
func (s *Store) Lookup(ctx context.Context, id store.Hash) (uint64, bool, error) {
	if err := s.begin(ctx); err != nil {
		return 0, false, err
	}
	if id == (store.Hash{}) {
		return 0, false, nil
	}
	var idx int64
	err := retryErr(ctx, func() error { return s.pool.QueryRow(ctx, s.q.lookup, id[:]).Scan(&idx) })
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.fail(ctx, "lookup", err)
	}
	return uint64(idx), true, nil
}

// LookupAll implements store.IdentityBatch: one query for all of ids.
func (s *Store) LookupAll(ctx context.Context, ids []store.Hash) (map[store.Hash]uint64, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	want := make([][]byte, 0, len(ids))
	for k := range ids {
		if ids[k] != (store.Hash{}) {
			want = append(want, ids[k][:])
		}
	}
	found := map[store.Hash]uint64{}
	if len(want) == 0 {
		return found, nil
	}
	err := retryErr(ctx, func() error {
		clear(found)
		rows, err := s.pool.Query(ctx, s.q.lookupAll, want)
		if err != nil {
			return err
		}
		var id []byte
		var idx int64
		_, err = pgx.ForEachRow(rows, []any{&id, &idx}, func() error {
			h, err := parseDigest(id, "identity", idx)
			if err != nil {
				return err
			}
			found[h] = uint64(idx)
			return nil
		})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			return nil, err
		}
		return nil, s.fail(ctx, "lookup", err)
	}
	return found, nil
}

// LastInConversation implements store.ConversationIndex, through the index on (conversation,
// idx).
func (s *Store) LastInConversation(ctx context.Context, conv store.Hash) (uint64, bool, error) {
	if err := s.begin(ctx); err != nil {
		return 0, false, err
	}
	if conv == (store.Hash{}) {
		return 0, false, nil
	}
	var idx *int64
	if err := retryErr(ctx, func() error { return s.pool.QueryRow(ctx, s.q.lastConv, conv[:]).Scan(&idx) }); err != nil {
		return 0, false, s.fail(ctx, "last in conversation", err)
	}
	if idx == nil {
		return 0, false, nil
	}
	return uint64(*idx), true, nil
}
