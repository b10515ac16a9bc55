package event

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// testNow is the log's clock in tests.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

const (
	sha256A = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	sha256B = "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	sha512A = "sha512:ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"
)

// typicalEvent is what an engine sends for one ordinary step: a transform
// from two inputs to one output with a few fields and environment
// attributes. Benchmarks and many tests start from it.
func typicalEvent() *provlogv1.ProvenanceEvent {
	return &provlogv1.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       "n8n:exec-81234:node-7",
		Tenant:        "acme",
		Operation:     provlogv1.Operation_OPERATION_TRANSFORM,
		EventTime:     timestamppb.New(testNow.Add(-2 * time.Second)),
		Actor: &provlogv1.Actor{
			Type: provlogv1.ActorType_ACTOR_TYPE_SERVICE,
			Id:   "svc-crm-sync@acme.example",
		},
		Workflow: &provlogv1.Workflow{
			Platform:        "n8n",
			PlatformVersion: "1.82.1",
			WorkflowId:      "wf-crm-to-warehouse",
			WorkflowVersion: "17",
			RunId:           "exec-81234",
			StepId:          "node-7",
		},
		Inputs: []*provlogv1.Asset{
			{Uri: "crm://acme/contacts", Version: "2026-03-14T15:00:00Z", Digest: sha256A, Fields: []string{"email", "name", "country"}, Classification: "pii"},
			{Uri: "s3://acme-ref/countries.csv", Digest: sha256B, Fields: []string{"code", "region"}, Classification: "public"},
		},
		Outputs: []*provlogv1.Asset{
			{Uri: "postgres://warehouse/public.customers", Fields: []string{"email_hash", "region"}, Classification: "internal"},
		},
		FieldLineage: []*provlogv1.FieldLineage{
			{OutputUri: "postgres://warehouse/public.customers", OutputField: "email_hash", Sources: []*provlogv1.FieldRef{{Uri: "crm://acme/contacts", Field: "email"}}, Transformation: "hash"},
			{OutputUri: "postgres://warehouse/public.customers", OutputField: "region", Sources: []*provlogv1.FieldRef{{Uri: "crm://acme/contacts", Field: "country"}, {Uri: "s3://acme-ref/countries.csv", Field: "region"}}, Transformation: "lookup"},
		},
		Environment: map[string]string{"host": "worker-3", "region": "eu-west-1", "image": "n8nio/n8n@" + sha256A},
	}
}

// validEvent returns a minimal valid event for op.
func validEvent(op provlogv1.Operation) *provlogv1.ProvenanceEvent {
	e := &provlogv1.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       "evt-1",
		Tenant:        "acme",
		Operation:     op,
		EventTime:     timestamppb.New(testNow.Add(-time.Minute)),
		Actor:         &provlogv1.Actor{Type: provlogv1.ActorType_ACTOR_TYPE_SERVICE, Id: "svc"},
		Workflow:      &provlogv1.Workflow{Platform: "airflow", RunId: "run-1"},
	}
	in := &provlogv1.Asset{Uri: "s3://bucket/in.csv"}
	out := &provlogv1.Asset{Uri: "s3://bucket/out.csv"}
	switch op {
	case provlogv1.Operation_OPERATION_READ:
		e.Inputs = []*provlogv1.Asset{in}
	case provlogv1.Operation_OPERATION_WRITE:
		e.Outputs = []*provlogv1.Asset{out}
	case provlogv1.Operation_OPERATION_TRANSFORM:
		e.Inputs = []*provlogv1.Asset{in}
		e.Outputs = []*provlogv1.Asset{out}
	case provlogv1.Operation_OPERATION_EXTERNAL_CALL:
		e.Outputs = []*provlogv1.Asset{{Uri: "https://api.example.com/v1/score"}}
	case provlogv1.Operation_OPERATION_APPROVAL, provlogv1.Operation_OPERATION_OVERRIDE:
		e.Actor.Type = provlogv1.ActorType_ACTOR_TYPE_PERSON
		e.Actor.Id = "jane@acme.example"
		e.Rationale = "Checked the totals against the ledger."
		e.SubjectEventIds = []string{"evt-0"}
	}
	return e
}

func clone(e *provlogv1.ProvenanceEvent) *provlogv1.ProvenanceEvent {
	return proto.Clone(e).(*provlogv1.ProvenanceEvent)
}

func mustEncode(t testing.TB, e *provlogv1.ProvenanceEvent) []byte {
	t.Helper()
	b, err := EncodeEvent(e)
	if err != nil {
		t.Fatalf("EncodeEvent: %v", err)
	}
	return b
}

func n(s string, k int) string { return strings.Repeat(s, k) }
