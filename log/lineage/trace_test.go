package lineage

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// The sample workflows (testdata/events/README.md): runs, and assets as
// their events name them.
const (
	runA = "run-7f3a9c"
	runB = "dataset_triggered__2026-11-26T07:05:12+00:00"
	runC = "a3f1c9e2-5b7d-4e11-9c3a-77d2be0f6a41"
)

var (
	csvURI      = "s3://acme-exports/marketing/customer_segments/2026-11-26.csv"
	csvVersion  = "mT3kQ9vB2xN7pL0sW4eR8yU1iO6aZ5cD"
	csv         = AssetNodeID(csvURI, csvVersion, "")
	segments    = AssetNodeID("postgres://warehouse/analytics.customer_segments", "txid:88219950", "")
	customers   = AssetNodeID("postgres://warehouse/analytics.customers", "txid:88214102", "")
	stg         = AssetNodeID("postgres://warehouse/staging.stg_customers", "txid:88213377", "")
	parquet     = AssetNodeID("s3://acme-staging/contacts/2026-11-26.parquet", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH", "")
	contacts    = AssetNodeID("crm://acme-crm/contacts", "snapshot-2026-11-26T02:00:00Z", "")
	contactsAny = AssetNodeID("crm://acme-crm/contacts", "", "")
	consents    = AssetNodeID("crm://acme-crm/consents", "rev-20661", "")
	enrich      = AssetNodeID("https://api.enrich.example/v2/companies", "2026-11-01", "")
	dqReport    = AssetNodeID("s3://acme-staging/dq-reports/contacts-dupes-2026-11-26.json", "Zq0s8m1rQ7uYp3kT2vBnL5xWc9dHf4Ae", "")
	manifest    = AssetNodeID("s3://acme-staging/contacts/_manifests/2026-11-26.json", "p8bIeGm0hDqkU1cQ0Y_3dWk2kVZs4n7Q", "")
)

func consent(key string) string { return AssetNodeID("crm://acme-crm/consents", "rev-20661", key) }

// summary is a graph in the samples' terms: events by file number, assets
// by node ID, runs by run id, and the edges that are not input/output.
type summary struct {
	Events    []int
	Assets    []string
	Runs      []string
	Acting    []string // "07 approves 05"
	Parents   []string // "child -> parent"
	Matches   []string // "from -> to"
	Truncated bool
}

func summarize(t *testing.T, g *Graph, f *feed, tenant string) summary {
	t.Helper()
	checkGraph(t, g, f, tenant)
	var s summary
	num := func(id string) int {
		n := g.node(id)
		return f.nums[n.Leaf]
	}
	for _, n := range g.Nodes {
		switch n.Kind {
		case NodeActivity:
			s.Events = append(s.Events, f.nums[n.Leaf])
		case NodeAsset:
			s.Assets = append(s.Assets, n.ID)
		case NodeRun:
			s.Runs = append(s.Runs, n.Run.RunID)
		}
	}
	for _, e := range g.Edges {
		switch e.Kind {
		case EdgeApproves, EdgeOverrides:
			s.Acting = append(s.Acting, fmt.Sprintf("%02d %s %02d", num(e.From), e.Kind, num(e.To)))
		case EdgeParentRun:
			s.Parents = append(s.Parents, g.node(e.From).Run.RunID+" -> "+g.node(e.To).Run.RunID)
		case EdgeMatches:
			s.Matches = append(s.Matches, e.From+" -> "+e.To)
		}
	}
	slices.Sort(s.Events)
	slices.Sort(s.Assets)
	slices.Sort(s.Runs)
	slices.Sort(s.Acting)
	slices.Sort(s.Parents)
	slices.Sort(s.Matches)
	s.Truncated = g.Truncated
	return s
}

func (g *Graph) node(id string) *Node {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// checkGraph checks what every answer must satisfy: edges join nodes; every
// node and edge cites a leaf of the tenant below the tree size, listed in
// Leaves; an activity is its own leaf, and the edges it asserts cite it.
func checkGraph(t *testing.T, g *Graph, f *feed, tenant string) {
	t.Helper()
	leaves := map[uint64]bool{}
	for _, l := range g.Leaves {
		leaves[l] = true
		if l >= g.TreeSize {
			t.Errorf("leaf %d cited at tree size %d", l, g.TreeSize)
		}
		if f.tenant[l] != tenant {
			t.Errorf("leaf %d of tenant %q cited in an answer for %q", l, f.tenant[l], tenant)
		}
	}
	if !slices.IsSorted(g.Leaves) || len(leaves) != len(g.Leaves) {
		t.Errorf("Leaves not sorted and unique: %v", g.Leaves)
	}
	cited := map[uint64]bool{}
	ids := map[string]*Node{}
	for _, n := range g.Nodes {
		ids[n.ID] = n
		cited[n.Leaf] = true
		if !leaves[n.Leaf] {
			t.Errorf("node %s cites leaf %d, not in Leaves", n.ID, n.Leaf)
		}
		if n.Kind == NodeActivity && n.ID != ActivityNodeID(n.Leaf) {
			t.Errorf("activity %s has leaf %d", n.ID, n.Leaf)
		}
	}
	for _, e := range g.Edges {
		cited[e.Leaf] = true
		if ids[e.From] == nil || ids[e.To] == nil {
			t.Errorf("edge %s %s -> %s joins a missing node", e.Kind, e.From, e.To)
		}
		if !leaves[e.Leaf] {
			t.Errorf("edge %s %s -> %s cites leaf %d, not in Leaves", e.Kind, e.From, e.To, e.Leaf)
		}
		var self string
		switch e.Kind {
		case EdgeInput:
			self = e.To
		case EdgeOutput, EdgeStepOfRun, EdgeApproves, EdgeOverrides:
			self = e.From
		}
		if self != "" && self != ActivityNodeID(e.Leaf) {
			t.Errorf("edge %s %s -> %s cites leaf %d, not its activity's", e.Kind, e.From, e.To, e.Leaf)
		}
	}
	for _, gp := range g.Gaps {
		for _, l := range gp.Leaves {
			cited[l] = true
		}
	}
	for l := range leaves {
		if !cited[l] {
			t.Errorf("leaf %d in Leaves is cited by nothing", l)
		}
	}
}

var (
	// Upstream of the exported CSV: every producing step back to the CRM
	// and the enrichment API, the reads and checks of each step's inputs in
	// its run (the quality check 14 and the failed merge 16 among them), and
	// the two approvals and the override.
	upstreamOfCSV = summary{
		Events: []int{2, 3, 4, 5, 7, 9, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24},
		Assets: sorted(csv, segments, customers, stg, parquet, contacts, consents,
			consent("CNS-55120"), consent("CNS-55187"), consent("CNS-55203"), enrich),
		Runs:    sorted(runA, runB, runC),
		Acting:  []string{"07 approves 05", "15 overrides 14", "22 approves 21"},
		Parents: sorted(runB+" -> "+runA, runC+" -> "+runB),
		Matches: sorted(consent("CNS-55120")+" -> "+consents, consent("CNS-55187")+" -> "+consents, consent("CNS-55203")+" -> "+consents),
	}
	// Downstream of the CRM contacts, any version: every consumer, and the
	// consumers of what they wrote, to the export.
	downstreamOfContacts = summary{
		Events:  []int{2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23},
		Assets:  sorted(contactsAny, contacts, consents, enrich, parquet, dqReport, manifest, stg, customers, segments, csv),
		Runs:    sorted(runA, runB, runC),
		Acting:  []string{"07 approves 05", "07 approves 06", "15 overrides 14", "22 approves 21"},
		Parents: sorted(runB+" -> "+runA, runC+" -> "+runB),
		Matches: []string{contacts + " -> " + contactsAny},
	}
)

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestTrace(t *testing.T) {
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	at := func(h, m int) time.Time { return time.Date(2026, 11, 26, h, m, 0, 0, time.UTC) }
	fromCSV := TraceQuery{Tenant: "acme", AssetURI: csvURI, AssetVersion: csvVersion, Direction: Upstream}
	fromContacts := TraceQuery{Tenant: "acme", AssetURI: "crm://acme-crm/contacts", Direction: Downstream}
	with := func(q TraceQuery, edit func(*TraceQuery)) TraceQuery {
		edit(&q)
		return q
	}
	for _, tc := range []struct {
		name string
		q    TraceQuery
		want summary
	}{
		{name: "upstream of the export", q: fromCSV, want: upstreamOfCSV},
		{name: "upstream of the export, unversioned", q: with(fromCSV, func(q *TraceQuery) { q.AssetVersion = "" }), want: func() summary {
			s := upstreamOfCSV
			s.Assets = sorted(append(slices.Clone(s.Assets), AssetNodeID(csvURI, "", ""))...)
			s.Matches = sorted(append(slices.Clone(s.Matches), csv+" -> "+AssetNodeID(csvURI, "", ""))...)
			return s
		}()},
		{name: "downstream of the CRM contacts", q: fromContacts, want: downstreamOfContacts},
		{name: "upstream depth 1", q: with(fromCSV, func(q *TraceQuery) { q.Depth = 1 }), want: summary{
			Events: []int{23}, Assets: sorted(csv, segments), Runs: sorted(runB, runC), Parents: []string{runC + " -> " + runB},
		}},
		{name: "upstream depth 2", q: with(fromCSV, func(q *TraceQuery) { q.Depth = 2 }), want: summary{
			Events: []int{20, 21, 22, 23, 24}, Assets: sorted(csv, segments, customers), Runs: sorted(runB, runC),
			Acting: []string{"22 approves 21"}, Parents: []string{runC + " -> " + runB},
		}},
		{name: "upstream depth 5 stops before the enrichment call", q: with(fromCSV, func(q *TraceQuery) { q.Depth = 5 }), want: func() summary {
			s := upstreamOfCSV
			s.Events = []int{2, 3, 5, 7, 9, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24}
			return s
		}()},
		{name: "upstream depth 6 is complete", q: with(fromCSV, func(q *TraceQuery) { q.Depth = 6 }), want: upstreamOfCSV},
		{name: "upstream since 07:00 stops at the warehouse load", q: with(fromCSV, func(q *TraceQuery) { q.Filters.Since = at(7, 0) }), want: summary{
			Events: []int{12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24},
			Assets: sorted(csv, segments, customers, stg, parquet),
			Runs:   sorted(runA, runB, runC), Acting: []string{"15 overrides 14", "22 approves 21"},
			Parents: sorted(runB+" -> "+runA, runC+" -> "+runB),
		}},
		{name: "upstream until 07:40 reaches nothing", q: with(fromCSV, func(q *TraceQuery) { q.Filters.Until = at(7, 40) }), want: summary{}},
		{name: "upstream by the dbt service account", q: with(fromCSV, func(q *TraceQuery) { q.Filters.ActorIDs = []string{"svc-dbt-prod@acme.example"} }), want: summary{
			Events: []int{20, 21, 22, 23}, Assets: sorted(csv, segments, customers), Runs: sorted(runB, runC),
			Acting: []string{"22 approves 21"}, Parents: []string{runC + " -> " + runB},
		}},
		{name: "upstream within the dbt and airflow workflows", q: with(fromCSV, func(q *TraceQuery) {
			q.Filters.WorkflowIDs = []string{"acme_analytics", "warehouse_load_customers"}
		}), want: summary{
			Events: []int{12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24},
			Assets: sorted(csv, segments, customers, stg, parquet),
			Runs:   sorted(runA, runB, runC), Acting: []string{"15 overrides 14", "22 approves 21"},
			Parents: sorted(runB+" -> "+runA, runC+" -> "+runB),
		}},
		{name: "downstream writes and transforms", q: with(fromContacts, func(q *TraceQuery) {
			q.Filters.Operations = []provlogv1.Operation{provlogv1.Operation_OPERATION_WRITE, provlogv1.Operation_OPERATION_TRANSFORM}
		}), want: summary{
			Events:  []int{5, 6, 7, 8, 13, 17, 21, 22, 23},
			Assets:  sorted(contactsAny, contacts, consents, enrich, parquet, dqReport, manifest, stg, customers, segments, csv),
			Runs:    sorted(runA, runB, runC),
			Acting:  []string{"07 approves 05", "07 approves 06", "22 approves 21"},
			Parents: sorted(runB+" -> "+runA, runC+" -> "+runB),
			Matches: []string{contacts + " -> " + contactsAny},
		}},
		{name: "downstream through confidential data", q: with(fromContacts, func(q *TraceQuery) { q.Filters.Classifications = []string{"confidential"} }), want: summary{
			Events:  []int{5, 6, 7},
			Assets:  sorted(contactsAny, contacts, consents, enrich, parquet, dqReport),
			Runs:    []string{runA},
			Acting:  []string{"07 approves 05", "07 approves 06"},
			Matches: []string{contacts + " -> " + contactsAny},
		}},
		{name: "upstream of an event", q: TraceQuery{Tenant: "acme", EventID: "airflow:warehouse_load_customers:dataset_triggered__2026-11-26T07:05:12+00:00:conform_customers:1", Direction: Upstream, Depth: 1}, want: summary{
			Events:  []int{2, 3, 5, 7, 9, 12, 13},
			Assets:  sorted(stg, parquet, contacts, consents, enrich, consent("CNS-55120"), consent("CNS-55187"), consent("CNS-55203")),
			Runs:    sorted(runA, runB),
			Acting:  []string{"07 approves 05"},
			Parents: []string{runB + " -> " + runA},
			Matches: sorted(consent("CNS-55120")+" -> "+consents, consent("CNS-55187")+" -> "+consents, consent("CNS-55203")+" -> "+consents),
		}},
		{name: "downstream of a run", q: TraceQuery{Tenant: "acme", RunID: runB, Direction: Downstream, Depth: 1}, want: summary{
			Events:  []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22},
			Assets:  sorted(manifest, parquet, stg, customers, segments),
			Runs:    sorted(runA, runB, runC),
			Acting:  []string{"15 overrides 14", "22 approves 21"},
			Parents: sorted(runB+" -> "+runA, runC+" -> "+runB),
		}},
		{name: "both ways from the staging table, depth 1", q: TraceQuery{Tenant: "acme", AssetURI: "postgres://warehouse/staging.stg_customers", AssetVersion: "txid:88213377", Direction: Both, Depth: 1}, want: summary{
			Events:  []int{12, 13, 14, 15, 16, 17},
			Assets:  sorted(parquet, stg, customers),
			Runs:    sorted(runA, runB),
			Acting:  []string{"15 overrides 14"},
			Parents: []string{runB + " -> " + runA},
		}},
		{name: "max nodes", q: with(fromCSV, func(q *TraceQuery) { q.MaxNodes = 5 }), want: summary{
			Events: []int{23}, Assets: sorted(csv, segments), Runs: sorted(runB, runC), Truncated: true,
			Parents: []string{runC + " -> " + runB},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ix.Trace(t.Context(), tc.q)
			if err != nil {
				t.Fatalf("Trace: %v", err)
			}
			if d := cmp.Diff(tc.want, summarize(t, g, f, "acme")); d != "" {
				t.Errorf("graph (-want +got):\n%s", d)
			}
			if g.TreeSize != uint64(len(f.leaves)) {
				t.Errorf("TreeSize %d, want %d", g.TreeSize, len(f.leaves))
			}
			if !tc.want.Truncated && len(g.Gaps) != 0 {
				t.Errorf("gaps in the complete sample log: %v", g.Gaps)
			}
		})
	}
}

// TestTraceEdges pins the edges of one step completely: the merge rerun 17
// at depth 1 from its output.
func TestTraceEdges(t *testing.T) {
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: "postgres://warehouse/analytics.customers", AssetVersion: "txid:88214102", Direction: Upstream, Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := func(n int) uint64 { return f.leafOfNum("acme", n) }
	a := ActivityNodeID
	want := []Edge{
		{From: stg, To: a(l(14)), Kind: EdgeInput, Leaf: l(14)},
		{From: stg, To: a(l(16)), Kind: EdgeInput, Leaf: l(16)},
		{From: stg, To: a(l(17)), Kind: EdgeInput, Leaf: l(17)},
		{From: a(l(14)), To: RunNodeID(runB), Kind: EdgeStepOfRun, Leaf: l(14)},
		{From: a(l(15)), To: RunNodeID(runB), Kind: EdgeStepOfRun, Leaf: l(15)},
		{From: a(l(15)), To: a(l(14)), Kind: EdgeOverrides, Leaf: l(15)},
		{From: a(l(16)), To: RunNodeID(runB), Kind: EdgeStepOfRun, Leaf: l(16)},
		{From: a(l(17)), To: RunNodeID(runB), Kind: EdgeStepOfRun, Leaf: l(17)},
		{From: a(l(17)), To: customers, Kind: EdgeOutput, Leaf: l(17)},
		{From: a(l(18)), To: RunNodeID(runB), Kind: EdgeStepOfRun, Leaf: l(18)},
		{From: a(l(18)), To: customers, Kind: EdgeOutput, Leaf: l(18)},
		{From: RunNodeID(runB), To: RunNodeID(runA), Kind: EdgeParentRun, Leaf: l(14)},
	}
	for _, fld := range []string{"customer_key", "email", "full_name", "company_name", "marketing_opt_in"} {
		want = append(want, Edge{From: stg, To: customers, Kind: EdgeField, Leaf: l(17), FromField: fld, ToField: fld, Transformation: ""})
	}
	var got []Edge
	for _, e := range g.Edges {
		e := *e
		e.Transformation = ""
		got = append(got, e)
	}
	slices.SortFunc(want, func(x, y Edge) int { return compareEdges(&x, &y) })
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("edges (-want +got):\n%s", d)
	}
	// The nodes carry what the leaves say.
	if n := g.node(customers); n.Leaf != l(17) || n.Asset.Classification != "pii" ||
		!strings.HasPrefix(n.Asset.Digest, "sha256:1f8f1336") || len(n.Asset.Fields) == 0 {
		t.Errorf("customers node: leaf %d (want %d), %+v", n.Leaf, l(17), n.Asset)
	}
	ov := g.node(a(l(15))).Activity
	if ov.Operation != provlogv1.Operation_OPERATION_OVERRIDE || ov.Actor.ID != "tom.becker@acme.example" || ov.Rationale == "" ||
		ov.Workflow.RunID != runB || ov.Workflow.StepID != "dq_gate" || ov.EventTime.IsZero() || ov.ReceivedTime.IsZero() {
		t.Errorf("override node: %+v", ov)
	}
	if r := g.node(RunNodeID(runB)).Run; r.WorkflowID != "warehouse_load_customers" || r.Platform != "airflow" || r.ParentRunID != runA {
		t.Errorf("run node: %+v", r)
	}
}

func TestTraceErrors(t *testing.T) {
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	for _, tc := range []struct {
		name  string
		q     TraceQuery
		field string // QueryError field, or "" for ErrQueryNotFound
	}{
		{"no tenant", TraceQuery{AssetURI: csvURI, Direction: Upstream}, "tenant"},
		{"no start", TraceQuery{Tenant: "acme", Direction: Upstream}, "start"},
		{"two starts", TraceQuery{Tenant: "acme", AssetURI: csvURI, RunID: runA, Direction: Upstream}, "start"},
		{"version without uri", TraceQuery{Tenant: "acme", EventID: "x", AssetVersion: "v", Direction: Upstream}, "asset_uri"},
		{"no direction", TraceQuery{Tenant: "acme", AssetURI: csvURI}, "direction"},
		{"depth too large", TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream, Depth: 21}, "depth"},
		{"negative depth", TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream, Depth: -1}, "depth"},
		{"max nodes too large", TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream, MaxNodes: MaxMaxNodes + 1}, "max_nodes"},
		{"until before since", TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream, Filters: Filters{Since: time.Unix(10, 0), Until: time.Unix(5, 0)}}, "filters.until"},
		{"tree size beyond the watermark", TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream, TreeSize: 25}, "tree_size"},
		{"unknown asset", TraceQuery{Tenant: "acme", AssetURI: "crm://nowhere/x", Direction: Upstream}, ""},
		{"unknown version", TraceQuery{Tenant: "acme", AssetURI: csvURI, AssetVersion: "nope", Direction: Upstream}, ""},
		{"another tenant's asset", TraceQuery{Tenant: "globex", AssetURI: csvURI, Direction: Upstream}, ""},
		{"unknown event", TraceQuery{Tenant: "acme", EventID: "nope", Direction: Upstream}, ""},
		{"unknown run", TraceQuery{Tenant: "acme", RunID: "nope", Direction: Upstream}, ""},
		{"asset beyond the tree size", TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream, TreeSize: 20}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ix.Trace(t.Context(), tc.q)
			var qe *QueryError
			switch {
			case tc.field == "" && !errors.Is(err, ErrQueryNotFound):
				t.Errorf("err = %v, want ErrQueryNotFound", err)
			case tc.field != "" && (!errors.As(err, &qe) || qe.Field != tc.field || !errors.Is(err, ErrInvalidQuery)):
				t.Errorf("err = %v, want a QueryError on %q", err, tc.field)
			}
		})
	}
}

// TestTraceTreeSize: an answer at a tree size cites only leaves below it.
func TestTraceTreeSize(t *testing.T) {
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: "crm://acme-crm/contacts", Direction: Downstream, TreeSize: 13})
	if err != nil {
		t.Fatal(err)
	}
	want := summary{
		Events:  []int{2, 4, 5, 6, 7, 8, 10, 11, 12, 13},
		Assets:  sorted(contactsAny, contacts, consents, enrich, parquet, dqReport, manifest, stg),
		Runs:    sorted(runA, runB),
		Acting:  []string{"07 approves 05", "07 approves 06"},
		Parents: []string{runB + " -> " + runA},
		Matches: []string{contacts + " -> " + contactsAny},
	}
	if d := cmp.Diff(want, summarize(t, g, f, "acme")); d != "" {
		t.Errorf("graph at size 13 (-want +got):\n%s", d)
	}
	if g.TreeSize != 13 {
		t.Errorf("TreeSize %d, want 13", g.TreeSize)
	}
}

func TestMask(t *testing.T) {
	f := sampleFeed(t)
	var masked []string
	ix := openIndex(t, f.source(), Options{Mask: func(n *Node) {
		masked = append(masked, n.ID)
		if n.Asset != nil && n.Asset.Classification == "pii" {
			n.Asset.Fields, n.Asset.Digest = nil, ""
		}
		if n.Activity != nil && n.Activity.Actor.Type == provlogv1.ActorType_ACTOR_TYPE_PERSON {
			n.Activity.Actor.ID, n.Activity.Rationale = "[redacted]", ""
		}
	}})
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream})
	if err != nil {
		t.Fatal(err)
	}
	if len(masked) != len(g.Nodes) {
		t.Errorf("Mask saw %d nodes, the graph has %d", len(masked), len(g.Nodes))
	}
	if n := g.node(parquet); n.Asset.Digest != "" || n.Asset.Fields != nil {
		t.Errorf("pii asset not masked: %+v", n.Asset)
	}
	if n := g.node(segments); n.Asset.Digest == "" {
		t.Errorf("confidential asset masked: %+v", n.Asset)
	}
	for _, n := range g.Nodes {
		if n.Activity != nil && n.Activity.Actor.Type == provlogv1.ActorType_ACTOR_TYPE_PERSON && n.Activity.Actor.ID != "[redacted]" {
			t.Errorf("person not masked in %s", n.ID)
		}
	}
	masked = nil
	h, err := ix.History(t.Context(), HistoryQuery{Tenant: "acme", URI: "s3://acme-staging/contacts/2026-11-26.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(h.Entries); len(masked) != want {
		t.Errorf("History: Mask saw %d nodes, want %d", len(masked), want)
	}
	for _, e := range h.Entries {
		if e.Uses[0].Asset.Asset.Digest != "" {
			t.Errorf("History: pii asset not masked in %s", e.Event.ID)
		}
	}
}

// TestRecordRevisions: every revision of a record is traceable to the run
// that produced it, by version and record key, with the matching rule for
// references that leave either out.
func TestRecordRevisions(t *testing.T) {
	f := &feed{}
	n := 0
	ev := func(run string, op provlogv1.Operation, in, out []*provlogv1.Asset) {
		n++
		f.add(t, sample{n: n, e: &provlogv1.ProvenanceEvent{
			SchemaVersion: 1, EventId: fmt.Sprintf("e%d", n), Tenant: "acme", Operation: op,
			EventTime: timestamppb.New(testReceived.Add(time.Duration(n) * time.Minute)),
			Actor:     &provlogv1.Actor{Type: provlogv1.ActorType_ACTOR_TYPE_SERVICE, Id: "svc"},
			Workflow:  &provlogv1.Workflow{Platform: "custom", RunId: run},
			Inputs:    in, Outputs: out,
		}})
	}
	rec := func(version, key string) *provlogv1.Asset {
		return &provlogv1.Asset{Uri: "crm://acme/contacts", Version: version, RecordKey: key}
	}
	write, read := provlogv1.Operation_OPERATION_WRITE, provlogv1.Operation_OPERATION_READ
	ev("r1", write, []*provlogv1.Asset{{Uri: "web://form/1"}}, []*provlogv1.Asset{rec("1", "C-7")}) // 1
	ev("r2", write, []*provlogv1.Asset{{Uri: "web://form/2"}}, []*provlogv1.Asset{rec("2", "C-7")}) // 2
	ev("r3", write, []*provlogv1.Asset{{Uri: "web://form/3"}}, []*provlogv1.Asset{rec("2", "C-8")}) // 3
	ev("r4", write, []*provlogv1.Asset{{Uri: "csv://import"}}, []*provlogv1.Asset{rec("3", "")})    // 4: a whole version
	ev("r5", read, []*provlogv1.Asset{rec("", "C-7")}, nil)                                         // 5: every revision of C-7
	ix := openIndex(t, f.source(), Options{})
	for _, tc := range []struct {
		name    string
		version string
		key     string
		dir     Direction
		events  []int
		matches []string
	}{
		{name: "revision 1 of C-7", version: "1", key: "C-7", dir: Upstream, events: []int{1}},
		{name: "revision 2 of C-7", version: "2", key: "C-7", dir: Upstream, events: []int{2}},
		{name: "version 2, every record", version: "2", dir: Upstream, events: []int{2, 3}, matches: []string{
			AssetNodeID("crm://acme/contacts", "2", "C-7") + " -> " + AssetNodeID("crm://acme/contacts", "2", ""),
			AssetNodeID("crm://acme/contacts", "2", "C-8") + " -> " + AssetNodeID("crm://acme/contacts", "2", ""),
		}},
		{name: "C-7 in version 3, written as a whole", version: "3", key: "C-7", dir: Upstream, events: []int{4}, matches: []string{
			AssetNodeID("crm://acme/contacts", "3", "") + " -> " + AssetNodeID("crm://acme/contacts", "3", "C-7"),
		}},
		{name: "every revision of C-7", key: "C-7", dir: Upstream, events: []int{1, 2, 4}, matches: []string{
			AssetNodeID("crm://acme/contacts", "1", "C-7") + " -> " + AssetNodeID("crm://acme/contacts", "", "C-7"),
			AssetNodeID("crm://acme/contacts", "2", "C-7") + " -> " + AssetNodeID("crm://acme/contacts", "", "C-7"),
			AssetNodeID("crm://acme/contacts", "3", "") + " -> " + AssetNodeID("crm://acme/contacts", "", "C-7"),
		}},
		{name: "who read revision 2 of C-8", version: "2", key: "C-8", dir: Downstream},
		{name: "who read revision 2 of C-7", version: "2", key: "C-7", dir: Downstream, events: []int{5}, matches: []string{
			AssetNodeID("crm://acme/contacts", "", "C-7") + " -> " + AssetNodeID("crm://acme/contacts", "2", "C-7"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: "crm://acme/contacts", AssetVersion: tc.version, RecordKey: tc.key, Direction: tc.dir})
			if err != nil {
				t.Fatal(err)
			}
			s := summarize(t, g, f, "acme")
			if d := cmp.Diff(tc.events, s.Events); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
			if d := cmp.Diff(sorted(tc.matches...), s.Matches, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("matches (-want +got):\n%s", d)
			}
			// Each producing event's run is in the graph.
			for _, e := range s.Events {
				if want := fmt.Sprintf("r%d", e); !slices.Contains(s.Runs, want) {
					t.Errorf("run %s of event %d missing from %v", want, e, s.Runs)
				}
			}
		})
	}
}
