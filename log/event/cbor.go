package event

import (
	"fmt"
	"math"
	"strconv"

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

// The mirror structs below state the encoding declaratively: CBOR maps whose
// integer keys are the proto field numbers, every field omitted when it
// holds its zero value, so that an absent field and an empty one encode
// alike. ENCODING.md has the same layout as a table.
//
// DecodeLeaf decodes through them with decMode, which rejects what is not
// well-formed CBOR of the right shape. Encoding them with encMode is the
// reference encoding: the hand-written encoder in encoder.go, which is what
// the package uses because it is several times faster, must produce the
// same bytes, and the tests and fuzzers check that it does.

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

func timestampFromNanos(ns uint64) (*timestamppb.Timestamp, error) {
	if ns == 0 {
		return nil, nil
	}
	if ns > math.MaxInt64 {
		return nil, fmt.Errorf("%d nanoseconds overflows int64", ns)
	}
	return &timestamppb.Timestamp{Seconds: int64(ns / 1e9), Nanos: int32(ns % 1e9)}, nil
}

func sizeReason(n int) string {
	return "encoded size " + strconv.Itoa(n) + " exceeds " + strconv.Itoa(MaxEventBytes) + " bytes"
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
