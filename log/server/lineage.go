package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// lineageService implements provlog.v1.LineageService: it queries the index
// at the published tree size and attaches proofs of every leaf it cites.
type lineageService struct {
	pb.UnimplementedLineageServiceServer
	ledger *ledger.Ledger
	index  *lineage.Index
	log    *slog.Logger
	sens   *sensitive
}

// answerSize is the tree size an answer describes: the published size, or
// the index watermark when the index is behind, so every cited leaf is
// covered by the checkpoint the proofs go to.
func (s *lineageService) answerSize(ctx context.Context) (uint64, error) {
	_, cp, err := s.ledger.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	return min(cp.Size, s.index.Watermark()), nil
}

// tenant checks the caller may read tenant. A tenant the caller may not
// read is NotFound, like a tenant with no events: existence does not leak.
func tenantOf(ctx context.Context, tenant string) error {
	if tenant == "" {
		return invalid("tenant", "required")
	}
	if !auth.FromContext(ctx).CanActFor(tenant) {
		return fmt.Errorf("tenant %q: %w", tenant, lineage.ErrQueryNotFound)
	}
	return nil
}

func (s *lineageService) Trace(ctx context.Context, req *pb.TraceRequest) (*pb.TraceResponse, error) {
	if err := tenantOf(ctx, req.GetTenant()); err != nil {
		return nil, s.err(ctx, "Trace", err)
	}
	size, err := s.answerSize(ctx)
	if err != nil {
		return nil, s.err(ctx, "Trace", err)
	}
	q := lineage.TraceQuery{Tenant: req.GetTenant(), Depth: int(req.GetDepth()), MaxNodes: int(req.GetMaxNodes()), TreeSize: size}
	switch st := req.GetStart().(type) {
	case *pb.TraceRequest_Asset:
		q.AssetURI, q.AssetVersion, q.RecordKey = st.Asset.GetUri(), st.Asset.GetVersion(), st.Asset.GetRecordKey()
	case *pb.TraceRequest_EventId:
		q.EventID = st.EventId
	case *pb.TraceRequest_RunId:
		q.RunID = st.RunId
	default:
		return nil, invalid("start", "one of asset, event_id or run_id is required")
	}
	switch req.GetDirection() {
	case pb.Direction_DIRECTION_UPSTREAM:
		q.Direction = lineage.Upstream
	case pb.Direction_DIRECTION_DOWNSTREAM:
		q.Direction = lineage.Downstream
	case pb.Direction_DIRECTION_BOTH:
		q.Direction = lineage.Both
	default:
		return nil, invalid("direction", "one of DIRECTION_UPSTREAM, DIRECTION_DOWNSTREAM, DIRECTION_BOTH is required")
	}
	if f := req.GetFilter(); f != nil {
		if f.GetSince() != nil {
			q.Filters.Since = f.GetSince().AsTime()
		}
		if f.GetUntil() != nil {
			q.Filters.Until = f.GetUntil().AsTime()
		}
		q.Filters.ActorIDs, q.Filters.WorkflowIDs = f.GetActorIds(), f.GetWorkflowIds()
		q.Filters.Operations, q.Filters.Classifications = f.GetOperations(), f.GetClassifications()
	}
	g, err := s.index.Trace(ctx, q)
	if err != nil {
		return nil, s.err(ctx, "Trace", err)
	}
	resp := &pb.TraceResponse{Truncated: g.Truncated}
	for _, n := range g.Nodes {
		resp.Nodes = append(resp.Nodes, nodeProto(n))
	}
	for _, e := range g.Edges {
		resp.Edges = append(resp.Edges, &pb.LineageEdge{From: e.From, To: e.To, Kind: edgeKind(e.Kind), LeafIndex: e.Leaf, FromField: e.FromField, ToField: e.ToField})
	}
	resp.Gaps = gapsProto(g.Gaps)
	if resp.Proofs, err = s.ledger.ProveLeaves(ctx, g.Leaves); err != nil {
		return nil, s.err(ctx, "Trace", err)
	}
	s.sens.annotateTrace(ctx, resp)
	return resp, nil
}

func (s *lineageService) History(ctx context.Context, req *pb.HistoryRequest) (*pb.HistoryResponse, error) {
	if err := tenantOf(ctx, req.GetTenant()); err != nil {
		return nil, s.err(ctx, "History", err)
	}
	size, err := s.answerSize(ctx)
	if err != nil {
		return nil, s.err(ctx, "History", err)
	}
	a := req.GetAsset()
	page, err := s.index.History(ctx, lineage.HistoryQuery{
		Tenant: req.GetTenant(), URI: a.GetUri(), Version: a.GetVersion(), RecordKey: a.GetRecordKey(),
		PageToken: req.GetPageToken(), Limit: int(req.GetPageSize()), TreeSize: size,
	})
	if err != nil {
		return nil, s.err(ctx, "History", err)
	}
	resp := &pb.HistoryResponse{NextPageToken: page.NextPageToken}
	for _, e := range page.Entries {
		resp.Events = append(resp.Events, summary(e.Event))
	}
	if resp.Proofs, err = s.ledger.ProveLeaves(ctx, page.Leaves); err != nil {
		return nil, s.err(ctx, "History", err)
	}
	return resp, nil
}

func (s *lineageService) ListRunEvents(ctx context.Context, req *pb.ListRunEventsRequest) (*pb.ListRunEventsResponse, error) {
	if err := tenantOf(ctx, req.GetTenant()); err != nil {
		return nil, s.err(ctx, "ListRunEvents", err)
	}
	if req.GetRunId() == "" {
		return nil, invalid("run_id", "required")
	}
	size, err := s.answerSize(ctx)
	if err != nil {
		return nil, s.err(ctx, "ListRunEvents", err)
	}
	re, err := s.index.RunEventsAt(ctx, req.GetTenant(), req.GetRunId(), size)
	if err != nil {
		return nil, s.err(ctx, "ListRunEvents", err)
	}
	resp := &pb.ListRunEventsResponse{Gaps: gapsProto(re.Gaps)}
	for _, n := range re.Events {
		resp.Events = append(resp.Events, summary(n))
	}
	if resp.Proofs, err = s.ledger.ProveLeaves(ctx, re.Leaves); err != nil {
		return nil, s.err(ctx, "ListRunEvents", err)
	}
	return resp, nil
}

func (s *lineageService) GetIndexDigest(ctx context.Context, req *pb.GetIndexDigestRequest) (*pb.GetIndexDigestResponse, error) {
	wm := s.index.Watermark()
	size, digest := req.GetTreeSize(), [32]byte{}
	var err error
	if size == 0 {
		size, digest, err = s.index.Digest(ctx)
	} else {
		digest, err = s.index.DigestAt(ctx, size)
	}
	if err != nil {
		return nil, s.err(ctx, "GetIndexDigest", err)
	}
	return &pb.GetIndexDigestResponse{TreeSize: size, Digest: digest[:], Watermark: wm}, nil
}

// err maps lineage errors, then the common ones.
func (s *lineageService) err(ctx context.Context, op string, err error) error {
	var qe *lineage.QueryError
	switch {
	case errors.As(err, &qe):
		return invalid(qe.Field, qe.Reason)
	case errors.Is(err, lineage.ErrQueryNotFound):
		return toStatus(ctx, s.log, op, ledger.ErrNotFound)
	}
	return toStatus(ctx, s.log, op, err)
}

func nodeProto(n *lineage.Node) *pb.LineageNode {
	out := &pb.LineageNode{Id: n.ID, LeafIndex: n.Leaf}
	switch n.Kind {
	case lineage.NodeAsset:
		out.Kind = pb.NodeKind_NODE_KIND_ASSET
		if a := n.Asset; a != nil {
			out.Asset = &pb.AssetRef{Uri: a.URI, Version: a.Version, RecordKey: a.RecordKey}
			out.Classification = a.Classification
		}
	case lineage.NodeActivity:
		out.Kind = pb.NodeKind_NODE_KIND_ACTIVITY
		if a := n.Activity; a != nil {
			out.EventId, out.Operation, out.ActorId = a.EventID, a.Operation, a.Actor.ID
			out.WorkflowId, out.StepId, out.RunId = a.Workflow.WorkflowID, a.Workflow.StepID, a.Workflow.RunID
			if !a.EventTime.IsZero() {
				out.EventTime = timestamppb.New(a.EventTime)
			}
		}
	case lineage.NodeRun:
		out.Kind = pb.NodeKind_NODE_KIND_RUN
		if r := n.Run; r != nil {
			out.RunId, out.WorkflowId = r.RunID, r.WorkflowID
		}
	}
	return out
}

func edgeKind(k lineage.EdgeKind) pb.EdgeKind {
	switch k {
	case lineage.EdgeInput:
		return pb.EdgeKind_EDGE_KIND_INPUT
	case lineage.EdgeOutput:
		return pb.EdgeKind_EDGE_KIND_OUTPUT
	case lineage.EdgeField:
		return pb.EdgeKind_EDGE_KIND_FIELD
	case lineage.EdgeApproves:
		return pb.EdgeKind_EDGE_KIND_APPROVES
	case lineage.EdgeOverrides:
		return pb.EdgeKind_EDGE_KIND_OVERRIDES
	case lineage.EdgeStepOfRun:
		return pb.EdgeKind_EDGE_KIND_STEP_OF_RUN
	case lineage.EdgeParentRun:
		return pb.EdgeKind_EDGE_KIND_PARENT_RUN
	case lineage.EdgeMatches:
		return pb.EdgeKind_EDGE_KIND_MATCHES
	}
	return pb.EdgeKind_EDGE_KIND_UNSPECIFIED
}

func gapsProto(gs []lineage.Gap) []*pb.Gap {
	var out []*pb.Gap
	for _, g := range gs {
		out = append(out, &pb.Gap{Kind: string(g.Kind), Detail: g.Detail, LeafIndexes: g.Leaves})
	}
	return out
}

func summary(n *lineage.Node) *pb.EventSummary {
	out := &pb.EventSummary{LeafIndex: n.Leaf}
	if a := n.Activity; a != nil {
		out.EventId, out.Operation, out.ActorId = a.EventID, a.Operation, a.Actor.ID
		out.RunId, out.StepId = a.Workflow.RunID, a.Workflow.StepID
		if !a.EventTime.IsZero() {
			out.EventTime = timestamppb.New(a.EventTime)
		}
	}
	return out
}
