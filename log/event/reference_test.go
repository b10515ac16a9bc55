package event

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode"

	"github.com/fxamacker/cbor/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	// RFC 8949 §4.2.1 Core Deterministic Encoding: shortest-form integers
	// and lengths, definite lengths only, map keys sorted by the bytewise
	// lexicographic order of their encodings. No tags, no floats.
	eo := cbor.CoreDetEncOptions()
	eo.TagsMd = cbor.TagsForbidden
	eo.String = cbor.StringToTextString
	eo.OmitEmpty = cbor.OmitEmptyCBORValue
	var err error
	if encMode, err = eo.EncMode(); err != nil {
		panic(fmt.Sprintf("event: bad CBOR encoding options: %v", err))
	}
	do := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		// The deepest leaf item is leaf > event > field_lineage > entry >
		// sources > ref: 6 levels.
		MaxNestedLevels: 8,
		// Every element takes at least one byte, and a leaf is at most
		// maxLeafBytes long, so these limits never reject a leaf that
		// NewLeaf could have written; they only cap work on garbage.
		MaxArrayElements: maxLeafBytes,
		MaxMapPairs:      maxLeafBytes,
	}
	if decMode, err = do.DecMode(); err != nil {
		panic(fmt.Sprintf("event: bad CBOR decoding options: %v", err))
	}
}

// This file is a second, independent implementation of ENCODING.md, for the
// tests: the layout stated declaratively as mirror structs whose integer
// keys are the proto field numbers, every field omitted when empty, encoded
// and decoded by github.com/fxamacker/cbor/v2 in Core Deterministic mode.
// The package's own encoder and decoder are hand-written for speed (no
// reflection); the tests and fuzzers check that the two implementations
// produce the same bytes and accept the same leaves.

type eventCBOR struct {
	SchemaVersion   uint32             `cbor:"1,keyasint,omitempty"`
	EventID         string             `cbor:"2,keyasint,omitempty"`
	Tenant          string             `cbor:"3,keyasint,omitempty"`
	Operation       int32              `cbor:"4,keyasint,omitempty"`
	EventTime       uint64             `cbor:"5,keyasint,omitempty"`
	Actor           *actorCBOR         `cbor:"6,keyasint,omitempty"`
	Workflow        *workflowCBOR      `cbor:"7,keyasint,omitempty"`
	Inputs          []assetCBOR        `cbor:"8,keyasint,omitempty"`
	Outputs         []assetCBOR        `cbor:"9,keyasint,omitempty"`
	FieldLineage    []fieldLineageCBOR `cbor:"10,keyasint,omitempty"`
	Rationale       string             `cbor:"11,keyasint,omitempty"`
	Environment     map[string]string  `cbor:"12,keyasint,omitempty"`
	Extensions      map[string]string  `cbor:"13,keyasint,omitempty"`
	SubjectEventIDs []string           `cbor:"14,keyasint,omitempty"`
	Signature       *signatureCBOR     `cbor:"15,keyasint,omitempty"`
	Sensitive       []sensitiveCBOR    `cbor:"16,keyasint,omitempty"`
}

type sensitiveCBOR struct {
	Name           string `cbor:"1,keyasint,omitempty"`
	Classification string `cbor:"2,keyasint,omitempty"`
	Value          string `cbor:"3,keyasint,omitempty"`
	KeyID          string `cbor:"4,keyasint,omitempty"`
	Commitment     []byte `cbor:"5,keyasint,omitempty"`
}

type actorCBOR struct {
	Type        int32  `cbor:"1,keyasint,omitempty"`
	ID          string `cbor:"2,keyasint,omitempty"`
	OnBehalfOf  string `cbor:"3,keyasint,omitempty"`
	DisplayName string `cbor:"4,keyasint,omitempty"`
}

type workflowCBOR struct {
	Platform        string `cbor:"1,keyasint,omitempty"`
	PlatformVersion string `cbor:"2,keyasint,omitempty"`
	WorkflowID      string `cbor:"3,keyasint,omitempty"`
	WorkflowVersion string `cbor:"4,keyasint,omitempty"`
	RunID           string `cbor:"5,keyasint,omitempty"`
	ParentRunID     string `cbor:"6,keyasint,omitempty"`
	StepID          string `cbor:"7,keyasint,omitempty"`
}

type assetCBOR struct {
	URI            string   `cbor:"1,keyasint,omitempty"`
	Version        string   `cbor:"2,keyasint,omitempty"`
	Digest         string   `cbor:"3,keyasint,omitempty"`
	Fields         []string `cbor:"4,keyasint,omitempty"`
	Classification string   `cbor:"5,keyasint,omitempty"`
	RecordKey      string   `cbor:"6,keyasint,omitempty"`
}

type fieldLineageCBOR struct {
	OutputURI      string         `cbor:"1,keyasint,omitempty"`
	OutputField    string         `cbor:"2,keyasint,omitempty"`
	Sources        []fieldRefCBOR `cbor:"3,keyasint,omitempty"`
	Transformation string         `cbor:"4,keyasint,omitempty"`
}

type fieldRefCBOR struct {
	URI   string `cbor:"1,keyasint,omitempty"`
	Field string `cbor:"2,keyasint,omitempty"`
}

type signatureCBOR struct {
	KeyID     string `cbor:"1,keyasint,omitempty"`
	Signature []byte `cbor:"2,keyasint,omitempty"`
}

type leafCBOR struct {
	LeafVersion  uint32          `cbor:"1,keyasint,omitempty"`
	Event        cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	ReceivedTime uint64          `cbor:"3,keyasint,omitempty"`
	Submitter    string          `cbor:"4,keyasint,omitempty"`
	EventDigest  []byte          `cbor:"5,keyasint,omitempty"`
}

func timestampFromNanos(ns uint64) (*timestamppb.Timestamp, error) {
	if ns == 0 {
		return nil, nil
	}
	if ns > math.MaxInt64 {
		return nil, fmt.Errorf("%d nanoseconds overflows int64", ns)
	}
	return &timestamppb.Timestamp{Seconds: int64(ns / 1e9), Nanos: int32(ns % 1e9)}, nil
}

func eventFromCBOR(m *eventCBOR) (*provlogv1.ProvenanceEvent, error) {
	et, err := timestampFromNanos(m.EventTime)
	if err != nil {
		return nil, fmt.Errorf("event_time: %w", err)
	}
	e := &provlogv1.ProvenanceEvent{
		SchemaVersion:   m.SchemaVersion,
		EventId:         m.EventID,
		Tenant:          m.Tenant,
		Operation:       provlogv1.Operation(m.Operation),
		EventTime:       et,
		Inputs:          assetsFromCBOR(m.Inputs),
		Outputs:         assetsFromCBOR(m.Outputs),
		Rationale:       m.Rationale,
		Environment:     m.Environment,
		Extensions:      m.Extensions,
		SubjectEventIds: m.SubjectEventIDs,
	}
	if a := m.Actor; a != nil {
		e.Actor = &provlogv1.Actor{
			Type:        provlogv1.ActorType(a.Type),
			Id:          a.ID,
			OnBehalfOf:  a.OnBehalfOf,
			DisplayName: a.DisplayName,
		}
	}
	if w := m.Workflow; w != nil {
		e.Workflow = &provlogv1.Workflow{
			Platform:        w.Platform,
			PlatformVersion: w.PlatformVersion,
			WorkflowId:      w.WorkflowID,
			WorkflowVersion: w.WorkflowVersion,
			RunId:           w.RunID,
			ParentRunId:     w.ParentRunID,
			StepId:          w.StepID,
		}
	}
	if len(m.FieldLineage) > 0 {
		e.FieldLineage = make([]*provlogv1.FieldLineage, len(m.FieldLineage))
		for i := range m.FieldLineage {
			c := &m.FieldLineage[i]
			fl := &provlogv1.FieldLineage{
				OutputUri:      c.OutputURI,
				OutputField:    c.OutputField,
				Transformation: c.Transformation,
			}
			if len(c.Sources) > 0 {
				fl.Sources = make([]*provlogv1.FieldRef, len(c.Sources))
				for j, s := range c.Sources {
					fl.Sources[j] = &provlogv1.FieldRef{Uri: s.URI, Field: s.Field}
				}
			}
			e.FieldLineage[i] = fl
		}
	}
	if s := m.Signature; s != nil {
		e.Signature = &provlogv1.SubmitterSignature{KeyId: s.KeyID, Signature: s.Signature}
	}
	for _, s := range m.Sensitive {
		e.Sensitive = append(e.Sensitive, &provlogv1.SensitiveValue{Name: s.Name, Classification: s.Classification, Value: s.Value, KeyId: s.KeyID, Commitment: s.Commitment})
	}
	return e, nil
}

func assetsFromCBOR(cs []assetCBOR) []*provlogv1.Asset {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*provlogv1.Asset, len(cs))
	for i := range cs {
		c := &cs[i]
		out[i] = &provlogv1.Asset{
			Uri:            c.URI,
			Version:        c.Version,
			Digest:         c.Digest,
			Fields:         c.Fields,
			Classification: c.Classification,
			RecordKey:      c.RecordKey,
		}
	}
	return out
}

// referenceDecodeLeaf is DecodeLeaf written the other way, with nothing
// from the package's own encoder or decoder: a strict fxamacker/cbor
// decoding into the mirror structs, checked for canonical form by encoding
// them again with the Core Deterministic encoder. FuzzDecodeLeaf checks
// that it and DecodeLeaf accept the same leaves and decode them alike.
func referenceDecodeLeaf(b []byte) (*provlogv1.LeafEntry, error) {
	if len(b) > maxLeafBytes {
		return nil, fmt.Errorf("%d bytes exceeds %d", len(b), maxLeafBytes)
	}
	var lc leafCBOR
	if err := decMode.Unmarshal(b, &lc); err != nil {
		return nil, err
	}
	if lc.LeafVersion != LeafVersion && lc.LeafVersion != LeafVersionSensitive {
		return nil, fmt.Errorf("leaf_version %d", lc.LeafVersion)
	}
	if len(lc.Event) == 0 || len(lc.Event) > MaxEventBytes {
		return nil, fmt.Errorf("event of %d bytes", len(lc.Event))
	}
	var ec eventCBOR
	if err := decMode.Unmarshal(lc.Event, &ec); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	ev, err := eventFromCBOR(&ec)
	if err != nil {
		return nil, err
	}
	if (lc.LeafVersion == LeafVersionSensitive) != (len(ec.Sensitive) > 0) {
		return nil, fmt.Errorf("leaf_version %d with %d sensitive values", lc.LeafVersion, len(ec.Sensitive))
	}
	for _, s := range ec.Sensitive {
		if s.Value != "" || len(s.Commitment) != sha256.Size || s.KeyID == "" || strings.ContainsFunc(s.KeyID, func(r rune) bool { return !isIDByte(byte(r)) || r >= 0x80 }) || len(s.KeyID) > 128 {
			return nil, fmt.Errorf("sensitive value not sealed")
		}
	}
	if again, err := referenceEncodeErr(ev); err != nil || !bytes.Equal(again, lc.Event) {
		return nil, fmt.Errorf("event not canonical (%v)", err)
	}
	if len(lc.EventDigest) != sha256.Size || sha256.Sum256(lc.Event) != [32]byte(lc.EventDigest) {
		return nil, fmt.Errorf("bad event_digest")
	}
	rt, err := timestampFromNanos(lc.ReceivedTime)
	if err != nil || rt == nil {
		return nil, fmt.Errorf("bad received_time (%v)", err)
	}
	if lc.Submitter == "" || len(lc.Submitter) > 1024 || strings.IndexFunc(lc.Submitter, unicode.IsControl) >= 0 {
		return nil, fmt.Errorf("bad submitter")
	}
	if again, err := encMode.Marshal(&lc); err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("leaf not canonical (%v)", err)
	}
	return &provlogv1.LeafEntry{
		LeafVersion:  lc.LeafVersion,
		Event:        ev,
		ReceivedTime: rt,
		Submitter:    lc.Submitter,
		EventDigest:  lc.EventDigest,
	}, nil
}

// referenceEncode encodes e through the mirror structs with the
// fxamacker/cbor Core Deterministic encoder: an independent implementation
// of ENCODING.md to check the hand-written encoder against. e must be
// encodable (valid UTF-8, timestamps in range).
func referenceEncode(t testing.TB, e *provlogv1.ProvenanceEvent) []byte {
	t.Helper()
	b, err := referenceEncodeErr(e)
	if err != nil {
		t.Fatalf("referenceEncode: %v", err)
	}
	return b
}

func referenceEncodeErr(e *provlogv1.ProvenanceEvent) ([]byte, error) {
	et, reason := timestampNanos(e.GetEventTime())
	if reason != "" {
		return nil, fmt.Errorf("event_time: %s", reason)
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
	// fxamacker/cbor's omitempty keeps a non-nil pointer to an empty
	// struct; ENCODING.md §3 leaves an all-empty message out.
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
	for _, s := range e.GetSensitive() {
		m.Sensitive = append(m.Sensitive, sensitiveCBOR{Name: s.GetName(), Classification: s.GetClassification(), Value: s.GetValue(), KeyID: s.GetKeyId(), Commitment: s.GetCommitment()})
	}
	return encMode.Marshal(m)
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
