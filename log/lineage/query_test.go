package lineage

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// pageNums is a page as sample numbers, and each entry's uses as
// "role asset-id".
func pageNums(t *testing.T, f *feed, tenant string, p *HistoryPage) ([]int, [][]string) {
	t.Helper()
	var nums []int
	var uses [][]string
	for _, e := range p.Entries {
		if f.tenant[e.Event.Leaf] != tenant {
			t.Errorf("leaf %d of tenant %q in an answer for %q", e.Event.Leaf, f.tenant[e.Event.Leaf], tenant)
		}
		nums = append(nums, f.nums[e.Event.Leaf])
		var u []string
		for _, x := range e.Uses {
			u = append(u, x.Role.String()+" "+x.Asset.ID)
			if x.Asset.Leaf != e.Event.Leaf {
				t.Errorf("use of %s cites leaf %d, not its event's %d", x.Asset.ID, x.Asset.Leaf, e.Event.Leaf)
			}
		}
		uses = append(uses, u)
	}
	return nums, uses
}

func TestHistory(t *testing.T) {
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	parquetURI := "s3://acme-staging/contacts/2026-11-26.parquet"
	for _, tc := range []struct {
		name  string
		q     HistoryQuery
		pages [][]int
		uses  [][]string // of the first page
	}{
		{
			name:  "every use of the staging file, newest first, in pages of 4",
			q:     HistoryQuery{Tenant: "acme", URI: parquetURI, Limit: 4},
			pages: [][]int{{13, 12, 9, 8}, {6, 5}},
			uses:  [][]string{{"input " + parquet}, {"input " + parquet}, {"output " + parquet}, {"input " + parquet}},
		},
		{
			name:  "one version, one page",
			q:     HistoryQuery{Tenant: "acme", URI: parquetURI, Version: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH"},
			pages: [][]int{{13, 12, 9, 8, 6, 5}},
		},
		{
			name:  "a version nothing used",
			q:     HistoryQuery{Tenant: "acme", URI: parquetURI, Version: "nope"},
			pages: [][]int{nil},
		},
		{
			name:  "a consent record: its read, and the read of the whole version",
			q:     HistoryQuery{Tenant: "acme", URI: "crm://acme-crm/consents", RecordKey: "CNS-55187"},
			pages: [][]int{{5, 3}},
			uses:  [][]string{{"input " + consents}, {"input " + consent("CNS-55187")}},
		},
		{
			name:  "all consent records",
			q:     HistoryQuery{Tenant: "acme", URI: "crm://acme-crm/consents", Version: "rev-20661"},
			pages: [][]int{{5, 3}},
			uses:  [][]string{{"input " + consents}, {"input " + consent("CNS-55120"), "input " + consent("CNS-55187"), "input " + consent("CNS-55203")}},
		},
		{
			name:  "one per page",
			q:     HistoryQuery{Tenant: "acme", URI: "postgres://warehouse/analytics.customers", Limit: 1},
			pages: [][]int{{21}, {20}, {18}, {17}},
		},
		{
			name:  "at a tree size",
			q:     HistoryQuery{Tenant: "acme", URI: "postgres://warehouse/analytics.customers", TreeSize: 20},
			pages: [][]int{{20, 18, 17}},
		},
		{
			name:  "another tenant",
			q:     HistoryQuery{Tenant: "globex", URI: parquetURI},
			pages: [][]int{nil},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pages [][]int
			q := tc.q
			for i := 0; ; i++ {
				p, err := ix.History(t.Context(), q)
				if err != nil {
					t.Fatalf("History page %d: %v", i, err)
				}
				nums, uses := pageNums(t, f, q.Tenant, p)
				pages = append(pages, nums)
				if i == 0 && tc.uses != nil {
					if d := cmp.Diff(tc.uses, uses); d != "" {
						t.Errorf("uses (-want +got):\n%s", d)
					}
				}
				if len(p.Leaves) != len(p.Entries) {
					t.Errorf("%d leaves for %d entries", len(p.Leaves), len(p.Entries))
				}
				if p.NextPageToken == "" || i > 10 {
					break
				}
				q.PageToken = p.NextPageToken
			}
			if d := cmp.Diff(tc.pages, pages); d != "" {
				t.Errorf("pages (-want +got):\n%s", d)
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		for _, tok := range []string{"!!", "AQ", encodeToken(tokenFind, []byte{1, 2, 3, 4, 5, 6, 7, 8})} {
			_, err := ix.History(t.Context(), HistoryQuery{Tenant: "acme", URI: parquetURI, PageToken: tok})
			if !errors.Is(err, ErrInvalidQuery) {
				t.Errorf("token %q: err = %v, want ErrInvalidQuery", tok, err)
			}
		}
	})
}

func TestRunEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		drop   []int
		run    string
		events []int
		gaps   []string
	}{
		{name: "run A", run: runA, events: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{name: "run B", run: runB, events: []int{10, 11, 12, 13, 14, 15, 16, 17, 18}},
		{name: "run C", run: runC, events: []int{19, 20, 21, 22, 23, 24}},
		{name: "run B without its completion", drop: []int{18}, run: runB, events: []int{10, 11, 12, 13, 14, 15, 16, 17},
			gaps: []string{"run_failed [16]"}},
		{name: "run B without its start", drop: []int{10}, run: runB, events: []int{11, 12, 13, 14, 15, 16, 17, 18},
			gaps: []string{"run_without_start [11]"}},
		{name: "run B without run A", drop: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, run: runB, events: []int{10, 11, 12, 13, 14, 15, 16, 17, 18},
			gaps: []string{"missing_parent_run " + runA + " [10]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sampleFeed(t, tc.drop...)
			ix := openIndex(t, f.source(), Options{})
			re, err := ix.RunEvents(t.Context(), "acme", tc.run)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, n := range re.Events {
				got = append(got, f.nums[n.Leaf])
				if n.Activity.Workflow.RunID != tc.run {
					t.Errorf("event %s of run %q", n.ID, n.Activity.Workflow.RunID)
				}
			}
			if d := cmp.Diff(tc.events, got); d != "" {
				t.Errorf("events (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.gaps, gapStrings(f, re.Gaps)); d != "" {
				t.Errorf("gaps (-want +got):\n%s", d)
			}
			if re.Run.ID != RunNodeID(tc.run) || re.Run.Leaf != re.Events[0].Leaf {
				t.Errorf("run node %+v", re.Run)
			}
			for _, g := range re.Gaps {
				for _, l := range g.Leaves {
					found := false
					for _, x := range re.Leaves {
						found = found || x == l
					}
					if !found {
						t.Errorf("gap leaf %d not in Leaves %v", l, re.Leaves)
					}
				}
			}
		})
	}
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	if _, err := ix.RunEvents(t.Context(), "globex", runA); !errors.Is(err, ErrQueryNotFound) {
		t.Errorf("another tenant's run: %v, want ErrQueryNotFound", err)
	}
	if _, err := ix.RunEvents(t.Context(), "acme", ""); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("no run id: %v, want ErrInvalidQuery", err)
	}
}

// gapStrings renders gaps as "kind [sample numbers]", with what is missing
// for the kinds that name it.
func gapStrings(f *feed, gaps []Gap) []string {
	var out []string
	for _, g := range gaps {
		var nums []int
		for _, l := range g.Leaves {
			nums = append(nums, f.nums[l])
		}
		s := string(g.Kind)
		if g.Missing != "" {
			s += " " + g.Missing
		}
		out = append(out, fmt.Sprintf("%s %v", s, nums))
	}
	return out
}

func TestFind(t *testing.T) {
	f := sampleFeed(t)
	ix := openIndex(t, f.source(), Options{})
	at := func(h, m int) time.Time { return time.Date(2026, 11, 26, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name   string
		f      Filter
		limit  int
		tenant string
		pages  [][]int
	}{
		{name: "event id", f: Filter{EventID: "n8n:run-7f3a9c:approve-staging"}, pages: [][]int{{7}}},
		{name: "event id of another tenant", tenant: "globex", f: Filter{EventID: "n8n:run-7f3a9c:approve-staging"}, pages: [][]int{nil}},
		{name: "event id and a filter it fails", f: Filter{EventID: "n8n:run-7f3a9c:approve-staging", RunID: runB}, pages: [][]int{nil}},
		{name: "reads of run B", f: Filter{RunID: runB, Operation: provlogv1.Operation_OPERATION_READ}, pages: [][]int{{14, 12, 11}}},
		{name: "step", f: Filter{StepID: "merge_customers"}, pages: [][]int{{17, 16}}},
		{name: "workflow, in pages of 2", f: Filter{WorkflowID: "acme_analytics"}, limit: 2, pages: [][]int{{24, 23}, {22, 21}, {20, 19}}},
		{name: "actor", f: Filter{ActorID: "svc-dbt-prod@acme.example"}, pages: [][]int{{23, 21, 20}}},
		{name: "classification", f: Filter{Classification: "confidential"}, pages: [][]int{{24, 23, 21, 6, 5, 3}}},
		{name: "operation", f: Filter{Operation: provlogv1.Operation_OPERATION_APPROVAL}, pages: [][]int{{22, 7}}},
		{name: "time window, in pages of 2", f: Filter{Since: at(7, 0), Until: at(7, 10)}, limit: 2, pages: [][]int{{14, 13}, {12, 11}, {10}}},
		{name: "time window and actor", f: Filter{Since: at(7, 0), Until: at(7, 10), ActorID: "svc-airflow-warehouse@acme.example"}, pages: [][]int{{14, 13, 12, 11}}},
		{name: "everything, newest event time first", limit: 10, pages: [][]int{
			{24, 23, 22, 21, 20, 19, 18, 17, 16, 15}, {14, 13, 12, 11, 10, 9, 8, 7, 6, 5}, {4, 3, 2, 1},
		}},
		{name: "at a tree size", f: Filter{WorkflowID: "acme_analytics", TreeSize: 21}, pages: [][]int{{21, 20, 19}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := tc.tenant
			if tenant == "" {
				tenant = "acme"
			}
			var pages [][]int
			tok := ""
			for i := 0; ; i++ {
				p, err := ix.Find(t.Context(), tenant, tc.f, tok, tc.limit)
				if err != nil {
					t.Fatalf("Find page %d: %v", i, err)
				}
				nums, _ := pageNums(t, f, tenant, p)
				pages = append(pages, nums)
				if p.NextPageToken == "" || i > 10 {
					break
				}
				tok = p.NextPageToken
			}
			if d := cmp.Diff(tc.pages, pages); d != "" {
				t.Errorf("pages (-want +got):\n%s", d)
			}
		})
	}
	if _, err := ix.Find(t.Context(), "acme", Filter{}, "", MaxPageSize+1); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("limit too large: %v", err)
	}
	tok := ""
	if p, err := ix.Find(t.Context(), "acme", Filter{RunID: runA}, "", 2); err != nil {
		t.Fatal(err)
	} else {
		tok = p.NextPageToken
	}
	if _, err := ix.Find(t.Context(), "acme", Filter{ActorID: "x"}, tok, 2); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("a token of another index: %v, want ErrInvalidQuery", err)
	}
}
