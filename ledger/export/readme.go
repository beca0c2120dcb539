package export

// readme is README.txt: how to check a bundle with no commseal code.
const readme = `commseal export bundle (format commseal-export/v1)

Everything here can be checked with the ledger's verifier key (a golang.org/x/mod/sumdb/note
verifier key, "origin+hash+base64", published by the ledger's operator and also written in
manifest.json) and standard tools: SHA-256, base64, and the C2SP formats named below.

1. The manifest. manifest.json.sig is a signed note (c2sp.org/signed-note) whose text is the
   lowercase hex SHA-256 of manifest.json followed by a newline. Check its Ed25519 signature
   with the verifier key, then check that sha256sum of manifest.json is that text.

2. The files. manifest.json lists every other file ("files": path, size, sha256 in lowercase
   hex). The bundle must hold exactly these files plus manifest.json and manifest.json.sig:
   none missing, none extra, each with the listed size and SHA-256.

3. The checkpoint. evidence/checkpoint is a signed C2SP checkpoint (c2sp.org/tlog-checkpoint):
   origin, tree size, base64 root hash of an RFC 6962 Merkle tree, signed by the verifier key.
   Its origin and size are manifest.json's "origin" and "tree_size".

3b. The newest checkpoint. evidence/latest-checkpoint is the newest checkpoint the ledger had
   signed when the bundle was written, signed by the same key and with the same origin.
   evidence/consistency is the RFC 6962 consistency proof (RFC 9162 section 2.1.4) that the
   tree of evidence/checkpoint is a prefix of the tree of evidence/latest-checkpoint: a first
   line "<old size> <new size>" (the two checkpoints' sizes, decimal, one space), then one
   base64 SHA-256 hash per line. When both sizes are equal the file is the first line alone and
   both checkpoints have the same root hash. golang.org/x/mod/sumdb/tlog.CheckTree checks it.

4. The proofs. evidence/proofs/<i>.tlog-proof is a C2SP tlog-proof@v1 (c2sp.org/tlog-proof)
   for entry i: its index is i, its checkpoint is evidence/checkpoint byte for byte, and its
   extra data is the entry's leaf bytes. The leaf hash is SHA-256(0x00 || leaf); the RFC 6962
   inclusion proof in the file takes it to the checkpoint's root at index i.

5. The openings. Each line of evidence/openings.jsonl is
   {"index":i,"salt":"<base64, 32 bytes>","plaintext":"<base64>"}. The leaf of entry i (the
   proof's extra data) is a fixed binary record: byte 0 version (1), byte 1 kind, bytes 2-9
   the index (big-endian), and at bytes 122-153 the 32-byte content commitment. Check that
     SHA-256("commseal/commitment/v1" || 0x00 || salt || uint64 big-endian(len(plaintext)) || plaintext)
   equals it. The plaintext is the entry's canonical JSON as sealed.

6. The messages. Each line of messages.jsonl is one exported entry in readable form (index,
   kind, source id, conversation id and title, sender id and name, sent time in UTC, text,
   attachments with their name, SHA-256 and path). Every field must be what the opened
   plaintext says; "path" is the only field the plaintext does not hold. An
   entry whose data key was destroyed under retention is listed with "shredded":true: its
   leaf and proof are here, its content is not, and it has no opening. Its "shred_entry" is
   the index of the shred entry retention sealed when it destroyed the key, exported too
   (kind "shred", with its proof and opening): its "key_id" is the shredded entry's leaf key
   id, and it says by which rule, on whose authority and when.

7. The attachments. attachments/<h> is the content of an attachment a message names, where <h>
   is the lowercase hex SHA-256 of the content: check that sha256sum of the file is its name and
   the "sha256" of every messages.jsonl attachment whose "path" is that file, and that some
   message names every file there. An attachment with no "path" was never fetched from the
   platform, or its content was destroyed under retention.

8. The renderings, if the request asked for them. rsmf/*.rsmf are RSMF 2.0 files (Relativity
   Short Message Format: an RFC 5322 message whose one attachment rsmf.zip holds
   rsmf_manifest.json and the attachments it names), one per conversation and UTC day, at most
   10,000 events each; header X-Commseal-Ledger names the ledger's origin and the tree size of
   evidence/checkpoint. eml/*.eml are RFC 5322 messages, one per conversation and UTC day, with
   a text/plain and a text/html transcript and the attachments as parts. Both are listed in
   manifest.json (step 2 covers them) and show the same messages as messages.jsonl; the
   evidence proves messages.jsonl, the renderings are for reading. An entry whose content was
   destroyed appears as a notice without content.

9. The anchors, if the ledger's checkpoints are anchored outside the firm. evidence/anchors/
   holds its latest anchored checkpoint at export time: anchors.jsonl lists each anchor (the
   anchor entry's ledger index, "rfc3161" or "cosignature", the checkpoint's tree size, the
   authority, the time, the file). <size>.checkpoint is that checkpoint byte for byte; each
   <entry>.tsr is an RFC 3161 time-stamp token whose message imprint is the SHA-256 of that
   file, checked with
     openssl ts -verify -data evidence/anchors/<size>.checkpoint -in evidence/anchors/<entry>.tsr
       -token_in -CAfile <the TSA's root certificate> -untrusted <the TSA's certificate>
   and each <entry>.cosigned is the checkpoint with a witness's cosignature line
   (c2sp.org/tlog-cosignature), checked with the witness's verifier key. The checkpoint must
   be signed by the ledger's key and be evidence/checkpoint itself, or a prefix of
   evidence/latest-checkpoint as <size>.consistency proves (the format of step 3b).

The export itself was recorded in the ledger as access entries (who, why) before this bundle
was written; manifest.json's "request" repeats who, why, when, how many entries and the query.
`
