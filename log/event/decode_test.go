package event

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// Hand-built CBOR, for leaves NewLeaf would never write.

func cHead(major byte, n uint64) []byte { return appendHead(nil, major, n) }

func cUint(n uint64) []byte  { return cHead(majorUint, n) }
func cText(s string) []byte  { return append(cHead(majorText, uint64(len(s))), s...) }
func cBytes(b []byte) []byte { return append(cHead(majorBytes, uint64(len(b))), b...) }

type kv struct{ k, v []byte }

func cMap(pairs ...kv) []byte {
	b := cHead(majorMap, uint64(len(pairs)))
	for _, p := range pairs {
		b = append(b, p.k...)
		b = append(b, p.v...)
	}
	return b
}

func cArray(items ...[]byte) []byte {
	b := cHead(majorArray, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func k(n uint64) []byte { return cUint(n) }

// minimalEventPairs is the encoding of validEvent(opStart), pair by pair.
func minimalEventPairs(t *testing.T) []kv {
	e := validEvent(opStart)
	et, _ := timestampNanos(e.GetEventTime())
	pairs := []kv{
		{k(1), cUint(1)},
		{k(2), cText(e.EventId)},
		{k(3), cText(e.Tenant)},
		{k(4), cUint(uint64(e.Operation))},
		{k(5), cUint(et)},
		{k(6), cMap(kv{k(1), cUint(uint64(e.Actor.Type))}, kv{k(2), cText(e.Actor.Id)})},
		{k(7), cMap(kv{k(1), cText(e.Workflow.Platform)}, kv{k(5), cText(e.Workflow.RunId)})},
	}
	if got, want := cMap(pairs...), mustEncode(t, e); !bytes.Equal(got, want) {
		t.Fatalf("hand-built event\n %x\ndiffers from EncodeEvent\n %x", got, want)
	}
	return pairs
}

const testSubmitter = "token:t"

// leafWith builds a leaf around event bytes, with a correct digest.
func leafWith(event []byte) []byte {
	d := sha256.Sum256(event)
	rt, _ := timestampNanos(tsNow())
	return cMap(kv{k(1), cUint(1)}, kv{k(2), event}, kv{k(3), cUint(rt)}, kv{k(4), cText(testSubmitter)}, kv{k(5), cBytes(d[:])})
}

func tsNow() *timestamppb.Timestamp { return timestamppb.New(testNow) }

func withPair(pairs []kv, p kv) []kv {
	out := append([]kv(nil), pairs...)
	return append(out, p)
}

func replacePair(pairs []kv, key uint64, v []byte) []kv {
	out := append([]kv(nil), pairs...)
	for i := range out {
		if bytes.Equal(out[i].k, k(key)) {
			out[i].v = v
		}
	}
	return out
}

func TestDecodeLeafStrict(t *testing.T) {
	ev := minimalEventPairs(t)
	good := leafWith(cMap(ev...))
	_, want, err := NewLeaf(validEvent(opStart), testNow, testSubmitter)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(good, want) {
		t.Fatalf("hand-built leaf\n %x\ndiffers from NewLeaf\n %x", good, want)
	}
	if _, err := DecodeLeaf(good); err != nil {
		t.Fatalf("DecodeLeaf(hand-built leaf): %v", err)
	}

	evb := cMap(ev...)
	d := sha256.Sum256(evb)
	rt, _ := timestampNanos(tsNow())
	leafPairs := []kv{{k(1), cUint(1)}, {k(2), evb}, {k(3), cUint(rt)}, {k(4), cText(testSubmitter)}, {k(5), cBytes(d[:])}}
	leaf := func(ps ...kv) []byte { return cMap(ps...) }
	deep := []byte{}
	for range 200 {
		deep = append(deep, 0x81)
	}
	deep = append(deep, 0x01)

	tests := []struct {
		name string
		b    []byte
		want string // a substring of the error; "" for any
	}{
		{"empty", nil, "unexpected end of data"},
		{"one byte", []byte{0xa0}, "leaf: empty value present"},
		{"trailing byte", append(bytes.Clone(good), 0x00), "trailing data"},
		{"trailing leaf", append(bytes.Clone(good), good...), "trailing data"},
		{"truncated", good[:len(good)-1], "event_digest: longer than the data"},
		{"not a map", cArray(cUint(1)), "leaf: wrong type"},
		{"duplicate leaf key", leaf(withPair(leafPairs, kv{k(1), cUint(1)})...), "key 1 out of order or repeated"},
		{"unknown leaf key", leaf(withPair(leafPairs, kv{k(6), cUint(1)})...), "unknown key 6"},
		{"text leaf key", leaf(kv{cText("1"), cUint(1)}, leafPairs[1], leafPairs[2], leafPairs[3], leafPairs[4]), "key: wrong type"},
		{"negative leaf key", leaf(withPair(leafPairs, kv{cHead(majorNeg, 0), cUint(1)})...), "key: wrong type"},
		{"unsorted leaf keys", leaf(leafPairs[0], leafPairs[2], leafPairs[1], leafPairs[3], leafPairs[4]), "key 2 out of order or repeated"},
		{"indefinite-length leaf map", append(append([]byte{0xbf}, good[1:]...), 0xff), "indefinite length"},
		{"indefinite-length submitter", leaf(leafPairs[0], leafPairs[1], leafPairs[2], kv{k(4), append(append([]byte{0x7f}, cText(testSubmitter)...), 0xff)}, leafPairs[4]), "indefinite length"},
		{"non-minimal leaf_version", leaf(kv{k(1), []byte{0x18, 0x01}}, leafPairs[1], leafPairs[2], leafPairs[3], leafPairs[4]), "non-shortest integer or length"},
		{"non-minimal key", leaf(kv{[]byte{0x18, 0x01}, cUint(1)}, leafPairs[1], leafPairs[2], leafPairs[3], leafPairs[4]), "non-shortest integer or length"},
		{"non-minimal submitter length", leaf(leafPairs[0], leafPairs[1], leafPairs[2], kv{k(4), append([]byte{0x78, byte(len(testSubmitter))}, testSubmitter...)}, leafPairs[4]), "non-shortest integer or length"},
		{"non-minimal event map header", leafWith(append([]byte{0xb8, byte(len(ev))}, cMap(ev...)[1:]...)), "non-shortest integer or length"},
		{"non-minimal array header", leafWith(cMap(withPair(ev, kv{k(14), append([]byte{0x98, 0x01}, cText("evt-0")...)})...)), "non-shortest integer or length"},
		{"leaf_version 2 without sensitive", leaf(replacePair(leafPairs, 1, cUint(2))...), "leaf_version 2 without sensitive values"},
		{"leaf_version 3", leaf(replacePair(leafPairs, 1, cUint(3))...), "leaf_version 3, want 1 or 2"},
		{"leaf_version 0", leaf(replacePair(leafPairs, 1, cUint(0))...), "leaf_version: empty value present"},
		{"leaf_version missing", leaf(leafPairs[1:]...), "leaf_version 0, want 1"},
		{"leaf_version huge", leaf(replacePair(leafPairs, 1, cUint(1<<40))...), "leaf_version: out of range"},
		{"event missing", leaf(leafPairs[0], leafPairs[2], leafPairs[3], leafPairs[4]), "no event"},
		{"event not a map", leaf(replacePair(leafPairs, 2, cText("x"))...), "event: wrong type"},
		{"event null", leaf(replacePair(leafPairs, 2, []byte{0xf6})...), "float or simple value"},
		{"received_time missing", leaf(leafPairs[0], leafPairs[1], leafPairs[3], leafPairs[4]), "no received_time"},
		{"received_time 0", leaf(replacePair(leafPairs, 3, cUint(0))...), "received_time: empty value present"},
		{"received_time negative", leaf(replacePair(leafPairs, 3, cHead(majorNeg, 5))...), "received_time: wrong type"},
		{"received_time beyond int64", leaf(replacePair(leafPairs, 3, cUint(1<<63))...), "received_time: out of range"},
		{"received_time tagged", leaf(replacePair(leafPairs, 3, append([]byte{0xc1}, cUint(rt/1e9)...))...), "tag"},
		{"received_time float", leaf(replacePair(leafPairs, 3, []byte{0xfb, 0x41, 0xda, 0x6a, 0x8c, 0x1c, 0x00, 0x00, 0x00})...), "float or simple value"},
		{"submitter missing", leaf(leafPairs[0], leafPairs[1], leafPairs[2], leafPairs[4]), "no submitter"},
		{"submitter empty", leaf(replacePair(leafPairs, 4, cText(""))...), "submitter: empty value present"},
		{"submitter control character", leaf(replacePair(leafPairs, 4, cText("token\a"))...), "submitter: contains control character U+0007"},
		{"submitter too long", leaf(replacePair(leafPairs, 4, cText(strings.Repeat("s", 1025)))...), "submitter: too long: 1025 bytes (max 1024)"},
		{"submitter bytes", leaf(replacePair(leafPairs, 4, cBytes([]byte(testSubmitter)))...), "submitter: wrong type"},
		{"submitter bad utf8", leaf(replacePair(leafPairs, 4, cText("\xff"))...), "submitter: invalid UTF-8"},
		{"digest flipped", leaf(replacePair(leafPairs, 5, cBytes(append(bytes.Clone(d[:31]), d[31]^1)))...), "event_digest does not match the event"},
		{"digest short", leaf(replacePair(leafPairs, 5, cBytes(d[:31]))...), "event_digest is 31 bytes, want 32"},
		{"digest missing", leaf(leafPairs[:4]...), "event_digest is 0 bytes, want 32"},
		{"digest as text", leaf(replacePair(leafPairs, 5, cText(string(d[:])))...), "event_digest: wrong type"},
		{"deep nesting", leaf(replacePair(leafPairs, 2, cMap(withPair(ev, kv{k(17), deep})...))...), "unknown key 17"},
		{"huge byte string length", append(bytes.Clone(good[:len(good)-35]), 0x05, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "event_digest: longer than the data"},
		{"huge array length", leaf(replacePair(leafPairs, 2, cMap(withPair(ev, kv{k(8), []byte{0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})...))...), "inputs: longer than the data"},
		{"oversized", append(bytes.Clone(good), make([]byte, maxLeafBytes)...), "66726 bytes exceeds 66613"},

		// Events that are well-formed CBOR but not canonical. Each gets a
		// correct digest, so only canonical form is at stake.
		{"event unknown key", leafWith(cMap(withPair(ev, kv{k(17), cText("x")})...)), "unknown key 17"},
		{"event duplicate key", leafWith(cMap(withPair(ev, kv{k(2), cText("evt-1")})...)), "key 2 out of order or repeated"},
		{"event unsorted keys", leafWith(cMap(append([]kv{ev[1], ev[0]}, ev[2:]...)...)), "key 1 out of order or repeated"},
		{"event empty string present", leafWith(cMap(withPair(ev, kv{k(11), cText("")})...)), "rationale: empty value present"},
		{"event zero present", leafWith(cMap(append([]kv{ev[0], ev[1], ev[2], ev[3], ev[4], ev[5], ev[6]}, kv{k(15), cMap(kv{k(1), cText("k")}, kv{k(2), cBytes(nil)})})...)), "signature.signature: empty value present"},
		{"event empty actor", leafWith(cMap(replacePair(ev, 6, cMap())...)), "actor: empty value present"},
		{"event empty inputs", leafWith(cMap(withPair(ev, kv{k(8), cArray()})...)), "inputs: empty value present"},
		{"event empty environment", leafWith(cMap(withPair(ev, kv{k(12), cMap()})...)), "environment: empty value present"},
		{"event environment unsorted", leafWith(cMap(withPair(ev, kv{k(12), cMap(kv{cText("bb"), cText("1")}, kv{cText("a"), cText("2")})})...)), "environment: keys out of order or repeated"},
		{"event environment duplicate", leafWith(cMap(withPair(ev, kv{k(12), cMap(kv{cText("a"), cText("1")}, kv{cText("a"), cText("2")})})...)), "environment: keys out of order or repeated"},
		{"event environment int key", leafWith(cMap(withPair(ev, kv{k(12), cMap(kv{cUint(1), cText("1")})})...)), "environment key: wrong type"},
		{"event environment bytes key", leafWith(cMap(withPair(ev, kv{k(12), cMap(kv{cBytes([]byte("a")), cText("1")})})...)), "environment key: wrong type"},
		{"event bad utf8", leafWith(cMap(replacePair(ev, 2, cText("evt-\xff"))...)), "event_id: invalid UTF-8"},
		{"event text as bytes", leafWith(cMap(replacePair(ev, 2, cBytes([]byte("evt-1")))...)), "event_id: wrong type"},
		{"event_time negative", leafWith(cMap(replacePair(ev, 5, cHead(majorNeg, 1))...)), "event_time: wrong type"},
		{"event_time beyond int64", leafWith(cMap(replacePair(ev, 5, cUint(1<<63+1))...)), "event_time: out of range"},
		{"operation beyond int32", leafWith(cMap(replacePair(ev, 4, cUint(1<<31))...)), "operation: out of range"},
		{"schema_version beyond uint32", leafWith(cMap(replacePair(ev, 1, cUint(1<<32))...)), "schema_version: out of range"},
		{"event non-minimal operation", leafWith(cMap(replacePair(ev, 4, []byte{0x18, 0x07})...)), "non-shortest integer or length"},
		{"event signature bytes as text", leafWith(cMap(withPair(ev, kv{k(15), cMap(kv{k(1), cText("k")}, kv{k(2), cText("sig")})})...)), "signature.signature: wrong type"},
		{"event nested unknown key", leafWith(cMap(replacePair(ev, 6, cMap(kv{k(1), cUint(2)}, kv{k(2), cText("svc")}, kv{k(9), cText("x")}))...)), "unknown key 9"},
		{"event inputs not array", leafWith(cMap(withPair(ev, kv{k(8), cMap(kv{k(1), cText("s3://b/x")})})...)), "inputs: wrong type"},
		{"event undefined", leafWith(cMap(withPair(ev, kv{k(11), []byte{0xf7}})...)), "float or simple value"},
		{"event null string", leafWith(cMap(withPair(ev, kv{k(11), []byte{0xf6}})...)), "float or simple value"},
		{"event simple value", leafWith(cMap(withPair(ev, kv{k(11), []byte{0xf0}})...)), "float or simple value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeLeaf(tc.b)
			if err == nil {
				t.Fatalf("DecodeLeaf(%x) = %v, want an error", tc.b, got)
			}
			t.Log(err)
			if !errors.Is(err, ErrMalformedLeaf) {
				t.Errorf("error %v does not wrap ErrMalformedLeaf", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if got, err := referenceDecodeLeaf(tc.b); err == nil {
				t.Errorf("the reference decoder accepts it: %v", got)
			}
		})
	}
}

// TestDecodeLeafAllocations: a leaf claiming huge lengths costs no more than
// its size to reject.
func TestDecodeLeafAllocations(t *testing.T) {
	bomb := cMap(kv{k(1), cUint(1)}, kv{k(2), []byte{0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
	allocs := testing.AllocsPerRun(10, func() { _, _ = DecodeLeaf(bomb) })
	if allocs > 50 {
		t.Errorf("rejecting a %d-byte length bomb took %v allocations", len(bomb), allocs)
	}
}

func TestDecodeLeafIsIndependentOfInput(t *testing.T) {
	_, leaf, err := NewLeaf(typicalEvent(), testNow, testSubmitter)
	if err != nil {
		t.Fatal(err)
	}
	le, err := DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	keep := proto.Clone(le)
	for i := range leaf {
		leaf[i] = 0
	}
	if !proto.Equal(le, keep) {
		t.Error("the decoded entry shares memory with the input bytes")
	}
}

// TestDecodeLeafOfInvalidEvents: NewLeaf does not validate, and whatever it
// writes must decode, even events Validate would refuse.
func TestDecodeLeafOfInvalidEvents(t *testing.T) {
	for name, e := range map[string]*provlogv1.ProvenanceEvent{
		"empty":              {},
		"empty nested":       {Actor: &provlogv1.Actor{}, Workflow: &provlogv1.Workflow{}, Signature: &provlogv1.SubmitterSignature{}},
		"empty elements":     {Inputs: []*provlogv1.Asset{{}, nil}, FieldLineage: []*provlogv1.FieldLineage{{Sources: []*provlogv1.FieldRef{{}}}}, SubjectEventIds: []string{""}, Environment: map[string]string{"": ""}},
		"negative enums":     {Operation: -5, Actor: &provlogv1.Actor{Type: -1 << 31}},
		"unknown enums":      {Operation: 1 << 30, Actor: &provlogv1.Actor{Type: 99}},
		"max schema version": {SchemaVersion: 1<<32 - 1},
	} {
		t.Run(name, func(t *testing.T) {
			le, leaf, err := NewLeaf(e, testNow, testSubmitter)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeLeaf(leaf)
			if err != nil {
				t.Fatalf("DecodeLeaf(NewLeaf(...)): %v", err)
			}
			_, again, err := NewLeaf(got.GetEvent(), got.GetReceivedTime().AsTime(), got.GetSubmitter())
			if err != nil || !bytes.Equal(again, leaf) {
				t.Errorf("re-encoding the decoded leaf: %v\n got %x\nwant %x", err, again, leaf)
			}
			if ref, err := referenceDecodeLeaf(leaf); err != nil || !proto.Equal(ref, got) {
				t.Errorf("reference decoder: %v, %v", ref, err)
			}
			_ = le
		})
	}
}
