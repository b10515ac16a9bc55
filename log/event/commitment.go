package event

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// CommitmentSaltSize is the size of the random salt of a sensitive value's
// commitment.
const CommitmentSaltSize = 32

// commitmentPrefix separates commitments from every other SHA-256 the log
// computes (ENCODING.md, "Sensitive values").
const commitmentPrefix = "provlog sensitive value commitment v1\n"

// Commitment returns the salted commitment to a sensitive value that a leaf
// holds in its place: SHA-256 of the 38-byte prefix
// "provlog sensitive value commitment v1\n", then the salt and the value,
// each preceded by its length as an 8-byte big-endian integer.
//
// Whoever holds the value and the salt can recompute it; with a random
// 32-byte salt, nobody can guess the value from the commitment alone.
func Commitment(salt, value []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(commitmentPrefix))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(salt)))
	h.Write(n[:])
	h.Write(salt)
	binary.BigEndian.PutUint64(n[:], uint64(len(value)))
	h.Write(n[:])
	h.Write(value)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// VerifyCommitment reports whether (salt, value) opens commitment.
func VerifyCommitment(commitment, salt, value []byte) bool {
	c := Commitment(salt, value)
	return len(salt) == CommitmentSaltSize && subtle.ConstantTimeCompare(c[:], commitment) == 1
}

// sealedReason checks that every sensitive value of a leaf's event is
// sealed: no value in clear, a key id and a 32-byte commitment.
func sealedReason(ss []*provlogv1.SensitiveValue) error {
	for i, s := range ss {
		if err := sealedValueError(i, s); err != nil {
			return err
		}
	}
	return nil
}

// sealedValueError checks sensitive value i of a leaf's event.
func sealedValueError(i int, s *provlogv1.SensitiveValue) error {
	switch {
	case s.GetValue() != "":
		return fieldErr(idx("sensitive", i, "value"), "in clear: seal it into the vault before building the leaf")
	case eventIDReason(s.GetKeyId(), maxKeyIDLen) != "":
		return fieldErr(idx("sensitive", i, "key_id"), eventIDReason(s.GetKeyId(), maxKeyIDLen))
	case len(s.GetCommitment()) != sha256.Size:
		return fieldErr(idx("sensitive", i, "commitment"), "must be 32 bytes")
	}
	return nil
}
