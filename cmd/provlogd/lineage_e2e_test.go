package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"
)

// TestLineageEndToEnd appends the sample workflows, traces the final export
// back to its sources, checks every cited leaf with x/mod's tlog and the
// whole answer with client.VerifyTrace, shows that edited answers are
// caught, and that a rebuilt index (--reindex) has the same digest.
func TestLineageEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	_, _, events := loadSamples(t)
	if _, err := d.client().AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: events, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED}); err != nil {
		t.Fatal(err)
	}
	lc := pb.NewLineageServiceClient(d.conn)
	waitIndexed(t, d, uint64(len(events)))

	const export = "s3://acme-exports/marketing/customer_segments/2026-11-26.csv"
	tr, err := lc.Trace(d.ctx(), &pb.TraceRequest{
		Tenant: "acme", Start: &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: export}},
		Direction: pb.Direction_DIRECTION_UPSTREAM, Depth: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, n := range tr.GetNodes() {
		if n.GetKind() == pb.NodeKind_NODE_KIND_ACTIVITY {
			ids[n.GetEventId()] = true
		}
	}
	// The export's sources, steps and human decisions, across all three runs.
	for _, want := range eventIDs(t, events, "23-", "21-", "22-", "20-", "17-", "15-", "13-", "12-", "07-", "05-", "04-", "02-", "03-") {
		if !ids[want] {
			t.Errorf("upstream trace of the export lacks %s", want)
		}
	}
	// Every cited leaf verifies with x/mod against the answer's checkpoint.
	cp := openCheckpoint(t, d.verifier(), tr.GetProofs().GetCheckpoint())
	if len(tr.GetProofs().GetLeaves()) == 0 {
		t.Fatal("no proven leaves")
	}
	for _, l := range tr.GetProofs().GetLeaves() {
		var p []tlog.Hash
		for _, r := range l.GetProof() {
			p = append(p, tlog.Hash(tr.GetProofs().GetNodes()[r]))
		}
		if err := tlog.CheckRecord(p, cp.size, cp.root, int64(l.GetIndex()), tlog.RecordHash(l.GetLeaf())); err != nil {
			t.Fatalf("leaf %d: %v", l.GetIndex(), err)
		}
	}
	policy, err := client.ParsePolicy(strings.TrimSpace(readFile(t, filepath.Join(dataDir, "log.pub"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyTrace(tr, policy); err != nil {
		t.Fatalf("honest trace does not verify: %v", err)
	}
	// Edited answers are caught.
	for name, edit := range map[string]func(r *pb.TraceResponse){
		"edge re-pointed to another leaf": func(r *pb.TraceResponse) {
			for _, e := range r.Edges {
				if e.GetKind() == pb.EdgeKind_EDGE_KIND_INPUT {
					e.LeafIndex = (e.LeafIndex + 1) % uint64(len(events))
					return
				}
			}
		},
		"edge from another asset": func(r *pb.TraceResponse) {
			var assets []string
			for _, n := range r.Nodes {
				if n.GetKind() == pb.NodeKind_NODE_KIND_ASSET {
					assets = append(assets, n.GetId())
				}
			}
			for _, e := range r.Edges {
				if e.GetKind() == pb.EdgeKind_EDGE_KIND_INPUT {
					for _, a := range assets {
						if a != e.From {
							e.From = a
							return
						}
					}
				}
			}
		},
		"invented approval": func(r *pb.TraceResponse) {
			for _, e := range r.Edges {
				if e.GetKind() == pb.EdgeKind_EDGE_KIND_STEP_OF_RUN {
					e.Kind = pb.EdgeKind_EDGE_KIND_APPROVES
					return
				}
			}
		},
		"activity renamed": func(r *pb.TraceResponse) {
			for _, n := range r.Nodes {
				if n.GetKind() == pb.NodeKind_NODE_KIND_ACTIVITY {
					n.EventId += "-edited"
					return
				}
			}
		},
		"leaf bytes swapped": func(r *pb.TraceResponse) {
			l := r.Proofs.Leaves
			l[0].Leaf, l[1].Leaf = l[1].Leaf, l[0].Leaf
		},
	} {
		edited := proto.Clone(tr).(*pb.TraceResponse)
		edit(edited)
		if proto.Equal(edited, tr) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if err := client.VerifyTrace(edited, policy); !errors.Is(err, client.ErrVerification) {
			t.Errorf("%s: VerifyTrace = %v, want a verification failure", name, err)
		}
	}

	// Downstream from the CRM contacts reaches the export.
	down, err := lc.Trace(d.ctx(), &pb.TraceRequest{
		Tenant: "acme", Start: &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: "crm://acme-crm/contacts"}},
		Direction: pb.Direction_DIRECTION_DOWNSTREAM, Depth: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range down.GetNodes() {
		found = found || n.GetAsset().GetUri() == export
	}
	if !found {
		t.Error("downstream trace of the CRM contacts does not reach the export")
	}
	// Another tenant sees nothing, as if it did not exist.
	if _, err := lc.Trace(d.ctx(), &pb.TraceRequest{Tenant: "other", Start: &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: export}}, Direction: pb.Direction_DIRECTION_UPSTREAM}); err == nil {
		t.Error("trace in an empty tenant found something")
	}

	// A run naming a parent that was never recorded is a gap.
	orphan := proto.Clone(events[0]).(*pb.ProvenanceEvent)
	orphan.EventId, orphan.Workflow.RunId, orphan.Workflow.ParentRunId = "orphan:start", "run-orphan", "run-never-recorded"
	if _, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: orphan, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED}); err != nil {
		t.Fatal(err)
	}
	size := uint64(len(events)) + 1
	digest := waitIndexed(t, d, size)
	re, err := lc.ListRunEvents(d.ctx(), &pb.ListRunEventsRequest{Tenant: "acme", RunId: "run-orphan"})
	if err != nil {
		t.Fatal(err)
	}
	if len(re.GetGaps()) == 0 || re.GetGaps()[0].GetKind() != "missing_parent_run" {
		t.Errorf("run with an unrecorded parent: gaps %v, want missing_parent_run", re.GetGaps())
	}
	if _, body := d.authGet("/metrics"); !bytes.Contains(body, []byte(`provlog_lineage_gaps_total{kind="missing_parent_run"}`)) {
		t.Error("/metrics does not count the gap")
	}

	// Rebuilt from the log alone, the index has the same digest at the same size.
	d.stop()
	d.args = append(d.args, "--reindex")
	d.start()
	lc = pb.NewLineageServiceClient(d.conn)
	got, err := lc.GetIndexDigest(d.ctx(), &pb.GetIndexDigestRequest{TreeSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.GetDigest(), digest) {
		t.Errorf("rebuilt index digest at %d = %x, live index had %x", size, got.GetDigest(), digest)
	}
	d.stop()
}

// waitIndexed waits until the lineage index reaches size and returns its
// digest there.
func waitIndexed(t *testing.T, d *daemon, size uint64) []byte {
	t.Helper()
	lc := pb.NewLineageServiceClient(d.conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := lc.GetIndexDigest(d.ctx(), &pb.GetIndexDigestRequest{})
		if err == nil && r.GetWatermark() >= size {
			r, err = lc.GetIndexDigest(d.ctx(), &pb.GetIndexDigestRequest{TreeSize: size})
			if err != nil {
				t.Fatal(err)
			}
			return r.GetDigest()
		}
		if time.Now().After(deadline) {
			t.Fatalf("lineage index did not reach %d: %v %v", size, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func eventIDs(t *testing.T, events []*pb.ProvenanceEvent, prefixes ...string) []string {
	t.Helper()
	names, _, _ := loadSamples(t)
	var out []string
	for _, p := range prefixes {
		for i, n := range names {
			if strings.HasPrefix(n, p) {
				out = append(out, events[i].GetEventId())
			}
		}
	}
	if len(out) != len(prefixes) {
		t.Fatalf("sample files %v: found %d", prefixes, len(out))
	}
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
