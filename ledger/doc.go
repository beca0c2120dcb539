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
// salt and commitment, encryption, hashing the payload, looking for a durable duplicate)
// happens in the caller's goroutine. A single pipeline goroutine then takes every request that
// is waiting, deduplicates it against the entries in flight, assigns consecutive indices, links
// it into its conversation and extends the tree, and hands the batch to the store: this is
// commseal's one group-commit layer. While the store makes that batch durable, the pipeline
// sequences the next one in memory and hands it over the moment the first is durable, then
// answers the first batch's callers (Options.MaxInFlight batches may be with the store at once;
// one suits the file store, which syncs one at a time).
//
// A Ledger implements capture.Sink, capture.RecordSink and capture.BlobStore, so sources write
// into it directly. It deduplicates on the source identity (platform, tenant, message id): a
// message delivered again returns its original index with Duplicate set and writes nothing. A
// duplicate found through the store's index is confirmed against the leaf it points to, so an
// index that lies cannot make the ledger drop a message it never stored.
//
// When a batch fails, the pipeline answers it and every batch behind it with an error
// (ErrCommitAbandoned for those behind: their outcome is unknown to the caller, a retry is safe
// because of deduplication), and reloads its state from the store before it goes on.
//
// # Checkpoints
//
// After every CheckpointEvery entries, after CheckpointInterval when entries are uncovered, on
// SignCheckpoint and on Close, the ledger signs a C2SP checkpoint of its tree. It never signs
// two inconsistent checkpoints: on Open it checks that the stored tree reproduces the latest
// checkpoint's root and refuses a store that does not, and before each signature it verifies a
// consistency proof from the previous checkpoint.
//
// # Several writers
//
// With Options.Shared, several ledgers, usually in several processes, append to one store that
// orders them (store.SharedLog: PostgreSQL). Each still group-commits. A batch is built while
// the store's write lock is held, after the entries the others appended since (which the store
// reads with the lock) have extended this ledger's tree, conversation heads and deduplication:
// the log is one tree, with one chain per conversation and one entry per source identity,
// whichever writer took a message. A batch's identities are looked up at once, before the lock
// (store.IdentityBatch). Checkpoints are signed by the holder of the store's "checkpoint" lease
// (store.Leases), over the whole log; the others adopt the stored checkpoint once its signature,
// its root and its consistency with their own check out. Data keys live in the shared vault:
// a scope's key made by two writers at once is the first one's, metadata changes are atomic
// (store.MetaUpdater), and keys of past months, which another writer's retention may shred, are
// read from the vault rather than the cache.
//
// # Goroutines and locks
//
// A Ledger runs two goroutines (three with a store that is not a store.Pipeline, whose Appends
// run on one of their own): the pipeline owns the tree frontier, the conversation heads, the
// identities in flight and the batches in flight; the checkpointer signs. They share the durable
// size (atomic), the in-memory index (its own mutex) and the latest checkpoint (cpMu). A shared
// ledger's flights build on goroutines of their own, one at a time (MaxInFlight is 1, the build
// runs inside the store's lock), and own the sequencer while they do. Retention
// takes holds.runs then holds.mu (retention.go: one run at a time; a hold and a shred entry one
// at a time); the data key cache takes retireMu, then mu, then kekMu (encrypt.go). No lock is
// held across a store call that waits for a sync.
package ledger
