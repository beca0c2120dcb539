// Package witness is the C2SP tlog-witness protocol (https://c2sp.org/tlog-witness): a witness
// server and the client a log uses.
//
// A witness keeps, for each log it knows (an origin and the log's verifier keys), the latest
// checkpoint it cosigned. A log submits each new checkpoint with a consistency proof from that
// size; the witness checks the log's signature and the proof, records the new checkpoint and
// returns its tlog-cosignature/v1 (package seal). A checkpoint cosigned by the log's witnesses
// shows every holder of it the same history: a log that forks, or rolls back, can no longer
// get it cosigned by a witness that saw the other branch. A firm's compliance officer, its
// auditor or a partner firm runs a witness (examples/witness) so that the ledger's operator
// alone cannot rewrite the record unseen.
//
// # Server
//
// Witness.ServeHTTP serves
//
//	POST /add-checkpoint             the protocol's only write call
//	GET  /<sha256(origin) hex>/checkpoint  the latest cosigned checkpoint of a log (monitoring)
//
// and answers add-checkpoint exactly as the spec says: 200 with the cosignature lines; 400 for
// a malformed request or an old size above the checkpoint's; 403 when no trusted key of the
// origin signed the checkpoint (or its signature fails); 404 for an unknown origin; 409 with
// the size the witness knows (text/x.tlog.size) when the old size is not that size; 422 when
// the consistency proof does not verify, a proof is sent from size zero, a checkpoint repeats
// the known size with another root, or an empty tree has a root other than the empty hash.
// Witness.AddCheckpoint is the same check without HTTP, with the same errors.
//
// # State and what a crash does
//
// A Store keeps the latest cosigned checkpoint per origin, with compare-and-swap semantics.
// The witness checks and replaces a log's state under that log's lock, and the store's swap
// fails if the state changed since it was read, so two requests racing never roll the state
// back. FileStore keeps one file per log in its directory, named by the hex SHA-256 of the
// origin and holding the cosigned checkpoint note (the log's verified signatures and the
// witness's cosignature); each is replaced atomically and durably (internal/durable) before the
// cosignature is returned, so a crash leaves the old checkpoint or the new one, never none.
// A missing file is a log never cosigned; a file that does not parse is an error, never taken
// for a missing one (that would let a rolled-back log through). The directory is locked by one
// process at a time (a LOCK file).
//
// # Client
//
// Client.AddCheckpoint submits a checkpoint and returns the witness's cosignatures, verified
// with its key; a 409 comes back as a *ConflictError naming the witness's size, from which the
// log proves consistency and retries (Client.Cosign does both). seal.AddCosignatures attaches
// the cosignatures to the log's checkpoint, and seal.WitnessPolicy checks "log key plus k of n
// witnesses" over the result.
//
// Only the Ed25519 cosignature type is made (tlog-cosignature/v1); the spec's SHOULD for
// ML-DSA-44 cosignatures and the optional sign-subtree call are not implemented.
package witness
