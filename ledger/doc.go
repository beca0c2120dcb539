// Package ledger is commseal's append-only evidence ledger: the writer. It composes seal
// (formats and proofs) with a store.Store (durability): Append seals a captured message into a
// Merkle-tree log and returns once the entry is durable; checkpoints are signed on a policy;
// decrypting reads go through an Accessor that seals who read what and why before returning
// anything; retention destroys the keys of expired scopes and legal holds stop it.
//
// What an auditor needs (verifying a ledger, reading proofs) is in package verify, which does
// not depend on this one.
//
// The package's files each do one job: ledger.go (Open, Close, options), append.go (the
// entries a ledger takes), pipeline.go (group commit), index.go (deduplication and conversation
// heads), checkpoint.go (signing), read.go (Get, proofs), encrypt.go (data keys), access.go
// (audited reads), retention.go (policies, holds, shredding).
//
// # Appending
//
// Many goroutines may call Append at once. Work that does not need the order (encoding, the
// salt and commitment, encryption, hashing the payload) happens in the caller's goroutine. A
// single sequencer then takes every request that is waiting, deduplicates it, assigns
// consecutive indices, links it into its conversation and extends the tree, and hands the batch
// to the store: this is commseal's one group-commit layer. While the store makes that batch
// durable, the sequencer forms the next one; up to Options.MaxInFlight batches are in flight at
// once when the store implements store.Pipeline (the file store syncs them in parallel), one at
// a time otherwise. A completer answers the callers of each batch, in order, once it is durable.
//
// A Ledger implements capture.Sink, capture.RecordSink and capture.BlobStore, so sources write
// into it directly. It deduplicates on the source identity (platform, tenant, message id): a
// message delivered again returns its original index with Duplicate set and writes nothing. A
// duplicate found through the store's index is confirmed against the leaf it points to, so an
// index that lies cannot make the ledger drop a message it never stored.
//
// When a batch fails, the completer answers it and every batch in flight behind it with an
// error (ErrCommitAbandoned for those behind: their outcome is unknown to the caller, a retry is
// safe because of deduplication), and the sequencer reloads its state from the store before it
// goes on.
//
// # Checkpoints
//
// After every CheckpointEvery entries, after CheckpointInterval when entries are uncovered, on
// SignCheckpoint and on Close, the ledger signs a C2SP checkpoint of its tree. It never signs
// two inconsistent checkpoints: on Open it checks that the stored tree reproduces the latest
// checkpoint's root and refuses a store that does not, and before each signature it verifies a
// consistency proof from the previous checkpoint.
//
// # Goroutines and locks
//
// A Ledger runs two goroutines: the sequencer owns the tree frontier, the conversation heads and
// the identities in flight; the completer owns the checkpoint state. They share the durable size
// (atomic) and the in-memory index (its own mutex). cpMu guards the latest checkpoint for
// readers; the data key cache has its own locks (encrypt.go). No lock is held across a store
// call that waits for a sync.
package ledger
