package event

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// sampleEvents are events of many shapes, all valid at testNow.
func sampleEvents(t testing.TB) map[string]*provlogv1.ProvenanceEvent {
	m := map[string]*provlogv1.ProvenanceEvent{"typical": typicalEvent()}
	for op := range provlogv1.Operation_name {
		if op != 0 {
			m[provlogv1.Operation(op).String()] = validEvent(provlogv1.Operation(op))
		}
	}
	for _, c := range goldenCases() {
		m["golden "+c.name] = c.event(t)
	}
	return m
}

// TestEncoderMatchesReference: the hand-written encoder and the
// fxamacker/cbor Core Deterministic encoding of the mirror structs agree,
// and encodedEventSize predicts the length.
func TestEncoderMatchesReference(t *testing.T) {
	for name, e := range sampleEvents(t) {
		t.Run(name, func(t *testing.T) {
			got := mustEncode(t, e)
			if ref := referenceEncode(t, e); !bytes.Equal(got, ref) {
				t.Errorf("EncodeEvent and the reference encoder disagree:\n got %x\n ref %x", got, ref)
			}
			if n := encodedEventSize(e); n != len(got) {
				t.Errorf("encodedEventSize = %d, len(EncodeEvent) = %d", n, len(got))
			}
		})
	}
}

// TestDeterminism: the same logical event, however it was built, encodes to
// the same bytes.
func TestDeterminism(t *testing.T) {
	want := mustEncode(t, typicalEvent())

	t.Run("fields set in another order", func(t *testing.T) {
		base := typicalEvent()
		e := &provlogv1.ProvenanceEvent{}
		e.Environment = map[string]string{}
		for _, k := range []string{"region", "image", "host"} {
			e.Environment[k] = base.Environment[k]
		}
		e.FieldLineage = base.FieldLineage
		e.Outputs = base.Outputs
		e.Inputs = base.Inputs
		e.Workflow = &provlogv1.Workflow{StepId: "node-7", RunId: "exec-81234", WorkflowVersion: "17", WorkflowId: "wf-crm-to-warehouse", PlatformVersion: "1.82.1", Platform: "n8n"}
		e.Actor = &provlogv1.Actor{Id: base.Actor.Id, Type: base.Actor.Type}
		e.EventTime = base.EventTime
		e.Operation = base.Operation
		e.Tenant = base.Tenant
		e.EventId = base.EventId
		e.SchemaVersion = 1
		if got := mustEncode(t, e); !bytes.Equal(got, want) {
			t.Errorf("got %x\nwant %x", got, want)
		}
	})

	t.Run("nil versus empty", func(t *testing.T) {
		e := typicalEvent()
		e.Rationale = ""
		e.SubjectEventIds = []string{}
		e.Extensions = map[string]string{}
		e.Signature = &provlogv1.SubmitterSignature{}
		e.Actor.OnBehalfOf = ""
		e.Workflow.ParentRunId = ""
		e.Outputs[0].Digest = ""
		e.Outputs[0].RecordKey = ""
		e.FieldLineage[0].Sources[0].Field = "email"
		if got := mustEncode(t, e); !bytes.Equal(got, want) {
			t.Errorf("empty values changed the encoding")
		}
		e2 := validEvent(opStart)
		e3 := validEvent(opStart)
		e3.Inputs, e3.Outputs, e3.FieldLineage = []*provlogv1.Asset{}, []*provlogv1.Asset{}, []*provlogv1.FieldLineage{}
		e3.Environment = map[string]string{}
		if !bytes.Equal(mustEncode(t, e2), mustEncode(t, e3)) {
			t.Errorf("empty lists and maps changed the encoding")
		}
		// An all-empty nested message is the same as none.
		e2.Actor, e3.Actor = nil, &provlogv1.Actor{}
		if !bytes.Equal(mustEncode(t, e2), mustEncode(t, e3)) {
			t.Errorf("an empty actor encodes differently from none")
		}
	})

	t.Run("map insertion order", func(t *testing.T) {
		keys := []string{"a", "b", "aa", "Z", "é", "host", "region", "k8s.io/namespace", "x-1", "x-10", "x-2"}
		var first []byte
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 50 {
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			e := typicalEvent()
			e.Environment = map[string]string{}
			e.Extensions = map[string]string{}
			for _, k := range keys {
				e.Environment[k] = "v-" + k
				e.Extensions[k] = k
			}
			got := mustEncode(t, e)
			if i == 0 {
				first = got
			} else if !bytes.Equal(got, first) {
				t.Fatalf("insertion order %v changed the encoding", keys)
			}
		}
	})

	t.Run("protojson field order", func(t *testing.T) {
		a := `{"schemaVersion":1,"eventId":"evt-1","tenant":"acme","operation":"OPERATION_TRANSFORM",
			"eventTime":"2026-03-14T15:08:26.5Z","actor":{"type":"ACTOR_TYPE_SERVICE","id":"svc"},
			"workflow":{"platform":"airflow","runId":"run-1"},
			"inputs":[{"uri":"s3://b/in","fields":["a","b"]}],"outputs":[{"uri":"s3://b/out"}],
			"environment":{"host":"h1","region":"eu"}}`
		b := `{"environment":{"region":"eu","host":"h1"},"outputs":[{"uri":"s3://b/out","fields":[]}],
			"inputs":[{"fields":["a","b"],"uri":"s3://b/in","digest":""}],
			"workflow":{"run_id":"run-1","platform":"airflow","stepId":""},"actor":{"id":"svc","type":2},
			"eventTime":"2026-03-14T16:08:26.500000000+01:00","operation":3,"tenant":"acme","event_id":"evt-1",
			"schema_version":1,"rationale":"","extensions":{},"subjectEventIds":[]}`
		var ea, eb provlogv1.ProvenanceEvent
		if err := protojson.Unmarshal([]byte(a), &ea); err != nil {
			t.Fatal(err)
		}
		if err := protojson.Unmarshal([]byte(b), &eb); err != nil {
			t.Fatal(err)
		}
		if err := Validate(&ea, testNow); err != nil {
			t.Fatal(err)
		}
		ba, bb := mustEncode(t, &ea), mustEncode(t, &eb)
		if !bytes.Equal(ba, bb) {
			t.Errorf("same event in two JSON spellings:\n%x\n%x", ba, bb)
		}
	})

	t.Run("protobuf wire round trip", func(t *testing.T) {
		for name, e := range sampleEvents(t) {
			w, err := proto.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var back provlogv1.ProvenanceEvent
			if err := proto.Unmarshal(w, &back); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mustEncode(t, e), mustEncode(t, &back)) {
				t.Errorf("%s: encoding changed across a protobuf round trip", name)
			}
		}
	})

	t.Run("repeated order is kept", func(t *testing.T) {
		e := typicalEvent()
		e.Inputs[0], e.Inputs[1] = e.Inputs[1], e.Inputs[0]
		if bytes.Equal(mustEncode(t, e), want) {
			t.Errorf("swapping inputs did not change the encoding")
		}
	})
}

// TestEveryFieldCounts: changing any one field changes the encoding, and
// so the digest; nothing is silently dropped.
func TestEveryFieldCounts(t *testing.T) {
	base := mustEncode(t, typicalEvent())
	edits := map[string]func(e *provlogv1.ProvenanceEvent){
		"schema_version":    func(e *provlogv1.ProvenanceEvent) { e.SchemaVersion = 2 },
		"event_id":          func(e *provlogv1.ProvenanceEvent) { e.EventId += "x" },
		"tenant":            func(e *provlogv1.ProvenanceEvent) { e.Tenant += "x" },
		"operation":         func(e *provlogv1.ProvenanceEvent) { e.Operation = opRead },
		"event_time nanos":  func(e *provlogv1.ProvenanceEvent) { e.EventTime.Nanos++ },
		"actor.type":        func(e *provlogv1.ProvenanceEvent) { e.Actor.Type = 3 },
		"actor.id":          func(e *provlogv1.ProvenanceEvent) { e.Actor.Id += "x" },
		"actor.on_behalf":   func(e *provlogv1.ProvenanceEvent) { e.Actor.OnBehalfOf = "x" },
		"actor.display":     func(e *provlogv1.ProvenanceEvent) { e.Actor.DisplayName = "x" },
		"workflow.platform": func(e *provlogv1.ProvenanceEvent) { e.Workflow.Platform += "x" },
		"workflow.pv":       func(e *provlogv1.ProvenanceEvent) { e.Workflow.PlatformVersion += "x" },
		"workflow.id":       func(e *provlogv1.ProvenanceEvent) { e.Workflow.WorkflowId += "x" },
		"workflow.version":  func(e *provlogv1.ProvenanceEvent) { e.Workflow.WorkflowVersion += "x" },
		"workflow.run_id":   func(e *provlogv1.ProvenanceEvent) { e.Workflow.RunId += "x" },
		"workflow.parent":   func(e *provlogv1.ProvenanceEvent) { e.Workflow.ParentRunId = "x" },
		"workflow.step":     func(e *provlogv1.ProvenanceEvent) { e.Workflow.StepId += "x" },
		"input uri":         func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].Uri += "x" },
		"input version":     func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].Version = "x" },
		"input digest":      func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].Digest = sha256A },
		"input fields":      func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].Fields = e.Inputs[1].Fields[:1] },
		"input class":       func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].Classification = "x" },
		"input record":      func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].RecordKey = "x" },
		"output uri":        func(e *provlogv1.ProvenanceEvent) { e.Outputs[0].Uri += "x" },
		"lineage out uri":   func(e *provlogv1.ProvenanceEvent) { e.FieldLineage[1].OutputUri += "x" },
		"lineage out field": func(e *provlogv1.ProvenanceEvent) { e.FieldLineage[1].OutputField += "x" },
		"lineage src uri":   func(e *provlogv1.ProvenanceEvent) { e.FieldLineage[1].Sources[1].Uri += "x" },
		"lineage src field": func(e *provlogv1.ProvenanceEvent) { e.FieldLineage[1].Sources[1].Field += "x" },
		"lineage transform": func(e *provlogv1.ProvenanceEvent) { e.FieldLineage[1].Transformation += "x" },
		"rationale":         func(e *provlogv1.ProvenanceEvent) { e.Rationale = "x" },
		"environment value": func(e *provlogv1.ProvenanceEvent) { e.Environment["host"] += "x" },
		"environment key":   func(e *provlogv1.ProvenanceEvent) { e.Environment["x"] = "" },
		"extensions":        func(e *provlogv1.ProvenanceEvent) { e.Extensions = map[string]string{"x": "y"} },
		"subjects":          func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = []string{"x"} },
		"signature key":     func(e *provlogv1.ProvenanceEvent) { e.Signature = &provlogv1.SubmitterSignature{KeyId: "k"} },
		"signature bytes":   func(e *provlogv1.ProvenanceEvent) { e.Signature = &provlogv1.SubmitterSignature{Signature: []byte{1}} },
		"env to extensions": func(e *provlogv1.ProvenanceEvent) { e.Extensions, e.Environment = e.Environment, nil },
		"input to output": func(e *provlogv1.ProvenanceEvent) {
			e.Outputs = append(e.Outputs, e.Inputs[1])
			e.Inputs = e.Inputs[:1]
		},
	}
	seen := map[string]string{}
	for name, edit := range edits {
		e := typicalEvent()
		edit(e)
		got := mustEncode(t, e)
		if bytes.Equal(got, base) {
			t.Errorf("%s: the edit did not change the encoding", name)
		}
		if other, ok := seen[string(got)]; ok {
			t.Errorf("%s and %s encode alike", name, other)
		}
		seen[string(got)] = name
		if ref := referenceEncode(t, e); !bytes.Equal(got, ref) {
			t.Errorf("%s: encoder and reference disagree", name)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(e *provlogv1.ProvenanceEvent)
		want *FieldError
	}{
		{"event_time before epoch", func(e *provlogv1.ProvenanceEvent) { e.EventTime = &timestamppb.Timestamp{Seconds: -1} }, want("event_time", "must be after 1970-01-01T00:00:00Z")},
		{"event_time zero", func(e *provlogv1.ProvenanceEvent) { e.EventTime = &timestamppb.Timestamp{} }, want("event_time", "must be after 1970-01-01T00:00:00Z")},
		{"tenant", func(e *provlogv1.ProvenanceEvent) { e.Tenant = "\xff" }, want("tenant", "invalid UTF-8")},
		{"nested list", func(e *provlogv1.ProvenanceEvent) { e.Inputs[1].Fields[1] = "\xff" }, want("inputs[1].fields[1]", "invalid UTF-8")},
		{"lineage source", func(e *provlogv1.ProvenanceEvent) { e.FieldLineage[1].Sources[1].Uri = "\xff" }, want("field_lineage[1].sources[1].uri", "invalid UTF-8")},
		{"map key", func(e *provlogv1.ProvenanceEvent) { e.Environment["\xff"] = "v" }, want(`environment["\xff"]`, "key: invalid UTF-8")},
		{"map value", func(e *provlogv1.ProvenanceEvent) { e.Extensions = map[string]string{"k": "\xff"} }, want(`extensions["k"]`, "invalid UTF-8")},
		{"first in field order", func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "\xff"}
			e.Rationale = "\xff"
			e.Workflow.StepId = "\xff"
		}, want("workflow.step_id", "invalid UTF-8")},
		{"signature key id", func(e *provlogv1.ProvenanceEvent) { e.Signature = &provlogv1.SubmitterSignature{KeyId: "\xff"} }, want("signature.key_id", "invalid UTF-8")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := typicalEvent()
			tc.edit(e)
			for fn, f := range map[string]func(*provlogv1.ProvenanceEvent) error{
				"EncodeEvent": func(e *provlogv1.ProvenanceEvent) error { _, err := EncodeEvent(e); return err },
				"Digest":      func(e *provlogv1.ProvenanceEvent) error { _, err := Digest(e); return err },
				"NewLeaf":     func(e *provlogv1.ProvenanceEvent) error { _, _, err := NewLeaf(e, testNow, "s"); return err },
				"Validate":    func(e *provlogv1.ProvenanceEvent) error { return Validate(e, testNow) },
			} {
				var got *FieldError
				if err := f(e); !errors.As(err, &got) {
					t.Fatalf("%s: %v, want a *FieldError", fn, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", fn, diff)
				}
			}
		})
	}
	if _, err := EncodeEvent(nil); err == nil {
		t.Error("EncodeEvent(nil) succeeded")
	}
}

func TestDigest(t *testing.T) {
	e := typicalEvent()
	d, err := Digest(e)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(mustEncode(t, e)); d != want {
		t.Errorf("Digest = %x, want SHA-256 of EncodeEvent %x", d, want)
	}
	le, _, err := NewLeaf(e, testNow, "s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(le.GetEventDigest(), d[:]) {
		t.Errorf("leaf event_digest %x != Digest %x", le.GetEventDigest(), d)
	}
}

func TestSigningPayload(t *testing.T) {
	e := typicalEvent()
	unsigned := mustEncode(t, e)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SigningPayload(e)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "provlog event signature v1\n"
	if !bytes.Equal(msg, append([]byte(prefix), unsigned...)) {
		t.Fatalf("SigningPayload = %q..., want the prefix and the unsigned encoding", msg[:min(len(msg), 40)])
	}
	e.Signature = &provlogv1.SubmitterSignature{KeyId: "k1", Signature: ed25519.Sign(priv, msg)}
	if err := Validate(e, testNow); err != nil {
		t.Fatal(err)
	}
	again, err := SigningPayload(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, msg) {
		t.Error("SigningPayload depends on the signature")
	}
	if e.GetSignature() == nil {
		t.Error("SigningPayload cleared the signature")
	}
	if !ed25519.Verify(pub, again, e.GetSignature().GetSignature()) {
		t.Error("signature does not verify")
	}
	if signed := mustEncode(t, e); bytes.Equal(signed, unsigned) {
		t.Error("EncodeEvent leaves out the signature")
	}
	// Domain separation: the signature is not over the bare encoding.
	if ed25519.Verify(pub, unsigned, e.GetSignature().GetSignature()) {
		t.Error("signature verifies over the bare encoding")
	}
}

func TestNewLeafErrors(t *testing.T) {
	e := typicalEvent()
	for _, tc := range []struct {
		name      string
		e         *provlogv1.ProvenanceEvent
		received  time.Time
		submitter string
		want      string
	}{
		{"zero received time", e, time.Time{}, "s", "received time 0001-01-01T00:00:00Z: must be after 1970-01-01T00:00:00Z"},
		{"epoch received time", e, time.Unix(0, 0), "s", "must be after 1970-01-01T00:00:00Z"},
		{"received after 2262", e, time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), "s", "end of the int64 nanosecond range"},
		{"no submitter", e, testNow, "", `submitter "": required`},
		{"submitter bad utf8", e, testNow, "\xff", "invalid UTF-8"},
		{"submitter control", e, testNow, "a\nb", "control character"},
		{"submitter too long", e, testNow, strings.Repeat("s", 1025), "too long"},
		{"nil event", nil, testNow, "s", "event: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewLeaf(tc.e, tc.received, tc.submitter)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewLeaf error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	big := validEvent(opStart)
	big.Extensions = map[string]string{}
	for i := range 16 {
		big.Extensions[fmt.Sprint("k", i)] = strings.Repeat("v", 4096)
	}
	var fe *FieldError
	if _, _, err := NewLeaf(big, testNow, "s"); !errors.As(err, &fe) || fe.Field != "event" || !strings.Contains(fe.Reason, "exceeds 65536 bytes") {
		t.Errorf("NewLeaf(oversized event) = %v, want event: encoded size ... exceeds", err)
	}
}

func TestNewLeaf(t *testing.T) {
	e := typicalEvent()
	le, leaf, err := NewLeaf(e, testNow, "token:engine-1")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Digest(e)
	want := &provlogv1.LeafEntry{
		LeafVersion:  1,
		Event:        e,
		ReceivedTime: timestamppb.New(testNow),
		Submitter:    "token:engine-1",
		EventDigest:  d[:],
	}
	if !proto.Equal(le, want) {
		t.Errorf("NewLeaf entry = %v, want %v", le, want)
	}
	if ref := referenceLeaf(t, le); !bytes.Equal(ref, leaf) {
		t.Errorf("leaf bytes disagree with the reference encoder:\n got %x\n ref %x", leaf, ref)
	}
	back, err := DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, le) {
		t.Errorf("DecodeLeaf(NewLeaf) = %v, want %v", back, le)
	}
	// The returned leaf is the caller's: later calls do not reuse it.
	keep := bytes.Clone(leaf)
	for range 10 {
		if _, _, err := NewLeaf(validEvent(opRead), testNow, "other"); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(leaf, keep) {
		t.Error("a later NewLeaf changed an earlier leaf's bytes")
	}
}

// textReasonSlow is textReason without the 8-byte fast path.
func textReasonSlow(s string, min, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	var ctl rune = -1
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			ctl = r
			break
		}
	}
	switch {
	case len(s) < min:
		return "required"
	case len(s) > max:
		return tooLong(len(s), max)
	case ctl >= 0:
		return "contains control character " + runeName(ctl)
	}
	return ""
}

func TestTextReasonFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	special := []byte{0, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0x9f, 0xc2, 0x85, 0xff, '\n', '\t', 'a'}
	for range 200000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = special[rng.IntN(len(special))]
			} else {
				b[i] = byte(0x20 + rng.IntN(0x5f))
			}
		}
		s := string(b)
		ml := rng.IntN(2) == 0
		if got, want := textReason(s, 1, 30, ml), textReasonSlow(s, 1, 30, ml); got != want {
			t.Fatalf("textReason(%q, multiline=%v) = %q, want %q", s, ml, got, want)
		}
	}
}

// TestSizeLimits: an event of exactly MaxEventBytes makes a leaf, one byte
// more does not, and the largest possible leaf decodes.
func TestSizeLimits(t *testing.T) {
	sized := func(n int) *provlogv1.ProvenanceEvent {
		e := validEvent(opStart)
		e.Extensions = map[string]string{}
		for i := range 15 {
			e.Extensions[fmt.Sprint("k", i)] = strings.Repeat("v", 4096)
		}
		base := encodedEventSize(e)
		e.Extensions["last"] = ""
		// "last" and its value take 5 bytes + the value (≥ 256 bytes).
		e.Extensions["last"] = strings.Repeat("w", n-base-5-3)
		if got := len(mustEncode(t, e)); got != n {
			t.Fatalf("built an event of %d bytes, want %d", got, n)
		}
		return e
	}
	e := sized(MaxEventBytes)
	if err := Validate(e, testNow); err != nil {
		t.Fatalf("Validate(event of MaxEventBytes): %v", err)
	}
	_, leaf, err := NewLeaf(e, time.Unix(0, 1<<63-1), strings.Repeat("s", maxSubmitterLen))
	if err != nil {
		t.Fatalf("NewLeaf(event of MaxEventBytes): %v", err)
	}
	if len(leaf) != maxLeafBytes {
		t.Errorf("largest leaf is %d bytes, maxLeafBytes is %d", len(leaf), maxLeafBytes)
	}
	if _, err := DecodeLeaf(leaf); err != nil {
		t.Errorf("DecodeLeaf(largest leaf): %v", err)
	}
	e = sized(MaxEventBytes + 1)
	if err := Validate(e, testNow); err == nil || err.Error() != "event: encoded size 65537 exceeds 65536 bytes" {
		t.Errorf("Validate(event of MaxEventBytes+1) = %v", err)
	}
	if _, _, err := NewLeaf(e, testNow, "s"); err == nil {
		t.Errorf("NewLeaf(event of MaxEventBytes+1) succeeded")
	}
}
