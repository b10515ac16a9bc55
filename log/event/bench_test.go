package event

import (
	"testing"
)

func BenchmarkValidate(b *testing.B) {
	e := typicalEvent()
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(e, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := typicalEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewLeaf(b *testing.B) {
	e := typicalEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := NewLeaf(e, testNow, "token:engine-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateNewLeaf is the per-event work of an append.
func BenchmarkValidateNewLeaf(b *testing.B) {
	e := typicalEvent()
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(e, testNow); err != nil {
			b.Fatal(err)
		}
		if _, _, err := NewLeaf(e, testNow, "token:engine-1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeLeaf(b *testing.B) {
	_, leaf, err := NewLeaf(typicalEvent(), testNow, "token:engine-1")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(leaf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeLeaf(leaf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeafHash(b *testing.B) {
	_, leaf, err := NewLeaf(typicalEvent(), testNow, "token:engine-1")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(leaf)))
	for b.Loop() {
		LeafHash(leaf)
	}
}

// The reference implementation (reference_test.go), for comparison: it is
// what the package would cost if it encoded and decoded through
// fxamacker/cbor's reflection.

func BenchmarkReferenceEncodeEvent(b *testing.B) {
	e := typicalEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := referenceEncodeErr(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReferenceDecodeLeaf(b *testing.B) {
	_, leaf, err := NewLeaf(typicalEvent(), testNow, "token:engine-1")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(leaf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := referenceDecodeLeaf(leaf); err != nil {
			b.Fatal(err)
		}
	}
}
