// Package surveil is surveillance in the capture path: every message the ledger captured is
// scanned with the active lexicon (and, optionally, behaviour rules), off the ack path, and the
// findings are sealed back into the ledger as annotation entries about the message.
//
// A Monitor follows the ledger from a durable cursor, one per lexicon version: a capture never
// waits for it, and nothing escapes it, since it reads what is sealed. Annotations are
// deduplicated on the message and the lexicon version, so a message is flagged once per version
// however often it is read (after a kill -9, the monitor rereads from its cursor and seals
// nothing twice), and swapping in a new lexicon (scan.Live) runs it over history from the
// start. On an encrypted ledger an annotation is encrypted under its message's data key, so it
// is shredded with the message.
//
// Behaviour rules (Options.Behaviour) keep state over time: when each conversation and source
// last spoke, burst baselines, off-channel moves awaiting a reply, who has met whom. A monitor
// that starts rebuilds that state before its first step, by replaying into the detector the
// messages before its cursor that the rules still remember (behaviour.Detector.Memory; at most
// Options.RebuildEntries entries) and restoring the behaviour findings sealed among them
// (behaviour.Detector.Restore). So a silence that spans a restart is reported once, when it
// has lasted its window, and a contact made before the restart is not a first contact after
// it. The replay seals nothing; Stats.Replayed, ReplaySkipped and ReplayTook, and a log line,
// say what it cost.
//
// The annotation body is a versioned, documented schema (Annotation, Schema); NewRecord turns
// findings into the record that seals them, for library users who scan on their own.
package surveil
