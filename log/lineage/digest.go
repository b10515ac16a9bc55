package lineage

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// The index digest (doc.go, "Digest").
//
// sum is a multiset hash of the stored index: the sum, modulo 2^256, of
// elementHash(k, v) over every stored pair outside the meta keyspace. Adding
// a pair adds its hash, removing one subtracts it, so the index keeps the
// sum up to date at the cost of one SHA-256 per write, and the sum depends
// only on the set of stored pairs, never on the order they were written in
// or on how the log was cut into indexing passes.
type sum [4]uint64 // little-endian limbs

func elementHash(k, v []byte) sum {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(digestElementDomain))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
	h.Write(k)
	h.Write(v)
	var d [32]byte
	h.Sum(d[:0])
	var s sum
	for i := range s {
		s[i] = binary.BigEndian.Uint64(d[24-8*i:])
	}
	return s
}

const (
	digestElementDomain = "provlog lineage element v1\n"
	digestDomain        = "provlog lineage index v1\n"
)

func (s *sum) add(o sum) {
	var c uint64
	s[0], c = bits.Add64(s[0], o[0], 0)
	s[1], c = bits.Add64(s[1], o[1], c)
	s[2], c = bits.Add64(s[2], o[2], c)
	s[3], _ = bits.Add64(s[3], o[3], c)
}

func (s *sum) sub(o sum) {
	var b uint64
	s[0], b = bits.Sub64(s[0], o[0], 0)
	s[1], b = bits.Sub64(s[1], o[1], b)
	s[2], b = bits.Sub64(s[2], o[2], b)
	s[3], _ = bits.Sub64(s[3], o[3], b)
}

// bytes is the sum as a 32-byte big-endian integer.
func (s sum) bytes() []byte {
	out := make([]byte, 32)
	for i := range s {
		binary.BigEndian.PutUint64(out[24-8*i:], s[i])
	}
	return out
}

func sumFromBytes(b []byte) (sum, bool) {
	var s sum
	if len(b) != 32 {
		return s, false
	}
	for i := range s {
		s[i] = binary.BigEndian.Uint64(b[24-8*i:])
	}
	return s, true
}

// finalDigest binds the sum to the tree size it describes:
// SHA-256("provlog lineage index v1\n" || size as 8 bytes big-endian || sum).
func finalDigest(size uint64, s sum) [32]byte {
	h := sha256.New()
	h.Write([]byte(digestDomain))
	h.Write(binary.BigEndian.AppendUint64(nil, size))
	h.Write(s.bytes())
	var out [32]byte
	h.Sum(out[:0])
	return out
}
