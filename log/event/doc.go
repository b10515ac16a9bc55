// Package event is what the log commits to: the validation of submitted
// provenance events, the canonical encoding of an event and of the leaf
// that holds it, and the leaf hash.
//
// # Flow
//
// For each submitted event the log calls Validate, then NewLeaf, and appends
// the leaf bytes NewLeaf returns; the Merkle tree commits to LeafHash of
// them. Readers of the log turn leaf bytes back into a LeafEntry with
// DecodeLeaf, which accepts only canonical bytes, so a decoded entry
// re-encodes to exactly the leaf that was hashed.
//
//	err := event.Validate(e, now)          // *FieldError naming the field
//	entry, leaf, err := event.NewLeaf(e, now, submitter)
//	hash := event.LeafHash(leaf)           // SHA-256(0x00 || leaf), RFC 6962
//	entry, err = event.DecodeLeaf(leaf)    // strict: canonical bytes only
//
// Idempotency compares Digest(e), the SHA-256 of EncodeEvent(e), which is
// also the leaf's event_digest. A submitter signs SigningPayload(e).
//
// Sensitive values (ENCODING.md §11) are submitted in clear; the log seals
// them (log/vault) before NewLeaf, which then writes a leaf_version 2 leaf
// holding Commitment(salt, value) for each instead of the value.
//
// # Encoding
//
// Events and leaves are encoded as deterministic CBOR (RFC 8949 §4.2.1,
// Core Deterministic Encoding): maps keyed by the proto field numbers,
// empty fields left out, timestamps as Unix nanoseconds. Same logical
// event, same bytes, in any language. ENCODING.md in this directory is the
// specification, with the full layout; testdata/leaves at the repository
// root holds golden vectors that pin it.
//
// # Validation
//
// Validate enforces the rules listed in ENCODING.md ("Validation") and
// reports the first violation, in field order, as a *FieldError whose Field
// is a path such as "inputs[2].digest". Lengths count bytes of UTF-8.
package event
