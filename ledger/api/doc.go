// Package api is the ledger's read side over HTTP: the http.Handler through which a process
// that does not own a ledger (a compliance officer's tool, an auditor, the console) queries,
// reads, exports and checks it while the owner keeps writing. One process owns a ledger; the
// others ask it.
//
// # Who may do what
//
// Every request is authenticated by an Authenticator: Tokens (bearer tokens listed by their
// SHA-256 in a file, each with a name and a role; see ParseTokens), Certificates (mTLS: a
// verified client certificate's subject CN or email address, mapped to a role; see
// ParseRoles), or AnyOf them. The principal's name is the "who" of every access entry its
// requests seal. Roles:
//
//	officer   content (search, entries, attachments, exports) and everything an auditor may
//	auditor   proofs, checkpoints, verification status, the access log's metadata; no content
//	admin     everything
//
// A content request needs a reason, the "why" of its access entry: the X-Commseal-Why header
// or, for a JSON body, its "why" field (the header wins when both are given). The handler refuses in this order, and a refused
// request seals nothing and reads nothing: no or a wrong credential 401, a role that may not
// 403, no reason 400, a malformed body or query 400.
//
// # Access is sealed before data is returned
//
// Every content request reads through a ledger.Accessor named for the principal and the
// reason, which appends an access entry and waits until it is durable before it decrypts: a
// search through search.Index.Search (Accessor.Query, purpose "query"), an entry through
// Accessor.Get and an attachment through Accessor.Blob (purpose "read"), an export through
// ledger/export.Write (Accessor.Scan, purpose "export", after the search that selected it).
// Integrity requests decrypt nothing and seal nothing.
//
// # Endpoints
//
// JSON in and out; errors are {"error": "..."} with the status that says why (400 bad input,
// 401, 403, 404 no such entry or not covered by a checkpoint yet, 409 a verification already
// running, 410 shredded content, 413 a body beyond Options.MaxBodyBytes, 501 not configured).
//
//	POST /v1/search            SearchRequest (a search.Query, "why") -> search.Result    officer
//	GET  /v1/entries/{i}       -> Entry, the decoded message or record                  officer
//	GET  /v1/blobs/{sha256}    -> the attachment's bytes                                officer
//	POST /v1/export            ExportRequest ("query" or "indexes", "why") -> a zip of   officer
//	                           the ledger/export bundle (check it with verify.Bundle)
//	GET  /v1/checkpoint        -> the latest signed checkpoint (C2SP signed note, text)  auditor
//	GET  /v1/proof/{i}         -> C2SP tlog-proof@v1 of entry i (text), leaf as extra    auditor
//	GET  /v1/consistency?old=N&new=M -> Consistency (RFC 6962 hashes; new defaults to    auditor
//	                           the latest checkpoint's size)
//	GET  /v1/status            -> Status: tree size, checkpoint, index coverage, the     auditor
//	                           latest verification
//	POST /v1/verify            -> Verification: verify.Ledger over Options.Store, read   auditor
//	                           only, up to its size at the start; remembered for status
//	GET  /v1/access?from=N&limit=M -> AccessLog: who read what, why and when, among      auditor
//	                           entries [N, N+M)
//
// (officer: officer and admin; auditor: auditor, officer and admin.)
//
// # Exports
//
// An export is built in memory by ledger/export.Zip and streamed to the client as a zip: no
// file of it touches the server's disk (the bundle the client saves is, on purpose, the only
// plaintext of the read side). A failure after the zip has begun leaves it without its central
// directory, which every zip reader refuses.
package api
