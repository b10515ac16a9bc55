package lineage

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

func TestWorkflowRuns(t *testing.T) {
	// The samples, then two more runs of warehouse_load_customers (run B's
	// workflow): "b-failed" (run B's samples 10..16: start, then a failure)
	// and "b-open" (10..12: started, not ended), and one event of globex
	// with the same workflow and run ids.
	f := sampleFeed(t)
	for _, extra := range []struct {
		run  string
		upTo int
	}{{"b-failed", 16}, {"b-open", 12}} {
		for _, s := range samples(t) {
			if s.n < 10 || s.n > extra.upTo {
				continue
			}
			s.e.EventId += "/" + extra.run
			s.e.Workflow.RunId = extra.run
			f.add(t, s)
		}
	}
	g := samples(t)[9]
	g.e = proto.Clone(g.e).(*provlogv1.ProvenanceEvent)
	g.e.Tenant, g.e.Workflow.RunId = "globex", "b-globex"
	f.add(t, g)
	src := f.source()
	ix := openIndex(t, src, Options{})
	const wf = "warehouse_load_customers"

	type run struct {
		ID                         string
		First, Last                int // sample numbers
		Events                     int
		Started, Completed, Failed bool
	}
	runs := func(p *WorkflowRunsPage) []run {
		var out []run
		for _, r := range p.Runs {
			out = append(out, run{r.RunID, f.nums[r.FirstLeaf], f.nums[r.LastLeaf], r.Events, r.Started, r.Completed, r.Failed})
			for _, l := range []uint64{r.FirstLeaf, r.LastLeaf} {
				if f.tenant[l] != "acme" || !containsLeaf(p.Leaves, l) {
					t.Errorf("run %s: leaf %d (tenant %s) not cited in %v", r.RunID, l, f.tenant[l], p.Leaves)
				}
			}
			if r.StartTime == 0 || r.Platform != "airflow" {
				t.Errorf("run %s: start time %d, platform %q", r.RunID, r.StartTime, r.Platform)
			}
		}
		return out
	}
	all := []run{
		{"b-failed", 10, 16, 7, true, false, true},
		{"b-open", 10, 12, 3, true, false, false},
		{runB, 10, 18, 9, true, true, true},
	}
	p, err := ix.WorkflowRuns(t.Context(), "acme", wf, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(all, runs(p)); d != "" || p.NextPageToken != "" {
		t.Errorf("runs (-want +got):\n%s\nnext %q", d, p.NextPageToken)
	}

	// Pages of 2, then 1.
	p1, err := ix.WorkflowRuns(t.Context(), "acme", wf, "", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := ix.WorkflowRuns(t.Context(), "acme", wf, p1.NextPageToken, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(all, append(runs(p1), runs(p2)...)); d != "" || p1.NextPageToken == "" || p2.NextPageToken != "" {
		t.Errorf("paged runs (-want +got):\n%s\ntokens %q %q", d, p1.NextPageToken, p2.NextPageToken)
	}

	// At the tree size of the samples alone: run B only, as the log said
	// then. At the size ending with b-failed's failure: b-failed failed.
	p, err = ix.WorkflowRuns(t.Context(), "acme", wf, "", 0, 24)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(all[2:], runs(p)); d != "" {
		t.Errorf("runs at size 24 (-want +got):\n%s", d)
	}
	p, err = ix.WorkflowRuns(t.Context(), "acme", wf, "", 0, 24+6)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]run{{"b-failed", 10, 15, 6, true, false, false}, all[2]}, runs(p)); d != "" {
		t.Errorf("runs at size 30 (-want +got):\n%s", d)
	}

	// The other workflows of the samples have one run each.
	for wf, r := range map[string]string{"wf-crm-contacts-nightly": runA, "acme_analytics": runC} {
		p, err := ix.WorkflowRuns(t.Context(), "acme", wf, "", 0, 0)
		if err != nil || len(p.Runs) != 1 || p.Runs[0].RunID != r || !p.Runs[0].Completed {
			t.Errorf("%s: %+v, %v; want run %s, completed", wf, p, err, r)
		}
	}

	// globex sees its own run only.
	p, err = ix.WorkflowRuns(t.Context(), "globex", wf, "", 0, 0)
	if err != nil || len(p.Runs) != 1 || p.Runs[0].RunID != "b-globex" || f.tenant[p.Runs[0].FirstLeaf] != "globex" {
		t.Errorf("globex: %+v, %v", p, err)
	}

	for _, tc := range []struct {
		name              string
		tenant, wf, token string
		limit             int
		size              uint64
		want              error
	}{
		{"unknown workflow", "acme", "nope", "", 0, 0, ErrQueryNotFound},
		{"tenant without the workflow", "initech", wf, "", 0, 0, ErrQueryNotFound},
		{"workflow before its first event", "acme", wf, "", 0, 9, ErrQueryNotFound},
		{"no tenant", "", wf, "", 0, 0, ErrInvalidQuery},
		{"no workflow", "acme", "", "", 0, 0, ErrInvalidQuery},
		{"bad token", "acme", wf, "AQh4", 0, 0, ErrInvalidQuery},
		{"page too large", "acme", wf, "", MaxPageSize + 1, 0, ErrInvalidQuery},
		{"beyond the watermark", "acme", wf, "", 0, 1000, ErrInvalidQuery},
	} {
		if _, err := ix.WorkflowRuns(t.Context(), tc.tenant, tc.wf, tc.token, tc.limit, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func containsLeaf(ls []uint64, l uint64) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}
