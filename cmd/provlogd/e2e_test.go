package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestEndToEnd appends every sample event over REST and gRPC, restarts the
// server, and checks with x/mod/sumdb code only (never the code that made
// them) every inclusion proof, a consistency proof across the restart, and
// the whole log read back through /log/ as a tlog-tiles client reads it.
func TestEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	checkDataDir(t, dataDir)
	endToEnd(t, d)
}

// endToEnd is TestEndToEnd on a started daemon, whatever its storage.
func endToEnd(t *testing.T, d *daemon) {

	_, bodies, events := loadSamples(t)
	type sent struct {
		event    *pb.ProvenanceEvent
		leafHash []byte
	}
	byIndex := map[uint64]sent{}
	record := func(name string, idx uint64, hash []byte, ev *pb.ProvenanceEvent) {
		if prev, ok := byIndex[idx]; ok {
			t.Fatalf("%s: index %d already used by %s", name, idx, prev.event.GetEventId())
		}
		byIndex[idx] = sent{ev, hash}
	}

	half := len(events) / 2
	// First half over REST, alternating the two wait modes.
	for i := 0; i < half; i++ {
		path := "/v1/events"
		if i%2 == 1 {
			path += "?wait=WAIT_FOR_PUBLISHED"
		}
		code, b := d.rest("POST", path, bodies[i])
		if code != http.StatusOK {
			t.Fatalf("POST %s event %d: %d %s", path, i, code, b)
		}
		var resp pb.AppendResponse
		if err := protojson.Unmarshal(b, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.GetDuplicate() {
			t.Fatalf("event %d: unexpected duplicate", i)
		}
		if i%2 == 1 {
			checkReceipt(t, d, resp.GetReceipt(), events[i])
		}
		record(events[i].GetEventId(), resp.GetIndex(), resp.GetLeafHash(), events[i])
	}
	// Second half over gRPC: a few unary, the rest in one batch.
	c := d.client()
	for i := half; i < half+3; i++ {
		resp, err := c.Append(d.ctx(), &pb.AppendRequest{Event: events[i], Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
		if err != nil {
			t.Fatalf("gRPC Append %d: %v", i, err)
		}
		checkReceipt(t, d, resp.GetReceipt(), events[i])
		record(events[i].GetEventId(), resp.GetIndex(), resp.GetLeafHash(), events[i])
	}
	bresp, err := c.AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: events[half+3:], Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	for j, r := range bresp.GetResults() {
		ev := events[half+3+j]
		if r.GetError() != nil {
			t.Fatalf("batch event %d: %v", j, r.GetError())
		}
		checkReceipt(t, d, r.GetReceipt(), ev)
		record(ev.GetEventId(), r.GetIndex(), r.GetLeafHash(), ev)
	}
	if len(byIndex) != len(events) {
		t.Fatalf("%d indexes for %d events", len(byIndex), len(events))
	}

	before := d.waitForSize(int64(len(events)))
	d.stop()
	d.start()

	// Idempotency across the restart: the same event again is a duplicate
	// with its first index; nothing new is appended.
	for i := range events {
		resp, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: events[i]})
		if err != nil {
			t.Fatalf("re-append %d after restart: %v", i, err)
		}
		if !resp.GetDuplicate() || byIndex[resp.GetIndex()].event.GetEventId() != events[i].GetEventId() {
			t.Fatalf("re-append %d after restart: got index %d duplicate=%v", i, resp.GetIndex(), resp.GetDuplicate())
		}
	}
	// Grow the log past the restart with variants of the samples.
	var more []*pb.ProvenanceEvent
	for i, ev := range events[:5] {
		ev = proto.Clone(ev).(*pb.ProvenanceEvent)
		ev.EventId = fmt.Sprintf("%s:after-restart-%d", ev.GetEventId(), i)
		more = append(more, ev)
	}
	bresp, err = d.client().AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: more, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatalf("AppendBatch after restart: %v", err)
	}
	for j, r := range bresp.GetResults() {
		if r.GetError() != nil {
			t.Fatalf("batch event %d after restart: %v", j, r.GetError())
		}
		record(more[j].GetEventId(), r.GetIndex(), r.GetLeafHash(), more[j])
	}
	after := d.waitForSize(int64(len(byIndex)))
	if after.size != int64(len(byIndex)) {
		t.Fatalf("log has %d leaves, want %d: duplicates were appended?", after.size, len(byIndex))
	}

	// Consistency across the restart, checked with x/mod.
	cresp, err := d.client().GetConsistencyProof(d.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(before.size), ToSize: uint64(after.size)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(hashes(t, cresp.GetProof()), after.size, after.root, before.size, before.root); err != nil {
		t.Fatalf("consistency %d -> %d across restart: %v", before.size, after.size, err)
	}
	// Every inclusion proof, by index and by leaf hash, checked with x/mod.
	for idx, s := range byIndex {
		for _, req := range []*pb.GetInclusionProofRequest{
			{Leaf: &pb.GetInclusionProofRequest_Index{Index: idx}, TreeSize: uint64(after.size)},
			{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: s.leafHash}, TreeSize: uint64(after.size)},
		} {
			p, err := d.client().GetInclusionProof(d.ctx(), req)
			if err != nil {
				t.Fatalf("inclusion proof of %d: %v", idx, err)
			}
			if p.GetIndex() != idx {
				t.Fatalf("inclusion proof by hash: index %d, want %d", p.GetIndex(), idx)
			}
			if err := tlog.CheckRecord(hashes(t, p.GetProof()), after.size, after.root, int64(idx), tlog.Hash(s.leafHash)); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", idx, after.size, err)
			}
		}
	}
	// The whole log through /log/, as a tlog-tiles client: every entry is
	// the leaf we were told, and decodes to the event we sent.
	entries := readWholeLog(t, d, after)
	for idx, s := range byIndex {
		leaf := entries[idx]
		if h := tlog.RecordHash(leaf); string(h[:]) != string(s.leafHash) {
			t.Fatalf("leaf %d in tiles hashes to %x, Append said %x", idx, h, s.leafHash)
		}
		entry, err := event.DecodeLeaf(leaf)
		if err != nil {
			t.Fatalf("leaf %d: %v", idx, err)
		}
		if !proto.Equal(entry.GetEvent(), s.event) {
			t.Fatalf("leaf %d holds %v, sent %v", idx, entry.GetEvent(), s.event)
		}
		if entry.GetSubmitter() != "admin" {
			t.Fatalf("leaf %d submitter %q, want admin", idx, entry.GetSubmitter())
		}
	}
	d.stop()
}

// checkReceipt verifies a receipt offline with x/mod: the checkpoint's
// signature, the inclusion proof, and that the leaf holds the event sent.
func checkReceipt(t *testing.T, d *daemon, r *pb.Receipt, sent *pb.ProvenanceEvent) {
	t.Helper()
	if r == nil {
		t.Fatal("no receipt")
	}
	cp := openCheckpoint(t, d.verifier(), r.GetCheckpoint())
	if err := tlog.CheckRecord(hashes(t, r.GetInclusionProof()), cp.size, cp.root, int64(r.GetIndex()), tlog.RecordHash(r.GetLeaf())); err != nil {
		t.Fatalf("receipt for %d does not prove inclusion: %v", r.GetIndex(), err)
	}
	entry, err := event.DecodeLeaf(r.GetLeaf())
	if err != nil {
		t.Fatalf("receipt leaf: %v", err)
	}
	if !proto.Equal(entry.GetEvent(), sent) {
		t.Fatalf("receipt leaf holds %v, sent %v", entry.GetEvent(), sent)
	}
}

func hashes(t *testing.T, p [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		if len(h) != tlog.HashSize {
			t.Fatalf("proof hash %d has %d bytes", i, len(h))
		}
		out[i] = tlog.Hash(h)
	}
	return out
}

// checkDataDir checks the files DESIGN.md promises in a new data dir.
func checkDataDir(t *testing.T, dir string) {
	t.Helper()
	for _, tc := range []struct {
		name string
		mode os.FileMode
	}{{"log.key", 0o600}, {"admin.token", 0o600}, {"log.pub", 0o644}} {
		st, err := os.Stat(filepath.Join(dir, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != tc.mode {
			t.Errorf("%s has mode %#o, want %#o", tc.name, st.Mode().Perm(), tc.mode)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(pub)), "\n"); len(lines) != 1 {
		t.Errorf("log.pub has %d lines, want 1", len(lines))
	}
}
