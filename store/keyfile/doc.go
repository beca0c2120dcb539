// Package keyfile is a store.KeyVault kept in one append-only file: every change to the vault
// is a checksummed record appended to it, Open reads the file once from start to end and keeps
// an index of the keys in memory (wrapped keys only: the vault never sees a key in plain), and
// a destroyed or superseded wrapping is overwritten with zeros in place, where it was written.
//
// # When to choose it over keydir
//
// store/keydir keeps two small files per key. A process that touches every key (reopening or
// rebuilding a search index, which decrypts one document per message under its scope's key)
// reads them all: with a cold page cache that is two random small-file reads per key, minutes
// for a firm with hundreds of thousands of key scopes. keyfile loads every key with one
// sequential read, then serves Key and Keys from memory, and its writers share syncs (one
// fdatasync per batch of concurrent operations instead of several per key). The price is
// memory: the index holds every key's id, wrapped bytes and metadata, about 350 bytes per key
// of the ledger's shape (a 73-byte wrapping, 90 bytes of metadata), so 110 MB for 310,000
// keys; and Open's time grows with the file (compact it, below). Choose keydir when the vault
// must be read by tools that only list a directory, or when the keys do not fit comfortably in
// memory; choose keyfile for everything else.
//
// Measured on a shared 2-core machine (go test ./store/keyfile -run XXX -bench
// 'OpenAndReadEveryKey|PutKey', 100,000 keys): opening and reading every key took 1 to 1.6 s
// against keydir's 84 to 97 s with the page cache dropped (50 to 95 times faster), 1 s against
// 29 to 41 s warm (30 to 40 times); PutKey stored 4 to 5 times as many keys per second from
// one goroutine, and 24 to 90 times as many from 128.
//
// To move a keydir vault into a keyfile vault, Import every key its Keys yields (a destroyed
// key becomes a tombstone here; an id already imported gives store.ErrDuplicate, so an
// interrupted move can be run again), then scrub the keydir directory's files
// (durable.Scrub), since the move made a second copy of every live wrapped key.
//
// # Format
//
// All integers are little-endian. CRC-32C is the Castagnoli CRC (hash/crc32). The file begins
// with a 16-byte header: the magic "CSEALKEY", the version (uint32, 1) and the CRC-32C of the
// 12 bytes before it. Records follow, back to back. A record is an 8-byte head, then its body:
//
//	length uint32   body length (type byte to CRC, inclusive)
//	hcrc   uint32   CRC-32C of length, XOR 0x4b455953 (so a zero-filled head never checks)
//	type   byte
//	...             fields of the type; strings are uint16 length + bytes, metadata is
//	                uint32 length + bytes (empty or JSON)
//	crc    uint32   CRC-32C of the body from the type byte up to the wrapped region
//	                (up to the crc itself in a record without one)
//
// The types:
//
//	'P' put       id, kek, meta, wrapped length uint32, wrapped region
//	'M' set-meta  id, meta
//	'R' rewrap    id, kek, wrapped length uint32, wrapped region
//	'D' destroy   id, kek, meta: the tombstone, holding what the key keeps once destroyed
//	'C' commit    start uint64 (offset of the first record of the batch), count uint32
//
// The wrapped region is the last field before the crc: a check (CRC-32C of the wrapped bytes,
// XOR 0x57524150) and the wrapped bytes. The record's crc leaves the region out, so that
// erasing it (writing zeros over check and bytes, in place, same length) changes no check: the
// record still parses and its other fields still check. A region that is all zeros is erased;
// one whose check holds is intact; anything else is damaged. The wrapped length stays, so an
// erased record says how long the key was and nothing else of it.
//
// Operations are written in batches: a batch is the records of the operations it carries,
// followed by one commit record naming the offset of its first record and how many there are.
// A batch counts only once its commit record is in the file.
//
// # Durability and concurrency
//
// Every operation returns after the records it wrote are synced (durable.Sync: fdatasync,
// F_FULLFSYNC on macOS). One writer goroutine owns the file: it takes every operation waiting
// when it is free, decides each against the state the batch leaves so far (so of two racing
// PutKey of one id, exactly one succeeds), appends the batch with one write, syncs once, then
// does the erasures the batch calls for and syncs again, and only then publishes the new state
// to readers and answers. Operations that arrive while it syncs form the next batch: a sync is
// shared by every caller waiting (group commit). Key and Keys read the in-memory index under a
// read lock and never wait for the disk. A caller whose context is done while its operation
// waits for the writer gets the context's error and its operation is dropped, changing
// nothing; once the writer has taken an operation, the caller gets its outcome (one batch,
// one or two syncs, later).
//
// A failed write or sync makes the vault refuse every later change (on Linux a writeback error
// is reported to one sync only, so no later sync can vouch for what was written): reopen it.
//
// # Destruction
//
// DestroyKey appends a tombstone ('D': id, KEK name, metadata) and syncs; then it overwrites in
// place, with zeros of the same length, every wrapped region of the key the file still holds
// (the put record's, and the rewrap record's that is current: earlier ones were erased when
// they were superseded), and syncs again. Rewrap appends the new wrapping, syncs, then erases
// the previous region the same way. The index in memory drops (and zeroes) superseded and
// destroyed wrapped bytes when the batch is published.
//
// The tombstone comes first, the zeros after, so that every state a crash can leave is one Open
// can tell apart: a wrapped region that is not intact is either superseded or destroyed (a later
// record of the key says so: Open erases it) or the current wrapping of a live key (damage:
// store.ErrCorrupt). Zeros written before the tombstone would leave, after a crash during
// the overwrite, a current wrapping half zeros and half key with no record saying why, which
// Open could not tell from a damaged disk.
//
// On a file system that writes in place (ext4, XFS without reflinks) the zeros replace the
// wrapped bytes on the disk itself; the package's tests check a raw ext4 image for them. On
// copy-on-write file systems (btrfs, ZFS, APFS), in snapshots and backups, and on drives that
// remap blocks, copies may survive: only retiring the KEK that wrapped them
// (seal.KEKRetirer) makes those useless.
//
// # Crashes
//
// Open reads the records in order and applies a batch when it reaches its commit record. What
// follows the last whole batch is a batch that was never acknowledged (its sync had not
// returned): whole records without their commit, a record cut short, a head or body that does
// not check, sectors that never reached the disk (zeros). Open overwrites those bytes with
// zeros, cuts the file back to the end of the last whole batch, and says so in Recovery. It
// tells such a torn tail from damage to acknowledged data by what follows the damage: a valid
// commit record after it means acknowledged batches follow, and Open fails with
// store.ErrCorrupt naming the offset of the first bad record, changing nothing; the one
// exception is a commit record that ends the file and names the batch the damage is in, when
// an aligned 512-byte sector between them reads as zeros (a torn write of that last batch).
// Damage to the header, a commit record that names other records than those before it, or a
// record that contradicts the state (a second put of an id, a change after a tombstone), are
// store.ErrCorrupt too. Wrapped regions that an interrupted Rewrap or DestroyKey left intact
// are erased by Open. A current wrapping that is damaged or erased is store.ErrCorrupt.
//
// # Compaction
//
// The file grows with every operation: each SetMeta appends the key's metadata again, each
// Rewrap appends a wrapping and leaves the old record (erased) behind, each tombstone stays.
// Compact rewrites the live state (one put record per live key, one tombstone per destroyed
// key, one commit) into a new file that replaces the old one atomically (durable.WriteFile).
// Until the replacement, the old file has a second name (path + ".old"); after it, that file is
// overwritten with zeros in place, synced and removed, so the blocks it releases hold no key.
// A crash part way leaves a second name of the current file, or the replaced file, or a
// temporary file: Open removes the first and scrubs the others. Compaction writes each live
// wrapped key once more, into the new file, and scrubs the old copy: it is the one operation
// that copies wrapped bytes, and it never leaves the copy it replaces readable.
//
// Compaction is not needed for destruction (erasure is done in place at once); it bounds the
// file's size and Open's time. Run it when Stats shows the file much larger than its live
// part (FileBytes more than twice LiveBytes, say), typically after a KEK rotation (which
// rewraps every key), after retention has shredded many keys, or at startup; operations wait
// while it runs (it writes LiveBytes and overwrites the old file), reads do not.
package keyfile
