package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
)

// TestListWorkflowRuns: the runs of a workflow over gRPC and REST, with
// proofs of their first and last leaves that the client library verifies;
// a tenant the caller may not read is NotFound like an unknown workflow;
// bad requests are InvalidArgument naming the field.
func TestListWorkflowRuns(t *testing.T) {
	h := startSV(t, t.TempDir(), newKeyFile(t), &vclock{t: testNow})
	files, err := filepath.Glob("../../testdata/events/*.json")
	if err != nil || len(files) < 20 {
		t.Fatalf("sample events: %d, %v", len(files), err)
	}
	ctx := withToken(t.Context(), svAdmin) // approvals need a person's credential
	leafOf := map[string]uint64{}          // file number ("10") -> leaf
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ev := &pb.ProvenanceEvent{}
		if err := protojson.Unmarshal(b, ev); err != nil {
			t.Fatal(err)
		}
		r, err := h.log.Append(ctx, &pb.AppendRequest{Event: ev})
		if err != nil {
			t.Fatalf("append %s: %v", f, err)
		}
		leafOf[filepath.Base(f)[:2]] = r.GetIndex()
	}
	h.published(t)
	pub, err := os.ReadFile(filepath.Join(h.dir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := client.ParsePolicy(strings.TrimSpace(string(pub)), nil)
	if err != nil {
		t.Fatal(err)
	}

	req := &pb.ListWorkflowRunsRequest{Tenant: "acme", WorkflowId: "warehouse_load_customers"}
	resp, err := h.lineage.ListWorkflowRuns(withToken(t.Context(), svReader), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.WorkflowRun{{
		RunId:          "dataset_triggered__2026-11-26T07:05:12+00:00",
		FirstLeafIndex: leafOf["10"],
		LastLeafIndex:  leafOf["18"],
		EventCount:     9, Status: pb.RunStatus_RUN_STATUS_COMPLETED, Started: true, Platform: "airflow",
	}}
	if d := cmp.Diff(want, resp.GetRuns(), protocmp.Transform(), protocmp.IgnoreFields(&pb.WorkflowRun{}, "start_time")); d != "" {
		t.Errorf("runs (-want +got):\n%s", d)
	}
	if resp.GetRuns()[0].GetStartTime() == nil {
		t.Error("no start time")
	}
	_, leaves, err := client.VerifyLeafProofs(resp.GetProofs(), policy)
	if err != nil {
		t.Fatalf("proofs: %v", err)
	}
	for _, r := range resp.GetRuns() {
		for _, l := range []uint64{r.GetFirstLeafIndex(), r.GetLastLeafIndex()} {
			if e := leaves[l]; e == nil || e.GetEvent().GetWorkflow().GetRunId() != r.GetRunId() {
				t.Errorf("leaf %d: not proven, or not of run %s: %v", l, r.GetRunId(), e)
			}
		}
	}

	// REST: the same answer.
	hs := httptest.NewServer(h.srv.HTTPHandler())
	defer hs.Close()
	hreq, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/lineage/workflows/warehouse_load_customers/runs?tenant=acme", nil)
	hreq.Header.Set("Authorization", "Bearer "+svReader)
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var rest pb.ListWorkflowRunsResponse
	b := new(strings.Builder)
	if _, err := io.Copy(b, hresp.Body); err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal([]byte(b.String()), &rest); err != nil || hresp.StatusCode != http.StatusOK {
		t.Fatalf("REST: %d %s (%v)", hresp.StatusCode, b, err)
	}
	if d := cmp.Diff(resp.GetRuns(), rest.GetRuns(), protocmp.Transform()); d != "" {
		t.Errorf("REST runs differ (-grpc +rest):\n%s", d)
	}

	// A tenant the reader may not read is NotFound, worded as an unknown
	// workflow of its own tenant.
	_, err = h.lineage.ListWorkflowRuns(withToken(t.Context(), svReader), &pb.ListWorkflowRunsRequest{Tenant: "initech", WorkflowId: "warehouse_load_customers"})
	foreign := grpcCode(t, err, codes.NotFound)
	_, err = h.lineage.ListWorkflowRuns(withToken(t.Context(), svReader), &pb.ListWorkflowRunsRequest{Tenant: "acme", WorkflowId: "no-such-workflow"})
	unknown := grpcCode(t, err, codes.NotFound)
	if foreign.Message() != unknown.Message() {
		t.Errorf("a foreign tenant (%q) is told apart from an unknown workflow (%q)", foreign.Message(), unknown.Message())
	}
	// globex has none of acme's workflows.
	_, err = h.lineage.ListWorkflowRuns(withToken(t.Context(), svReader), &pb.ListWorkflowRunsRequest{Tenant: "globex", WorkflowId: "warehouse_load_customers"})
	grpcCode(t, err, codes.NotFound)

	for _, tc := range []struct {
		name  string
		req   *pb.ListWorkflowRunsRequest
		field string
	}{
		{"no tenant", &pb.ListWorkflowRunsRequest{WorkflowId: "warehouse_load_customers"}, "tenant"},
		{"no workflow", &pb.ListWorkflowRunsRequest{Tenant: "acme"}, "workflow_id"},
		{"page too large", &pb.ListWorkflowRunsRequest{Tenant: "acme", WorkflowId: "warehouse_load_customers", PageSize: 5000}, "page_size"},
		{"bad page token", &pb.ListWorkflowRunsRequest{Tenant: "acme", WorkflowId: "warehouse_load_customers", PageToken: "nope"}, "page_token"},
	} {
		_, err := h.lineage.ListWorkflowRuns(withToken(t.Context(), svReader), tc.req)
		grpcCode(t, err, codes.InvalidArgument, tc.field)
	}
}
