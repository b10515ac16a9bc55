package event

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

const (
	// SchemaVersion is the only ProvenanceEvent.schema_version accepted.
	SchemaVersion = 1
	// LeafVersion is the LeafEntry.leaf_version of the leaves of events
	// without sensitive values.
	LeafVersion = 1
	// LeafVersionSensitive is the leaf_version of the leaves of events with
	// sensitive values (ENCODING.md, "Sensitive values"). Leaves of other
	// events keep version 1, byte for byte.
	LeafVersionSensitive = 2
	// MaxEventBytes bounds the canonical encoding of one event.
	MaxEventBytes = 64 << 10
	// MaxBatch is the most events one AppendBatch may carry.
	MaxBatch = 1000
)

// signaturePrefix is the domain-separation prefix of SigningPayload. It
// keeps a signature over an event from being valid for anything else the
// same key might sign, and the other way round.
const signaturePrefix = "provlog event signature v1\n"

// maxSubmitterLen bounds LeafEntry.submitter, in bytes.
const maxSubmitterLen = 1024

// maxLeafBytes bounds a leaf: the event, plus the leaf map header and its
// five 1-byte keys, leaf_version (1 byte), received_time (at most 9),
// submitter (at most maxSubmitterLen and a 3-byte header) and event_digest
// (34).
const maxLeafBytes = MaxEventBytes + 6 + 1 + 9 + maxSubmitterLen + 3 + 34

// The latest Unix time, in whole seconds and the nanoseconds beyond them,
// whose nanosecond count fits in an int64: 2262-04-11T23:47:16.854775807Z.
const (
	maxUnixSec  = math.MaxInt64 / 1_000_000_000
	maxUnixNano = math.MaxInt64 % 1_000_000_000
)

// scratch holds encoding buffers, so that encoding costs one allocation of
// the exact result size (or none, for Validate's size check).
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getScratch() *[]byte { return scratch.Get().(*[]byte) }

func putScratch(p *[]byte) {
	if cap(*p) <= 2*maxLeafBytes {
		*p = (*p)[:0]
		scratch.Put(p)
	}
}

// EncodeEvent returns the canonical encoding of e, signature included
// (ENCODING.md).
//
// It fails, with a *FieldError, only where e cannot be encoded at all: a
// string that is not valid UTF-8, or a timestamp outside the encodable
// range. It does not otherwise validate e; see Validate.
func EncodeEvent(e *provlogv1.ProvenanceEvent) ([]byte, error) {
	return encode(nil, e, true)
}

// SigningPayload returns the bytes a submitter signs, with the Ed25519 key
// that signature.key_id names: the 27 ASCII bytes
// "provlog event signature v1\n" followed by the canonical encoding of e
// with its signature field unset. e itself is not modified.
func SigningPayload(e *provlogv1.ProvenanceEvent) ([]byte, error) {
	return encode([]byte(signaturePrefix), e, false)
}

func encode(prefix []byte, e *provlogv1.ProvenanceEvent, withSignature bool) ([]byte, error) {
	p := getScratch()
	defer putScratch(p)
	b, err := appendEvent(append(*p, prefix...), e, withSignature)
	if err != nil {
		return nil, err
	}
	*p = b
	return append([]byte(nil), b...), nil
}

// Digest returns the SHA-256 of EncodeEvent(e). It is what idempotency
// compares: two events with the same (tenant, event_id) are the same event
// exactly when their digests are equal.
func Digest(e *provlogv1.ProvenanceEvent) ([32]byte, error) {
	p := getScratch()
	defer putScratch(p)
	b, err := appendEvent(*p, e, true)
	if err != nil {
		return [32]byte{}, err
	}
	*p = b
	return sha256.Sum256(b), nil
}

// NewLeaf builds the leaf for e, an event that passed Validate: the
// LeafEntry {leaf_version 1 (2 when e has sensitive values, which must be
// sealed: ENCODING.md §11), event e, received_time, submitter,
// event_digest = Digest(e)}, and its canonical bytes, which are what the log
// stores and hashes.
//
// received is the log's clock when it accepted e, and must be after the
// Unix epoch; submitter is the authenticated identity that sent e, 1..1024
// bytes of UTF-8 without control characters. The entry refers to e rather
// than to a copy: do not modify e afterwards.
func NewLeaf(e *provlogv1.ProvenanceEvent, received time.Time, submitter string) (*provlogv1.LeafEntry, []byte, error) {
	rt := timestamppb.New(received)
	rns, reason := timestampNanos(rt)
	if reason != "" {
		return nil, nil, fmt.Errorf("received time %s: %s", received.Format(time.RFC3339Nano), reason)
	}
	if reason := textReason(submitter, 1, maxSubmitterLen, false); reason != "" {
		return nil, nil, fmt.Errorf("submitter %q: %s", submitter, reason)
	}
	p := getScratch()
	defer putScratch(p)
	b, digest, err := appendLeaf(*p, e, rns, submitter)
	if err != nil {
		return nil, nil, err
	}
	*p = b
	le := &provlogv1.LeafEntry{
		LeafVersion:  uint32(b[2]), // appendLeaf chose it
		Event:        e,
		ReceivedTime: rt,
		Submitter:    submitter,
		EventDigest:  digest[:],
	}
	return le, append([]byte(nil), b...), nil
}

// LeafHash returns the RFC 6962 leaf hash of leaf: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ErrMalformedLeaf is wrapped by every error DecodeLeaf returns.
var ErrMalformedLeaf = errors.New("malformed leaf")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedLeaf, fmt.Sprintf(format, args...))
}

// DecodeLeaf parses leaf bytes. It accepts exactly what NewLeaf writes:
// leaf_version 1, or 2 for an event with sealed sensitive values (no value
// in clear), every leaf field present, event_digest the SHA-256 of the
// event's encoding, and all of it in canonical form, so that encoding the
// result again gives b back byte for byte. Anything else (unsorted,
// duplicate or unknown keys, non-minimal integers or lengths, indefinite
// lengths, tags, floats, empty values that should have been left out,
// invalid UTF-8, trailing bytes) is rejected with an error wrapping
// ErrMalformedLeaf.
//
// DecodeLeaf does not Validate the event: the log holds what was valid when
// it was appended, and its leaves must stay readable if the rules tighten.
//
// b may be untrusted: DecodeLeaf does not panic, refuses more than
// MaxEventBytes + 1077 bytes, and allocates at most a small multiple of
// len(b).
func DecodeLeaf(b []byte) (*provlogv1.LeafEntry, error) {
	if len(b) > maxLeafBytes {
		return nil, malformed("%d bytes exceeds %d", len(b), maxLeafBytes)
	}
	d := decoder{s: string(b)}
	le, es, ee, err := d.leaf()
	if err != nil {
		return nil, malformed("%v", err)
	}
	switch {
	case le.LeafVersion != LeafVersion && le.LeafVersion != LeafVersionSensitive:
		return nil, malformed("leaf_version %d, want %d or %d", le.LeafVersion, LeafVersion, LeafVersionSensitive)
	case le.LeafVersion == LeafVersion && le.Event != nil && len(le.Event.GetSensitive()) > 0:
		return nil, malformed("leaf_version %d with sensitive values", le.LeafVersion)
	case le.LeafVersion == LeafVersionSensitive && le.Event != nil && len(le.Event.GetSensitive()) == 0:
		return nil, malformed("leaf_version %d without sensitive values", le.LeafVersion)
	case le.Event == nil:
		return nil, malformed("no event")
	case le.ReceivedTime == nil:
		return nil, malformed("no received_time")
	case le.Submitter == "":
		return nil, malformed("no submitter")
	case textReason(le.Submitter, 1, maxSubmitterLen, false) != "":
		return nil, malformed("submitter: %s", textReason(le.Submitter, 1, maxSubmitterLen, false))
	case len(le.EventDigest) != sha256.Size:
		return nil, malformed("event_digest is %d bytes, want %d", len(le.EventDigest), sha256.Size)
	case ee-es > MaxEventBytes:
		return nil, malformed("event: %s", sizeReason(ee-es))
	}
	// The decoder accepts only canonical input. Re-encoding checks that
	// once more, against the encoder itself, and recomputes the digest.
	p := getScratch()
	defer putScratch(p)
	re, digest, err := appendLeaf(*p, le.Event, uint64(le.ReceivedTime.AsTime().UnixNano()), le.Submitter)
	if err != nil {
		return nil, malformed("%v", err)
	}
	*p = re
	if string(re) != string(b) {
		if digest != [32]byte(le.EventDigest) {
			return nil, malformed("event_digest does not match the event")
		}
		return nil, malformed("not in canonical form")
	}
	return le, nil
}

// timestampNanos converts a timestamp to the encoding's unsigned Unix
// nanoseconds; nil is 0 (omitted). A non-nil timestamp must lie strictly
// after the Unix epoch and within the int64 nanosecond range; otherwise the
// reason says why not.
func timestampNanos(t *timestamppb.Timestamp) (uint64, string) {
	if t == nil {
		return 0, ""
	}
	s, n := t.GetSeconds(), t.GetNanos()
	switch {
	case n < 0 || n >= 1e9:
		return 0, "invalid timestamp: nanos " + strconv.Itoa(int(n)) + " out of range [0, 999999999]"
	case s < 0 || (s == 0 && n == 0):
		return 0, "must be after 1970-01-01T00:00:00Z"
	case s > maxUnixSec || (s == maxUnixSec && n > maxUnixNano):
		return 0, "after 2262-04-11T23:47:16.854775807Z, the end of the int64 nanosecond range"
	}
	return uint64(s)*1e9 + uint64(n), ""
}

func sizeReason(n int) string {
	return "encoded size " + strconv.Itoa(n) + " exceeds " + strconv.Itoa(MaxEventBytes) + " bytes"
}
