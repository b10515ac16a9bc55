package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Mapping is a declarative mapping from a webhook payload to a provenance
// event (a file per source, named by the hooks config). Values are
// templates: "{path}" is replaced by the payload value at path (dotted,
// with [i] for array elements: "workflow.id", "nodes[0].name"), "{path?}"
// by "" when the value is missing, and anything else is literal text.
// A missing value without "?" is a mapping error naming the payload field.
// In "each" blocks, paths are relative to the element; "$." starts at the
// payload's root again.
//
//	{
//	  "mappingVersion": 1,
//	  "platform": "n8n",
//	  "payloadVersion": "n8n-execution/1",   // recorded in the leaf, drift reports
//	  "payloadSchema": { JSON Schema 2020-12 },
//	  "event": {
//	    "eventId": "n8n:{executionId}",
//	    "operation": "{status}",              // or literal OPERATION_… name
//	    "operationMap": {"success": "OPERATION_TRANSFORM", "error": "OPERATION_RUN_FAIL"},
//	    "eventTime": "{stoppedAt}",           // RFC 3339, or Unix seconds
//	    "actor": {"type": "ACTOR_TYPE_WORKFLOW", "id": "…", "onBehalfOf": "…", "displayName": "…"},
//	    "workflow": {"platformVersion": "…", "workflowId": "…", "workflowVersion": "…",
//	                 "runId": "…", "parentRunId": "…", "stepId": "…"},
//	    "inputs":  {"each": "nodes", "where": {"role": ["read"]},
//	                "uri": "…", "version": "…", "digest": "…", "fields": "{columns?}",
//	                "classification": "…", "recordKey": "…"},
//	    "outputs": { same as inputs },
//	    "fieldLineage": {"each": "…", "outputUri": "…", "outputField": "…", "transformation": "…",
//	                     "sources": {"each": "…", "uri": "…", "field": "…"}},
//	    "rationale": "…",
//	    "environment": {"key": "template"},
//	    "extensions": {"key": "template"}
//	  }
//	}
type Mapping struct {
	MappingVersion int             `json:"mappingVersion"`
	Platform       string          `json:"platform"`
	PayloadVersion string          `json:"payloadVersion"`
	PayloadSchema  json.RawMessage `json:"payloadSchema"`
	Event          EventMapping    `json:"event"`

	schema *payloadSchema
}

// EventMapping maps the event's fields.
type EventMapping struct {
	EventID      string            `json:"eventId"`
	Operation    string            `json:"operation"`
	OperationMap map[string]string `json:"operationMap"`
	EventTime    string            `json:"eventTime"`
	Actor        struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		OnBehalfOf  string `json:"onBehalfOf"`
		DisplayName string `json:"displayName"`
	} `json:"actor"`
	Workflow struct {
		PlatformVersion string `json:"platformVersion"`
		WorkflowID      string `json:"workflowId"`
		WorkflowVersion string `json:"workflowVersion"`
		RunID           string `json:"runId"`
		ParentRunID     string `json:"parentRunId"`
		StepID          string `json:"stepId"`
	} `json:"workflow"`
	Inputs       *AssetsMapping       `json:"inputs"`
	Outputs      *AssetsMapping       `json:"outputs"`
	FieldLineage *FieldLineageMapping `json:"fieldLineage"`
	Rationale    string               `json:"rationale"`
	Environment  map[string]string    `json:"environment"`
	Extensions   map[string]string    `json:"extensions"`
}

// AssetsMapping maps each element of an array (or the payload itself when
// Each is "") that passes Where to an asset.
type AssetsMapping struct {
	Each           string              `json:"each"`
	Where          map[string][]string `json:"where"`
	URI            string              `json:"uri"`
	Version        string              `json:"version"`
	Digest         string              `json:"digest"`
	Fields         string              `json:"fields"`
	Classification string              `json:"classification"`
	RecordKey      string              `json:"recordKey"`
}

// FieldLineageMapping maps each element of an array to a field lineage
// entry, and each element of its Sources.Each array to a source.
type FieldLineageMapping struct {
	Each           string `json:"each"`
	OutputURI      string `json:"outputUri"`
	OutputField    string `json:"outputField"`
	Transformation string `json:"transformation"`
	Sources        struct {
		Each  string `json:"each"`
		URI   string `json:"uri"`
		Field string `json:"field"`
	} `json:"sources"`
}

// ParseMapping reads a mapping file and compiles its payload schema.
func ParseMapping(b []byte) (*Mapping, error) {
	var m Mapping
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("couldn't parse mapping: %w", err)
	}
	switch {
	case m.MappingVersion != 1:
		return nil, fmt.Errorf("mappingVersion: want 1, got %d", m.MappingVersion)
	case m.Platform == "":
		return nil, errors.New("platform: required")
	case m.PayloadVersion == "":
		return nil, errors.New("payloadVersion: required (names the payload schema's version)")
	case len(m.PayloadSchema) == 0:
		return nil, errors.New("payloadSchema: required (every ingestion path validates against a versioned schema)")
	case m.Event.EventID == "":
		return nil, errors.New("event.eventId: required (a template that is stable for one execution, so re-sent hooks are idempotent)")
	case m.Event.Operation == "":
		return nil, errors.New("event.operation: required")
	case m.Event.Workflow.RunID == "":
		return nil, errors.New("event.workflow.runId: required")
	}
	for k, v := range m.Event.OperationMap {
		if _, ok := pb.Operation_value[v]; !ok {
			return nil, fmt.Errorf("event.operationMap[%q]: %q is not an operation (OPERATION_…)", k, v)
		}
	}
	if m.Event.Actor.Type != "" {
		if _, ok := pb.ActorType_value[m.Event.Actor.Type]; !ok {
			return nil, fmt.Errorf("event.actor.type: %q is not an actor type (ACTOR_TYPE_…)", m.Event.Actor.Type)
		}
	}
	s, err := compileSchema(newCompiler(), "https://provlog.invalid/hooks/"+m.Platform+"/"+m.PayloadVersion+".json", m.PayloadSchema, "")
	if err != nil {
		return nil, fmt.Errorf("payloadSchema: %w", err)
	}
	m.schema = s
	return &m, nil
}

// Validate checks a payload against the mapping's schema: a *SchemaError
// naming the field.
func (m *Mapping) Validate(v any) error { return m.schema.validate(v) }

// Map builds the event for tenant from payload v (decoded with UseNumber).
// An error is a *SchemaError naming the payload field.
func (m *Mapping) Map(v any, tenant string) (*pb.ProvenanceEvent, error) {
	r := &renderer{root: v}
	em := &m.Event
	ev := &pb.ProvenanceEvent{SchemaVersion: 1, Tenant: tenant}
	ev.EventId = r.text(v, em.EventID, "eventId")

	op := r.text(v, em.Operation, "operation")
	if mapped, ok := em.OperationMap[op]; ok {
		op = mapped
	}
	if r.err == nil {
		n, ok := pb.Operation_value[op]
		if !ok {
			r.fail(r.lastPath, fmt.Sprintf("value %q maps to no operation (operationMap has no entry for it)", op))
		}
		ev.Operation = pb.Operation(n)
	}
	if t := r.text(v, em.EventTime, "eventTime"); r.err == nil {
		ts, err := parseTime(t)
		if err != nil {
			r.fail(r.lastPath, err.Error())
		}
		ev.EventTime = timestamppb.New(ts)
	}
	at := em.Actor.Type
	if at == "" {
		at = "ACTOR_TYPE_WORKFLOW"
	}
	ev.Actor = &pb.Actor{
		Type:        pb.ActorType(pb.ActorType_value[at]),
		Id:          r.text(v, em.Actor.ID, "actor.id"),
		OnBehalfOf:  r.text(v, em.Actor.OnBehalfOf, "actor.onBehalfOf"),
		DisplayName: r.text(v, em.Actor.DisplayName, "actor.displayName"),
	}
	w := em.Workflow
	ev.Workflow = &pb.Workflow{
		Platform:        m.Platform,
		PlatformVersion: r.text(v, w.PlatformVersion, "workflow.platformVersion"),
		WorkflowId:      r.text(v, w.WorkflowID, "workflow.workflowId"),
		WorkflowVersion: r.text(v, w.WorkflowVersion, "workflow.workflowVersion"),
		RunId:           r.text(v, w.RunID, "workflow.runId"),
		ParentRunId:     r.text(v, w.ParentRunID, "workflow.parentRunId"),
		StepId:          r.text(v, w.StepID, "workflow.stepId"),
	}
	ev.Inputs = r.assets(em.Inputs, "inputs")
	ev.Outputs = r.assets(em.Outputs, "outputs")
	if fm := em.FieldLineage; fm != nil {
		for _, el := range r.each(fm.Each, "fieldLineage") {
			fl := &pb.FieldLineage{
				OutputUri:      r.text(el.v, fm.OutputURI, "fieldLineage.outputUri"),
				OutputField:    r.text(el.v, fm.OutputField, "fieldLineage.outputField"),
				Transformation: r.text(el.v, fm.Transformation, "fieldLineage.transformation"),
			}
			base := r.base
			r.base = el.path
			for _, src := range r.eachIn(el.v, fm.Sources.Each, "fieldLineage.sources") {
				fl.Sources = append(fl.Sources, &pb.FieldRef{
					Uri:   r.text(src.v, fm.Sources.URI, "fieldLineage.sources.uri"),
					Field: r.text(src.v, fm.Sources.Field, "fieldLineage.sources.field"),
				})
			}
			r.base = base
			ev.FieldLineage = append(ev.FieldLineage, fl)
		}
	}
	ev.Rationale = r.text(v, em.Rationale, "rationale")
	ev.Environment = r.textMap(v, em.Environment, "environment")
	ev.Extensions = r.textMap(v, em.Extensions, "extensions")
	if r.err != nil {
		return nil, r.err
	}
	return ev, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err == nil && fmt.Sprint(sec) == s {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor Unix seconds", s)
}

// renderer renders templates against a payload and keeps the first error.
type renderer struct {
	root     any
	base     string // payload path of the current "each" element
	lastPath string
	err      error
}

type element struct {
	v    any
	path string
}

func (r *renderer) fail(path, reason string) {
	if r.err == nil {
		r.err = &SchemaError{Field: path, Reason: reason}
	}
}

// resolve finds path relative to cur (or the root with "$.").
func (r *renderer) resolve(cur any, path string) (any, string, bool) {
	if rest, ok := strings.CutPrefix(path, "$."); ok {
		v, found := lookup(r.root, rest)
		return v, rest, found
	}
	full := path
	if r.base != "" {
		full = r.base + "." + path
	}
	v, found := lookup(cur, path)
	return v, full, found
}

// text renders tmpl against cur; what names the event field being mapped,
// for the error message.
func (r *renderer) text(cur any, tmpl, what string) string {
	if r.err != nil || tmpl == "" {
		return ""
	}
	var b strings.Builder
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		path := tmpl[i+1 : i+j]
		tmpl = tmpl[i+j+1:]
		optional := strings.HasSuffix(path, "?")
		path = strings.TrimSuffix(path, "?")
		v, full, ok := r.resolve(cur, path)
		r.lastPath = full
		if !ok || v == nil {
			if !optional {
				r.fail(full, "missing (needed for "+what+")")
				return ""
			}
			continue
		}
		s, ok := scalarString(v)
		if !ok {
			r.fail(full, "not a string, number or boolean (needed for "+what+")")
			return ""
		}
		b.WriteString(s)
	}
	return b.String()
}

func (r *renderer) textMap(cur any, m map[string]string, what string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, tmpl := range m {
		if s := r.text(cur, tmpl, what+"."+k); s != "" {
			out[k] = s
		}
	}
	return out
}

// list renders a template that is one placeholder naming an array of
// scalars (or a scalar) as a list.
func (r *renderer) list(cur any, tmpl, what string) []string {
	if r.err != nil || tmpl == "" {
		return nil
	}
	inner, ok := strings.CutPrefix(tmpl, "{")
	if inner, ok2 := strings.CutSuffix(inner, "}"); ok && ok2 && !strings.ContainsAny(inner, "{}") {
		optional := strings.HasSuffix(inner, "?")
		v, full, found := r.resolve(cur, strings.TrimSuffix(inner, "?"))
		if !found || v == nil {
			if !optional {
				r.fail(full, "missing (needed for "+what+")")
			}
			return nil
		}
		if a, isArr := v.([]any); isArr {
			out := make([]string, 0, len(a))
			for i, x := range a {
				s, ok := scalarString(x)
				if !ok {
					r.fail(pathIndex(full, i), "not a string, number or boolean (needed for "+what+")")
					return nil
				}
				out = append(out, s)
			}
			return out
		}
	}
	if s := r.text(cur, tmpl, what); s != "" {
		return []string{s}
	}
	return nil
}

func (r *renderer) each(path, what string) []element { return r.eachIn(r.root, path, what) }

// eachIn lists the elements of the array at path under cur; "" is cur.
func (r *renderer) eachIn(cur any, path, what string) []element {
	if r.err != nil {
		return nil
	}
	if path == "" {
		return []element{{cur, r.base}}
	}
	v, full, ok := r.resolve(cur, path)
	if !ok || v == nil {
		return nil // no such list: no elements
	}
	a, isArr := v.([]any)
	if !isArr {
		r.fail(full, "not an array (needed for "+what+")")
		return nil
	}
	out := make([]element, len(a))
	for i, x := range a {
		out[i] = element{x, pathIndex(full, i)}
	}
	return out
}

func (r *renderer) assets(am *AssetsMapping, what string) []*pb.Asset {
	if am == nil {
		return nil
	}
	var out []*pb.Asset
	for _, el := range r.each(am.Each, what) {
		if !r.matches(el.v, am.Where) {
			continue
		}
		base := r.base
		r.base = el.path
		a := &pb.Asset{
			Uri:            r.text(el.v, am.URI, what+".uri"),
			Version:        r.text(el.v, am.Version, what+".version"),
			Digest:         r.text(el.v, am.Digest, what+".digest"),
			Fields:         r.list(el.v, am.Fields, what+".fields"),
			Classification: r.text(el.v, am.Classification, what+".classification"),
			RecordKey:      r.text(el.v, am.RecordKey, what+".recordKey"),
		}
		r.base = base
		out = append(out, a)
	}
	return out
}

// matches reports whether every Where path of el holds one of its values.
func (r *renderer) matches(el any, where map[string][]string) bool {
	for path, allowed := range where {
		v, ok := lookup(el, path)
		if !ok {
			return false
		}
		s, ok := scalarString(v)
		if !ok {
			return false
		}
		found := false
		for _, a := range allowed {
			if a == s {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
