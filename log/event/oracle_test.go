package event

import (
	"testing"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// referenceEncode encodes e through the mirror structs with the
// fxamacker/cbor Core Deterministic encoder: an independent implementation
// of ENCODING.md to check the hand-written encoder against. e must be
// encodable (valid UTF-8, timestamps in range).
func referenceEncode(t testing.TB, e *provlogv1.ProvenanceEvent) []byte {
	t.Helper()
	et, reason := timestampNanos(e.GetEventTime())
	if reason != "" {
		t.Fatalf("referenceEncode: event_time: %s", reason)
	}
	m := &eventCBOR{
		SchemaVersion:   e.GetSchemaVersion(),
		EventID:         e.GetEventId(),
		Tenant:          e.GetTenant(),
		Operation:       int32(e.GetOperation()),
		EventTime:       et,
		Inputs:          referenceAssets(e.GetInputs()),
		Outputs:         referenceAssets(e.GetOutputs()),
		Rationale:       e.GetRationale(),
		Environment:     e.GetEnvironment(),
		Extensions:      e.GetExtensions(),
		SubjectEventIDs: e.GetSubjectEventIds(),
	}
	if a := e.GetActor(); a != nil {
		ac := actorCBOR{Type: int32(a.GetType()), ID: a.GetId(), OnBehalfOf: a.GetOnBehalfOf(), DisplayName: a.GetDisplayName()}
		if ac != (actorCBOR{}) {
			m.Actor = &ac
		}
	}
	if w := e.GetWorkflow(); w != nil {
		wc := workflowCBOR{
			Platform: w.GetPlatform(), PlatformVersion: w.GetPlatformVersion(),
			WorkflowID: w.GetWorkflowId(), WorkflowVersion: w.GetWorkflowVersion(),
			RunID: w.GetRunId(), ParentRunID: w.GetParentRunId(), StepID: w.GetStepId(),
		}
		if wc != (workflowCBOR{}) {
			m.Workflow = &wc
		}
	}
	for _, fl := range e.GetFieldLineage() {
		c := fieldLineageCBOR{OutputURI: fl.GetOutputUri(), OutputField: fl.GetOutputField(), Transformation: fl.GetTransformation()}
		for _, s := range fl.GetSources() {
			c.Sources = append(c.Sources, fieldRefCBOR{URI: s.GetUri(), Field: s.GetField()})
		}
		m.FieldLineage = append(m.FieldLineage, c)
	}
	if s := e.GetSignature(); s != nil && (s.GetKeyId() != "" || len(s.GetSignature()) > 0) {
		m.Signature = &signatureCBOR{KeyID: s.GetKeyId(), Signature: s.GetSignature()}
	}
	b, err := encMode.Marshal(m)
	if err != nil {
		t.Fatalf("referenceEncode: %v", err)
	}
	return b
}

func referenceAssets(as []*provlogv1.Asset) []assetCBOR {
	var out []assetCBOR
	for _, a := range as {
		out = append(out, assetCBOR{
			URI: a.GetUri(), Version: a.GetVersion(), Digest: a.GetDigest(), Fields: a.GetFields(),
			Classification: a.GetClassification(), RecordKey: a.GetRecordKey(),
		})
	}
	return out
}

// referenceLeaf encodes a leaf through leafCBOR with the reference encoder.
func referenceLeaf(t testing.TB, le *provlogv1.LeafEntry) []byte {
	t.Helper()
	rt, reason := timestampNanos(le.GetReceivedTime())
	if reason != "" {
		t.Fatalf("referenceLeaf: received_time: %s", reason)
	}
	b, err := encMode.Marshal(&leafCBOR{
		LeafVersion:  le.GetLeafVersion(),
		Event:        referenceEncode(t, le.GetEvent()),
		ReceivedTime: rt,
		Submitter:    le.GetSubmitter(),
		EventDigest:  le.GetEventDigest(),
	})
	if err != nil {
		t.Fatalf("referenceLeaf: %v", err)
	}
	return b
}
