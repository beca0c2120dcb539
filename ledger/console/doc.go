// Package console is the compliance console: the web pages through which a compliance officer
// searches, reads, reviews and exports a ledger's messages, and an auditor checks its
// integrity and its access log, in English or Traditional Chinese. It is an http.Handler
// (New) over the same library calls as ledger/api: search.Index.Search, ledger.Accessor,
// surveil.Alerts and surveil.Dispose, export.Build, verify.Ledger. examples/console serves it
// on a ledger directory; examples/archiver -console-addr beside the capture.
//
// # Who may see what
//
// Users sign in with a local account (ParseAccounts: a name, a role, an Argon2id hash) or, when
// Options.Proxy is set, are named by a trusted reverse proxy's header. Roles are those of
// ledger/api: an officer reads content; an auditor sees integrity, proofs and the access log,
// never content; an admin both. Content is shown only after the user gives a reason (a case),
// kept in the session until changed.
//
// # Access is sealed before a page is rendered
//
// Every page that shows content reads it through a ledger.Accessor named for the signed-in
// user and the session's reason, which appends an access entry and waits for it to be durable
// before it decrypts: a search seals its query (purpose "query") and then the reading of the
// hits (purpose "read"); a conversation likewise; an attachment is one audited blob read; the
// alert queue one scan (purpose "review"); a disposition its reading of the alert; an export
// its search and reading (purpose "export"). Viewing the access log seals an access entry too
// (purpose "access-log"); it decrypts nothing. A refused request seals nothing.
//
// # Security
//
// Sessions live on the server (32 random bytes in an HttpOnly, Secure, SameSite=Strict
// cookie, idle and absolute expiry; a new id at sign-in). Every form carries the session's
// CSRF token, checked in constant time on every POST before anything else. Failed sign-ins
// lock the account and the client address for a while; an unknown name costs the same
// Argon2id work as a known one. Pages are server-rendered with html/template, which escapes
// every message text, name, title and file name; the templates, one stylesheet and one script
// are embedded (no CDN); the Content-Security-Policy allows no inline script or style, framing
// is denied, and no response may be cached. Attachments are served inline only when their
// bytes are a picture or audio, otherwise as a download, always sandboxed.
package console
