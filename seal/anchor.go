package seal

import "time"

// AnchorSchema names the body of an anchor entry (Anchor).
const AnchorSchema = "commseal.anchor/v1"

// Anchor types.
const (
	// AnchorTimestamp is an RFC 3161 time-stamp token whose message imprint is the SHA-256 of
	// the signed checkpoint note.
	AnchorTimestamp = "rfc3161"
	// AnchorCosignature is a witness's tlog-cosignature/v1 of the checkpoint (C2SP
	// tlog-witness): Checkpoint is the note with the witness's cosignature line.
	AnchorCosignature = "cosignature"
)

// Anchor is evidence from outside the firm about one of the ledger's signed checkpoints: a
// time-stamp authority's token that the checkpoint existed at Time, or a witness's
// cosignature that it saw the checkpoint and no other history. The ledger seals it as an
// anchor entry (KindAnchor) whose plaintext is its JSON, plain like the ledger's other own
// entries (it holds no content), so that an auditor finds it with the verifier key alone.
type Anchor struct {
	Schema string `json:"schema"` // AnchorSchema (set by AppendAnchor)
	Type   string `json:"type"`   // AnchorTimestamp or AnchorCosignature
	Size   uint64 `json:"size"`   // the anchored checkpoint's tree size
	// Checkpoint is the signed checkpoint note byte for byte (a token's imprint is its
	// SHA-256); for a cosignature, with the witness's cosignature line added.
	Checkpoint []byte    `json:"checkpoint"`
	Authority  string    `json:"authority"`       // the TSA's name or the witness's key name
	Time       time.Time `json:"time"`            // the token's time, or the cosignature's
	Token      []byte    `json:"token,omitempty"` // the RFC 3161 token (DER), for AnchorTimestamp
	// Prev is the index of the anchor entry sealed before this one, if any: the anchors form
	// a chain that a reader walks back from the latest (set by the ledger).
	Prev *uint64 `json:"prev,omitempty"`
}
