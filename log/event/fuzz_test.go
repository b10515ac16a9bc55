package event

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// FuzzDecodeLeaf feeds DecodeLeaf arbitrary bytes. It must never panic,
// every error must wrap ErrMalformedLeaf, it must agree with the reference
// decoder (reference_test.go) on what to accept and how to decode it, and
// whatever it accepts must re-encode, by both encoders, to exactly the
// bytes it was given.
func FuzzDecodeLeaf(f *testing.F) {
	for _, v := range readGolden(f) {
		f.Add(v.leaf)
	}
	_, leaf, err := NewLeaf(typicalEvent(), testNow, "token:engine-1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(leaf)
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(checkDecodeLeaf)
}

// FuzzDecodeEvent is FuzzDecodeLeaf with the fuzzed bytes as the event of
// an otherwise well-formed leaf, with the right event_digest: random bytes
// would almost never get past the digest check, and the event is where
// most of the format is.
func FuzzDecodeEvent(f *testing.F) {
	for _, v := range readGolden(f) {
		f.Add(mustEncode(f, v.entry.GetEvent()))
	}
	f.Add(mustEncode(f, typicalEvent()))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, ev []byte) {
		d := sha256.Sum256(ev)
		leaf := append([]byte{0xa5, 0x01, 0x01, 0x02}, ev...)
		leaf = append(leaf, 0x03, 0x01, 0x04, 0x61, 's', 0x05, 0x58, 0x20)
		checkDecodeLeaf(t, append(leaf, d[:]...))
	})
}

// FuzzDecodeEventV2 is FuzzDecodeEvent for leaf version 2: events with
// sensitive values.
func FuzzDecodeEventV2(f *testing.F) {
	for _, v := range readGolden(f) {
		f.Add(mustEncode(f, v.entry.GetEvent()))
	}
	f.Fuzz(func(t *testing.T, ev []byte) {
		d := sha256.Sum256(ev)
		leaf := append([]byte{0xa5, 0x01, 0x02, 0x02}, ev...)
		leaf = append(leaf, 0x03, 0x01, 0x04, 0x61, 's', 0x05, 0x58, 0x20)
		checkDecodeLeaf(t, append(leaf, d[:]...))
	})
}

func checkDecodeLeaf(t *testing.T, b []byte) {
	le, err := DecodeLeaf(b)
	ref, referr := referenceDecodeLeaf(b)
	if (err == nil) != (referr == nil) {
		t.Fatalf("DecodeLeaf and the reference decoder disagree on %x:\n DecodeLeaf: %v\n reference: %v", b, err, referr)
	}
	if err == nil && !proto.Equal(le, ref) {
		t.Fatalf("DecodeLeaf and the reference decoder decode %x differently:\n %v\n %v", b, le, ref)
	}
	if err != nil {
		if le != nil {
			t.Errorf("DecodeLeaf returned both an entry and %v", err)
		}
		if !errors.Is(err, ErrMalformedLeaf) {
			t.Errorf("error %v does not wrap ErrMalformedLeaf", err)
		}
		return
	}
	le2, again, err := NewLeaf(le.GetEvent(), le.GetReceivedTime().AsTime(), le.GetSubmitter())
	if err != nil {
		t.Fatalf("DecodeLeaf accepted %x, but NewLeaf on the result fails: %v", b, err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("DecodeLeaf accepted\n %x\nwhich re-encodes to\n %x", b, again)
	}
	if !proto.Equal(le, le2) {
		t.Errorf("decoded entry %v, re-built entry %v", le, le2)
	}
	if ref := referenceLeaf(t, le); !bytes.Equal(ref, b) {
		t.Fatalf("the reference encoder gives\n %x\nfor accepted leaf\n %x", ref, b)
	}
	_ = LeafHash(b)
}

// FuzzValidateJSON feeds Validate arbitrary JSON events. Validate must not
// panic and must answer with a *FieldError; whatever it accepts must make
// a leaf that decodes back to an equal entry, and the encoders and the size
// computation must agree on every event they can encode.
func FuzzValidateJSON(f *testing.F) {
	for _, v := range readGolden(f) {
		j, err := protojson.Marshal(v.entry.GetEvent())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	for _, e := range []*provlogv1.ProvenanceEvent{typicalEvent(), validEvent(opApproval), validEvent(opExt)} {
		j, err := protojson.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schemaVersion":1,"eventId":"e","tenant":"t","operation":42}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := &provlogv1.ProvenanceEvent{}
		if err := protojson.Unmarshal(data, e); err != nil {
			return
		}
		verr := Validate(e, testNow)
		var fe *FieldError
		if verr != nil && !errors.As(verr, &fe) {
			t.Fatalf("Validate returned %T %v, want a *FieldError", verr, verr)
		}

		enc, err := EncodeEvent(e)
		if err == nil {
			if ref := referenceEncode(t, e); !bytes.Equal(ref, enc) {
				t.Fatalf("encoders disagree on %s:\n enc %x\n ref %x", data, enc, ref)
			}
			if n := encodedEventSize(e); n != len(enc) {
				t.Fatalf("encodedEventSize = %d, len(EncodeEvent) = %d", n, len(enc))
			}
			// Valid or not, whatever NewLeaf writes DecodeLeaf reads back.
			if len(enc) <= MaxEventBytes {
				_, leaf, err := NewLeaf(e, testNow, "token:fuzz")
				if err != nil {
					t.Fatalf("NewLeaf(encodable event): %v", err)
				}
				checkDecodeLeaf(t, leaf)
			}
		} else if verr == nil {
			t.Fatalf("Validate accepted an event EncodeEvent refuses: %v", err)
		}
		if verr != nil {
			return
		}

		if len(enc) > MaxEventBytes {
			t.Fatalf("Validate accepted an event of %d bytes", len(enc))
		}
		le, leaf, err := NewLeaf(e, testNow, "token:fuzz")
		if err != nil {
			t.Fatalf("NewLeaf(valid event): %v", err)
		}
		got, err := DecodeLeaf(leaf)
		if err != nil {
			t.Fatalf("DecodeLeaf(NewLeaf(valid event)): %v", err)
		}
		if !proto.Equal(got, le) {
			t.Fatalf("round trip changed the entry:\n got %v\nwant %v", got, le)
		}
		// The decoded event is still valid, and encodes the same.
		if err := Validate(got.GetEvent(), testNow); err != nil {
			t.Fatalf("decoded event no longer valid: %v", err)
		}
		// Through JSON and back: same bytes.
		j, err := protojson.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2 := &provlogv1.ProvenanceEvent{}
		if err := protojson.Unmarshal(j, e2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustEncode(t, e2), enc) {
			t.Fatalf("encoding changed across a protojson round trip")
		}
	})
}
