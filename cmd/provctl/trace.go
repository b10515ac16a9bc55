package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// traceFlags are the flags naming where a trace starts.
type traceFlags struct {
	tenant, asset, version, recordKey, eventID, runID, direction *string
	depth, maxNodes                                              *uint
	indexWait                                                    *time.Duration
}

// start parses the arguments of a command with trace flags (and any of its
// own, added before), builds the request and connects; it returns false and
// the exit code when the command must stop.
func (tf *traceFlags) start(f *cmdFlags, args []string) (*pb.TraceRequest, *client.Client, int, bool) {
	if code, ok := f.parse(args, 0, 0); !ok {
		return nil, nil, code, false
	}
	req, err := tf.request()
	if err != nil {
		fmt.Fprintln(f.e.stderr, "provctl:", err)
		return nil, nil, exitUsage, false
	}
	c, err := f.dial(client.Options{})
	if err != nil {
		return nil, nil, f.fail(err), false
	}
	return req, c, 0, true
}

// addTraceFlags adds the connection flags and the trace flags.
func addTraceFlags(f *cmdFlags) *traceFlags {
	f.connFlags()
	return &traceFlags{
		tenant:    f.String("tenant", "", "tenant to trace in (required)"),
		asset:     f.String("asset", "", "start from this asset URI"),
		version:   f.String("version", "", "with --asset: this version only"),
		recordKey: f.String("record-key", "", "with --asset: this record only"),
		eventID:   f.String("event", "", "start from this event id"),
		runID:     f.String("run", "", "start from this run id"),
		direction: f.String("direction", "upstream", "upstream (sources), downstream (consumers) or both"),
		depth:     f.Uint("depth", 5, "hops between activities, 1..20"),
		maxNodes:  f.Uint("max-nodes", 2000, "most nodes returned, up to 5000"),
		indexWait: f.Duration("index-wait", 10*time.Second, "how long to wait for the lineage index to reach the latest checkpoint when the start is not found"),
	}
}

func (t *traceFlags) request() (*pb.TraceRequest, error) {
	req := &pb.TraceRequest{Tenant: *t.tenant, Depth: uint32(*t.depth), MaxNodes: uint32(*t.maxNodes)}
	if req.Tenant == "" {
		return nil, fmt.Errorf("--tenant is required")
	}
	n := 0
	if *t.asset != "" {
		n++
		req.Start = &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: *t.asset, Version: *t.version, RecordKey: *t.recordKey}}
	}
	if *t.eventID != "" {
		n++
		req.Start = &pb.TraceRequest_EventId{EventId: *t.eventID}
	}
	if *t.runID != "" {
		n++
		req.Start = &pb.TraceRequest_RunId{RunId: *t.runID}
	}
	if n != 1 {
		return nil, fmt.Errorf("give exactly one of --asset, --event, --run")
	}
	switch *t.direction {
	case "upstream", "up":
		req.Direction = pb.Direction_DIRECTION_UPSTREAM
	case "downstream", "down":
		req.Direction = pb.Direction_DIRECTION_DOWNSTREAM
	case "both":
		req.Direction = pb.Direction_DIRECTION_BOTH
	default:
		return nil, fmt.Errorf("--direction %q: want upstream, downstream or both", *t.direction)
	}
	return req, nil
}

func cmdTrace(e *env, args []string) int {
	f := newFlags(e, "trace", "--tenant T (--asset URI [--version V] [--record-key K] | --event ID | --run ID) [flags]",
		"Traces lineage from an asset, an event or a run, and verifies the answer:\nthe checkpoint against the log key and witness policy, every cited leaf's\ninclusion proof, and every node and edge against the event in the leaf it\ncites. Prints a tree, JSON, or Graphviz DOT (provctl trace -o dot ... | dot -Tsvg).", "tree", "json", "dot")
	tf := addTraceFlags(f)
	req, c, code, ok := tf.start(f, args)
	if !ok {
		return code
	}
	defer c.Close()
	var resp *pb.TraceResponse
	err := whileIndexLags(e, c, *tf.indexWait, func() (err error) { resp, err = c.Trace(e.ctx, req); return err })
	if err != nil {
		return f.fail(err)
	}
	switch *f.output {
	case "json":
		e.stdout.Write(append(protoJSON(resp), '\n'))
	case "dot":
		writeDOT(e.stdout, resp)
	default:
		writeTree(e.stdout, req, resp)
	}
	return exitVerified
}

// nodeLabel is a node in words.
func nodeLabel(n *pb.LineageNode) string {
	switch n.GetKind() {
	case pb.NodeKind_NODE_KIND_ASSET:
		a := n.GetAsset()
		return assetLabel(a.GetUri(), a.GetVersion(), a.GetRecordKey(), n.GetClassification())
	case pb.NodeKind_NODE_KIND_ACTIVITY:
		s := fmt.Sprintf("%s %q", opName(n.GetOperation()), n.GetEventId())
		if n.GetActorId() != "" {
			s += " by " + n.GetActorId()
		}
		if n.GetEventTime() != nil {
			s += " at " + n.GetEventTime().AsTime().UTC().Format(time.RFC3339)
		}
		return s + " (leaf " + strconv.FormatUint(n.GetLeafIndex(), 10) + ")"
	case pb.NodeKind_NODE_KIND_RUN:
		return fmt.Sprintf("run %q", n.GetRunId())
	}
	return n.GetId()
}

func edgeVerb(k pb.EdgeKind, upstream bool) string {
	name := strings.ToLower(strings.TrimPrefix(k.String(), "EDGE_KIND_"))
	if upstream {
		return "<-" + name + "-"
	}
	return "-" + name + "->"
}

// writeTree prints the graph as a tree from the start node(s): upstream
// follows edges backwards (what was this made from), downstream forwards.
func writeTree(w io.Writer, req *pb.TraceRequest, resp *pb.TraceResponse) {
	nodes := map[string]*pb.LineageNode{}
	for _, n := range resp.GetNodes() {
		nodes[n.GetId()] = n
	}
	in, out := map[string][]*pb.LineageEdge{}, map[string][]*pb.LineageEdge{}
	for _, e := range resp.GetEdges() {
		in[e.GetTo()] = append(in[e.GetTo()], e)
		out[e.GetFrom()] = append(out[e.GetFrom()], e)
	}
	var roots []*pb.LineageNode
	for _, n := range resp.GetNodes() {
		if isStart(req, n) {
			roots = append(roots, n)
		}
	}
	if len(roots) == 0 {
		roots = resp.GetNodes()
	}
	fmt.Fprintf(w, "verified lineage: %d nodes, %d edges, every edge checked against its leaf\n", len(resp.GetNodes()), len(resp.GetEdges()))
	for _, dir := range []pb.Direction{pb.Direction_DIRECTION_UPSTREAM, pb.Direction_DIRECTION_DOWNSTREAM} {
		if req.GetDirection() != dir && req.GetDirection() != pb.Direction_DIRECTION_BOTH {
			continue
		}
		up := dir == pb.Direction_DIRECTION_UPSTREAM
		if req.GetDirection() == pb.Direction_DIRECTION_BOTH {
			fmt.Fprintf(w, "%s:\n", strings.ToLower(strings.TrimPrefix(dir.String(), "DIRECTION_")))
		}
		seen := map[string]bool{}
		var walk func(n *pb.LineageNode, prefix string, edge string, last bool, depth int)
		walk = func(n *pb.LineageNode, prefix, edge string, last bool, depth int) {
			branch, next := "", ""
			if depth > 0 {
				branch, next = "├─", "│ "
				if last {
					branch, next = "└─", "  "
				}
				branch += edge + " "
			}
			if seen[n.GetId()] {
				fmt.Fprintf(w, "%s%s%s (see above)\n", prefix, branch, nodeLabel(n))
				return
			}
			seen[n.GetId()] = true
			fmt.Fprintf(w, "%s%s%s\n", prefix, branch, nodeLabel(n))
			edges := out[n.GetId()]
			if up {
				edges = in[n.GetId()]
			}
			edges = slices.Clone(edges)
			slices.SortStableFunc(edges, func(a, b *pb.LineageEdge) int { return int(a.GetLeafIndex()) - int(b.GetLeafIndex()) })
			if depth > 0 {
				prefix += next
			}
			for i, e := range edges {
				id := e.GetTo()
				if up {
					id = e.GetFrom()
				}
				m := nodes[id]
				if m == nil {
					continue
				}
				label := edgeVerb(e.GetKind(), up)
				if e.GetKind() == pb.EdgeKind_EDGE_KIND_FIELD {
					label = fmt.Sprintf("%s(%s->%s)", label, e.GetFromField(), e.GetToField())
				}
				walk(m, prefix, label, i == len(edges)-1, depth+1)
			}
		}
		for _, r := range roots {
			walk(r, "", "", true, 0)
		}
	}
	for _, g := range resp.GetGaps() {
		fmt.Fprintf(w, "gap (%s): %s\n", g.GetKind(), g.GetDetail())
	}
	if resp.GetTruncated() {
		fmt.Fprintln(w, "(truncated at --max-nodes)")
	}
}

func isStart(req *pb.TraceRequest, n *pb.LineageNode) bool {
	switch s := req.GetStart().(type) {
	case *pb.TraceRequest_EventId:
		return n.GetKind() == pb.NodeKind_NODE_KIND_ACTIVITY && n.GetEventId() == s.EventId
	case *pb.TraceRequest_RunId:
		return n.GetKind() == pb.NodeKind_NODE_KIND_RUN && n.GetRunId() == s.RunId
	case *pb.TraceRequest_Asset:
		a := n.GetAsset()
		return n.GetKind() == pb.NodeKind_NODE_KIND_ASSET && a.GetUri() == s.Asset.GetUri() &&
			(s.Asset.GetVersion() == "" || a.GetVersion() == s.Asset.GetVersion()) &&
			(s.Asset.GetRecordKey() == "" || a.GetRecordKey() == s.Asset.GetRecordKey())
	}
	return false
}

// writeDOT prints the graph in Graphviz DOT.
func writeDOT(w io.Writer, resp *pb.TraceResponse) {
	q := strconv.Quote
	fmt.Fprintln(w, "digraph lineage {")
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, n := range resp.GetNodes() {
		shape := "ellipse"
		switch n.GetKind() {
		case pb.NodeKind_NODE_KIND_ACTIVITY:
			shape = "box"
		case pb.NodeKind_NODE_KIND_RUN:
			shape = "folder"
		}
		fmt.Fprintf(w, "  %s [label=%s, shape=%s];\n", q(n.GetId()), q(nodeLabel(n)), shape)
	}
	for _, e := range resp.GetEdges() {
		label := strings.ToLower(strings.TrimPrefix(e.GetKind().String(), "EDGE_KIND_"))
		if e.GetKind() == pb.EdgeKind_EDGE_KIND_FIELD {
			label += " " + e.GetFromField() + "->" + e.GetToField()
		}
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", q(e.GetFrom()), q(e.GetTo()), q(fmt.Sprintf("%s (leaf %d)", label, e.GetLeafIndex())))
	}
	fmt.Fprintln(w, "}")
}

func cmdBundleExport(e *env, args []string) int {
	f := newFlags(e, "bundle export", "--tenant T (--asset URI [--version V] [--record-key K] | --event ID | --run ID) [--out FILE] [flags]",
		"Writes an evidence bundle for auditors: for --run, every event of the run\n(ListRunEvents); otherwise the verified lineage trace from the record, asset\nor event. The bundle holds the leaves, their inclusion proofs, the cosigned\ncheckpoint, the log key and the witness policy, and is verified before it is\nwritten; provctl bundle verify checks it with no network.", "text", "json")
	tf := addTraceFlags(f)
	outFile := f.String("out", "-", "write the bundle to this file (- for stdout)")
	req, c, code, ok := tf.start(f, args)
	if !ok {
		return code
	}
	defer c.Close()
	var bu *client.Bundle
	if run := req.GetRunId(); run != "" {
		var resp *pb.ListRunEventsResponse
		err := whileIndexLags(e, c, *tf.indexWait, func() (err error) { resp, err = c.RunEvents(e.ctx, req.GetTenant(), run); return err })
		if err != nil {
			return f.fail(err)
		}
		bu, err = client.RunBundle(req.GetTenant(), run, resp, c.Policy(), time.Now())
		if err != nil {
			return f.fail(err)
		}
	} else {
		var resp *pb.TraceResponse
		err := whileIndexLags(e, c, *tf.indexWait, func() (err error) { resp, err = c.Trace(e.ctx, req); return err })
		if err != nil {
			return f.fail(err)
		}
		bu, err = client.TraceBundle(req, resp, c.Policy(), time.Now())
		if err != nil {
			return f.fail(err)
		}
	}
	b, err := bu.Marshal()
	if err != nil {
		return f.fail(err)
	}
	if *outFile == "-" {
		e.stdout.Write(b)
		return exitVerified
	}
	if err := os.WriteFile(*outFile, b, 0o644); err != nil {
		return f.fail(err)
	}
	if f.json() {
		writeJSON(e.stdout, map[string]any{"verified": true, "file": *outFile, "leaves": len(bu.Leaves), "subject": bu.Subject})
		return exitVerified
	}
	fmt.Fprintf(e.stdout, "wrote %s: evidence bundle (%s) with %d leaves, verified\n", *outFile, bu.Subject.Kind, len(bu.Leaves))
	return exitVerified
}
