// Package tsa provides RFC 3161 time-stamps over checkpoints: a client that has time-stamping
// authorities (TSAs) stamp a signed checkpoint, verification of the tokens they return, and a
// check that anchored tokens keep time in order. Its subpackage tsatest is a local TSA for
// tests.
//
// A checkpoint proves what a ledger held; it cannot prove when, since the ledger signs it with
// its own clock. A token from a TSA the firm does not run attests that the checkpoint existed
// at the token's time; the ledger appends it as an anchor entry, and anyone can check it with
// `openssl ts -verify` as well as with Verify.
//
// # What is stamped
//
// The datum is the signed checkpoint note exactly as the ledger stores it (C2SP signed note:
// the checkpoint text, a blank line, the signature lines), byte for byte. The request's
// message imprint is its SHA-256; the request carries a random 159-bit nonce and certReq true
// (so the token carries the TSA's certificate), and the TSA's policy when one is configured.
// A third party holding the stored note as FILE and the token as TOKEN runs
//
//	openssl ts -verify -data FILE -in TOKEN -token_in -CAfile ROOTS.pem [-untrusted TSA.pem]
//
// and must see "Verification: OK". OpenSSL checks the TSA's chain at the current time; for a
// token whose TSA certificate has expired since, add -attime with the token's time in Unix
// seconds (Verify checks at the token's time by itself).
//
// # Checks
//
// Client.Stamp checks the reply as RFC 3161 2.4.2 asks: the status is granted, the token's
// imprint and nonce are the request's, its policy the configured one; then it verifies the
// token exactly as Verify does, so a token that reaches the ledger is one a verifier accepts.
// Verify needs only the token, the stored checkpoint and a pool of TSA roots: one signer, the
// SHA-256 imprint of the checkpoint, the signing certificate bound by ESSCertIDv2 (RFC 5816),
// that certificate's sole extended key usage timeStamping, critical (RFC 3161 2.3), its chain
// to a root valid at the token's time, and the CMS signature. Each failure wraps a sentinel:
// ErrMalformed, ErrImprint, ErrSignature, ErrUntrusted (and, for replies, ErrNonce, ErrPolicy,
// ErrRejected, ErrUnavailable), so callers can tell a tampered token from an untrusted TSA from
// a TSA that is down.
//
// A valid token can still be backdated: a TSA with a wrong clock, or a stolen key, signs any
// time it likes. CheckOrder compares each anchored token with those anchored before it for
// smaller checkpoints, which cannot honestly be later, and flags the ones that go back in time.
// Several independent TSAs make a single bad one visible the same way.
//
// # Availability
//
// Every request is bounded by Options.Timeout and by the caller's context: a TSA that is down,
// hangs, or answers 5xx gives an *Error wrapping ErrUnavailable, never a blocked caller.
// StampAll asks all TSAs at once and returns one Result each, so one TSA down costs only its
// own token. A stamp is never needed to append messages: anchoring runs beside the ledger, and
// a missed checkpoint is covered by the next one stamped (a later checkpoint is consistent with
// every earlier one).
//
// # Library choice
//
// Parsing and verification use github.com/notaryproject/tspclient-go v1.0.0 (Notary Project,
// CNCF; Apache-2.0; no dependencies of its own). It was chosen over
// github.com/digitorus/timestamp (at v0.0.0-20231217203849-220c5c2851b7, the last version that
// builds with Go 1.26) after reading and trying both:
//
//   - tspclient-go verifies the token's signature and its signer's chain against roots the
//     caller gives (it refuses a nil pool), with a chosen verification time, and enforces RFC
//     3161 2.3's sole critical timeStamping EKU. digitorus' Parse verifies the signature only
//     against whatever certificate the token itself carries (pkcs7 Verify with no roots), so
//     trust would be built by hand on digitorus/pkcs7, whose chain check defaults to any EKU.
//   - tspclient-go binds the signing certificate through the signingCertificateV2 attribute
//     (ESSCertIDv2 hash and issuer/serial); digitorus writes ESSCertIDv2 when signing but does
//     not check it when parsing, so a certificate swapped into a token goes unnoticed there.
//   - tspclient-go checks a reply against its request (status, imprint, nonce, policy, certReq);
//     digitorus leaves that to the caller.
//   - tspclient-go is a tagged v1.0.0 with no dependencies; digitorus is a pseudo-version
//     pinned below its Go 1.27 successors and brings a second module (digitorus/pkcs7).
//
// What it costs: tspclient-go has no signing side, so tsatest builds its SignedData with
// encoding/asn1 (digitorus could have built it); and it accepts only ESSCertIDv2, not the SHA-1
// ESSCertID of RFC 3161's first edition, so a TSA that still sends only SigningCertificate v1
// is refused with ErrSignature (modern TSAs send v2; the Notary Project dropped v1 on purpose).
// tspclient-go's own HTTP client is not used: this package posts the request itself so that a
// TSA that is down is told apart (ErrUnavailable) from one that answers wrongly.
//
// Revocation (CRL, OCSP) of TSA certificates is not checked; certificates are checked at the
// token's time, so a token stays verifiable after its TSA certificate expires.
package tsa
