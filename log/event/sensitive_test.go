package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// TestCommitmentVector computes a commitment by hand, from ENCODING.md §11.
func TestCommitmentVector(t *testing.T) {
	salt := bytes.Repeat([]byte{0xab}, 32)
	value := []byte("alice@example.com")
	var in []byte
	in = append(in, "provlog sensitive value commitment v1\n"...)
	in = append(in, 0, 0, 0, 0, 0, 0, 0, 32)
	in = append(in, salt...)
	in = append(in, 0, 0, 0, 0, 0, 0, 0, byte(len(value)))
	in = append(in, value...)
	want := sha256.Sum256(in)
	if got := Commitment(salt, value); got != want {
		t.Fatalf("Commitment = %x, want %x", got, want)
	}
	if !VerifyCommitment(want[:], salt, value) {
		t.Error("VerifyCommitment refuses the right opening")
	}
	for _, bad := range []struct{ salt, value []byte }{
		{salt, []byte("alice@example.org")},
		{bytes.Repeat([]byte{0xac}, 32), value},
		{salt[:31], value},
	} {
		if VerifyCommitment(want[:], bad.salt, bad.value) {
			t.Errorf("VerifyCommitment accepts salt %x value %q", bad.salt, bad.value)
		}
	}
	// Length prefixes: moving a byte between salt and value changes it.
	a := Commitment([]byte("ab"), []byte("c"))
	b := Commitment([]byte("a"), []byte("bc"))
	if a == b {
		t.Error("commitment is ambiguous between salt and value")
	}
	t.Logf("vector: %s", hex.EncodeToString(want[:]))
}

func sensitiveEvent() *provlogv1.ProvenanceEvent {
	e := validEvent(provlogv1.Operation_OPERATION_WRITE)
	e.Sensitive = []*provlogv1.SensitiveValue{{Name: "email", Classification: "pii", Value: "a@example.com"}}
	return e
}

func TestValidateSensitive(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		modify func(e *provlogv1.ProvenanceEvent)
		field  string
		reason string
	}{
		{"ok", func(*provlogv1.ProvenanceEvent) {}, "", ""},
		{"empty value ok", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Value = "" }, "", ""},
		{"multiline value ok", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Value = "line 1\nline 2" }, "", ""},
		{"no name", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Name = "" }, "sensitive[0].name", "required"},
		{"no classification", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Classification = "" }, "sensitive[0].classification", "required"},
		{"bad classification", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Classification = "PII" }, "sensitive[0].classification", "invalid character"},
		{"key id set", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].KeyId = "acme/pii/1" }, "sensitive[0].key_id", "set by the log"},
		{"commitment set", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Commitment = make([]byte, 32) }, "sensitive[0].commitment", "set by the log"},
		{"duplicate name", func(e *provlogv1.ProvenanceEvent) {
			e.Sensitive = append(e.Sensitive, &provlogv1.SensitiveValue{Name: "email", Classification: "pii"})
		}, "sensitive[1].name", "duplicate of sensitive[0].name"},
		{"value too long", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Value = strings.Repeat("x", 16<<10+1) }, "sensitive[0].value", "too long"},
		{"value bad utf-8", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Value = "\xff" }, "sensitive[0].value", "invalid UTF-8"},
		{"signed", func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "k", Signature: make([]byte, 64)}
		}, "signature", "not supported on events with sensitive values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := sensitiveEvent()
			tc.modify(e)
			err := Validate(e, now)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			fe, ok := err.(*FieldError)
			if !ok || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("Validate = %v, want %s: ...%s...", err, tc.field, tc.reason)
			}
		})
	}
}

// TestValidateSealed: a leaf's event validates with ValidateSealed, whose
// sensitive values must be sealed, not with Validate; the other rules are
// the same.
func TestValidateSealed(t *testing.T) {
	now := time.Now()
	sealed := func() *provlogv1.ProvenanceEvent {
		e := sensitiveEvent()
		c := Commitment(make([]byte, 32), []byte(e.Sensitive[0].Value))
		e.Sensitive[0].Value, e.Sensitive[0].KeyId, e.Sensitive[0].Commitment = "", "acme/pii/1", c[:]
		return e
	}
	if _, leaf, err := NewLeaf(sealed(), now, "s"); err != nil {
		t.Fatal(err)
	} else if le, err := DecodeLeaf(leaf); err != nil {
		t.Fatal(err)
	} else if err := ValidateSealed(le.GetEvent(), now); err != nil {
		t.Fatalf("ValidateSealed of a decoded leaf's event: %v", err)
	}
	tests := []struct {
		name   string
		modify func(e *provlogv1.ProvenanceEvent)
		field  string
		reason string
	}{
		{"ok", func(*provlogv1.ProvenanceEvent) {}, "", ""},
		{"no sensitive values", func(e *provlogv1.ProvenanceEvent) { e.Sensitive = nil }, "", ""},
		{"value in clear", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Value = "a@example.com" }, "sensitive[0].value", "in clear"},
		{"no key id", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].KeyId = "" }, "sensitive[0].key_id", "required"},
		{"short commitment", func(e *provlogv1.ProvenanceEvent) { e.Sensitive[0].Commitment = make([]byte, 31) }, "sensitive[0].commitment", "32 bytes"},
		{"second value unsealed", func(e *provlogv1.ProvenanceEvent) {
			e.Sensitive = append(e.Sensitive, &provlogv1.SensitiveValue{Name: "phone", Classification: "pii", Value: "555"})
		}, "sensitive[1].value", "in clear"},
		{"duplicate name", func(e *provlogv1.ProvenanceEvent) {
			e.Sensitive = append(e.Sensitive, proto.Clone(e.Sensitive[0]).(*provlogv1.SensitiveValue))
		}, "sensitive[1].name", "duplicate of sensitive[0].name"},
		{"other rules still apply", func(e *provlogv1.ProvenanceEvent) { e.Tenant = "" }, "tenant", "required"},
		{"signed", func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "k", Signature: make([]byte, 64)}
		}, "signature", "not supported on events with sensitive values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := sealed()
			tc.modify(e)
			err := ValidateSealed(e, now)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("ValidateSealed: %v", err)
				}
				return
			}
			fe, ok := err.(*FieldError)
			if !ok || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("ValidateSealed = %v, want %s: ...%s...", err, tc.field, tc.reason)
			}
		})
	}
	if err := Validate(sealed(), now); err == nil {
		t.Error("Validate accepts a sealed event: submitters must not set key_id or commitment")
	}
}

func TestNewLeafRefusesUnsealed(t *testing.T) {
	e := sensitiveEvent()
	if _, _, err := NewLeaf(e, time.Now(), "s"); err == nil || !strings.Contains(err.Error(), "sensitive[0].value: in clear") {
		t.Fatalf("NewLeaf of an unsealed event: %v", err)
	}
	c := Commitment(make([]byte, 32), []byte(e.Sensitive[0].Value))
	e.Sensitive[0].Value, e.Sensitive[0].KeyId, e.Sensitive[0].Commitment = "", "acme/pii/1", c[:]
	le, leaf, err := NewLeaf(e, time.Now(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if le.LeafVersion != LeafVersionSensitive || leaf[2] != LeafVersionSensitive {
		t.Errorf("leaf version %d / byte %d, want 2", le.LeafVersion, leaf[2])
	}
	if _, err := DecodeLeaf(leaf); err != nil {
		t.Errorf("DecodeLeaf: %v", err)
	}
	if bytes.Contains(leaf, []byte("a@example.com")) {
		t.Error("the leaf holds the value")
	}
	e.Sensitive[0].KeyId = ""
	if _, _, err := NewLeaf(e, time.Now(), "s"); err == nil {
		t.Error("NewLeaf accepted a sealed value without key id")
	}
}
