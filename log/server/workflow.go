package server

import (
	"context"
	"time"

	"github.com/provlog/provlog/log/lineage"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ListWorkflowRuns lists the runs of a workflow at the answer's tree size,
// with proofs of each run's first and last leaves. A tenant the caller may
// not read, like a workflow with no run, is NotFound.
func (s *lineageService) ListWorkflowRuns(ctx context.Context, req *pb.ListWorkflowRunsRequest) (*pb.ListWorkflowRunsResponse, error) {
	if err := tenantOf(ctx, req.GetTenant()); err != nil {
		return nil, s.err(ctx, "ListWorkflowRuns", err)
	}
	if req.GetWorkflowId() == "" {
		return nil, invalid("workflow_id", "required")
	}
	size, err := s.answerSize(ctx)
	if err != nil {
		return nil, s.err(ctx, "ListWorkflowRuns", err)
	}
	page, err := s.index.WorkflowRuns(ctx, req.GetTenant(), req.GetWorkflowId(), req.GetPageToken(), int(req.GetPageSize()), size)
	if err != nil {
		return nil, s.err(ctx, "ListWorkflowRuns", err)
	}
	resp := &pb.ListWorkflowRunsResponse{NextPageToken: page.NextPageToken}
	for _, r := range page.Runs {
		resp.Runs = append(resp.Runs, workflowRunProto(r))
	}
	if resp.Proofs, err = s.ledger.ProveLeaves(ctx, page.Leaves); err != nil {
		return nil, s.err(ctx, "ListWorkflowRuns", err)
	}
	return resp, nil
}

func workflowRunProto(r lineage.WorkflowRun) *pb.WorkflowRun {
	out := &pb.WorkflowRun{RunId: r.RunID, FirstLeafIndex: r.FirstLeaf, LastLeafIndex: r.LastLeaf,
		EventCount: uint64(r.Events), Started: r.Started, Platform: r.Platform, Status: pb.RunStatus_RUN_STATUS_RUNNING}
	switch {
	case r.Completed:
		out.Status = pb.RunStatus_RUN_STATUS_COMPLETED
	case r.Failed:
		out.Status = pb.RunStatus_RUN_STATUS_FAILED
	}
	if r.StartTime != 0 {
		out.StartTime = timestamppb.New(time.Unix(0, r.StartTime).UTC())
	}
	return out
}
