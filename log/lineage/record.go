package lineage

import (
	"encoding/binary"
	"errors"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// record is the compact form of one leaf that queries read instead of the
// log: everything a graph node or edge shows, without the environment,
// extensions and signature (the leaf itself has those, and every answer
// cites it).
type record struct {
	Leaf         uint64 // not stored: the key says it
	Tenant       string
	EventID      string
	Op           provlogv1.Operation
	EventTime    int64 // Unix nanoseconds; 0 when absent
	ReceivedTime int64
	Submitter    string
	ActorType    provlogv1.ActorType
	ActorID      string
	OnBehalfOf   string
	ActorName    string
	Platform     string
	PlatformVer  string
	WorkflowID   string
	WorkflowVer  string
	RunID        string
	ParentRunID  string
	StepID       string
	Inputs       []assetRef
	Outputs      []assetRef
	Lineage      []fieldLineage
	Subjects     []string
	Rationale    string
}

type assetRef struct {
	URI            string
	Version        string
	RecordKey      string
	Digest         string
	Classification string
	Fields         []string
}

type fieldLineage struct {
	OutputURI      string
	OutputField    string
	Transformation string
	Sources        []fieldRef
}

type fieldRef struct{ URI, Field string }

func (a assetRef) ref() ref { return ref{URI: a.URI, Version: a.Version, RecordKey: a.RecordKey} }

// ref names an asset as an event referenced it: a URI, and optionally a
// version and a record key. An empty version or record key stands for any.
type ref struct{ URI, Version, RecordKey string }

// matches is the asset matching rule (doc.go): same URI, and versions and
// record keys each equal or either one empty.
func (r ref) matches(o ref) bool {
	return r.URI == o.URI &&
		(r.Version == "" || o.Version == "" || r.Version == o.Version) &&
		(r.RecordKey == "" || o.RecordKey == "" || r.RecordKey == o.RecordKey)
}

const recordVersion = 1

func recordOf(le *provlogv1.LeafEntry, leaf uint64) *record {
	e := le.GetEvent()
	r := &record{
		Leaf:         leaf,
		Tenant:       e.GetTenant(),
		EventID:      e.GetEventId(),
		Op:           e.GetOperation(),
		Submitter:    le.GetSubmitter(),
		ActorType:    e.GetActor().GetType(),
		ActorID:      e.GetActor().GetId(),
		OnBehalfOf:   e.GetActor().GetOnBehalfOf(),
		ActorName:    e.GetActor().GetDisplayName(),
		Platform:     e.GetWorkflow().GetPlatform(),
		PlatformVer:  e.GetWorkflow().GetPlatformVersion(),
		WorkflowID:   e.GetWorkflow().GetWorkflowId(),
		WorkflowVer:  e.GetWorkflow().GetWorkflowVersion(),
		RunID:        e.GetWorkflow().GetRunId(),
		ParentRunID:  e.GetWorkflow().GetParentRunId(),
		StepID:       e.GetWorkflow().GetStepId(),
		Subjects:     e.GetSubjectEventIds(),
		Rationale:    e.GetRationale(),
		Inputs:       assetsOf(e.GetInputs()),
		Outputs:      assetsOf(e.GetOutputs()),
		ReceivedTime: nanos(le.GetReceivedTime().GetSeconds(), le.GetReceivedTime().GetNanos()),
	}
	if t := e.GetEventTime(); t != nil {
		r.EventTime = nanos(t.GetSeconds(), t.GetNanos())
	}
	for _, fl := range e.GetFieldLineage() {
		l := fieldLineage{OutputURI: fl.GetOutputUri(), OutputField: fl.GetOutputField(), Transformation: fl.GetTransformation()}
		for _, s := range fl.GetSources() {
			l.Sources = append(l.Sources, fieldRef{URI: s.GetUri(), Field: s.GetField()})
		}
		r.Lineage = append(r.Lineage, l)
	}
	return r
}

func nanos(s int64, n int32) int64 { return s*1e9 + int64(n) }

func assetsOf(as []*provlogv1.Asset) []assetRef {
	if len(as) == 0 {
		return nil
	}
	out := make([]assetRef, len(as))
	for i, a := range as {
		out[i] = assetRef{
			URI:            a.GetUri(),
			Version:        a.GetVersion(),
			RecordKey:      a.GetRecordKey(),
			Digest:         a.GetDigest(),
			Classification: a.GetClassification(),
			Fields:         a.GetFields(),
		}
	}
	return out
}

// enc appends values: unsigned varints and length-prefixed strings.
type enc []byte

func (e enc) uv(v uint64) enc { return binary.AppendUvarint(e, v) }
func (e enc) str(s string) enc {
	e = binary.AppendUvarint(e, uint64(len(s)))
	return append(e, s...)
}
func (e enc) strs(ss []string) enc {
	e = e.uv(uint64(len(ss)))
	for _, s := range ss {
		e = e.str(s)
	}
	return e
}

var errBadValue = errors.New("malformed index value")

// dec reads what enc wrote. The first error sticks; readers check err once
// at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadValue
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n := d.uv()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errBadValue
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a list length, refusing one that cannot fit in what is left
// (every element takes at least min bytes).
func (d *dec) count(min int) int {
	n := d.uv()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.err = errBadValue
		return 0
	}
	return int(n)
}

func (d *dec) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (r *record) encode() []byte {
	e := enc(make([]byte, 0, 512)).uv(recordVersion).
		str(r.Tenant).str(r.EventID).uv(uint64(r.Op)).
		uv(uint64(r.EventTime)).uv(uint64(r.ReceivedTime)).str(r.Submitter).
		uv(uint64(r.ActorType)).str(r.ActorID).str(r.OnBehalfOf).str(r.ActorName).
		str(r.Platform).str(r.PlatformVer).str(r.WorkflowID).str(r.WorkflowVer).
		str(r.RunID).str(r.ParentRunID).str(r.StepID)
	for _, as := range [2][]assetRef{r.Inputs, r.Outputs} {
		e = e.uv(uint64(len(as)))
		for _, a := range as {
			e = e.str(a.URI).str(a.Version).str(a.RecordKey).str(a.Digest).str(a.Classification).strs(a.Fields)
		}
	}
	e = e.uv(uint64(len(r.Lineage)))
	for _, l := range r.Lineage {
		e = e.str(l.OutputURI).str(l.OutputField).str(l.Transformation).uv(uint64(len(l.Sources)))
		for _, s := range l.Sources {
			e = e.str(s.URI).str(s.Field)
		}
	}
	return e.strs(r.Subjects).str(r.Rationale)
}

func decodeRecord(leaf uint64, b []byte) (*record, error) {
	d := dec{b: b}
	if v := d.uv(); d.err == nil && v != recordVersion {
		return nil, errBadValue
	}
	r := &record{Leaf: leaf}
	r.Tenant, r.EventID = d.str(), d.str()
	r.Op = provlogv1.Operation(d.uv())
	r.EventTime, r.ReceivedTime = int64(d.uv()), int64(d.uv())
	r.Submitter = d.str()
	r.ActorType = provlogv1.ActorType(d.uv())
	r.ActorID, r.OnBehalfOf, r.ActorName = d.str(), d.str(), d.str()
	r.Platform, r.PlatformVer, r.WorkflowID, r.WorkflowVer = d.str(), d.str(), d.str(), d.str()
	r.RunID, r.ParentRunID, r.StepID = d.str(), d.str(), d.str()
	for _, dst := range [2]*[]assetRef{&r.Inputs, &r.Outputs} {
		n := d.count(6)
		if n > 0 {
			*dst = make([]assetRef, n)
		}
		for i := range n {
			a := &(*dst)[i]
			a.URI, a.Version, a.RecordKey, a.Digest, a.Classification = d.str(), d.str(), d.str(), d.str(), d.str()
			a.Fields = d.strs()
		}
	}
	if n := d.count(4); n > 0 {
		r.Lineage = make([]fieldLineage, n)
		for i := range r.Lineage {
			l := &r.Lineage[i]
			l.OutputURI, l.OutputField, l.Transformation = d.str(), d.str(), d.str()
			if m := d.count(2); m > 0 {
				l.Sources = make([]fieldRef, m)
				for j := range l.Sources {
					l.Sources[j] = fieldRef{URI: d.str(), Field: d.str()}
				}
			}
		}
	}
	r.Subjects = d.strs()
	r.Rationale = d.str()
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadValue
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}
