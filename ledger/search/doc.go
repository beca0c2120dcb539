// Package search is the ledger's search index: which messages match a query, for a
// compliance officer's request or an export, without decrypting the whole ledger.
//
// The index is derived from the ledger and follows it (Update, Run); Rebuild makes it again
// from scratch. It covers every message: conversation (id, title), sender (id, staff id,
// name), mentioned parties, sent and capture time, kind, attachments (name, media type) and the
// full text (the message's readable text, which for rich text and audio is what capture
// extracted, and its attachments' names).
//
// # Queries
//
// Query.Text is an expression:
//
//	微信                     a term: messages whose text contains it
//	"call me on WhatsApp"   a phrase (quotes keep spaces, operators and colons as text)
//	微信 OR whatsapp         either; juxtaposed terms (or AND) must all match; NOT excludes
//	(報價 OR quote) NOT test parentheses group
//	sender:u123 sender:黃    a field: conversation, sender, participant (sender or mentioned),
//	                         file (attachment name), type (media type prefix), kind
//	rule:off-channel.move    surveillance's alerts (ledger/surveil): rule, category, severity,
//	disposition:open         disposition (dismissed, escalated, note, assigned, or open)
//
// Text folds the way package scan folds: width, letter case, Traditional and Hong Kong
// characters to Simplified, and everything but letters and digits dropped, so 「內幕」 finds
// 「内幕」, ＷｈａｔｓＡｐｐ finds "whatsapp", and "What's App" finds "whatsapp". A term matches
// anywhere in the text, so one or two Chinese characters (港, 報價) work like any other term.
// Ids (conversation:, sender:, participant:, kind:) match exactly; names and titles by a
// folded part. Query's other fields filter by conversation, sender, kind and sent time; hits
// are sorted by sent time, then ledger index, and paged.
//
// # Encryption and shredding
//
// With Options.Dir on an encrypted ledger the index keeps one file, docs.log, in which every
// message's document is sealed under that message's own data key (ledger.Deriver). Nothing of
// a message is on disk in plain, and when retention shreds a scope, destroying its key, the
// index's copy of the scope's messages becomes unreadable with it: no rewrite is needed for
// the index to forget, and no backup of the index file remembers. The running index drops the
// scope's documents when it reads the shred entry.
//
// # Access
//
// Every Search is an access: it seals who, why and the query (encrypted) in the ledger through
// a Recorder (ledger.Accessor.Query) before it returns a hit. Hits carry ledger indexes, times
// and ids, not content; content is read through the Accessor, which records that too. Building
// and updating the index read the ledger through its Deriver, which appends nothing.
//
// # How it works
//
// In memory: posting lists of document numbers for every bigram of the folded text and every
// single non-ASCII character, exact postings for ids, and postings per distinct folded name,
// title and file name. A term's rarest bigrams give candidates, which the folded text then
// confirms, so results are exactly those of reading every message. The file holds the
// documents, not the postings: opening decrypts them (one key unwrap per data key) and builds
// the postings again.
package search
