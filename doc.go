// Package commseal is a Go SDK that makes business chat admissible as evidence. It captures
// DingTalk messages (Stream mode through the official SDK, HTTP callbacks, file backfill), scans
// them against compliance lexicons, seals them into an append-only ledger that anyone holding its
// public key can verify (an RFC 6962 Merkle tree with C2SP signed checkpoints, per-conversation
// hash chains and salted commitments), stores them in pluggable backends, and proves any entry
// offline.
//
// This package holds only documentation; the SDK is in its subpackages:
//
//	capture            the normalized Message, the Source and Sink contracts, backfill import
//	capture/dingtalk   DingTalk capture: bot payloads, Stream source, HTTP callbacks, media
//	scan               compliance lexicons on an Aho-Corasick engine, CJK-aware
//	seal               leaf encoding, commitments, Merkle proofs, checkpoints: pure, no I/O
//	store              the storage contract; store/memstore, store/filestore, store/keydir;
//	                   store/storetest, the conformance suite for adapters
//	ledger             the writer: Append (group commit, dedup), reads, proofs, checkpoints,
//	                   encryption with audited access, retention and legal holds
//	verify             the auditor: checks a stored ledger and its proofs with only the
//	                   verifier key (imports seal and store, never the writer)
//
// The flow: a capture.Source hands each message to a capture.Sink, which is the ledger; the
// source acknowledges upstream only when Append has made the message durable, so a failure means
// redelivery, and redelivery means a duplicate that the ledger drops.
//
//	st, _ := filestore.Open(ctx, "/var/lib/commseal/hk-equities", nil)
//	skey, _, _ := seal.GenerateSigningKey("example.com/hk-equities")  // keep skey in your KMS
//	keys, _ := seal.ParseSigningKey(skey)
//	l, _ := ledger.Open(ctx, st, ledger.Options{Signing: keys})
//	rc, err := l.Append(ctx, msg)                 // durable when err == nil
//	...
//	l.Close()                                     // signs a final checkpoint
//	rep, err := verify.Ledger(ctx, st, keys.Verifier, verify.Options{})
//
// See README.md for the regulatory background and examples/ for runnable programs.
package commseal
