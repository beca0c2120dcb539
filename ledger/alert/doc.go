// Package alert tells a compliance team that a sealed message was flagged, through a log, an
// HTTP webhook or a DingTalk group robot, without losing an alert when the receiver is down.
//
// An Alert carries references and severities, not content: the ledger index and source
// identity of the message, its conversation and sender, the rule, category and severity, the
// lexicon's name and version, and the message's time. A reviewer reads the message through the
// ledger, which seals that access. Alert.Excerpt, a passage of the message, is sent only when
// the operator opts in twice: the producer fills it, and the outbox and sender keep it only
// with their IncludeExcerpt options; the log never writes it.
//
// Every alert has an ID, its idempotency key, derived from the finding (NewID: ledger index,
// rule, lexicon version), so the same finding raised again is the same alert and receivers
// deduplicate on it.
//
// The package is a leaf: it knows alerts, not the ledger. The ledger side (the scan cursor)
// turns sealed findings into Alerts and calls an Alerter.
//
// # Alerters and senders
//
// NewLog writes alerts to a *slog.Logger. For a receiver over the network, a Sender (Webhook,
// DingTalk) makes one attempt, and an Outbox in front of it is the Alerter: Outbox.Alert returns
// once the alert is on disk, and Outbox.Run delivers, retrying until the receiver takes it.
//
// Webhook requests are JSON (the Alert's JSON form), with HeaderIdempotencyKey = Alert.ID and
// HeaderSignature = "sha256=" + hex(HMAC-SHA256(secret, HeaderTimestamp value + "." + body));
// receivers check them with VerifySignature, which refuses timestamps outside a skew, so a
// captured request cannot be replayed later. DingTalk posts markdown messages to a custom group
// robot, signed as DingTalk documents (see DingTalk).
//
// # Delivery
//
// Run sends pending alerts one at a time, each with OutboxOptions.SendTimeout, always the alert
// queued first among those whose backoff has ended. A 2xx reply (and, for DingTalk, errcode 0)
// is delivery: the record is removed. A 4xx other than 408 and 429, or a DingTalk configuration
// error, is permanent: the record moves to the dead letters, is logged, and stays there, counted
// against MaxRecords, until Redrive queues it again.
// Everything else (network errors, 408, 429, 5xx) is retried after an exponential backoff with
// jitter (MinBackoff doubling to MaxBackoff). A receiver that answered delays only that alert; a
// receiver that could not be reached, answered 429, or sent Retry-After (a longer wait than the
// backoff wins) delays the whole queue. Delivery
// is at least once: a crash after the receiver took an alert and before its file is removed sends
// it again, with the same idempotency key.
//
// # Outbox directory
//
//	LOCK                 flock'd by the open Outbox (a second one gets ErrOutboxInUse)
//	queue/<name>.alert   one record per pending alert
//	dead/<name>.alert    one record per dead letter, with when and why it failed
//	quarantine/…         files Open found that are not valid records, kept for inspection
//
// <name> is the hex of the first 16 bytes of SHA-256(Alert.ID): one file per alert, so queuing
// the same alert twice writes it once. A record file is
//
//	magic  "CSALRT01"
//	length uint32 big-endian, 1 to MaxRecordBody
//	body   the Record as JSON: {"seq","queued","alert",["failed","reason"]}
//	sum    SHA-256 of magic, length and body
//
// Files are written with internal/durable (temporary file, sync, rename, directory sync; mode
// 0600, directories 0700) and removed with a directory sync; a record that holds an excerpt is
// overwritten with zeros before removal. Without IncludeExcerpt nothing of a message's content
// is ever on disk here: only the references above.
//
// # What a crash does
//
// Alert returns only after the record and its directory entry are synced, so a queued alert
// survives a crash of the process or the machine. A crash during the write leaves the previous
// state plus, at most, a temporary file that Open removes. A crash between delivery and removal
// sends the alert again (at least once). A crash while a dead letter is written leaves it
// pending (delivered again, failing again) or in both directories (Open keeps the dead letter).
// A file that is damaged, truncated or foreign is quarantined by Open with a logged error,
// never a panic, and the other records are delivered.
package alert
