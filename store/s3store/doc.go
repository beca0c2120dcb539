// Package s3store keeps a ledger's attachments (store.Blobs) in an S3 bucket with Object Lock,
// so that the storage itself refuses to delete or overwrite them before their retention ends:
// the write-once, read-many storage that record-keeping rules (SEC 17a-4(f), the SFC's
// "could not be inappropriately modified or erased") ask for, on infrastructure a firm already
// runs (AWS S3, or any server that implements Object Lock, such as versitygw or MinIO).
//
// The log, checkpoints and keys stay in another store (store/filestore, a PostgreSQL store);
// a ledger is given the blobs separately, through ledger.Options.Blobs.
//
// # Layout
//
// One object per blob, named Options.Prefix followed by the lower-case hex SHA-256 of its
// content, holding exactly that content. An encrypted ledger stores only ciphertext here,
// under a data key of the blob's own (see package ledger): the bucket never holds plaintext.
//
// # Locks
//
// Every object is written with Object Lock in COMPLIANCE mode and a retain-until date of now
// plus Options.Retention (DefaultRetention, seven years, if zero). Until that date nobody, not
// the account's root, can delete that version of the object or shorten its date; the
// server refuses (ErrLocked). The Locker capability lengthens the date of a blob (when its
// scope's retention is known to be longer) and sets or clears its legal hold (while a scope is
// held); a legal hold keeps an object whatever its date says.
//
// A ledger shreds an attachment by destroying its data key, not its object: the ciphertext
// stays locked in the bucket until its date, and nobody can read it any more. Locks and
// crypto-shredding do not contend.
//
// # Writes, reads and failures
//
// WriteBlob sends one PUT that the server checks against the blob's SHA-256
// (x-amz-checksum-sha256) and that creates the object only if it does not exist (If-None-Match),
// so writing the same content again stores nothing more. S3 makes an object visible only once
// the whole PUT is stored, so a blob is whole or absent, whatever fails when. ReadBlob checks
// the content against its hash on every read.
//
// When WriteBlob returns nil, the blob is as durable as the server makes an acknowledged PUT:
// AWS S3 stores it across several devices and zones before it answers; versitygw's posix
// backend (v1.8.0) writes the file without fsync, so an acknowledged blob survives a crash of
// versitygw but not necessarily of its machine.
//
// An endpoint that cannot be reached, or that answers with a server error after the client's
// retries, gives ErrUnavailable: the call can be made again later, and nothing already stored is
// affected. Retries and timeouts are the s3.Client's (its RetryMaxAttempts, its HTTP client).
//
// A DeleteObject without a version id is not refused by Object Lock: it puts a delete marker
// in front of the object, which stays. ReadBlob reads through such a marker, from the newest
// version.
//
// # Servers
//
// The tests run against versitygw v1.8.0 (posix backend with a versioning directory), started
// by package s3test. Known behaviour of that server: a legal hold on an object whose retention
// date has passed does not stop a DeleteObject of that version (real S3 refuses it), so a
// ledger should extend the retention of held blobs rather than rely on the hold alone there.
package s3store
