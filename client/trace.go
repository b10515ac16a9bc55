package client

import (
	"fmt"
	"slices"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// VerifyLeafProofs checks a set of leaves against one checkpoint: the
// checkpoint satisfies the policy (log signature and witness quorum) and
// every leaf's inclusion proof verifies. It returns the checkpoint and the
// decoded leaves by index.
func VerifyLeafProofs(lp *pb.LeafProofs, p *Policy) (*log.Checkpoint, map[uint64]*pb.LeafEntry, error) {
	if lp == nil {
		return nil, nil, fmt.Errorf("%w: no proofs in the answer", ErrVerification)
	}
	cp, err := p.VerifyCheckpoint(lp.GetCheckpoint())
	if err != nil {
		return nil, nil, err
	}
	if lp.GetTreeSize() != cp.Size {
		return nil, nil, fmt.Errorf("%w: proofs claim tree size %d, checkpoint says %d", ErrVerification, lp.GetTreeSize(), cp.Size)
	}
	entries := make(map[uint64]*pb.LeafEntry, len(lp.GetLeaves()))
	for _, l := range lp.GetLeaves() {
		path := make([][]byte, len(l.GetProof()))
		for i, r := range l.GetProof() {
			if int(r) >= len(lp.GetNodes()) {
				return nil, nil, fmt.Errorf("%w: leaf %d: proof node %d out of range", ErrVerification, l.GetIndex(), r)
			}
			path[i] = lp.GetNodes()[r]
		}
		h := event.LeafHash(l.GetLeaf())
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, l.GetIndex(), cp.Size, h[:], path, cp.Hash); err != nil {
			return nil, nil, fmt.Errorf("%w: leaf %d: inclusion proof: %w", ErrVerification, l.GetIndex(), err)
		}
		e, err := event.DecodeLeaf(l.GetLeaf())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: leaf %d: %w", ErrVerification, l.GetIndex(), err)
		}
		entries[l.GetIndex()] = e
	}
	return cp, entries, nil
}

// VerifyTrace checks a lineage answer offline: its proofs verify under the
// policy, and every node and every edge is asserted by the event in the
// leaf it cites. A server that invents, edits or re-points an edge is
// caught here. Masked nodes are checked on what they still show.
func VerifyTrace(resp *pb.TraceResponse, p *Policy) error {
	_, entries, err := VerifyLeafProofs(resp.GetProofs(), p)
	if err != nil {
		return err
	}
	nodes := make(map[string]*pb.LineageNode, len(resp.GetNodes()))
	for _, n := range resp.GetNodes() {
		if _, dup := nodes[n.GetId()]; dup {
			return fmt.Errorf("%w: node %q appears twice", ErrVerification, n.GetId())
		}
		nodes[n.GetId()] = n
		e, ok := entries[n.GetLeafIndex()]
		if !ok {
			return fmt.Errorf("%w: node %q cites leaf %d, which the answer does not prove", ErrVerification, n.GetId(), n.GetLeafIndex())
		}
		if err := checkNode(n, e.GetEvent()); err != nil {
			return fmt.Errorf("%w: node %q: %w", ErrVerification, n.GetId(), err)
		}
	}
	for i, ed := range resp.GetEdges() {
		e, ok := entries[ed.GetLeafIndex()]
		if !ok {
			return fmt.Errorf("%w: edge %d cites leaf %d, which the answer does not prove", ErrVerification, i, ed.GetLeafIndex())
		}
		from, to := nodes[ed.GetFrom()], nodes[ed.GetTo()]
		if from == nil || to == nil {
			return fmt.Errorf("%w: edge %d (%s -> %s) names a node not in the answer", ErrVerification, i, ed.GetFrom(), ed.GetTo())
		}
		if err := checkEdge(ed, from, to, e.GetEvent()); err != nil {
			return fmt.Errorf("%w: edge %d (%s %s -> %s, leaf %d): %w", ErrVerification, i, ed.GetKind(), ed.GetFrom(), ed.GetTo(), ed.GetLeafIndex(), err)
		}
	}
	return nil
}

// assetIn finds a among assets: exactly, or under the matching rule when
// loose (version and record key each equal or left out on either side).
func assetIn(a *pb.AssetRef, assets []*pb.Asset, loose bool) *pb.Asset {
	eq := func(x, y string) bool { return x == y || loose && looseMatch(x, y) }
	for _, x := range assets {
		if x.GetUri() == a.GetUri() && eq(x.GetVersion(), a.GetVersion()) && eq(x.GetRecordKey(), a.GetRecordKey()) {
			return x
		}
	}
	return nil
}

func checkNode(n *pb.LineageNode, ev *pb.ProvenanceEvent) error {
	switch n.GetKind() {
	case pb.NodeKind_NODE_KIND_ASSET:
		// An asset node may name the data less precisely than the event
		// did (a trace started from a URI without version): it must match
		// an input or output of its leaf's event under the matching rule.
		a := assetIn(n.GetAsset(), ev.GetInputs(), false)
		if a == nil {
			a = assetIn(n.GetAsset(), ev.GetOutputs(), false)
		}
		if a == nil {
			if assetIn(n.GetAsset(), ev.GetInputs(), true) != nil || assetIn(n.GetAsset(), ev.GetOutputs(), true) != nil {
				return nil
			}
			return fmt.Errorf("asset %s@%s is neither an input nor an output of its leaf's event", n.GetAsset().GetUri(), n.GetAsset().GetVersion())
		}
		if !n.GetMasked() && n.GetClassification() != a.GetClassification() {
			return fmt.Errorf("classification %q, the leaf says %q", n.GetClassification(), a.GetClassification())
		}
	case pb.NodeKind_NODE_KIND_ACTIVITY:
		if n.GetEventId() != ev.GetEventId() || n.GetOperation() != ev.GetOperation() || n.GetRunId() != ev.GetWorkflow().GetRunId() ||
			n.GetStepId() != ev.GetWorkflow().GetStepId() || n.GetWorkflowId() != ev.GetWorkflow().GetWorkflowId() {
			return fmt.Errorf("activity does not match its leaf's event %q", ev.GetEventId())
		}
		if !n.GetMasked() && n.GetActorId() != ev.GetActor().GetId() {
			return fmt.Errorf("actor %q, the leaf says %q", n.GetActorId(), ev.GetActor().GetId())
		}
		if n.GetEventTime() != nil && !n.GetEventTime().AsTime().Equal(ev.GetEventTime().AsTime()) {
			return fmt.Errorf("event time %v, the leaf says %v", n.GetEventTime().AsTime(), ev.GetEventTime().AsTime())
		}
	case pb.NodeKind_NODE_KIND_RUN:
		if n.GetRunId() != ev.GetWorkflow().GetRunId() && n.GetRunId() != ev.GetWorkflow().GetParentRunId() {
			return fmt.Errorf("run %q is not named by its leaf's event", n.GetRunId())
		}
	default:
		return fmt.Errorf("unknown node kind %v", n.GetKind())
	}
	return nil
}

func checkEdge(ed *pb.LineageEdge, from, to *pb.LineageNode, ev *pb.ProvenanceEvent) error {
	isActivityOf := func(n *pb.LineageNode) bool {
		return n.GetKind() == pb.NodeKind_NODE_KIND_ACTIVITY && n.GetLeafIndex() == ed.GetLeafIndex()
	}
	switch ed.GetKind() {
	case pb.EdgeKind_EDGE_KIND_INPUT:
		if from.GetKind() != pb.NodeKind_NODE_KIND_ASSET || !isActivityOf(to) || assetIn(from.GetAsset(), ev.GetInputs(), false) == nil {
			return fmt.Errorf("the event does not read that asset")
		}
	case pb.EdgeKind_EDGE_KIND_OUTPUT:
		if !isActivityOf(from) || to.GetKind() != pb.NodeKind_NODE_KIND_ASSET || assetIn(to.GetAsset(), ev.GetOutputs(), false) == nil {
			return fmt.Errorf("the event does not write that asset")
		}
	case pb.EdgeKind_EDGE_KIND_FIELD:
		if from.GetKind() != pb.NodeKind_NODE_KIND_ASSET || to.GetKind() != pb.NodeKind_NODE_KIND_ASSET {
			return fmt.Errorf("field edges join assets")
		}
		found := false
		for _, fl := range ev.GetFieldLineage() {
			if fl.GetOutputUri() != to.GetAsset().GetUri() || fl.GetOutputField() != ed.GetToField() {
				continue
			}
			found = found || slices.ContainsFunc(fl.GetSources(), func(s *pb.FieldRef) bool {
				return s.GetUri() == from.GetAsset().GetUri() && s.GetField() == ed.GetFromField()
			})
		}
		if !found {
			return fmt.Errorf("the event has no field lineage %s.%s -> %s.%s", from.GetAsset().GetUri(), ed.GetFromField(), to.GetAsset().GetUri(), ed.GetToField())
		}
	case pb.EdgeKind_EDGE_KIND_APPROVES, pb.EdgeKind_EDGE_KIND_OVERRIDES:
		want := pb.Operation_OPERATION_APPROVAL
		if ed.GetKind() == pb.EdgeKind_EDGE_KIND_OVERRIDES {
			want = pb.Operation_OPERATION_OVERRIDE
		}
		if !isActivityOf(from) || ev.GetOperation() != want || to.GetKind() != pb.NodeKind_NODE_KIND_ACTIVITY ||
			!slices.Contains(ev.GetSubjectEventIds(), to.GetEventId()) {
			return fmt.Errorf("the event is not a %v of %q", want, to.GetEventId())
		}
	case pb.EdgeKind_EDGE_KIND_STEP_OF_RUN:
		if !isActivityOf(from) || to.GetKind() != pb.NodeKind_NODE_KIND_RUN || to.GetRunId() != ev.GetWorkflow().GetRunId() {
			return fmt.Errorf("the event is not a step of run %q", to.GetRunId())
		}
	case pb.EdgeKind_EDGE_KIND_PARENT_RUN:
		if from.GetKind() != pb.NodeKind_NODE_KIND_RUN || to.GetKind() != pb.NodeKind_NODE_KIND_RUN ||
			from.GetRunId() != ev.GetWorkflow().GetRunId() || to.GetRunId() != ev.GetWorkflow().GetParentRunId() {
			return fmt.Errorf("the event does not make %q the parent of %q", to.GetRunId(), from.GetRunId())
		}
	case pb.EdgeKind_EDGE_KIND_MATCHES:
		// from is how the event referenced the asset; to is the same data
		// named with less precision (no version or no record key).
		if from.GetKind() != pb.NodeKind_NODE_KIND_ASSET || to.GetKind() != pb.NodeKind_NODE_KIND_ASSET {
			return fmt.Errorf("matches edges join assets")
		}
		if assetIn(from.GetAsset(), ev.GetInputs(), false) == nil && assetIn(from.GetAsset(), ev.GetOutputs(), false) == nil {
			return fmt.Errorf("the event does not reference %s", from.GetAsset().GetUri())
		}
		f, t := from.GetAsset(), to.GetAsset()
		if f.GetUri() != t.GetUri() || !looseMatch(f.GetVersion(), t.GetVersion()) || !looseMatch(f.GetRecordKey(), t.GetRecordKey()) {
			return fmt.Errorf("%s and %s are not the same data", ed.GetFrom(), ed.GetTo())
		}
	default:
		return fmt.Errorf("unknown edge kind")
	}
	return nil
}

// looseMatch: two parts of an asset reference agree when equal or when
// either leaves the part out.
func looseMatch(a, b string) bool { return a == b || a == "" || b == "" }
