package lineage

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// allGaps lists a tenant's open gaps through OpenGaps, a page of 2 at a
// time, as "run: kind missing [sample numbers]".
func allGaps(t *testing.T, ix *Index, f *feed, tenant string) []string {
	t.Helper()
	var out []string
	tok := ""
	for range 100 {
		gaps, next, err := ix.OpenGaps(t.Context(), tenant, tok, 2)
		if err != nil {
			t.Fatalf("OpenGaps: %v", err)
		}
		for i, s := range gapStrings(f, gaps) {
			out = append(out, gaps[i].RunID+": "+s)
		}
		if next == "" {
			return out
		}
		tok = next
	}
	t.Fatal("OpenGaps does not end")
	return nil
}

func TestGaps(t *testing.T) {
	reorder := func(order ...int) func(t *testing.T) *feed {
		return func(t *testing.T) *feed {
			byNum := map[int]sample{}
			for _, s := range samples(t) {
				byNum[s.n] = s
			}
			f := &feed{}
			for _, n := range order {
				f.add(t, byNum[n])
			}
			return f
		}
	}
	drop := func(nums ...int) func(t *testing.T) *feed {
		return func(t *testing.T) *feed { return sampleFeed(t, nums...) }
	}
	seq := func(from, to int) []int {
		var out []int
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	stgMissing := "postgres://warehouse/staging.stg_customers@txid:88213377"
	for _, tc := range []struct {
		name   string
		feed   func(t *testing.T) *feed
		gaps   []string
		opened []GapKind // every gap opened on the way, closed or not
	}{
		// Run B's first merge attempt fails (16), and its completion (18)
		// closes the run_failed gap that opened: every log with both opens
		// and closes one. Without 05, the staging file is read (06, 08)
		// before the run's completion (09) declares it produced.
		{name: "the complete log has none", feed: drop(), opened: []GapKind{GapRunFailed}},
		{name: "missing run start", feed: drop(1), gaps: []string{runA + ": run_without_start [2]"},
			opened: []GapKind{GapRunFailed, GapRunWithoutStart}},
		{name: "missing run completion after a failure", feed: drop(18), gaps: []string{runB + ": run_failed [16]"},
			opened: []GapKind{GapRunFailed}},
		{name: "missing transform step: its output is consumed unproduced", feed: drop(13), gaps: []string{
			runB + ": unproduced_input " + stgMissing + " [14]",
			runB + ": unproduced_input " + stgMissing + " [16]",
			runB + ": unproduced_input " + stgMissing + " [17]",
		}, opened: []GapKind{GapRunFailed, GapUnproducedInput, GapUnproducedInput, GapUnproducedInput}},
		{name: "missing approved step", feed: drop(5), gaps: []string{runA + ": missing_subject n8n:run-7f3a9c:dedupe-normalise [7]"},
			opened: []GapKind{GapMissingSubject, GapRunFailed, GapUnproducedInput, GapUnproducedInput}},
		{name: "missing checked step", feed: drop(14), gaps: []string{
			runB + ": missing_subject airflow:warehouse_load_customers:dataset_triggered__2026-11-26T07:05:12+00:00:dq_check_customers:1 [15]",
		}, opened: []GapKind{GapMissingSubject, GapRunFailed}},
		{name: "missing parent run", feed: drop(seq(1, 9)...), gaps: []string{runB + ": missing_parent_run " + runA + " [10]"},
			opened: []GapKind{GapMissingParentRun, GapRunFailed}},
		// Without runs A and B, the warehouse table run C reads was never
		// produced, while run C itself writes to the warehouse.
		{name: "missing parent run and grandparent", feed: drop(seq(1, 18)...), gaps: []string{
			runC + ": missing_parent_run " + runB + " [19]",
			runC + ": unproduced_input postgres://warehouse/analytics.customers@txid:88214102 [20]",
			runC + ": unproduced_input postgres://warehouse/analytics.customers@txid:88214102 [21]",
		}, opened: []GapKind{GapMissingParentRun, GapUnproducedInput, GapUnproducedInput}},
		// Leaves may arrive out of order across engines: gaps close when
		// what was missing shows up.
		{name: "approval before its subject", feed: reorder(append(append(seq(1, 20), 22, 21), seq(23, 24)...)...),
			opened: []GapKind{GapMissingSubject, GapRunFailed}},
		{name: "start after the first step", feed: reorder(append([]int{2, 1}, seq(3, 24)...)...),
			opened: []GapKind{GapRunFailed, GapRunWithoutStart}},
		{name: "child run before its parent", feed: reorder(append(seq(19, 24), seq(1, 18)...)...),
			// Run C's reads of analytics.customers are judged when the
			// warehouse gets its first producer (21, segments), and
			// satisfied when 17 and 18 produce it.
			opened: []GapKind{GapMissingParentRun, GapRunFailed, GapUnproducedInput, GapUnproducedInput}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.feed(t)
			var mu sync.Mutex
			var opened []GapKind
			ix := openIndex(t, f.source(), Options{PassSize: 5, OnGap: func(g Gap) {
				mu.Lock()
				defer mu.Unlock()
				opened = append(opened, g.Kind)
			}})
			if d := cmp.Diff(tc.gaps, allGaps(t, ix, f, "acme")); d != "" {
				t.Errorf("open gaps (-want +got):\n%s", d)
			}
			slices.Sort(opened)
			if d := cmp.Diff(tc.opened, opened); d != "" {
				t.Errorf("gaps opened (-want +got):\n%s", d)
			}
			counts := ix.GapCounts()
			want := map[GapKind]int64{}
			for _, k := range GapKinds {
				want[k] = 0
			}
			for _, g := range tc.gaps {
				for _, k := range GapKinds {
					if strings.Contains(g, ": "+string(k)+" ") {
						want[k]++
					}
				}
			}
			if d := cmp.Diff(want, counts); d != "" {
				t.Errorf("GapCounts (-want +got):\n%s", d)
			}
		})
	}
}

// TestTraceGaps: a trace reports the gaps of the runs it crosses.
func TestTraceGaps(t *testing.T) {
	f := sampleFeed(t, 13)
	ix := openIndex(t, f.source(), Options{})
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: csvURI, Direction: Upstream})
	if err != nil {
		t.Fatal(err)
	}
	stgMissing := "postgres://warehouse/staging.stg_customers@txid:88213377"
	want := []string{
		"unproduced_input " + stgMissing + " [14]",
		"unproduced_input " + stgMissing + " [16]",
		"unproduced_input " + stgMissing + " [17]",
	}
	if d := cmp.Diff(want, gapStrings(f, g.Gaps)); d != "" {
		t.Errorf("gaps (-want +got):\n%s", d)
	}
	// The trace stops where the step is missing.
	s := summarize(t, g, f, "acme")
	if d := cmp.Diff([]int{14, 15, 16, 17, 18, 20, 21, 22, 23, 24}, s.Events); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

// TestTenantIsolation interleaves another tenant's copy of the samples (same
// event ids, runs and URIs) with acme's: nothing of one ever shows in the
// other's answers, and another tenant's run is no parent.
func TestTenantIsolation(t *testing.T) {
	f := &feed{}
	for _, s := range samples(t) {
		f.add(t, s)
		g := sample{n: s.n, e: proto.Clone(s.e).(*provlogv1.ProvenanceEvent)}
		g.e.Tenant = "globex"
		if s.n <= 9 {
			// globex has no run A: its run B's parent is acme's run A.
			continue
		}
		f.add(t, g)
	}
	ix := openIndex(t, f.source(), Options{})
	// acme's answers are those of the samples alone.
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: csvURI, AssetVersion: csvVersion, Direction: Upstream})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(upstreamOfCSV, summarize(t, g, f, "acme")); d != "" {
		t.Errorf("acme upstream (-want +got):\n%s", d)
	}
	g, err = ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: "crm://acme-crm/contacts", Direction: Downstream})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(downstreamOfContacts, summarize(t, g, f, "acme")); d != "" {
		t.Errorf("acme downstream (-want +got):\n%s", d)
	}
	// globex's upstream stops where its log does, and says so.
	g, err = ix.Trace(t.Context(), TraceQuery{Tenant: "globex", AssetURI: csvURI, Direction: Upstream})
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(t, g, f, "globex")
	if d := cmp.Diff([]int{12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24}, s.Events); d != "" {
		t.Errorf("globex upstream events (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"missing_parent_run " + runA + " [10]"}, gapStrings(f, g.Gaps)); d != "" {
		t.Errorf("globex gaps (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string(nil), allGaps(t, ix, f, "acme")); d != "" {
		t.Errorf("acme gaps (-want +got):\n%s", d)
	}
	// Lookups by id, run, asset and filter stay in the tenant.
	if _, err := ix.Trace(t.Context(), TraceQuery{Tenant: "globex", EventID: "n8n:run-7f3a9c:trigger", Direction: Downstream}); err == nil {
		t.Error("globex traced acme's event")
	}
	re, err := ix.RunEvents(t.Context(), "globex", runB)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range re.Events {
		if f.tenant[n.Leaf] != "globex" {
			t.Errorf("globex run B lists leaf %d of %q", n.Leaf, f.tenant[n.Leaf])
		}
	}
	for _, tenant := range []string{"acme", "globex"} {
		p, err := ix.Find(t.Context(), tenant, Filter{}, "", MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		nums, _ := pageNums(t, f, tenant, p)
		if want := map[string]int{"acme": 24, "globex": 15}[tenant]; len(nums) != want {
			t.Errorf("Find(%s) found %d events, want %d", tenant, len(nums), want)
		}
		h, err := ix.History(t.Context(), HistoryQuery{Tenant: tenant, URI: "postgres://warehouse/analytics.customers"})
		if err != nil {
			t.Fatal(err)
		}
		pageNums(t, f, tenant, h)
	}
}

// TestUndecodableLeaf: a leaf that does not decode is skipped, counted and
// listed, and the index goes on.
func TestUndecodableLeaf(t *testing.T) {
	f := &feed{}
	for _, s := range samples(t) {
		f.add(t, s)
		if s.n == 12 {
			f.leaves = append(f.leaves, []byte("not a leaf"))
			f.nums = append(f.nums, 0)
			f.tenant = append(f.tenant, "")
		}
	}
	ix := openIndex(t, f.source(), Options{})
	if ix.Watermark() != 25 {
		t.Fatalf("watermark %d, want 25", ix.Watermark())
	}
	if got := ix.GapCounts()[GapUndecodableLeaf]; got != 1 {
		t.Errorf("undecodable leaves counted: %d, want 1", got)
	}
	bad, err := ix.UndecodableLeaves(t.Context(), 0, 10)
	if err != nil || !slices.Equal(bad, []uint64{12}) {
		t.Errorf("UndecodableLeaves = %v, %v; want [12]", bad, err)
	}
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: "acme", AssetURI: csvURI, AssetVersion: csvVersion, Direction: Upstream})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(upstreamOfCSV, summarize(t, g, f, "acme")); d != "" {
		t.Errorf("upstream (-want +got):\n%s", d)
	}
}
