// Package filestore is the embedded default store.Store: a directory that one ledger owns,
// holding append-only segment files of checksummed records, with group commit and crash
// recovery.
//
// # Durability
//
// When Append returns nil, or Submit's channel receives nil, the batch has been written and
// fdatasync'd (F_FULLFSYNC on macOS): it survives the crash of the process and of the machine.
// The store does not group batches itself: its caller does (the ledger gathers every request
// waiting into one batch). Submit writes a batch at once, with one write, and a single syncer
// makes the written batches durable one sync at a time: a sync covers every batch written before
// it began, so the batches written while a sync runs share the next one. A batch is acknowledged
// only by a sync that began after its write returned. So a crash may leave written but unsynced
// batches after the last synced one; recovery treats them as a torn tail (below). The active
// segment is filled with written zeros a megabyte ahead of the commits, so that a sync
// overwrites blocks that are already allocated and sized and needs no journal commit. A batch
// is atomic: its entry frames count only once the commit frame that follows them is on disk, so
// after a crash a batch is either entirely present or entirely absent. The creation of a
// segment is followed by a sync of the directory. Checkpoints are synced before PutCheckpoint
// returns. Blobs are written to a temporary file, synced, renamed to their hash, and the
// directory synced. Every file is created with mode 0600 and every directory 0700; a closed
// segment is made read-only (0400).
//
// A sync that fails fails every batch not yet acknowledged (on Linux a writeback error is
// reported to one sync of the file only, so no later sync can vouch for those batches), and the
// next Submit first cuts the segment back to the end of the last acknowledged batch.
//
// # What happens on a crash
//
// A crash can leave, at the end of the newest segment, part of a group commit that was never
// acknowledged: an incomplete frame, entry frames without their commit frame, zero-filled or
// garbage bytes. Open cuts such a tail back to the end of the last commit frame, reports it in
// Recovery and to Options.Logger, and never cuts anything before that point. Since the space
// after the last commit is preallocated (zeros), an unsynced write that reached the disk only in
// part shows as 512-byte sectors that read as zeros, possibly followed by sectors that did land,
// commit frames included: a damaged frame that touches such a sector (all zero from the frame on)
// is the start of a torn tail, whatever follows it. Open tells other damage to acknowledged data
// from a torn tail and refuses it with store.ErrCorrupt: a damaged frame followed by any valid
// commit frame, a complete commit frame whose checksum fails without the all-zero sector of a
// torn write, damage anywhere in a segment that has a successor, in a frame that an index
// snapshot covers (found when it is read: every read checks its frame, and that the index
// record agrees with it), and damage to any entry that the latest checkpoint covers: a
// checkpoint is stored only after the entries it covers were durable, so recovery never cuts
// below it, whatever the damage looks like. A refused Open changes nothing and names the file,
// the offset and the entry.
// Open never re-hashes the log: the identity and conversation indexes are rebuilt by one
// sequential read of the index file, plus the frames written after the last index snapshot.
//
// A writer holds an exclusive flock on the LOCK file; a second writer gets ErrLocked. A store
// opened with Options.ReadOnly takes no lock and writes nothing, so it can verify a ledger while
// its writer runs; it sees the batches committed when it opened.
//
// # On-disk format
//
// All integers are little-endian. CRC-32C is the Castagnoli CRC (hash/crc32).
//
//	LOCK                      empty; flock'd by the writer
//	state                     where the index snapshot ends (replaced atomically: temp, sync, rename, dir sync)
//	00000000000000000001.seg  segments, numbered from 1; all but the newest are chmod 0444
//	index                     88-byte index records, one per entry, up to the snapshot
//	hashes                    32-byte stored hashes (golang.org/x/mod/sumdb/tlog layout), up to the snapshot
//	checkpoints               checkpoint frames
//	owner                     the owner a ledger claimed (store.Owner), as text: its key's name and hash (written once, atomically)
//	blobs/ab/abcd…            blob content, named by the hex SHA-256 of the content
//
// A segment begins with a 32-byte header: the magic "CSEALSG1", the segment number (uint64), the
// index of its first entry (uint64), 4 reserved bytes and the CRC-32C of the preceding 28
// bytes. Frames follow, back to back. A frame is a 12-byte header, then its body:
//
//	length uint32   body length, 1 to 2^30
//	crc    uint32   CRC-32C of the body
//	hcrc   uint32   CRC-32C of length and crc, XOR 0x5345414c (so a zero-filled header never checks)
//
// The first body byte is the frame type:
//
//	'E' entry       index uint64, identity [32], conversation [32], leaf length uint32, leaf, payload
//	'C' commit      first index uint64, count uint32, the batch's stored hashes ([32] each)
//	'K' checkpoint  tree size uint64, signed note (in the checkpoints file)
//
// A batch of n entries is n entry frames followed by one commit frame that names them and
// carries the stored hashes they add. An index record is: segment number uint32, frame length
// uint32, frame offset uint64, identity [32], conversation [32], CRC-32C of the preceding 80
// bytes, 4 reserved bytes. The 48-byte state file is the magic "CSEALST1", the number of index
// records and of stored hashes that are durable (uint64 each), the segment number and offset at
// which the frames of later entries begin (uint64 each), 4 reserved bytes and the CRC-32C of the
// preceding 44 bytes.
//
// The index and hashes files are a snapshot of what the segments say, written in the
// background every Options.FlushEvery entries and at Close: records are written and synced, then
// the state file is replaced. Beyond the snapshot the segments are the truth; Open cuts the
// index and hashes files back to the snapshot and rebuilds the rest from the segments' frames.
//
// # Memory
//
// The identity index keeps 8 bytes of each identity digest and the entry index (the full digest
// is in the index file, read to confirm a match); the conversation index keeps the last entry
// of each conversation. Entries and stored hashes stay on disk, except those appended since the
// last snapshot.
package filestore
