// Package seal holds the cryptographic formats of a commseal ledger: the leaf encoding, source
// identity and conversation digests, salted content commitments, the RFC 6962 Merkle tree with
// its stored hashes, signed checkpoints and offline proofs. It is pure: no I/O, no storage, no
// knowledge of chat platforms. Storage reaches it through a tlog.HashReader.
//
// # Leaf
//
// Every ledger entry is one leaf, a fixed binary record (version 1):
//
//	offset size field
//	0      1    version (1)
//	1      1    kind (message, context, media, capture error, annotation, redaction, shred, access, anchor, hold)
//	2      8    index, big-endian: the entry's position in the log
//	10     8    capture time, Unix nanoseconds, big-endian two's complement
//	18     32   source identity digest (zero when the entry has none)
//	50     32   conversation digest (zero when none)
//	82     8    per-conversation sequence, from 1 (0 when no conversation)
//	90     32   leaf hash of the previous entry of the same conversation (zero for the first)
//	122    32   content commitment H(tag || salt32 || len64 || plaintext)
//	154    32   SHA-256 of the stored payload bytes
//	186    1    key id length k (0: the payload is not encrypted)
//	187    k    key id
//
// The Merkle tree hashes each leaf as SHA-256(0x00 || leaf) and each node as
// SHA-256(0x01 || left || right) (RFC 6962 / RFC 9162), with the stored-hash layout of
// golang.org/x/mod/sumdb/tlog. The index inside the leaf makes reordering evident on its own;
// the per-conversation sequence and back-link make a missing message of a conversation evident
// even to someone who holds only that conversation's entries.
//
// # Commitments and payloads
//
// The payload stored beside a leaf is an envelope: version byte 1, a fresh 32-byte salt, then
// the canonical plaintext. Encrypted entries store the envelope's ciphertext instead, so the
// salt is destroyed with the key. The leaf commits to the plaintext with
// SHA-256("commseal/commitment/v1\x00" || salt || uint64be(len(plaintext)) || plaintext): a proof
// of inclusion stays valid after the content is shredded, and a short message ("ok") cannot be
// brute-forced from its commitment once the salt is gone.
//
// # Checkpoints and proofs
//
// A checkpoint is a C2SP tlog-checkpoint (origin line, decimal tree size, base64 root hash,
// optional extension lines) in a C2SP signed note with an Ed25519 key
// (golang.org/x/mod/sumdb/note); the key name is the origin. An offline proof for one entry is a
// C2SP tlog-proof@v1 whose extra data is the exact leaf bytes, so a verifier recomputes the leaf
// hash itself.
package seal
