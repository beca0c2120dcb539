// Package pgstore is a store.Store on PostgreSQL (driver github.com/jackc/pgx/v5): the log of
// entries with the Merkle tree's stored hashes, signed checkpoints, blobs and the key vault of
// an encrypted ledger, kept in tables of one schema. It implements every optional interface the
// file store does (store.IdentityIndex, store.ConversationIndex, store.Blobs, store.Pipeline,
// store.ReadOnlyReporter) and store.KeyVault, so an encrypted ledger can keep its wrapped data
// keys beside its entries. Several ledgers share a database under different schemas
// (Options.Schema).
//
// # Durability
//
// When Append returns nil, or Submit's channel receives nil, the batch's transaction has
// committed with synchronous_commit on (set on every connection the store opens, whatever the
// server's default), so its WAL record is flushed to disk: it survives the crash of PostgreSQL
// and of its machine, provided the server runs with fsync on (Open logs a warning through
// Options.Logger when the server reports fsync or synchronous_commit off). A batch is one
// transaction: after a crash it is entirely present or entirely absent. Checkpoints, blobs and
// every change to the key vault are committed before their call returns.
//
// Once a batch is sent, the caller's context no longer interrupts it (a write cut off by the
// client would leave its outcome unknown). If the connection breaks while the batch is in
// flight, the store reads the batch's last entry back on a fresh connection and reports nil if
// it is there, exactly as appended, and an error otherwise (ErrCommitUnknown when even that
// read fails). A connection that broke while idle in the pool (a server restart) is replaced
// without the caller seeing it: a call that failed before anything reached the server is
// retried on another connection.
//
// # Order
//
// Every batch moves the one row of the head table, which holds the log's size, in the same
// transaction that inserts its entries, and the row lock that UPDATE takes is held until the
// transaction commits: batches are serialized by PostgreSQL itself, whichever process or
// connection writes them. A batch of up to 32 MiB is one statement, so one round trip and its
// own transaction:
//
//	WITH h AS (UPDATE head SET size = size + n WHERE size = first RETURNING size)
//	INSERT INTO entries SELECT * FROM unnest(...) WHERE EXISTS (SELECT 1 FROM h)
//
// A second writer's UPDATE waits for the first to commit, then sees the new size; if the
// batch's first index is no longer the size, nothing is inserted and the batch is refused with
// store.ErrOutOfOrder. A larger batch is a transaction that takes the same lock (UPDATE ...
// RETURNING the old size), checks it, and streams the entries with COPY. Readers
// never take the lock; each statement sees committed batches only, so a reader never sees part
// of a batch. Within one Store, batches go through a single goroutine in submission order
// (store.Pipeline): the ledger seals batch k+1 while batch k commits.
//
// Identities are unique through a unique index: a batch that repeats a stored identity fails
// with store.ErrDuplicate and writes nothing.
//
// # Schema
//
// The tables live in Options.Schema (default "commseal"), created by versioned migrations. Each
// migration runs in its own transaction under an advisory lock on the schema name, so several
// processes opening one ledger at once migrate it once; the table schema_version has a row per
// applied migration. Opening a schema whose version is newer than this code knows fails with
// ErrSchemaTooNew and changes nothing. Version 1 made these, and version 2 the owner table:
//
//	schema_version (version int PK, description text, applied_at timestamptz)
//	head           (one bool PK, always true; size bigint): the number of entries, locked by each batch
//	entries        (idx bigint PK, identity bytea UNIQUE, conversation bytea, leaf bytea,
//	                payload bytea, hashes bytea)
//	checkpoints    (size bigint PK, note bytea)
//	blobs          (sum bytea PK, data bytea)
//	vault_keys     (id bytea PK, kek bytea, record bigint, meta bytea, destroyed bool)
//	vault_records  (id bigint PK, key_id bytea, wrapped bytea)
//	owner          (one bool PK, always true; owner text): the ledger that claimed the log (store.Owner)
//
// An entry row holds the stored hashes the entry adds (store.StoredHashesFor, 32 bytes each,
// in order), so stored hash k lives in the row of the entry i with StoredHashCount(i) <= k <
// StoredHashCount(i+1). A zero identity or conversation is NULL. Entries are indexed by
// (conversation, idx) for store.ConversationIndex. Reads check what they get: a gap in the
// entries, a digest that is not 32 bytes, a row whose stored hashes have the wrong length, or a
// blob whose content does not match its address is store.ErrCorrupt, and so is a head row that
// disagrees with the entries when the store is opened.
//
// The store does not trust the database for integrity: a row changed behind the ledger's back
// is caught by the ledger's verifier (package verify), which recomputes every hash.
//
// # The key vault
//
// Wrapped bytes are written once, into a row of vault_records; metadata and the KEK name live in
// vault_keys, so SetMeta never copies them. Rewrap inserts the new record, points the key at it
// and deletes the previous record, in one transaction; DestroyKey deletes every record of the
// key and leaves the vault_keys row as the tombstone. No row reachable through SQL holds a
// superseded or destroyed key afterwards. PostgreSQL never overwrites a row in place, though:
// a deleted row version stays in the table's pages until VACUUM reclaims the space (and its
// bytes may remain in the page after that), and in the WAL, in WAL archives, base backups and
// replicas. On PostgreSQL the vault is therefore like a copy-on-write file system (see the
// README's section on crypto-shredding): destruction is made final by retiring the KEK that
// wrapped the key (seal.KEKRetirer), which a KMS or HSM keyring does.
//
// # Limits
//
// An entry's leaf and payload together, and a blob, are limited to MaxValueSize bytes
// (store.ErrInvalid beyond), below PostgreSQL's 1 GB limit for a bytea value.
//
// # Not yet
//
// Several processes can append to one ledger safely (the head row serializes them), but the
// ledger above does not yet coordinate them: each process keeps its own view of the tree and
// signs its own checkpoints. A lease on the ledger and a lease for checkpoint signing, so that
// only one process signs, are the next step.
package pgstore
