// Package scan flags chat messages against compliance lexicons: guaranteed returns, inside
// information, front-running, moves to off-channel apps, record destruction, market
// manipulation, gifts. It finds every occurrence of every term, in English, Traditional and
// Simplified Chinese and Cantonese, however the writer disguised it, and reports each with
// byte offsets into the original message so that a reviewer can see it highlighted.
//
// Compile a Lexicon into a Scanner and call Scan (one message), AppendScan (one message,
// reusing memory) or ScanBatch (many short messages, faster). A Scanner is immutable and safe
// for concurrent use; Live swaps a new one in while scans continue (hot reload). Every Finding
// carries the version of the lexicon that produced it.
//
// # Lexicon format
//
// A lexicon is a JSON object:
//
//	{
//	  "name": "desk-lexicon",
//	  "rules": [
//	    {
//	      "id": "guarantee.returns",            // unique; ASCII letters, digits and . _ - : /
//	      "category": "guarantee_of_returns",   // same alphabet as id
//	      "severity": "high",                   // info, low, medium or high
//	      "description": "Promising returns.",  // optional, for reviewers
//	      "terms": ["guaranteed return", "保證回報", "穩賺唔蝕"],
//	      "exclude": ["no guaranteed return"],  // optional: cancels a hit it covers
//	      "near": {"a": ["buy"], "b": ["results"], "within": 20},  // optional
//	      "word_boundary": true,                // optional, default false
//	      "case_sensitive": false,              // optional, default false
//	      "exact": false                        // optional, default false
//	    }
//	  ]
//	}
//
// (The comments above are explanation; JSON has none.) A rule needs terms, near, or both.
// A term is a word or phrase; any occurrence is a finding whose Term is the term as written.
// An exclusion cancels a hit of the same rule whose span lies inside the exclusion's span, so
// "no guaranteed return" in a disclaimer does not flag "guaranteed return". Near pairs a term
// of a with the nearest term of b no more than within characters away (characters of the
// original text between the two; overlapping terms are 0 apart) and reports the span covering
// both, with Term "a-term … b-term". word_boundary requires a term that starts (ends) with a
// letter or digit of a space-separated script to have no such letter or digit just before
// (after) it; Chinese has no word boundaries and needs none. case_sensitive keeps letter case
// significant; exact matches the term's bytes as written, with no normalization at all.
//
// Loading refuses, with a *LexiconError naming the rule and field and wrapping a sentinel such
// as ErrEmptyTerms or ErrUnknownSeverity: malformed JSON, unknown fields, missing fields, empty
// or duplicate terms, terms with no letters or digits, unknown severities, duplicate ids,
// invalid UTF-8, and sizes beyond the Max constants.
//
// The version of a lexicon is "sha256:" and the hex SHA-256 of its canonical form (see
// Lexicon.Canonical): rule order, term order, white space and default-valued fields do not
// change it; any change of meaning does.
//
// # Normalization
//
// Unless a rule is exact, terms and text are compared after the same normalization (see
// Normalize): only letters and numbers are kept, so spacing, punctuation, symbols, emoji,
// zero-width and formatting characters inserted to dodge a filter ("w h a t s a p p", "微.信")
// are ignored; full-width forms fold to ASCII; letter case folds; Traditional and Hong Kong
// variant Chinese characters fold to Simplified, so one term matches both scripts. The
// character table comes from OpenCC's data (Apache-2.0; see data/README.md). Offsets always
// refer to the original text: a finding spans from the first to the last character that
// matched, including the ignored characters between them.
//
// The folding is not a separate pass. ASCII case folding and skipping are built into the
// automaton's byte classes (a skipped byte's class leaves the state unchanged); other runes
// are decoded in the scanning loop and looked up in a per-lexicon table that gives the byte
// classes of their folded form directly, or says to skip them, or (for a character in no term)
// to return to the start state without touching the automaton.
//
// # Engine
//
// The engine is an Aho-Corasick automaton compiled to a DFA over byte classes: every byte that
// occurs in some term has its own class and all others share one, which keeps rows short. It
// reports every match, overlapping and nested ones included ("insider" inside "insider
// information"). States are ranked by how likely a scan is to be in them (estimated from byte
// frequencies in the terms) and the likeliest get dense rows, one load per byte, up to a
// 32 MiB cap; the long tails of rare terms keep sparse edges (merged with those of their
// failure chain) and failure links, so memory grows with the lexicon, not with states times
// 256. For normalized matching each Chinese character of the lexicon gets a two-byte symbol
// code (three beyond 3,072 characters) instead of its three UTF-8 bytes, and states inside a
// code have rows of continuation bytes only, half the size of the others.
//
// Scan and AppendScan walk one message with one state chain. ScanBatch keeps several messages
// in flight and advances them in turn: the chains are independent, so the processor overlaps
// their table loads instead of waiting on each. Byte-exact lexicons run eight messages at a
// time. Normalizing ones first turn each message into its class stream (the classes the
// automaton steps on, folding, skipping and symbol codes applied, in a loop that carries
// nothing from one rune to the next), pack the streams of a few hundred messages into eight
// lanes, separated by a class that returns to the root, and walk the lanes in lockstep, the
// eight classes of a step adjacent in memory; the hits are mapped back to offsets in each
// message's text afterwards (see batch.go). With 10,000 terms a batch runs about 1.45x
// (byte-exact) and 1.2x (normalized) faster than the same messages one at a time. A small
// normalizing automaton stays in cache, gains nothing from it, and is scanned message by
// message.
//
// Turning a message's matches into findings (confirming exact, case-sensitive and word-boundary
// rules, applying exclusions, pairing near terms) costs O(n log n) in the number of matches,
// however they overlap: exclusions are swept in order of position and near pairs found by
// binary search, so no text can make one match meet every other. BenchmarkAdversarial scans
// texts built to try (repeated terms, repeated and overlapping exclusions, near terms, matches
// spanning most of the text, a 16 MiB message) against plain chat in the same iterations.
//
// BenchmarkScan measures all of this against github.com/cloudflare/ahocorasick on the same
// generated chat corpus; its engine=paired sub-benchmarks alternate the engines on each slice
// of the corpus and report the median ratios of their CPU times, the figures to trust on a
// shared machine. With 10,000 terms (go test ./scan -run '^$' -bench
// 'Scan/terms=10000/norm=(off|on)/engine=paired' -benchtime 2s -count 3, on two shared cores)
// normalized batches ran at 5.5-5.6x cloudflare matching the normalized text, 4.6-4.7x
// cloudflare matching the raw bytes with no normalization at all, and 1.42-1.47x normalized
// single-message scanning; byte-exact batches at 4.6-4.8x cloudflare and 1.6x single. The dense table asks for transparent huge pages on Linux (hugepages_linux.go).
//
// # Why github.com/cloudflare/ahocorasick is the baseline and not the engine
//
// The design names github.com/cloudflare/ahocorasick, and the tests and benchmarks run it on
// the same data: its matched-term sets must equal ours on plain byte matching, and
// BenchmarkScan reports both engines side by side. It is not the engine because it cannot do
// the job: it reports which terms occur but not where, so nothing can be highlighted and
// exclusions and proximity cannot be evaluated; it has no notion of normalization, so
// disguised terms need a separate normalizing pass that loses the offsets; and it keeps two
// 256-pointer arrays per trie node, some 4 KiB per node, hundreds of MiB for a large lexicon,
// with a cache miss on most bytes. Its MatchThreadSafe also allocates per call.
//
// # Default lexicon
//
// DefaultLexicon and Default provide an embedded lexicon for Hong Kong securities conduct,
// with the categories guarantee_of_returns, inside_information, front_running, off_channel,
// record_destruction, market_manipulation and gifts_entertainment, in English, Traditional and
// Simplified Chinese and Cantonese colloquial forms. It is a starting point for a compliance
// team's own lexicon, built from common enforcement themes; it is not legal advice and does
// not claim to be complete.
package scan
