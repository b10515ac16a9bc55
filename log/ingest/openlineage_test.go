package ingest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/ingest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

const (
	rawOrders   = "postgres://warehouse.acme.internal:5432/analytics.public.raw_orders"
	ordersClean = "postgres://warehouse.acme.internal:5432/analytics.public.orders_clean"
	revenue     = "s3://acme-lake/marts/revenue_by_customer"
	dagRun      = "01932a4e-7c10-7a3b-9c2e-4f1d2b3c4d5e"
	taskRun     = "01932a4e-7c11-7b4c-8d3f-5a2e3c4d5e6f"
	sparkRun    = "01932a4f-0a00-7c5d-9e40-6b3f4d5e6f70"
)

var olSequence = []string{
	"airflow-00-dag-start.json", "airflow-01-start.json", "airflow-02-running.json", "airflow-03-complete.json",
	"spark-01-start.json", "spark-02-running.json", "spark-03-complete.json", "airflow-04-dag-complete.json",
}

func olFile(t *testing.T, name string) []byte {
	return readFile(t, filepath.Join("..", "..", "testdata", "openlineage", name))
}

// TestOpenLineageSequence sends an Airflow DAG run with one SQL task and a
// Spark job it started, each START, RUNNING, COMPLETE with column lineage,
// and checks the lineage graph a verified upstream trace returns.
func TestOpenLineageSequence(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	ops := map[string]pb.Operation{}
	indexes := map[string]uint64{}
	for _, name := range olSequence {
		a := h.post(t, "/api/v1/lineage?tenant=acme", acmeToken, olFile(t, name), nil)
		if a.status != http.StatusOK || len(a.resp.Results) != 1 {
			t.Fatalf("%s: %d %s", name, a.status, a.body)
		}
		r := a.resp.Results[0]
		if name == "airflow-02-running.json" {
			if r.Skipped == "" || r.Index != nil {
				t.Errorf("%s: want skipped (no datasets), got %+v", name, r)
			}
			continue
		}
		if r.Index == nil || r.Error != nil || !strings.HasPrefix(r.EventID, "ol:") {
			t.Fatalf("%s: %s", name, a.body)
		}
		indexes[name] = *r.Index
	}
	h.settle(t)
	for name, index := range indexes {
		e, err := h.log.GetEntry(bearer(t.Context(), adminToken), &pb.GetEntryRequest{Index: index})
		if err != nil {
			t.Fatal(err)
		}
		ev := e.GetEntry().GetEvent()
		ops[name] = ev.GetOperation()
		// The leaf keeps the digest of the original event: the canonical
		// JSON of what was sent.
		if got, want := ev.GetExtensions()["openlineage.digest"], canonicalDigest(t, olFile(t, name)); got != want {
			t.Errorf("%s: openlineage.digest %s, want %s", name, got, want)
		}
		if got := e.GetEntry().GetSubmitter(); got != "token:acme-bot" {
			t.Errorf("%s: submitter %q, want the caller's identity", name, got)
		}
	}
	wantOps := map[string]pb.Operation{
		"airflow-00-dag-start.json":    pb.Operation_OPERATION_RUN_START,
		"airflow-01-start.json":        pb.Operation_OPERATION_RUN_START,
		"airflow-03-complete.json":     pb.Operation_OPERATION_RUN_COMPLETE,
		"spark-01-start.json":          pb.Operation_OPERATION_RUN_START,
		"spark-02-running.json":        pb.Operation_OPERATION_TRANSFORM,
		"spark-03-complete.json":       pb.Operation_OPERATION_RUN_COMPLETE,
		"airflow-04-dag-complete.json": pb.Operation_OPERATION_RUN_COMPLETE,
	}
	if d := cmp.Diff(wantOps, ops); d != "" {
		t.Errorf("operations (-want +got):\n%s", d)
	}

	resp := h.trace(t, revenue)
	var assets []string
	runs := map[string]bool{}
	for _, n := range resp.GetNodes() {
		switch n.GetKind() {
		case pb.NodeKind_NODE_KIND_ASSET:
			if !slices.Contains(assets, n.GetAsset().GetUri()) {
				assets = append(assets, n.GetAsset().GetUri())
			}
		case pb.NodeKind_NODE_KIND_RUN:
			runs[n.GetRunId()] = true
		}
	}
	slices.Sort(assets)
	if d := cmp.Diff([]string{ordersClean, rawOrders, revenue}, assets); d != "" {
		t.Errorf("upstream assets of %s (-want +got):\n%s", revenue, d)
	}
	for _, r := range []string{sparkRun, taskRun, dagRun} {
		if !runs[r] {
			t.Errorf("run %s missing from the trace", r)
		}
	}
	nodeURI := map[string]string{}
	for _, n := range resp.GetNodes() {
		nodeURI[n.GetId()] = n.GetAsset().GetUri()
	}
	var fields, parents []string
	for _, e := range resp.GetEdges() {
		switch e.GetKind() {
		case pb.EdgeKind_EDGE_KIND_FIELD:
			fields = append(fields, fmt.Sprintf("%s#%s <- %s#%s", short(nodeURI[e.GetTo()]), e.GetToField(), short(nodeURI[e.GetFrom()]), e.GetFromField()))
		case pb.EdgeKind_EDGE_KIND_PARENT_RUN:
			parents = append(parents, e.GetFrom()+" -> "+e.GetTo())
		}
	}
	slices.Sort(fields)
	fields = slices.Compact(fields)
	wantFields := []string{
		"orders_clean#amount <- raw_orders#amount_cents",
		"orders_clean#email <- raw_orders#email",
		"orders_clean#order_id <- raw_orders#order_id",
		"revenue_by_customer#email <- orders_clean#email",
		"revenue_by_customer#orders <- orders_clean#order_id",
		"revenue_by_customer#revenue <- orders_clean#amount",
	}
	if d := cmp.Diff(wantFields, fields); d != "" {
		t.Errorf("field lineage (-want +got):\n%s", d)
	}
	if len(parents) == 0 {
		t.Errorf("no parent-run edges (Spark and the Airflow task are children of DAG run %s)", dagRun)
	}
	// raw_orders is loaded by nothing the log saw, in a database the
	// pipeline writes to: the index flags it, and nothing else.
	for _, g := range resp.GetGaps() {
		if g.GetKind() != "unproduced_input" || !strings.Contains(g.GetDetail(), rawOrders) {
			t.Errorf("unexpected gap: %v", g)
		}
	}
}

func short(uri string) string { return uri[strings.LastIndexAny(uri, "./")+1:] }

func canonicalDigest(t *testing.T, b []byte) string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return ingest.DigestJSON(v)
}

// TestOpenLineageIdempotent: the same event sent twice, or re-serialized
// with other key order and white space, is one leaf.
func TestOpenLineageIdempotent(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	ev := olFile(t, "spark-03-complete.json")
	first := h.post(t, "/api/v1/lineage", acmeToken, ev, nil)
	if first.status != http.StatusOK || first.resp.Results[0].Index == nil {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	var v map[string]any
	json.Unmarshal(ev, &v)
	compact, _ := json.Marshal(v) // keys sorted, no white space
	for i, body := range [][]byte{ev, compact} {
		again := h.post(t, "/api/v1/lineage", acmeToken, body, nil)
		if again.status != http.StatusOK {
			t.Fatalf("resend %d: %d %s", i, again.status, again.body)
		}
		r := again.resp.Results[0]
		if !r.Duplicate || *r.Index != *first.resp.Results[0].Index || r.EventID != first.resp.Results[0].EventID {
			t.Errorf("resend %d: %+v, want a duplicate of %+v", i, r, first.resp.Results[0])
		}
	}
	h.settle(t)
	if n := h.size(t); n != 1 {
		t.Errorf("log size %d, want 1", n)
	}
}

// TestOpenLineageBatchAndGzip sends the whole sequence as one gzipped JSON
// array, as the OpenLineage HTTP transport does with compression on.
func TestOpenLineageBatchAndGzip(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	var parts [][]byte
	for _, name := range olSequence {
		parts = append(parts, olFile(t, name))
	}
	body := append(append([]byte("["), bytes.Join(parts, []byte(","))...), ']')
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(body)
	w.Close()
	a := h.post(t, "/api/v1/lineage", "", gz.Bytes(), map[string]string{"Content-Encoding": "gzip", "Authorization": "Bearer " + adminToken, "X-Provlog-Tenant": "acme"})
	if a.status != http.StatusOK || len(a.resp.Results) != len(olSequence) {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	appended := 0
	for _, r := range a.resp.Results {
		if r.Index != nil {
			appended++
		}
	}
	if appended != len(olSequence)-1 {
		t.Errorf("%d appended, want %d (one RUNNING event carries no datasets)", appended, len(olSequence)-1)
	}
	resp := h.trace(t, revenue)
	if len(resp.GetNodes()) == 0 {
		t.Fatal("empty trace")
	}
}

// TestOpenLineageRefused: bad events and bad callers are refused with the
// field named, and nothing is appended.
func TestOpenLineageRefused(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	good := olFile(t, "airflow-03-complete.json")
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name, query, token string
		body               []byte
		status             int
		field              string
	}{
		{"unknown spec version", "?tenant=acme", acmeToken, edit(func(m map[string]any) {
			m["schemaURL"] = "https://openlineage.io/spec/9-9-9/OpenLineage.json#/$defs/RunEvent"
		}), 400, "schemaURL"},
		{"no schemaURL", "?tenant=acme", acmeToken, edit(func(m map[string]any) { delete(m, "schemaURL") }), 400, "schemaURL"},
		{"runId not a uuid", "?tenant=acme", acmeToken, edit(func(m map[string]any) { m["run"].(map[string]any)["runId"] = "run-42" }), 400, "run.runId"},
		{"no job name", "?tenant=acme", acmeToken, edit(func(m map[string]any) { delete(m["job"].(map[string]any), "name") }), 400, "job"},
		{"bad eventType", "?tenant=acme", acmeToken, edit(func(m map[string]any) { m["eventType"] = "DONE" }), 400, "eventType"},
		{"RUNNING in 1-0-0", "?tenant=acme", acmeToken, edit(func(m map[string]any) {
			m["eventType"] = "RUNNING"
			m["schemaURL"] = "https://openlineage.io/spec/1-0-0/OpenLineage.json#/definitions/RunEvent"
		}), 400, "eventType"},
		{"column lineage without inputFields", "?tenant=acme", acmeToken, edit(func(m map[string]any) {
			cl := m["outputs"].([]any)[0].(map[string]any)["facets"].(map[string]any)["columnLineage"].(map[string]any)
			delete(cl["fields"].(map[string]any)["email"].(map[string]any), "inputFields")
		}), 400, "outputs[0].facets.columnLineage.fields.email"},
		{"not JSON", "?tenant=acme", acmeToken, []byte("{"), 400, ""},
		{"two values", "?tenant=acme", acmeToken, append(append([]byte{}, good...), good...), 400, ""},
		{"no token", "?tenant=acme", "", good, 401, ""},
		{"bad token", "?tenant=acme", "pl_wrong", good, 401, ""},
		{"reader token", "?tenant=acme", readerToken, good, 403, ""},
		{"other tenant", "?tenant=acme", otherToken, good, 403, ""},
		{"admin without tenant", "", adminToken, good, 400, ""},
		{"bad tenant", "?tenant=ACME", adminToken, good, 400, "tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.post(t, "/api/v1/lineage"+tc.query, tc.token, tc.body, nil)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.field != "" {
				got := ""
				if a.resp.Error != nil {
					got = a.resp.Error.Field
				} else if len(a.resp.Results) == 1 && a.resp.Results[0].Error != nil {
					got = a.resp.Results[0].Error.Field
				}
				if !strings.HasPrefix(got, tc.field) {
					t.Errorf("field %q, want %q: %s", got, tc.field, a.body)
				}
			}
		})
	}
	h.settle(t)
	if n := h.size(t); n != 0 {
		t.Errorf("log size %d after refused requests, want 0", n)
	}
}

// TestOpenLineageDrift: unknown fields and custom facets are counted and
// reported per source; events with them are still appended.
func TestOpenLineageDrift(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	var m map[string]any
	json.Unmarshal(olFile(t, "spark-03-complete.json"), &m)
	m["deployment"] = "blue" // not in the spec
	m["run"].(map[string]any)["attempt"] = 2
	b, _ := json.Marshal(m)
	if a := h.post(t, "/api/v1/lineage?tenant=acme", acmeToken, b, nil); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	a := h.get(t, "/v1/ingest/drift?source=openlineage", readerToken)
	if a.status != 200 {
		t.Fatalf("drift: %d %s", a.status, a.body)
	}
	var rep struct{ Sources []ingest.SourceDrift }
	if err := json.Unmarshal(a.body, &rep); err != nil || len(rep.Sources) != 1 {
		t.Fatalf("drift report %s: %v", a.body, err)
	}
	got := map[string]string{}
	for _, e := range rep.Sources[0].Entries {
		got[e.Path] = e.Kind
	}
	for path, kind := range map[string]string{
		"deployment":                          ingest.DriftUnknownField,
		"run.attempt":                         ingest.DriftUnknownField,
		"run.facets.spark_properties":         ingest.DriftUnknownFacet,
		"run.facets.spark_applicationDetails": ingest.DriftUnknownFacet,
	} {
		if got[path] != kind {
			t.Errorf("drift %s: %q, want %q (report %s)", path, got[path], kind, a.body)
		}
	}
	if _, ok := got["run.facets.parent"]; ok {
		t.Errorf("standard facet reported as drift")
	}
	// Another tenant's reader sees none of acme's drift.
	if a := h.get(t, "/v1/ingest/drift", "pl_wrong"); a.status != 401 {
		t.Errorf("drift without a valid token: %d", a.status)
	}
	m2 := h.get(t, "/metrics", adminToken)
	if !bytes.Contains(m2.body, []byte(`provlog_ingest_drift_total{kind="unknown_field",source="openlineage"} 2`)) {
		t.Errorf("metric missing from /metrics")
	}
}
