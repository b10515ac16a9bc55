package ingest

import (
	"embed"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

//go:embed olspec/*.json
var olSpecFS embed.FS

// olSpecFiles maps each OpenLineage spec version provlog accepts to the
// embedded schema that transcribes its constraints.
var olSpecFiles = map[string]string{
	"1-0-0": "1-0-0.json", "1-0-1": "1-0-0.json", "1-0-2": "1-0-0.json",
	"1-0-3": "1-0-3.json", "1-0-4": "1-0-3.json", "1-0-5": "1-0-3.json",
	"2-0-0": "2-0-x.json", "2-0-1": "2-0-x.json", "2-0-2": "2-0-x.json",
}

// The three kinds of OpenLineage event.
const (
	olRunEvent     = "RunEvent"
	olDatasetEvent = "DatasetEvent"
	olJobEvent     = "JobEvent"
)

// olSchemaURL matches a schemaURL: https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent
// (older versions: #/definitions/RunEvent; the fragment is optional).
var olSchemaURL = regexp.MustCompile(`^https?://openlineage\.io/spec/([0-9]+-[0-9]+-[0-9]+)/OpenLineage\.json(?:#/(?:\$defs|definitions)/(RunEvent|DatasetEvent|JobEvent))?$`)

// olStandardFacets are the facets of the OpenLineage spec; any other facet
// is a custom one, kept in extensions and reported as drift.
var olStandardFacets = map[string]bool{
	// run
	"parent": true, "nominalTime": true, "errorMessage": true, "externalQuery": true,
	"processing_engine": true, "extractionError": true, "environmentVariables": true,
	"tags": true, "jobDependencies": true,
	// job
	"documentation": true, "sourceCodeLocation": true, "sourceCode": true, "sql": true,
	"ownership": true, "jobType": true,
	// dataset
	"schema": true, "dataSource": true, "lifecycleStateChange": true, "version": true,
	"columnLineage": true, "symlinks": true, "storage": true, "datasetType": true,
	"catalog": true, "partition": true, "hierarchy": true, "subset": true,
	// input and output dataset
	"dataQualityMetrics": true, "dataQualityAssertions": true, "inputStatistics": true,
	"outputStatistics": true, "icebergScanReport": true, "icebergCommitReport": true,
}

// openLineage validates and maps OpenLineage events.
type openLineage struct {
	schemas map[string]*payloadSchema // by file + "#" + kind
	drift   *Drift
}

func newOpenLineage(drift *Drift) (*openLineage, error) {
	o := &openLineage{schemas: map[string]*payloadSchema{}, drift: drift}
	c := newCompiler()
	files := map[string][]string{}
	for _, f := range olSpecFiles {
		files[f] = nil
	}
	for f := range files {
		doc, err := olSpecFS.ReadFile("olspec/" + f)
		if err != nil {
			return nil, fmt.Errorf("couldn't read embedded OpenLineage schema: %w", err)
		}
		kinds := []string{olRunEvent}
		if strings.HasPrefix(f, "2-") {
			kinds = append(kinds, olDatasetEvent, olJobEvent)
		}
		for _, k := range kinds {
			s, err := compileSchema(c, "https://provlog.invalid/openlineage/"+f, doc, "#/$defs/"+k)
			if err != nil {
				return nil, err
			}
			o.schemas[f+"#"+k] = s
		}
	}
	return o, nil
}

// olMapped is one OpenLineage event mapped to a provenance event, or the
// reason it carries nothing to append.
type olMapped struct {
	event   *pb.ProvenanceEvent
	skipped string
}

// mapEvent validates one OpenLineage event (v, decoded by decodeJSON) against
// the spec version its schemaURL declares and maps it for tenant. path is
// the event's place in the request ("" for a single event, "[3]" in a
// batch), prefixed to field names in errors.
func (o *openLineage) mapEvent(v any, tenant, path string) (olMapped, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return olMapped{}, &SchemaError{Field: path, Reason: "an OpenLineage event must be a JSON object"}
	}
	su, ok := m["schemaURL"].(string)
	if !ok {
		o.drift.Record("openlineage", tenant, DriftInvalid, "schemaURL", "", "required")
		return olMapped{}, &SchemaError{Field: pathJoin(path, "schemaURL"), Reason: "required: the OpenLineage spec version the event follows"}
	}
	sm := olSchemaURL.FindStringSubmatch(su)
	if sm == nil || olSpecFiles[sm[1]] == "" {
		o.drift.Record("openlineage", tenant, DriftUnknownVersion, "schemaURL", su, "")
		known := make([]string, 0, len(olSpecFiles))
		for k := range olSpecFiles {
			known = append(known, k)
		}
		slices.Sort(known)
		return olMapped{}, &SchemaError{Field: pathJoin(path, "schemaURL"), Reason: fmt.Sprintf("%q is not a known OpenLineage spec (want https://openlineage.io/spec/VERSION/OpenLineage.json#/$defs/KIND, VERSION one of %s)", su, strings.Join(known, ", "))}
	}
	version, kind := sm[1], sm[2]
	if kind == "" {
		switch {
		case m["run"] != nil:
			kind = olRunEvent
		case m["dataset"] != nil:
			kind = olDatasetEvent
		default:
			kind = olJobEvent
		}
	}
	sch := o.schemas[olSpecFiles[version]+"#"+kind]
	if sch == nil {
		o.drift.Record("openlineage", tenant, DriftUnknownVersion, "schemaURL", su, "")
		return olMapped{}, &SchemaError{Field: pathJoin(path, "schemaURL"), Reason: fmt.Sprintf("OpenLineage spec %s has no %s", version, kind)}
	}
	if err := sch.validate(v); err != nil {
		se := err.(*SchemaError)
		o.drift.Record("openlineage", tenant, DriftInvalid, se.Field, version, se.Reason)
		return olMapped{}, &SchemaError{Field: joinPath(path, se.Field), Reason: se.Reason}
	}
	for _, p := range sch.unknownFields(v) {
		o.drift.Record("openlineage", tenant, DriftUnknownField, p, version, "")
	}

	canon := canonicalJSON(v)
	digest := digestOf(canon)
	b := &olBuilder{
		ev: &pb.ProvenanceEvent{
			SchemaVersion: 1,
			EventId:       "ol:" + strings.TrimPrefix(digest, "sha256:"),
			Tenant:        tenant,
			Extensions: map[string]string{
				"openlineage.digest":    digest,
				"openlineage.schemaURL": su,
				"openlineage.kind":      kind,
			},
		},
		drift:  o.drift,
		tenant: tenant,
	}
	return b.build(m, kind, version)
}

// joinPath prefixes a batch position to a field path: "[3]" + "run.runId".
func joinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

type olBuilder struct {
	ev       *pb.ProvenanceEvent
	drift    *Drift
	tenant   string
	overflow []string
}

func (b *olBuilder) build(m map[string]any, kind, version string) (olMapped, error) {
	ev := b.ev
	t, err := time.Parse(time.RFC3339Nano, str(m, "eventTime"))
	if err != nil {
		return olMapped{}, &SchemaError{Field: "eventTime", Reason: "not an RFC 3339 date-time: " + err.Error()}
	}
	ev.EventTime = timestamppb.New(t)
	ev.Actor = &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: str(m, "producer")}

	job := obj(m, "job")
	run := obj(m, "run")
	wf := &pb.Workflow{Platform: "openlineage"}
	ev.Workflow = wf
	if job != nil {
		jobID := str(job, "namespace") + "/" + str(job, "name")
		ev.Extensions["openlineage.job"] = jobID
		wf.WorkflowId = jobID
		if jt := obj(obj(job, "facets"), "jobType"); jt != nil && str(jt, "integration") != "" {
			wf.Platform = strings.ToLower(str(jt, "integration"))
		}
		b.facets(obj(job, "facets"), "openlineage.job.facets.", "job.facets", nil)
	}
	if run != nil {
		wf.RunId = str(run, "runId")
		facets := obj(run, "facets")
		if pe := obj(facets, "processing_engine"); pe != nil {
			if n := str(pe, "name"); n != "" && wf.Platform == "openlineage" {
				wf.Platform = strings.ToLower(n)
			}
			wf.PlatformVersion = str(pe, "version")
		}
		if p := obj(facets, "parent"); p != nil {
			wf.ParentRunId = str(obj(p, "run"), "runId")
			if pj := obj(p, "job"); pj != nil && job != nil {
				wf.WorkflowId = str(pj, "namespace") + "/" + str(pj, "name")
				wf.StepId = str(job, "name")
			}
		}
		b.facets(facets, "openlineage.run.facets.", "run.facets", map[string]bool{"parent": true})
	} else {
		// Static (runless) metadata: each event is its own one-event run.
		wf.RunId = "openlineage-static:" + strings.TrimPrefix(ev.EventId, "ol:")
	}

	inputs, outputs := arr(m, "inputs"), arr(m, "outputs")
	if kind == olDatasetEvent {
		outputs = []any{m["dataset"]}
	}
	for i, d := range inputs {
		dm, _ := d.(map[string]any)
		a := b.asset(dm, pathIndex("inputs", i))
		b.facets(obj(dm, "inputFacets"), "openlineage."+pathIndex("inputs", i)+".inputFacets.", "inputs[].inputFacets", nil)
		ev.Inputs = appendAsset(ev.Inputs, a)
	}
	outPrefix := "outputs"
	if kind == olDatasetEvent {
		outPrefix = "dataset"
	}
	for i, d := range outputs {
		dm, _ := d.(map[string]any)
		p := outPrefix
		if kind != olDatasetEvent {
			p = pathIndex("outputs", i)
		}
		a := b.asset(dm, p)
		b.facets(obj(dm, "outputFacets"), "openlineage."+p+".outputFacets.", "outputs[].outputFacets", nil)
		ev.Outputs = appendAsset(ev.Outputs, a)
		b.columnLineage(a.GetUri(), obj(obj(dm, "facets"), "columnLineage"))
	}
	if kind == olDatasetEvent {
		// A dataset event names the dataset, not a producer of it: its
		// column lineage's sources are what it declares it was made from.
		ev.Outputs[0].Fields = nil
	}
	if len(b.overflow) > 0 {
		ev.Extensions["openlineage.facets.overflow"] = truncate(strings.Join(b.overflow, ","), 4096)
	}

	et := str(m, "eventType")
	if kind == olRunEvent {
		ev.Extensions["openlineage.eventType"] = et
	}
	switch {
	case kind == olRunEvent && et == "START":
		ev.Operation = pb.Operation_OPERATION_RUN_START
	case kind == olRunEvent && et == "COMPLETE":
		ev.Operation = pb.Operation_OPERATION_RUN_COMPLETE
	case kind == olRunEvent && (et == "FAIL" || et == "ABORT"):
		ev.Operation = pb.Operation_OPERATION_RUN_FAIL
	case len(ev.Inputs) > 0 && len(ev.Outputs) > 0:
		ev.Operation = pb.Operation_OPERATION_TRANSFORM
	case len(ev.Outputs) > 0:
		ev.Operation = pb.Operation_OPERATION_WRITE
	case len(ev.Inputs) > 0:
		ev.Operation = pb.Operation_OPERATION_READ
	default:
		return olMapped{skipped: fmt.Sprintf("%s %s with no inputs or outputs: no data movement to record", kind, et)}, nil
	}
	return olMapped{event: ev}, nil
}

// appendAsset adds a to list, merging it into an asset of the same URI.
func appendAsset(list []*pb.Asset, a *pb.Asset) []*pb.Asset {
	for _, x := range list {
		if x.GetUri() == a.GetUri() {
			for _, f := range a.GetFields() {
				if !slices.Contains(x.Fields, f) {
					x.Fields = append(x.Fields, f)
				}
			}
			if x.Version == "" {
				x.Version = a.Version
			}
			return list
		}
	}
	return append(list, a)
}

// asset maps an OpenLineage dataset: namespace and name to a URI, the
// version facet to the version, the schema facet's field names to fields.
// Other dataset facets go to extensions.
func (b *olBuilder) asset(d map[string]any, path string) *pb.Asset {
	a := &pb.Asset{Uri: DatasetURI(str(d, "namespace"), str(d, "name"))}
	facets := obj(d, "facets")
	if v := obj(facets, "version"); v != nil {
		a.Version = str(v, "datasetVersion")
	}
	for _, f := range arr(obj(facets, "schema"), "fields") {
		name := str(asMap(f), "name")
		if name != "" && !slices.Contains(a.Fields, name) && len(a.Fields) < 256 {
			a.Fields = append(a.Fields, name)
		}
	}
	b.facets(facets, "openlineage."+path+".facets.", strings.Split(path, "[")[0]+"[].facets", map[string]bool{"version": true, "columnLineage": true})
	return a
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// columnLineage maps an output's columnLineage facet to field lineage. Each
// input field's dataset becomes an input of the event if it is not one
// already (column lineage names what the output was made from).
func (b *olBuilder) columnLineage(outURI string, cl map[string]any) {
	if cl == nil {
		return
	}
	fields := obj(cl, "fields")
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, outField := range names {
		spec := asMap(fields[outField])
		fl := &pb.FieldLineage{OutputUri: outURI, OutputField: outField}
		var how []string
		for _, inf := range arr(spec, "inputFields") {
			im := asMap(inf)
			uri := DatasetURI(str(im, "namespace"), str(im, "name"))
			b.ev.Inputs = appendAsset(b.ev.Inputs, &pb.Asset{Uri: uri})
			fl.Sources = append(fl.Sources, &pb.FieldRef{Uri: uri, Field: str(im, "field")})
			for _, t := range arr(im, "transformations") {
				tm := asMap(t)
				h := str(tm, "type")
				if st := str(tm, "subtype"); st != "" {
					h += "/" + st
				}
				if !slices.Contains(how, h) {
					how = append(how, h)
				}
			}
		}
		if len(how) == 0 {
			if tt := str(spec, "transformationType"); tt != "" {
				how = append(how, tt)
			}
		}
		fl.Transformation = strings.Join(how, ",")
		b.ev.FieldLineage = append(b.ev.FieldLineage, fl)
	}
	// Dataset-level dependencies (filters, joins) are inputs too.
	for _, inf := range arr(cl, "dataset") {
		im := asMap(inf)
		b.ev.Inputs = appendAsset(b.ev.Inputs, &pb.Asset{Uri: DatasetURI(str(im, "namespace"), str(im, "name"))})
	}
}

// maxExtensions leaves room under the event's limit of 64 map entries.
const maxExtensions = 60

// facets keeps every facet not in skip as an extension: key prefix+name,
// value the facet's canonical JSON (or its digest when longer than an
// extension value may be; the event digest commits to all of it anyway).
// Facets that are not standard are reported as drift under driftPath.
func (b *olBuilder) facets(facets map[string]any, prefix, driftPath string, skip map[string]bool) {
	names := make([]string, 0, len(facets))
	for k := range facets {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		if !olStandardFacets[name] {
			b.drift.Record("openlineage", b.tenant, DriftUnknownFacet, driftPath+"."+name, "", "")
		}
		if skip[name] {
			continue
		}
		key := prefix + name
		if len(key) > 128 {
			key = prefix + "~" + strings.TrimPrefix(digestOf([]byte(name)), "sha256:")[:16]
		}
		if len(b.ev.Extensions) >= maxExtensions || len(key) > 128 {
			b.overflow = append(b.overflow, prefix+name)
			continue
		}
		val := canonicalJSON(facets[name])
		if len(val) > 4096 {
			b.ev.Extensions[key] = digestOf(val) + " (" + strconv.Itoa(len(val)) + " bytes, in openlineage.digest)"
			continue
		}
		b.ev.Extensions[key] = string(val)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// DatasetURI is the asset URI of an OpenLineage dataset. A namespace that
// is a URI ("postgres://db:5432", "s3://bucket") is joined with the name by
// "/" ("postgres://db:5432/analytics.public.orders"); the "file" namespace
// gives "file://" and the path; any other namespace ("bigquery", a
// scheduler's name) gives "openlineage://NAMESPACE/NAME". Spaces, control
// characters and stray "%" are percent-encoded so the result parses as a
// URI.
func DatasetURI(namespace, name string) string {
	var u string
	switch {
	case strings.Contains(namespace, "://"):
		u = strings.TrimSuffix(namespace, "/") + "/" + strings.TrimPrefix(name, "/")
	case namespace == "file":
		u = "file://" + "/" + strings.TrimPrefix(name, "/")
	default:
		u = "openlineage://" + namespace + "/" + strings.TrimPrefix(name, "/")
	}
	return escapeURI(u)
}

func escapeURI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}':
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		case c == '%' && !(i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])):
			b.WriteString("%25")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

var (
	olOnce   sync.Once
	olShared *openLineage
	olErr    error
)

// MapOpenLineage validates and maps an OpenLineage request body (one event
// or a JSON array of them) for tenant, exactly as POST /api/v1/lineage
// does, without appending: one entry per event, nil for an event skipped
// because it records no data movement. An error is a *SchemaError naming
// the payload field.
func MapOpenLineage(body []byte, tenant string) ([]*pb.ProvenanceEvent, error) {
	olOnce.Do(func() { olShared, olErr = newOpenLineage(NewDrift(nil)) })
	if olErr != nil {
		return nil, olErr
	}
	v, err := decodeJSON(body)
	if err != nil {
		return nil, &SchemaError{Reason: err.Error()}
	}
	items, batch := v.([]any)
	if !batch {
		items = []any{v}
	}
	out := make([]*pb.ProvenanceEvent, len(items))
	for i, it := range items {
		p := ""
		if batch {
			p = pathIndex("", i)
		}
		m, err := olShared.mapEvent(it, tenant, p)
		if err != nil {
			return nil, err
		}
		out[i] = m.event
	}
	return out, nil
}
