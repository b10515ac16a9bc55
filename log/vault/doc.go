// Package vault keeps sensitive values out of the log: it stores them
// encrypted, and gives the log a salted commitment to put in the leaf
// instead.
//
// # Keys
//
// Values are encrypted with AES-256-GCM (Go's standard library) under data
// keys, one per tenant and classification and generation ("acme/pii/3").
// A data key takes new writes for RotateEvery (or until RotateDataKey);
// then it is retired, still decrypts what it sealed, and its retention
// clock starts. Data keys are stored only wrapped by the master key, in
// the keyring file Dir/keyring.json, which is small and rewritten
// atomically on every change. The master key sits behind KeyManager;
// FileKeyManager reads it from a 0600 file. RotateMasterKey re-wraps the
// data keys and rewrites the keyring only: ciphertexts and the log are
// untouched. Open unwraps every data key, so a wrong master key fails at
// startup with ErrWrongMasterKey, never at a read.
//
// # Values and commitments
//
// Each value gets a random 32-byte salt. The store (pebble, Dir/db) holds
// AES-GCM(salt || value) with associated data binding it to tenant, event
// id, value name, classification and key id. The leaf holds the name,
// classification, key id and event.Commitment(salt, value). Reveal returns
// value and salt after checking them against the commitment; a client
// checks them again with event.VerifyCommitment.
//
// # Idempotency
//
// The log dedupes on the digest of the event as committed, which includes
// the commitments, so a random salt per submission would turn every retry
// into a conflict. Seal instead reuses the stored salt when the same
// (tenant, event id) already has a value with the same name,
// classification and plaintext, under a lock per (tenant, event id): a
// re-sent event commits to the same bytes and is a duplicate. Salts are
// not derived from a secret and the value: such a secret would have to
// outlive shredding for retries to keep working, and whoever held it could
// then test guesses of a shredded value against its commitment. The price:
// once a value is shredded, re-sending its event is a conflict, because the
// log can no longer tell whether the content is the same.
//
// Stored values are never overwritten; a value sealed for an append that
// then failed stays in the store, encrypted, until retention erases it.
//
// # Retention
//
// ApplyRetention archives (moves the ciphertexts to Dir/archive) or shreds
// (removes the wrapped key from the keyring, then deletes and compacts the
// ciphertexts) every retired key of a tenant and classification whose rule
// says its time is up. Reads of those values then return *ErasedError:
// what, when, under which policy. The caller records each erasure as an
// event in the log and calls MarkLogged; Erasures lists those still to be
// logged after a crash.
//
// Erasure is by data key: a value is erased between its rule's After and
// After + RotateEvery after it was written. There are no per-record keys
// (yet): erasing one record ahead of its key is not supported.
//
// What shredding cannot reach: the file system may keep freed blocks of an
// older keyring (renamed over, not overwritten) and pebble's deleted
// ciphertexts until they are reused, and backups keep whatever they copied.
// Those hold data keys only wrapped by the master key: keep the master key
// out of the data directory and its backups, and rotate it after a shred
// when such remnants matter.
package vault
